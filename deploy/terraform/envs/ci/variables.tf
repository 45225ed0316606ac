variable "project_id" {
  description = "Project the ephemeral CI environments are built in."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "region" {
  description = "Region of every regional resource."
  type        = string
  default     = "europe-west1"
}

variable "prefix" {
  description = "Name prefix of this build's resources, with the build number in it (e.g. \"fintech-ci-1234\"): Cloud SQL and Endpoints names cannot be reused for days after deletion, and concurrent builds must not collide."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix)) && can(regex("[0-9]", var.prefix))
    error_message = "prefix must be 2-16 characters (lowercase letters, digits, hyphens) and contain the build number."
  }
}

variable "labels" {
  description = "Extra labels for every resource (app, env and managed-by are always set; the pipeline adds build = <number>)."
  type        = map(string)
  default     = {}
}

variable "notification_email" {
  description = "Address that receives alerts while the CI environment exists."
  type        = string
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the cluster's control plane (the Jenkins agents' egress range)."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
}

variable "registry" {
  description = "The shared Artifact Registry repository (envs/bootstrap outputs) whose images the nodes pull."
  type = object({
    project_id = string
    location   = string
    name       = string
  })
}

variable "vault_kms_key_id" {
  description = "Key-encryption key for vault in CI (envs/bootstrap output ci_vault_kms_key). Cloud KMS keys can never be deleted, so an ephemeral environment borrows a long-lived key instead of creating one per build."
  type        = string
  validation {
    condition     = can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.vault_kms_key_id))
    error_message = "vault_kms_key_id must be a full key id: projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "openapi_path" {
  description = "OpenAPI document of the public API for Cloud Endpoints; null skips Endpoints."
  type        = string
  default     = null
}

variable "endpoints_service_name" {
  description = "Cloud Endpoints service name; must equal the OpenAPI document's host."
  type        = string
  default     = null
}

variable "secret_operators" {
  description = "IAM members (e.g. the Jenkins service account) who add test values of third-party secrets."
  type        = list(string)
  default     = []
}
