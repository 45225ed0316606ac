output "names" {
  description = "Bucket name per key."
  value       = { for k, b in google_storage_bucket.this : k => b.name }
}

output "urls" {
  description = "gs:// URL per key."
  value       = { for k, b in google_storage_bucket.this : k => b.url }
}
