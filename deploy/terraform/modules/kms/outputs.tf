output "key_ring_id" {
  description = "Id of the key ring."
  value       = google_kms_key_ring.this.id
}

output "key_ids" {
  description = "Id of each key, encryption and MAC (projects/P/locations/L/keyRings/R/cryptoKeys/K), usable as a CMEK key name."
  value       = local.key_ids
  # Resources encrypted with a key must wait until its users have been granted access.
  depends_on = [google_kms_crypto_key_iam_binding.this, google_kms_crypto_key_iam_binding.rotators]
}

output "mac_key_versions" {
  description = "The version of each MAC key its users sign with (…/cryptoKeys/K/cryptoKeyVersions/1): the first and only one, created with the key."
  value       = { for name, id in local.key_ids : name => "${id}/cryptoKeyVersions/1" if contains(keys(local.mac_keys), name) }
  depends_on  = [google_kms_crypto_key_iam_binding.this]
}

output "rotator_role" {
  description = "The custom role granted to the keys' rotators (projects/P/roles/<prefix>_kmsKeyRotator), null when no key has rotators."
  value       = length(google_project_iam_custom_role.rotator) > 0 ? google_project_iam_custom_role.rotator[0].name : null
}
