variable "project_id" {
  description = "Project that owns the Endpoints service."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "service_name" {
  description = "Endpoints service name; it must equal the \"host\" of the OpenAPI document, e.g. \"api.fintech.example.com\" or \"<name>.endpoints.<project>.cloud.goog\". A deleted name cannot be reused for 30 days."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.service_name))
    error_message = "service_name must be a DNS name."
  }
}

variable "openapi_path" {
  description = "Path of the OpenAPI document (YAML or JSON) that describes the public API."
  type        = string
  validation {
    condition     = can(regex("\\.(ya?ml|json)$", var.openapi_path))
    error_message = "openapi_path must name a .yaml, .yml or .json file."
  }
}

variable "controllers" {
  description = "IAM members (the ESPv2 proxy's service account) allowed to report to and check against the service (roles/servicemanagement.serviceController)."
  type        = list(string)
  default     = []
}
