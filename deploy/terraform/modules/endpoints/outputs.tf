output "service_name" {
  description = "Name of the Endpoints service (the API host)."
  value       = google_endpoints_service.this.service_name
}

output "config_id" {
  description = "Id of the rolled-out service configuration (ESPv2 --version)."
  value       = google_endpoints_service.this.config_id
}

output "dns_address" {
  description = "DNS address of the service."
  value       = google_endpoints_service.this.dns_address
}
