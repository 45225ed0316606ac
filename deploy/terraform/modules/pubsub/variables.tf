variable "project_id" {
  description = "Project that owns the topics and subscriptions."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; a topic is \"<prefix>-<stream>\", e.g. \"fintech-prod-contact-us.events\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "topics" {
  description = "Event streams by name (\"<service>.events\"): the services that publish to it and the services that consume it. Each consumer gets its own ordered subscription."
  type = map(object({
    publishers  = list(string)
    subscribers = list(string)
  }))
  validation {
    condition     = alltrue([for name, _ in var.topics : can(regex("^[a-z][a-z0-9.-]{0,100}$", name))])
    error_message = "Topic names must start with a letter and hold only lowercase letters, digits, '.' and '-'."
  }
  validation {
    condition     = alltrue([for t in var.topics : length(t.publishers) > 0])
    error_message = "Every topic needs at least one publisher."
  }
  validation {
    condition     = alltrue(flatten([for t in var.topics : [for s in concat(t.publishers, t.subscribers) : contains(keys(var.service_members), s)]]))
    error_message = "Every publisher and subscriber must have an entry in service_members."
  }
}

variable "service_members" {
  description = "IAM member per service name (e.g. \"serviceAccount:fintech-prod-audit@p.iam.gserviceaccount.com\"), used to grant publish and subscribe rights (a consumer also publishes to its own dead-letter topic). Output members of the workload-identity module."
  type        = map(string)
  validation {
    condition     = alltrue([for m in values(var.service_members) : can(regex("^(serviceAccount|group|user|principal|principalSet):", m))])
    error_message = "service_members values must be IAM member strings such as serviceAccount:<email>."
  }
}

variable "dead_letter_readers" {
  description = "IAM members (e.g. an operators' group) allowed to read and replay dead letters."
  type        = list(string)
  default     = []
}

variable "ack_deadline_seconds" {
  description = "Time a consumer has to acknowledge a message. Matches the handlers' attempt deadline (60 s)."
  type        = number
  default     = 60
  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is moved to the consumer's dead-letter topic (Pub/Sub allows 5-100)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff" {
  description = "Smallest delay before a nacked message is redelivered (duration in seconds, e.g. \"10s\")."
  type        = string
  default     = "10s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_minimum_backoff)) && tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600
    error_message = "retry_minimum_backoff must be a number of seconds like \"10s\", at most 600s."
  }
}

variable "retry_maximum_backoff" {
  description = "Largest delay before redelivery (exponential backoff grows up to it)."
  type        = string
  default     = "600s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_maximum_backoff)) && tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600
    error_message = "retry_maximum_backoff must be a number of seconds like \"600s\", at most 600s."
  }
}

variable "message_retention_duration" {
  description = "How long undelivered messages (and dead letters) are kept."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration)) && tonumber(trimsuffix(var.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.message_retention_duration, "s")) <= 604800
    error_message = "message_retention_duration must be between 600s and 604800s (7 days)."
  }
}

variable "allowed_persistence_regions" {
  description = "Regions where Pub/Sub may store messages (data residency). Empty allows any region."
  type        = list(string)
  default     = []
}

variable "kms_key_name" {
  description = "Cloud KMS key for customer-managed encryption of messages; null uses Google-managed keys. The Pub/Sub service agent needs encrypter/decrypter on it."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels for topics and subscriptions."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
