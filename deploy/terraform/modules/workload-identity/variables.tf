variable "project_id" {
  description = "Project that owns the service accounts (and the cluster's Workload Identity pool)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix; a service's account is \"<prefix>-<service>\" (at most 30 characters in all)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "workload_pool" {
  description = "Workload Identity pool of the cluster (gke module output workload_pool, \"<project>.svc.id.goog\"). The pool exists only once a cluster uses it, so pass the module output rather than a literal."
  type        = string
  validation {
    condition     = can(regex("\\.svc\\.id\\.goog$", var.workload_pool))
    error_message = "workload_pool must end in .svc.id.goog."
  }
}

variable "namespace" {
  description = "Default Kubernetes namespace of the services' Kubernetes service accounts."
  type        = string
  default     = "fintech"
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a valid Kubernetes namespace name."
  }
}

variable "kubernetes_service_accounts" {
  description = "Kubernetes service accounts (in namespace) allowed to act as a service's Google service account, as format() patterns where %s is the service name. The default matches the Helm chart: the pods' account fintech-<service> and fintech-<service>-hooks (its SecretStore and migration Job)."
  type        = list(string)
  default     = ["fintech-%s", "fintech-%s-hooks"]
  validation {
    condition     = length(var.kubernetes_service_accounts) > 0 && alltrue([for f in var.kubernetes_service_accounts : can(regex("^[a-z0-9%]([-a-z0-9%.]*[a-z0-9%])?$", f))])
    error_message = "kubernetes_service_accounts must be non-empty Kubernetes name patterns such as \"fintech-%s\"."
  }
}

variable "services" {
  description = <<-EOT
    Services by name. Each gets a Google service account that only its Kubernetes service
    accounts can act as (namespace and kubernetes_service_accounts, overridable per service).
    project_roles are the project-level roles it needs (e.g. roles/cloudsql.client for the Cloud
    SQL Auth Proxy); rights on single resources (topics, buckets, secrets, keys) are granted by
    the module that owns the resource. sign_blob lets the account sign blobs as itself (IAM
    signBlob, roles/iam.serviceAccountTokenCreator on its own account only): a service that signs
    Cloud Storage V4 download links.
  EOT
  type = map(object({
    namespace                   = optional(string)
    kubernetes_service_accounts = optional(list(string))
    project_roles               = optional(list(string), [])
    sign_blob                   = optional(bool, false)
  }))
  validation {
    condition     = alltrue([for name, _ in var.services : can(regex("^[a-z][a-z0-9-]{0,12}[a-z0-9]$", name))])
    error_message = "Service names must be 2-14 characters: lowercase letters, digits and hyphens."
  }
  validation {
    condition     = alltrue([for name, _ in var.services : length(var.prefix) + 1 + length(name) <= 30])
    error_message = "\"<prefix>-<service>\" must fit the 30-character service account id limit."
  }
  validation {
    # Least privilege: basic roles and admin roles are never handed to a workload.
    condition = alltrue(flatten([for s in var.services : [for r in s.project_roles :
      !contains(["roles/owner", "roles/editor", "roles/viewer"], r) && !endswith(r, ".admin") && !endswith(r, "Admin")
    ]]))
    error_message = "project_roles must not contain basic roles (owner, editor, viewer) or admin roles."
  }
}
