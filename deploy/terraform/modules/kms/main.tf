# A key ring and its keys: the vault service's key-encryption key for envelope encryption of
# card data, and the customer-managed keys of the data services. Keys and key rings cannot be
# deleted in Cloud KMS (destroy only schedules key versions for destruction), and losing a key
# loses every piece of data it protects: both are guarded by prevent_destroy.

locals {
  # One authoritative binding per key and role; the keys of this map are known at plan time
  # even when the members are service accounts created in the same apply.
  iam = merge([
    for name, k in var.keys : {
      for role, members in {
        "roles/cloudkms.cryptoKeyEncrypterDecrypter" = k.encrypter_decrypters
        "roles/cloudkms.cryptoKeyEncrypter"          = k.encrypters
        "roles/cloudkms.cryptoKeyDecrypter"          = k.decrypters
      } : "${name} ${role}" => { key = name, role = role, members = members } if length(members) > 0
    }
  ]...)
}

resource "google_kms_key_ring" "this" {
  project  = var.project_id
  name     = "${var.prefix}-keyring"
  location = var.location

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "this" {
  for_each = var.keys

  name                       = each.key
  key_ring                   = google_kms_key_ring.this.id
  purpose                    = "ENCRYPT_DECRYPT"
  rotation_period            = var.rotation_period
  destroy_scheduled_duration = var.destroy_scheduled_duration
  labels                     = var.labels

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = each.value.protection_level
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_binding" "this" {
  for_each = local.iam

  crypto_key_id = google_kms_crypto_key.this[each.value.key].id
  role          = each.value.role
  members       = each.value.members
}
