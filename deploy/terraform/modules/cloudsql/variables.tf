variable "project_id" {
  description = "Project that owns the instance."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; the instance is \"<prefix>-mysql\". Cloud SQL names cannot be reused for about a week after deletion, so ephemeral environments put a build number in the prefix."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the instance."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like \"europe-west1\"."
  }
}

variable "network_id" {
  description = "VPC the instance gets its private IP in (network module output network_id)."
  type        = string
  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]+/global/networks/[a-z][a-z0-9-]*$", var.network_id))
    error_message = "network_id must be a network id: projects/<project>/global/networks/<name>."
  }
}

variable "allocated_ip_range" {
  description = "Name of the private service access range to allocate from (network module output private_service_access_range_name)."
  type        = string
}

variable "database_version" {
  description = "MySQL major version. MYSQL_8_0 is the target; MYSQL_5_7 is still accepted for existing estates."
  type        = string
  default     = "MYSQL_8_0"
  validation {
    condition     = contains(["MYSQL_8_0", "MYSQL_5_7"], var.database_version)
    error_message = "database_version must be MYSQL_8_0 (default) or MYSQL_5_7."
  }
}

variable "edition" {
  description = "Cloud SQL edition: ENTERPRISE (db-custom-* tiers) or ENTERPRISE_PLUS (db-perf-optimized-* tiers, MySQL 8.0 only)."
  type        = string
  default     = "ENTERPRISE"
  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.edition)
    error_message = "edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
  validation {
    condition     = !(var.edition == "ENTERPRISE_PLUS" && var.database_version == "MYSQL_5_7")
    error_message = "MySQL 5.7 is only available on the ENTERPRISE edition."
  }
}

variable "tier" {
  description = "Machine tier, e.g. db-custom-2-7680 (2 vCPU, 7.5 GiB)."
  type        = string
  default     = "db-custom-2-7680"
  validation {
    condition     = can(regex("^db-(custom-[0-9]+-[0-9]+|perf-optimized-N-[0-9]+|n1-(standard|highmem)-[0-9]+)$", var.tier))
    error_message = "tier must be a dedicated-core tier such as db-custom-2-7680 or db-perf-optimized-N-4 (shared-core tiers have no SLA)."
  }
  validation {
    condition     = var.edition != "ENTERPRISE_PLUS" || startswith(var.tier, "db-perf-optimized-")
    error_message = "ENTERPRISE_PLUS needs a db-perf-optimized-N-* tier."
  }
}

variable "availability_type" {
  description = "REGIONAL: a standby in another zone with automatic failover (high availability). ZONAL: a single zone, for ephemeral environments."
  type        = string
  default     = "REGIONAL"
  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.availability_type)
    error_message = "availability_type must be REGIONAL or ZONAL."
  }
}

variable "disk_size_gb" {
  description = "Initial SSD size in GB; it grows automatically up to disk_autoresize_limit_gb."
  type        = number
  default     = 20
  validation {
    condition     = var.disk_size_gb >= 10 && var.disk_size_gb <= 65536
    error_message = "disk_size_gb must be between 10 and 65536."
  }
}

variable "disk_autoresize_limit_gb" {
  description = "Upper bound for automatic storage growth in GB (0 = no limit)."
  type        = number
  default     = 500
  validation {
    condition     = var.disk_autoresize_limit_gb >= 0
    error_message = "disk_autoresize_limit_gb must not be negative."
  }
}

variable "backup_start_time" {
  description = "Daily backup window start, HH:MM in UTC."
  type        = string
  default     = "02:00"
  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup_start_time))
    error_message = "backup_start_time must be HH:MM (24h, UTC)."
  }
}

variable "backup_location" {
  description = "Location for backups (e.g. the multi-region \"eu\"); null stores them in the instance's region."
  type        = string
  default     = null
}

variable "retained_backups" {
  description = "How many daily automated backups to keep."
  type        = number
  default     = 7
  validation {
    condition     = var.retained_backups >= 1 && var.retained_backups <= 365
    error_message = "retained_backups must be between 1 and 365."
  }
}

variable "transaction_log_retention_days" {
  description = "Days of binary logs kept for point-in-time recovery (1-7 on ENTERPRISE, 1-35 on ENTERPRISE_PLUS)."
  type        = number
  default     = 7
  validation {
    condition     = var.transaction_log_retention_days >= 1 && var.transaction_log_retention_days <= (var.edition == "ENTERPRISE_PLUS" ? 35 : 7)
    error_message = "transaction_log_retention_days must be 1-7 on ENTERPRISE and 1-35 on ENTERPRISE_PLUS."
  }
}

variable "retain_backups_on_delete" {
  description = "Keep automated backups (and take a final one) if the instance is ever deleted."
  type        = bool
  default     = true
}

variable "maintenance_window" {
  description = "Weekly maintenance window: day 1-7 (Monday-Sunday), hour 0-23 UTC, update_track canary, stable or week5."
  type = object({
    day          = number
    hour         = number
    update_track = optional(string, "stable")
  })
  default = {
    day  = 7
    hour = 3
  }
  validation {
    condition     = var.maintenance_window.day >= 1 && var.maintenance_window.day <= 7 && var.maintenance_window.hour >= 0 && var.maintenance_window.hour <= 23
    error_message = "maintenance_window.day must be 1-7 and hour 0-23."
  }
  validation {
    condition     = contains(["canary", "stable", "week5"], var.maintenance_window.update_track)
    error_message = "maintenance_window.update_track must be canary, stable or week5."
  }
}

variable "connector_enforcement" {
  description = "REQUIRED: clients must connect through the Cloud SQL Auth Proxy or a connector (IAM-authorised, encrypted). NOT_REQUIRED also allows direct private-IP connections."
  type        = string
  default     = "REQUIRED"
  validation {
    condition     = contains(["REQUIRED", "NOT_REQUIRED"], var.connector_enforcement)
    error_message = "connector_enforcement must be REQUIRED or NOT_REQUIRED."
  }
}

variable "ssl_mode" {
  description = "TLS policy. TRUSTED_CLIENT_CERTIFICATE_REQUIRED: mutual TLS, which the Cloud SQL Auth Proxy always speaks (with short-lived certificates); ENCRYPTED_ONLY: TLS without client certificates, for direct private-IP clients when connector_enforcement is NOT_REQUIRED. Unencrypted connections are never accepted."
  type        = string
  default     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
  validation {
    condition     = contains(["TRUSTED_CLIENT_CERTIFICATE_REQUIRED", "ENCRYPTED_ONLY"], var.ssl_mode)
    error_message = "ssl_mode must be TRUSTED_CLIENT_CERTIFICATE_REQUIRED or ENCRYPTED_ONLY."
  }
}

variable "database_flags" {
  description = "Extra MySQL flags, merged over the module's security defaults (local_infile=off, skip_show_database=on, slow query log). The security defaults cannot be relaxed."
  type        = map(string)
  default     = {}
  validation {
    condition     = lookup(var.database_flags, "local_infile", "off") == "off" && lookup(var.database_flags, "skip_show_database", "on") == "on"
    error_message = "local_infile must stay off and skip_show_database must stay on."
  }
}

variable "databases" {
  description = "One database (and one MySQL user of the same name) per service, by the service's configuration key, e.g. [\"contact_us\", \"payments\"]."
  type        = list(string)
  validation {
    condition     = length(var.databases) > 0 && alltrue([for d in var.databases : can(regex("^[a-z][a-z0-9_]{0,31}$", d))])
    error_message = "databases must be non-empty; names are lowercase letters, digits and '_', at most 32 characters (the MySQL user name limit)."
  }
  validation {
    condition     = length(distinct(var.databases)) == length(var.databases)
    error_message = "databases must not repeat a name."
  }
}

variable "database_url_secret_ids" {
  description = "Secret Manager secret (id) per database that receives the service's connection URL, mysql://<user>:<password>@<proxy_address>/<database>. Create the secrets with the secret-manager module."
  type        = map(string)
  validation {
    condition     = alltrue([for d in var.databases : contains(keys(var.database_url_secret_ids), d)])
    error_message = "database_url_secret_ids needs a secret for every entry of databases."
  }
}

variable "password_version" {
  description = "Generation of the users' passwords. Passwords are generated, written to the users and to Secret Manager without ever entering the state; increase this number to rotate them all."
  type        = number
  default     = 1
  validation {
    condition     = var.password_version >= 1 && floor(var.password_version) == var.password_version
    error_message = "password_version must be a positive whole number."
  }
}

variable "proxy_address" {
  description = "host:port the services reach MySQL on; the Cloud SQL Auth Proxy sidecar listens on 127.0.0.1:3306."
  type        = string
  default     = "127.0.0.1:3306"
  validation {
    condition     = can(regex("^[a-zA-Z0-9.-]+:[0-9]{1,5}$", var.proxy_address))
    error_message = "proxy_address must be host:port."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (same region) for customer-managed encryption; null uses Google-managed keys. The Cloud SQL service agent needs encrypter/decrypter on it."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (both in Terraform and in the Cloud SQL API). Only an ephemeral environment (ci) turns this off."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels for the instance."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
