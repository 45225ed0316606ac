# --- Where and what the environment is -----------------------------------------------------------

variable "project_id" {
  description = "Project the environment is built in."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "region" {
  description = "Region of every regional resource (cluster, Cloud SQL, Redis, key ring, buckets, secret replicas, Pub/Sub message storage)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like \"europe-west1\"."
  }
}

variable "prefix" {
  description = "Name prefix of every resource (bucket names are global: include the organisation, e.g. \"fintech-prod\"; ephemeral environments include the build number)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Labels for every resource that takes them: the caller's default labels, with app, env and managed-by set."
  type        = map(string)
  validation {
    condition     = alltrue([for k in ["app", "env", "managed-by"] : contains(keys(var.labels), k)])
    error_message = "labels must set app, env and managed-by."
  }
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}

variable "notification_email" {
  description = "Address that receives the environment's alerts."
  type        = string
  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an e-mail address."
  }
}

variable "public_host" {
  description = "Public host name of the entry point, for HTTPS uptime checks; null skips them."
  type        = string
  default     = null
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the cluster's control plane (e.g. the Jenkins agents' egress range)."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrnetmask(n.cidr_block)) && n.cidr_block != "0.0.0.0/0"])
    error_message = "master_authorized_networks entries must be IPv4 CIDR blocks, and 0.0.0.0/0 is not allowed."
  }
}

variable "registry" {
  description = "The shared Artifact Registry repository (envs/bootstrap outputs) whose images the nodes pull."
  type = object({
    project_id = string
    location   = string
    name       = string
  })
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.registry.project_id)) && var.registry.location != "" && var.registry.name != ""
    error_message = "registry needs a valid project_id, a location and a repository name."
  }
}

variable "openapi_path" {
  description = "OpenAPI document of the public API for Cloud Endpoints; null skips Endpoints."
  type        = string
  default     = null
}

variable "endpoints_service_name" {
  description = "Cloud Endpoints service name; must equal the OpenAPI document's host. Required with openapi_path."
  type        = string
  default     = null
  validation {
    condition     = var.openapi_path == null || var.endpoints_service_name != null
    error_message = "endpoints_service_name is required when openapi_path is set."
  }
}

variable "secret_operators" {
  description = "IAM members (e.g. group:fintech-ops@example.com, or the Jenkins service account in ci) who add the values of third-party secrets."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.secret_operators : can(regex("^(serviceAccount|group|user|principal|principalSet):", m))])
    error_message = "secret_operators must be IAM members such as group:<email> or serviceAccount:<email>."
  }
}

variable "dead_letter_readers" {
  description = "IAM members who may read and replay dead letters."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.dead_letter_readers : can(regex("^(serviceAccount|group|user|principal|principalSet):", m))])
    error_message = "dead_letter_readers must be IAM members such as group:<email>."
  }
}

variable "password_version" {
  description = "Generation of the database passwords; increase to rotate them."
  type        = number
  default     = 1
  validation {
    condition     = var.password_version >= 1 && floor(var.password_version) == var.password_version
    error_message = "password_version must be a positive whole number."
  }
}

# --- What makes one environment differ from another ----------------------------------------------

variable "deletion_protection" {
  description = "Refuse to delete the cluster, the Cloud SQL instance, Redis and the secrets. Only an ephemeral environment (ci) turns this off."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let destroy delete buckets that still hold objects. Only an ephemeral environment (ci) turns this on."
  type        = bool
  default     = false
}

variable "customer_managed_encryption" {
  description = "Create the environment's key ring (\"<prefix>-keyring\", never deletable) with vault's HSM key-encryption key and a CMEK key for Cloud SQL, Redis, Pub/Sub, the buckets, the secrets, GKE Secrets and node disks. false: Google-managed keys, and vault borrows vault_kms_key_id (for ephemeral environments)."
  type        = bool
  default     = true
}

variable "vault_kms_key_id" {
  description = "Long-lived key-encryption key that vault borrows when the environment has no keys of its own (customer_managed_encryption = false; envs/bootstrap output ci_vault_kms_key). Must be null otherwise."
  type        = string
  default     = null
  validation {
    condition     = var.vault_kms_key_id == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.vault_kms_key_id))
    error_message = "vault_kms_key_id must be a full key id: projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
  validation {
    condition     = var.customer_managed_encryption == (var.vault_kms_key_id == null)
    error_message = "Set vault_kms_key_id exactly when customer_managed_encryption is false: vault uses the environment's own key otherwise."
  }
}

variable "gke" {
  description = "The cluster's release channel (RAPID, REGULAR, STABLE or EXTENDED), its autoscaled node pools by name (min_count and max_count are per zone), and private_endpoint: the control plane on its private IP only (then the Jenkins agents must reach the environment's VPC, and ci/jenkins/vars/fintechEnv.groovy must set privateEndpoint for it)."
  type = object({
    release_channel  = string
    private_endpoint = optional(bool, false)
    node_pools = map(object({
      machine_type = string
      min_count    = number
      max_count    = number
    }))
  })
  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE", "EXTENDED"], var.gke.release_channel)
    error_message = "gke.release_channel must be RAPID, REGULAR, STABLE or EXTENDED."
  }
  validation {
    condition     = length(var.gke.node_pools) > 0 && alltrue([for p in var.gke.node_pools : p.min_count >= 0 && p.max_count >= 1 && p.min_count <= p.max_count])
    error_message = "gke.node_pools needs at least one pool, each with 0 <= min_count <= max_count and max_count >= 1."
  }
}

variable "cloudsql" {
  description = <<-EOT
    The Cloud SQL for MySQL 8.0 instance: tier (db-custom-<vCPU>-<MiB>), availability_type
    (REGIONAL: a standby in another zone with automatic failover; ZONAL for ephemeral
    environments), retained_backups (daily backups kept), transaction_log_retention_days (point-in-
    time recovery), and optionally the initial disk size and its growth limit in GB, a backup
    location outside the region (e.g. "eu") and whether backups outlive the instance. The optional
    ones default as in the cloudsql module.
  EOT
  type = object({
    tier                           = string
    availability_type              = string
    retained_backups               = number
    transaction_log_retention_days = number
    disk_size_gb                   = optional(number, 20)
    disk_autoresize_limit_gb       = optional(number, 500)
    backup_location                = optional(string)
    retain_backups_on_delete       = optional(bool, true)
  })
  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.cloudsql.availability_type)
    error_message = "cloudsql.availability_type must be REGIONAL or ZONAL."
  }
  validation {
    condition     = can(regex("^db-(custom-[0-9]+-[0-9]+|perf-optimized-N-[0-9]+|n1-(standard|highmem)-[0-9]+)$", var.cloudsql.tier))
    error_message = "cloudsql.tier must be a dedicated-core tier such as db-custom-2-7680 (shared-core tiers have no SLA)."
  }
  validation {
    condition     = var.cloudsql.retained_backups >= 1 && var.cloudsql.retained_backups <= 365 && var.cloudsql.transaction_log_retention_days >= 1 && var.cloudsql.transaction_log_retention_days <= 7
    error_message = "cloudsql.retained_backups must be 1-365 and transaction_log_retention_days 1-7."
  }
}

variable "redis_memory_size_gb" {
  description = "Memory of the Memorystore for Redis instance (STANDARD_HA) in GiB."
  type        = number
  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300
    error_message = "redis_memory_size_gb must be between 1 and 300."
  }
}

variable "bucket_soft_delete_retention_seconds" {
  description = "How long deleted objects stay restorable in every bucket (0 turns soft delete off, for ephemeral environments; otherwise 7 to 90 days)."
  type        = number
  default     = 604800
  validation {
    condition     = var.bucket_soft_delete_retention_seconds == 0 || (var.bucket_soft_delete_retention_seconds >= 604800 && var.bucket_soft_delete_retention_seconds <= 7776000)
    error_message = "bucket_soft_delete_retention_seconds must be 0 or between 604800 (7 days) and 7776000 (90 days)."
  }
}
