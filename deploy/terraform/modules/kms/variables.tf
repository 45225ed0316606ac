variable "project_id" {
  description = "Project that owns the key ring."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; the key ring is \"<prefix>-keyring\". Key rings and keys can never be deleted in Cloud KMS, so the name is permanent."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "location" {
  description = "Location of the key ring. Keys used for CMEK must share the region of the data they protect."
  type        = string
  validation {
    condition     = can(regex("^([a-z]+-[a-z]+[0-9]|[a-zA-Z]+)$", var.location))
    error_message = "location must be a region (e.g. europe-west1) or a multi-region (e.g. EU, europe)."
  }
}

variable "keys" {
  description = <<-EOT
    Keys by name. purpose ENCRYPT_DECRYPT (the default): symmetric encryption keys, rotated every
    rotation_period (envelope encryption in vault, CMEK for the data services). purpose MAC:
    HMAC-SHA256 keys, never rotated (vault's card fingerprints). protection_level HSM keeps the
    key material in hardware security modules. IAM lists take members such as
    serviceAccount:<email>: encrypter_decrypters (the vault service account, or a service agent
    using the key for CMEK), encrypters, decrypters, and rotators (encryption keys only: may read
    the key, add versions, change its primary version, list versions and disable them, through a
    custom role; never destroy them) and signer_verifiers (MAC keys only: MacSign and MacVerify).
  EOT
  type = map(object({
    purpose              = optional(string, "ENCRYPT_DECRYPT")
    protection_level     = optional(string, "SOFTWARE")
    encrypter_decrypters = optional(list(string), [])
    encrypters           = optional(list(string), [])
    decrypters           = optional(list(string), [])
    rotators             = optional(list(string), [])
    signer_verifiers     = optional(list(string), [])
  }))
  validation {
    condition     = alltrue([for k, _ in var.keys : can(regex("^[a-zA-Z0-9_-]{1,63}$", k))])
    error_message = "Key names hold letters, digits, '_' and '-' (at most 63 characters)."
  }
  validation {
    condition     = alltrue([for k in var.keys : contains(["SOFTWARE", "HSM"], k.protection_level)])
    error_message = "protection_level must be SOFTWARE or HSM."
  }
  validation {
    condition     = alltrue([for k in var.keys : contains(["ENCRYPT_DECRYPT", "MAC"], k.purpose)])
    error_message = "purpose must be ENCRYPT_DECRYPT or MAC."
  }
  # A role that can do nothing with the key's purpose is a mistake in the caller.
  validation {
    condition     = alltrue([for k in var.keys : k.purpose == "MAC" ? length(concat(k.encrypter_decrypters, k.encrypters, k.decrypters, k.rotators)) == 0 : length(k.signer_verifiers) == 0])
    error_message = "A MAC key takes signer_verifiers only; an ENCRYPT_DECRYPT key takes encrypter_decrypters, encrypters, decrypters and rotators, not signer_verifiers."
  }
}

variable "rotation_period" {
  description = "How often every ENCRYPT_DECRYPT key gets a new primary version (older versions keep decrypting). At most 90 days keeps the data under one key version bounded. MAC keys are not rotated."
  type        = string
  default     = "7776000s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.rotation_period)) && try(tonumber(trimsuffix(var.rotation_period, "s")) >= 86400 && tonumber(trimsuffix(var.rotation_period, "s")) <= 7776000, false)
    error_message = "rotation_period must be between 86400s (1 day) and 7776000s (90 days)."
  }
}

variable "destroy_scheduled_duration" {
  description = "How long a key version scheduled for destruction can still be restored."
  type        = string
  default     = "2592000s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.destroy_scheduled_duration)) && tonumber(trimsuffix(var.destroy_scheduled_duration, "s")) >= 86400
    error_message = "destroy_scheduled_duration must be at least 86400s (1 day)."
  }
}

variable "labels" {
  description = "Labels for the keys."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
