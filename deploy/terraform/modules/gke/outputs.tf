output "cluster_id" {
  description = "Id of the cluster."
  value       = google_container_cluster.this.id
}

output "cluster_name" {
  description = "Name of the cluster."
  value       = google_container_cluster.this.name
}

output "location" {
  description = "Region of the cluster."
  value       = google_container_cluster.this.location
}

output "endpoint" {
  description = "Control plane endpoint (private IP when enable_private_endpoint is set)."
  value       = google_container_cluster.this.endpoint
  sensitive   = true
}

output "ca_certificate" {
  description = "Base64 cluster CA certificate, for kubeconfig."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "workload_pool" {
  description = "Workload Identity pool of the cluster (<project>.svc.id.goog)."
  value       = google_container_cluster.this.workload_identity_config[0].workload_pool
}

output "node_service_account_email" {
  description = "Email of the nodes' service account (grant it read access to the image repository)."
  value       = google_service_account.nodes.email
}

output "node_service_account_member" {
  description = "IAM member string of the nodes' service account."
  value       = google_service_account.nodes.member
}

output "node_pools" {
  description = "Names of the node pools."
  value       = [for p in google_container_node_pool.this : p.name]
}
