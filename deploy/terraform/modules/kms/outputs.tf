output "key_ring_id" {
  description = "Id of the key ring."
  value       = google_kms_key_ring.this.id
}

output "key_ids" {
  description = "Id of each key (projects/P/locations/L/keyRings/R/cryptoKeys/K), usable as a CMEK key name."
  value       = { for k, v in google_kms_crypto_key.this : k => v.id }
  # Resources encrypted with a key must wait until its users have been granted access.
  depends_on = [google_kms_crypto_key_iam_binding.this]
}
