variable "catalog_file" {
  description = "Path of the YAML service catalog (deploy/terraform/services.yaml)."
  type        = string
  validation {
    condition     = can(regex("\\.ya?ml$", var.catalog_file))
    error_message = "catalog_file must be a .yaml or .yml file."
  }
}
