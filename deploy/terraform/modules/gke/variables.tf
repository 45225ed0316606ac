variable "project_id" {
  description = "Project that owns the cluster."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id."
  }
}

variable "prefix" {
  description = "Name prefix, e.g. \"fintech-prod\"; the cluster is \"<prefix>-gke\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the cluster. The cluster is regional: its control plane and nodes span the region's zones."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like \"europe-west1\"."
  }
}

variable "node_zones" {
  description = "Zones for the nodes; empty means the region's default zones (usually three). Node pool min/max counts apply per zone."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for z in var.node_zones : can(regex("^[a-z]+-[a-z]+[0-9]-[a-z]$", z))])
    error_message = "node_zones entries must look like \"europe-west1-b\"."
  }
}

variable "network_id" {
  description = "Id of the VPC (network module output network_id)."
  type        = string
  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]+/global/networks/[a-z][a-z0-9-]*$", var.network_id))
    error_message = "network_id must be a network id: projects/<project>/global/networks/<name>."
  }
}

variable "subnet_id" {
  description = "Id of the node subnet (network module output subnet_id)."
  type        = string
  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]+/regions/[a-z0-9-]+/subnetworks/[a-z][a-z0-9-]*$", var.subnet_id))
    error_message = "subnet_id must be a subnetwork id: projects/<project>/regions/<region>/subnetworks/<name>."
  }
}

variable "pods_range_name" {
  description = "Name of the subnet's secondary range for pods."
  type        = string
  default     = "pods"
}

variable "services_range_name" {
  description = "Name of the subnet's secondary range for services."
  type        = string
  default     = "services"
}

variable "master_ipv4_cidr_block" {
  description = "/28 range for the control plane's private endpoint. Must not overlap any other range in the VPC."
  type        = string
  default     = "172.16.0.0/28"
  validation {
    condition     = can(cidrnetmask(var.master_ipv4_cidr_block)) && endswith(var.master_ipv4_cidr_block, "/28")
    error_message = "master_ipv4_cidr_block must be an IPv4 /28 block."
  }
}

variable "enable_private_endpoint" {
  description = "Expose the control plane on its private IP only. Then kubectl, Helm and Terraform must run from inside the VPC (or through a bastion)."
  type        = bool
  default     = false
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the control plane (e.g. the Jenkins agents' egress range). Empty means only addresses inside the VPC."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrnetmask(n.cidr_block)) && n.cidr_block != "0.0.0.0/0"])
    error_message = "master_authorized_networks entries must be IPv4 CIDR blocks, and 0.0.0.0/0 is not allowed."
  }
}

variable "release_channel" {
  description = "GKE release channel: RAPID, REGULAR, STABLE or EXTENDED."
  type        = string
  default     = "REGULAR"
  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE", "EXTENDED"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR, STABLE or EXTENDED."
  }
}

variable "node_pools" {
  description = "Node pools by name. min_count and max_count are per zone: the autoscaler keeps each zone between them."
  type = map(object({
    machine_type      = optional(string, "e2-standard-4")
    min_count         = optional(number, 1)
    max_count         = optional(number, 3)
    disk_size_gb      = optional(number, 100)
    disk_type         = optional(string, "pd-balanced")
    spot              = optional(bool, false)
    max_pods_per_node = optional(number, 64)
    labels            = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = string
      effect = string
    })), [])
  }))
  default = {
    default = {}
  }
  validation {
    condition     = length(var.node_pools) > 0
    error_message = "At least one node pool is required."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : p.min_count >= 0 && p.max_count >= 1 && p.min_count <= p.max_count && p.max_count <= 100])
    error_message = "Each node pool needs 0 <= min_count <= max_count <= 100 (per zone) and max_count >= 1."
  }
  validation {
    condition     = alltrue([for name, p in var.node_pools : can(regex("^[a-z][a-z0-9-]{0,38}$", name))])
    error_message = "Node pool names must be lowercase letters, digits and hyphens, at most 39 characters."
  }
  validation {
    condition     = alltrue(flatten([for p in var.node_pools : [for t in p.taints : contains(["NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"], t.effect)]]))
    error_message = "Taint effects must be NO_SCHEDULE, PREFER_NO_SCHEDULE or NO_EXECUTE."
  }
  validation {
    condition     = alltrue([for p in var.node_pools : contains(["pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced"], p.disk_type)])
    error_message = "disk_type must be pd-balanced, pd-ssd, pd-standard or hyperdisk-balanced."
  }
}

variable "node_network_tag" {
  description = "Network tag put on every node (network module output node_network_tag)."
  type        = string
  default     = "gke-node"
}

variable "maintenance_window" {
  description = "Recurring maintenance window in RFC 3339 times and an RFC 5545 RRULE. Default: weekend nights (UTC)."
  type = object({
    start_time = string
    end_time   = string
    recurrence = string
  })
  default = {
    start_time = "2026-01-03T01:00:00Z"
    end_time   = "2026-01-03T07:00:00Z"
    recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
  }
}

variable "database_encryption_key" {
  description = "Cloud KMS key (same region) that encrypts Kubernetes Secrets in etcd at the application layer; null keeps Google's default encryption. The GKE service agent needs encrypter/decrypter on it."
  type        = string
  default     = null
}

variable "boot_disk_kms_key" {
  description = "Cloud KMS key for node boot disks; null keeps Google's default encryption. The Compute Engine service agent needs encrypter/decrypter on it."
  type        = string
  default     = null
}

variable "binary_authorization_mode" {
  description = "Binary Authorization evaluation mode: PROJECT_SINGLETON_POLICY_ENFORCE (the project's policy decides which images may run) or DISABLED."
  type        = string
  default     = "PROJECT_SINGLETON_POLICY_ENFORCE"
  validation {
    condition     = contains(["PROJECT_SINGLETON_POLICY_ENFORCE", "DISABLED"], var.binary_authorization_mode)
    error_message = "binary_authorization_mode must be PROJECT_SINGLETON_POLICY_ENFORCE or DISABLED."
  }
}

variable "security_group" {
  description = "Google Group \"gke-security-groups@<domain>\" for Google Groups for RBAC; null disables it."
  type        = string
  default     = null
  validation {
    condition     = var.security_group == null || can(regex("^gke-security-groups@", var.security_group))
    error_message = "security_group must be named gke-security-groups@<your domain>."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the cluster. Only an ephemeral environment (ci) turns this off."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels for the cluster and its nodes."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
