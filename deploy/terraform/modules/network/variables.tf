variable "project_id" {
  description = "Project that owns the network."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project id (6-30 characters, lowercase letters, digits and hyphens)."
  }
}

variable "prefix" {
  description = "Name prefix for every resource, e.g. \"fintech-prod\". Used instead of random suffixes so names stay predictable."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-16 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "region" {
  description = "Region of the subnet, the Cloud Router and Cloud NAT."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like \"europe-west1\"."
  }
}

variable "subnet_cidr" {
  description = "Primary range of the subnet the GKE nodes live in."
  type        = string
  default     = "10.10.0.0/20"
  validation {
    condition     = can(cidrnetmask(var.subnet_cidr))
    error_message = "subnet_cidr must be an IPv4 CIDR block."
  }
}

variable "pods_cidr" {
  description = "Secondary range for pod IPs (named \"pods\")."
  type        = string
  default     = "10.20.0.0/14"
  validation {
    condition     = can(cidrnetmask(var.pods_cidr))
    error_message = "pods_cidr must be an IPv4 CIDR block."
  }
}

variable "services_cidr" {
  description = "Secondary range for Kubernetes Service IPs (named \"services\")."
  type        = string
  default     = "10.30.0.0/20"
  validation {
    condition     = can(cidrnetmask(var.services_cidr))
    error_message = "services_cidr must be an IPv4 CIDR block."
  }
}

variable "private_service_access_cidr" {
  description = "Range reserved for private service access (Cloud SQL, Memorystore). Fixed rather than allocated by Google so that NetworkPolicies (the Cloud SQL Auth Proxy's egress) can name it; /16 leaves room for many instances."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrnetmask(var.private_service_access_cidr)) && tonumber(split("/", var.private_service_access_cidr)[1]) >= 8 && tonumber(split("/", var.private_service_access_cidr)[1]) <= 24
    error_message = "private_service_access_cidr must be an IPv4 CIDR block between /8 and /24."
  }
}

variable "service_networking_deletion_policy" {
  description = "What destroy does to the private service access peering: \"ABANDON\" leaves it to be removed with the network (Cloud SQL keeps the peering busy for a while after its deletion, which otherwise fails destroy); \"DELETE\" removes it explicitly."
  type        = string
  default     = "ABANDON"
  validation {
    condition     = contains(["ABANDON", "DELETE"], var.service_networking_deletion_policy)
    error_message = "service_networking_deletion_policy must be ABANDON or DELETE."
  }
}

variable "flow_log_sampling" {
  description = "Fraction of VPC flow logs kept (0 < x <= 1)."
  type        = number
  default     = 0.5
  validation {
    condition     = var.flow_log_sampling > 0 && var.flow_log_sampling <= 1
    error_message = "flow_log_sampling must be greater than 0 and at most 1."
  }
}

variable "nat_log_filter" {
  description = "Which Cloud NAT events are logged: ERRORS_ONLY, TRANSLATIONS_ONLY or ALL."
  type        = string
  default     = "ERRORS_ONLY"
  validation {
    condition     = contains(["ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"], var.nat_log_filter)
    error_message = "nat_log_filter must be ERRORS_ONLY, TRANSLATIONS_ONLY or ALL."
  }
}

variable "node_network_tag" {
  description = "Network tag carried by the GKE nodes, for firewall rules that target them."
  type        = string
  default     = "gke-node"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.node_network_tag))
    error_message = "node_network_tag must be a valid network tag (lowercase letters, digits, hyphens)."
  }
}

variable "labels" {
  description = "Labels for the resources that accept them (the private service access range)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}
