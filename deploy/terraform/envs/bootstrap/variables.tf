variable "project_id" {
  description = "Shared project for the long-lived resources (state bucket, image repository, CI key ring)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "region" {
  description = "Region of the bucket, the repository and the key ring."
  type        = string
  default     = "europe-west1"
}

variable "prefix" {
  description = "Name prefix (bucket names are global: include the organisation, e.g. \"fintech\")."
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

variable "terraform_runners" {
  description = "IAM members that run Terraform for the environments (the pipelines' service accounts); they read and write the state bucket."
  type        = list(string)
  default     = []
}

variable "image_pushers" {
  description = "IAM members that push service images (the service pipelines' service account), by a name of your choice."
  type        = map(string)
  default     = {}
}
