variable "project_id" {
  description = "Project that owns the repository."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; the repository is \"<prefix>-images\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "location" {
  description = "Region (or multi-region such as \"europe\") of the repository."
  type        = string
  validation {
    condition     = can(regex("^([a-z]+-[a-z]+[0-9]|[a-zA-Z]+)$", var.location))
    error_message = "location must be a region (e.g. europe-west1) or a multi-region (e.g. EU, europe)."
  }
}

variable "keep_recent_versions" {
  description = "Newest image versions per package that the cleanup policy always keeps, whatever their age."
  type        = number
  default     = 30
  validation {
    condition     = var.keep_recent_versions >= 1
    error_message = "keep_recent_versions must be at least 1."
  }
}

variable "delete_untagged_after" {
  description = "Age after which untagged image versions (superseded builds) are deleted, in seconds such as \"1209600s\" (14 days)."
  type        = string
  default     = "1209600s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.delete_untagged_after))
    error_message = "delete_untagged_after must be a number of seconds such as \"1209600s\"."
  }
}

variable "cleanup_dry_run" {
  description = "Only report what the cleanup policies would delete."
  type        = bool
  default     = false
}

variable "readers" {
  description = "IAM members that pull images, by a name of your choice (e.g. { staging-nodes = \"serviceAccount:...\" }). Grants are additive: environments may add their own readers."
  type        = map(string)
  default     = {}
}

variable "writers" {
  description = "IAM members that push images (e.g. the CI service account), by a name of your choice. Additive."
  type        = map(string)
  default     = {}
}

variable "kms_key_name" {
  description = "Cloud KMS key (same location) for customer-managed encryption; null uses Google-managed keys. The Artifact Registry service agent needs encrypter/decrypter on it."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels for the repository."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
