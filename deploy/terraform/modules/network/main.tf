# One VPC per environment: a subnet for the GKE nodes with secondary ranges for pods and
# services, egress through Cloud NAT (nodes have no external IPs), a peering range for the
# Google-managed services (Cloud SQL, Memorystore) that are reached by private IP only, and
# private DNS that sends *.googleapis.com to Private Google Access addresses.

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = "${var.prefix}-vpc"
  description             = "FINTECH ${var.prefix} network."
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "nodes" {
  project                  = var.project_id
  name                     = "${var.prefix}-nodes"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = var.flow_log_sampling
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  project = var.project_id
  name    = "${var.prefix}-router"
  region  = var.region
  network = google_compute_network.this.id
}

# Outbound traffic (SMS gateways, SMTP, webhooks to merchants) leaves through NAT.
resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = "${var.prefix}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.nodes.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  enable_endpoint_independent_mapping = false
  min_ports_per_vm                    = 64

  log_config {
    enable = true
    filter = var.nat_log_filter
  }
}

# Private service access: Cloud SQL and Memorystore get addresses from this range.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = cidrhost(var.private_service_access_cidr, 0)
  prefix_length = tonumber(split("/", var.private_service_access_cidr)[1])
  network       = google_compute_network.this.id
  labels        = var.labels
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
  deletion_policy         = var.service_networking_deletion_policy
}

# Private Google Access by name: inside the VPC, *.googleapis.com resolves to
# private.googleapis.com (199.36.153.8/30), reached over the default route without NAT. Pods'
# egress NetworkPolicies can then allow Google APIs by that fixed range.
resource "google_dns_managed_zone" "googleapis" {
  project     = var.project_id
  name        = "${var.prefix}-googleapis"
  dns_name    = "googleapis.com."
  description = "Private Google Access for ${var.prefix}."
  visibility  = "private"
  labels      = var.labels

  private_visibility_config {
    networks {
      network_url = google_compute_network.this.id
    }
  }
}

resource "google_dns_record_set" "private_googleapis" {
  project      = var.project_id
  managed_zone = google_dns_managed_zone.googleapis.name
  name         = "private.googleapis.com."
  type         = "A"
  ttl          = 300
  rrdatas      = ["199.36.153.8", "199.36.153.9", "199.36.153.10", "199.36.153.11"]
}

resource "google_dns_record_set" "googleapis_wildcard" {
  project      = var.project_id
  managed_zone = google_dns_managed_zone.googleapis.name
  name         = "*.googleapis.com."
  type         = "CNAME"
  ttl          = 300
  rrdatas      = ["private.googleapis.com."]
}

# The VPC already denies all ingress that no rule allows; this rule makes that explicit and
# logged. GKE adds the narrow rules it needs itself (control plane to nodes, load balancer health
# checks for the NGINX gateway's Service), all at a higher priority.
resource "google_compute_firewall" "deny_all_ingress" {
  project       = var.project_id
  name          = "${var.prefix}-deny-all-ingress"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  priority      = 65534
  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
