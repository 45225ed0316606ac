variable "project_id" {
  description = "Project of the staging environment."
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
  description = "Name prefix of every resource in this environment (bucket names are global: include the organisation, e.g. \"fintech-stg\")."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels for every resource (app, env and managed-by are always set)."
  type        = map(string)
  default     = {}
}

variable "notification_email" {
  description = "Address that receives this environment's alerts."
  type        = string
}

variable "public_host" {
  description = "Public host name of the entry point, for uptime checks; null skips them."
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
}

variable "registry" {
  description = "The shared Artifact Registry repository (envs/bootstrap outputs) whose images the nodes pull."
  type = object({
    project_id = string
    location   = string
    name       = string
  })
}

variable "openapi_path" {
  description = "OpenAPI document of the public API for Cloud Endpoints (the pipeline writes it before plan); null skips Endpoints."
  type        = string
  default     = null
}

variable "endpoints_service_name" {
  description = "Cloud Endpoints service name; must equal the OpenAPI document's host."
  type        = string
  default     = null
}

variable "secret_operators" {
  description = "IAM members (e.g. group:fintech-ops@example.com) who add the values of third-party secrets."
  type        = list(string)
  default     = []
}

variable "dead_letter_readers" {
  description = "IAM members who may read and replay dead letters."
  type        = list(string)
  default     = []
}

variable "password_version" {
  description = "Generation of the database passwords; increase to rotate them."
  type        = number
  default     = 1
}
