variable "project_id" {
  description = "Project that owns the secrets."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; a secret is \"<prefix>-<key>\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "secrets" {
  description = <<-EOT
    Secrets by key. Only the containers are created here: values are written by the module that
    generates them (Cloud SQL users, Redis AUTH) through write-only arguments, or added by an
    operator for third-party credentials (gcloud secrets versions add). accessors may read the
    current value (roles/secretmanager.secretAccessor); version_adders may add new versions.
  EOT
  type = map(object({
    accessors      = optional(list(string), [])
    version_adders = optional(list(string), [])
  }))
  validation {
    condition     = alltrue([for k, _ in var.secrets : can(regex("^[a-z][a-z0-9_-]{0,200}$", k))])
    error_message = "Secret keys must start with a lowercase letter and hold only lowercase letters, digits, '_' and '-'."
  }
  validation {
    condition     = alltrue(flatten([for s in var.secrets : [for m in concat(s.accessors, s.version_adders) : can(regex("^(serviceAccount|group|user|principal|principalSet):", m))]]))
    error_message = "IAM members must look like serviceAccount:<email>, group:<email>, user:<email>, principal:// or principalSet://."
  }
}

variable "replica_locations" {
  description = "Regions the secrets are replicated to (data residency). Empty means automatic replication chosen by Google."
  type        = list(string)
  default     = []
}

variable "kms_key_names" {
  description = "Cloud KMS key per replica location for customer-managed encryption (only with replica_locations). The Secret Manager service agent needs encrypter/decrypter on each."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for l in keys(var.kms_key_names) : contains(var.replica_locations, l)])
    error_message = "kms_key_names may only name locations listed in replica_locations."
  }
}

variable "version_destroy_ttl" {
  description = "Destroyed secret versions stay recoverable (disabled) for this long before they are really destroyed."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.version_destroy_ttl))
    error_message = "version_destroy_ttl must be a number of seconds such as \"604800s\"."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the secrets (and so their values). Only an ephemeral environment (ci) turns this off."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels for the secrets."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
