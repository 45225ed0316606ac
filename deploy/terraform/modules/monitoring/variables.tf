variable "project_id" {
  description = "Project that owns the metrics, alert policies and uptime checks (the environment's project)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix of the environment; it prefixes every metric and policy name and selects the environment's Pub/Sub subscriptions."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "notification_email" {
  description = "Address that receives the alerts (e.g. the on-call group's list)."
  type        = string
  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an e-mail address."
  }
}

variable "cluster_name" {
  description = "GKE cluster whose workloads are watched."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the services."
  type        = string
  default     = "fintech"
}

variable "sql_instance_name" {
  description = "Cloud SQL instance whose CPU and disk are watched; null skips those alerts."
  type        = string
  default     = null
}

variable "public_host" {
  description = "Public host name of the entry point (e.g. \"api.fintech.example.com\") for HTTPS uptime checks; null skips them."
  type        = string
  default     = null
}

variable "uptime_paths" {
  description = "Paths on public_host that must answer 2xx over HTTPS."
  type        = list(string)
  default     = ["/"]
  validation {
    condition     = alltrue([for p in var.uptime_paths : startswith(p, "/")])
    error_message = "uptime_paths entries must start with '/'."
  }
}

variable "http_5xx_threshold" {
  description = "5xx responses (from the JSON access logs) per service in 5 minutes that raise an alert."
  type        = number
  default     = 10
  validation {
    condition     = var.http_5xx_threshold >= 0
    error_message = "http_5xx_threshold must not be negative."
  }
}

variable "error_rate_threshold" {
  description = "Share of 5xx responses per service over 5 minutes that raises an alert (0.02 = 2 %)."
  type        = number
  default     = 0.02
  validation {
    condition     = var.error_rate_threshold > 0 && var.error_rate_threshold < 1
    error_message = "error_rate_threshold must be between 0 and 1."
  }
}

variable "latency_p99_seconds" {
  description = "99th percentile request latency per service (seconds) that raises an alert."
  type        = number
  default     = 1
  validation {
    condition     = var.latency_p99_seconds > 0
    error_message = "latency_p99_seconds must be positive."
  }
}

variable "sql_cpu_threshold" {
  description = "Cloud SQL CPU utilisation (0-1) sustained for 10 minutes that raises an alert."
  type        = number
  default     = 0.8
  validation {
    condition     = var.sql_cpu_threshold > 0 && var.sql_cpu_threshold <= 1
    error_message = "sql_cpu_threshold must be in (0, 1]."
  }
}

variable "sql_disk_threshold" {
  description = "Cloud SQL disk utilisation (0-1) that raises an alert."
  type        = number
  default     = 0.85
  validation {
    condition     = var.sql_disk_threshold > 0 && var.sql_disk_threshold <= 1
    error_message = "sql_disk_threshold must be in (0, 1]."
  }
}

variable "oldest_unacked_seconds" {
  description = "Age (seconds) of the oldest unacknowledged message on a consumer subscription that raises an alert."
  type        = number
  default     = 600
  validation {
    condition     = var.oldest_unacked_seconds >= 60
    error_message = "oldest_unacked_seconds must be at least 60."
  }
}

variable "labels" {
  description = "User labels for alert policies, uptime checks and the notification channel."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
