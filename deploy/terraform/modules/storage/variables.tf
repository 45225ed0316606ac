variable "project_id" {
  description = "Project that owns the buckets."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; a bucket is \"<prefix>-<key>\". Bucket names are global, so the prefix should carry the organisation's name (e.g. \"acme-fin-prod\")."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "location" {
  description = "Default location of the buckets (a region such as \"europe-west1\" or a multi-region such as \"EU\")."
  type        = string
  validation {
    condition     = can(regex("^([a-z]+-[a-z]+[0-9]|[a-zA-Z]+)$", var.location))
    error_message = "location must be a region (e.g. europe-west1) or a multi-region (e.g. EU, europe)."
  }
}

variable "buckets" {
  description = <<-EOT
    Buckets by key. Each is private (uniform bucket-level access, public access prevention
    enforced) and always versioned. Lifecycle: noncurrent versions are deleted after
    noncurrent_version_retention_days or when more than max_noncurrent_versions exist;
    delete_after_days and nearline_after_days are optional. IAM lists take members such as
    serviceAccount:<email>: object_users read, write and delete objects (roles/storage.objectUser,
    no IAM rights), object_creators only add, object_viewers only read.
  EOT
  type = map(object({
    location                          = optional(string)
    storage_class                     = optional(string, "STANDARD")
    noncurrent_version_retention_days = optional(number, 30)
    max_noncurrent_versions           = optional(number, 5)
    delete_after_days                 = optional(number)
    nearline_after_days               = optional(number)
    soft_delete_retention_seconds     = optional(number, 604800)
    kms_key_name                      = optional(string)
    object_users                      = optional(list(string), [])
    object_creators                   = optional(list(string), [])
    object_viewers                    = optional(list(string), [])
  }))
  validation {
    condition     = alltrue([for k, _ in var.buckets : can(regex("^[a-z0-9][a-z0-9_-]{0,30}[a-z0-9]$", k))])
    error_message = "Bucket keys must be 2-32 characters: lowercase letters, digits, '-' and '_'."
  }
  validation {
    condition     = alltrue([for b in var.buckets : contains(["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], b.storage_class)])
    error_message = "storage_class must be STANDARD, NEARLINE, COLDLINE or ARCHIVE."
  }
  validation {
    condition     = alltrue([for b in var.buckets : b.soft_delete_retention_seconds == 0 || (b.soft_delete_retention_seconds >= 604800 && b.soft_delete_retention_seconds <= 7776000)])
    error_message = "soft_delete_retention_seconds must be 0 or between 7 and 90 days."
  }
  validation {
    condition     = alltrue([for b in var.buckets : b.noncurrent_version_retention_days >= 1 && b.max_noncurrent_versions >= 1])
    error_message = "noncurrent_version_retention_days and max_noncurrent_versions must be at least 1."
  }
}

variable "access_log_bucket" {
  description = "Bucket that receives usage (access) logs of these buckets; null relies on Cloud Audit Logs (Data Access) only."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let destroy delete buckets that still hold objects. Only an ephemeral environment (ci) turns this on."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels for the buckets."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
