output "network_id" {
  description = "Id of the VPC (projects/P/global/networks/N)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC."
  value       = google_compute_network.this.name
}

output "network_self_link" {
  description = "Self link of the VPC."
  value       = google_compute_network.this.self_link
}

output "subnet_id" {
  description = "Id of the node subnet."
  value       = google_compute_subnetwork.nodes.id
}

output "subnet_self_link" {
  description = "Self link of the node subnet."
  value       = google_compute_subnetwork.nodes.self_link
}

output "pods_range_name" {
  description = "Name of the secondary range for pods."
  value       = "pods"
}

output "services_range_name" {
  description = "Name of the secondary range for services."
  value       = "services"
}

output "private_service_access_range_name" {
  description = "Name of the range reserved for private service access. Available once the peering exists, so Cloud SQL and Memorystore that use it are created after it."
  value       = google_compute_global_address.private_services.name
  depends_on  = [google_service_networking_connection.private_services]
}

output "private_service_access_cidr" {
  description = "CIDR of the private service access range (the Helm chart's networkPolicy.cloudSql.cidrs)."
  value       = var.private_service_access_cidr
}

output "private_service_access_connection" {
  description = "The private service access peering; depend on it before creating Cloud SQL or Memorystore."
  value       = google_service_networking_connection.private_services.id
}

output "node_network_tag" {
  description = "Network tag the GKE nodes carry (pass it to the gke module)."
  value       = var.node_network_tag
}
