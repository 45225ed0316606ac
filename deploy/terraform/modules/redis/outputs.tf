output "id" {
  description = "Id of the instance."
  value       = google_redis_instance.this.id
}

output "host" {
  description = "Private IP of the primary endpoint."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the primary endpoint (TLS)."
  value       = google_redis_instance.this.port
}

output "server_ca_certs" {
  description = "CA certificates clients use to verify the server's TLS certificate."
  value       = [for c in google_redis_instance.this.server_ca_certs : c.cert]
}

output "server_ca_certificates" {
  description = "The same CA certificates as one PEM bundle: the file a client trusts (FINTECH_REDIS__CA_FILE), also written to ca_secret_id."
  value       = local.ca_certificates
}
