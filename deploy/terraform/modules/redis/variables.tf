variable "project_id" {
  description = "Project that owns the instance."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; the instance is \"<prefix>-redis\"."
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
  description = "VPC the instance is reachable from (network module output network_id)."
  type        = string
  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]+/global/networks/[a-z][a-z0-9-]*$", var.network_id))
    error_message = "network_id must be a network id: projects/<project>/global/networks/<name>."
  }
}

variable "reserved_ip_range" {
  description = "Name of the private service access range to allocate from (network module output private_service_access_range_name)."
  type        = string
}

variable "tier" {
  description = "STANDARD_HA: a replica in another zone with automatic failover. BASIC (single node, no SLA) exists for throwaway setups only."
  type        = string
  default     = "STANDARD_HA"
  validation {
    condition     = contains(["STANDARD_HA", "BASIC"], var.tier)
    error_message = "tier must be STANDARD_HA or BASIC."
  }
}

variable "memory_size_gb" {
  description = "Memory of the instance in GiB."
  type        = number
  default     = 1
  validation {
    condition     = var.memory_size_gb >= 1 && var.memory_size_gb <= 300
    error_message = "memory_size_gb must be between 1 and 300."
  }
}

variable "redis_version" {
  description = "Redis version, e.g. REDIS_7_2."
  type        = string
  default     = "REDIS_7_2"
  validation {
    condition     = can(regex("^REDIS_[0-9]+_[0-9]+$", var.redis_version))
    error_message = "redis_version must look like REDIS_7_2."
  }
}

variable "redis_configs" {
  description = "Redis configuration parameters, e.g. { \"maxmemory-policy\" = \"volatile-lru\" }."
  type        = map(string)
  default = {
    "maxmemory-policy" = "volatile-lru"
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window: day (MONDAY..SUNDAY) and start hour in UTC."
  type = object({
    day  = string
    hour = number
  })
  default = {
    day  = "SUNDAY"
    hour = 3
  }
  validation {
    condition     = contains(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"], var.maintenance_window.day) && var.maintenance_window.hour >= 0 && var.maintenance_window.hour <= 23
    error_message = "maintenance_window.day must be a weekday name in capitals and hour 0-23."
  }
}

variable "auth_secret_id" {
  description = "Secret Manager secret (id) that receives the generated AUTH string; null leaves it readable only from the instance."
  type        = string
  default     = null
}

variable "url_secret_id" {
  description = "Secret Manager secret (id) that receives the URL clients connect with, rediss://:<AUTH>@<host>:<port>/0 (the services' FINTECH_REDIS__URL); null writes none."
  type        = string
  default     = null
}

variable "ca_secret_id" {
  description = "Secret Manager secret (id) that receives the instance's server CA certificates as one PEM bundle (the services' FINTECH_REDIS__CA_FILE, mounted by the chart); null writes none."
  type        = string
  default     = null
}

variable "kms_key_name" {
  description = "Cloud KMS key (same region) for customer-managed encryption; null uses Google-managed keys. The Memorystore service agent needs encrypter/decrypter on it."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the instance. Only an ephemeral environment (ci) turns this off."
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
