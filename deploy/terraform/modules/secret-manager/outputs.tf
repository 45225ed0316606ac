output "ids" {
  description = "Full id of each secret (projects/P/secrets/S), to pass to modules that write versions."
  value       = { for k, s in google_secret_manager_secret.this : k => s.id }
}

output "secret_ids" {
  description = "Short secret id per key (<prefix>-<key>), as the Secret Manager CSI driver and gcloud name it."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}
