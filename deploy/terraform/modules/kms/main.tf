# A key ring and its keys: the vault service's key-encryption key for envelope encryption of
# card data and its HMAC key for card fingerprints, and the customer-managed keys of the data
# services. Keys and key rings cannot be deleted in Cloud KMS (destroy only schedules key
# versions for destruction), and losing a key loses every piece of data it protects: both are
# guarded by prevent_destroy.

locals {
  # ENCRYPT_DECRYPT keys keep the address google_kms_crypto_key.this[<name>] they always had;
  # MAC keys get resources of their own (no automatic rotation, see below).
  encryption_keys = { for name, k in var.keys : name => k if k.purpose == "ENCRYPT_DECRYPT" }
  mac_keys        = { for name, k in var.keys : name => k if k.purpose == "MAC" }

  key_ids = merge(
    { for name, k in google_kms_crypto_key.this : name => k.id },
    { for name, k in google_kms_crypto_key.mac : name => k.id },
  )

  # One authoritative binding per key and role; the keys of this map are known at plan time
  # even when the members are service accounts created in the same apply.
  iam = merge([
    for name, k in var.keys : {
      for role, members in {
        "roles/cloudkms.cryptoKeyEncrypterDecrypter" = k.encrypter_decrypters
        "roles/cloudkms.cryptoKeyEncrypter"          = k.encrypters
        "roles/cloudkms.cryptoKeyDecrypter"          = k.decrypters
        "roles/cloudkms.signerVerifier"              = k.signer_verifiers
      } : "${name} ${role}" => { key = name, role = role, members = members } if length(members) > 0
    }
  ]...)

  # Keys whose users rotate them themselves (vault: POST /api/vault/v1/keys/rotate).
  rotators = { for name, k in local.encryption_keys : name => k.rotators if length(k.rotators) > 0 }
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
  for_each = local.encryption_keys

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

# HMAC-SHA256 keys (vault's card fingerprints: MacSign). Created with their first version,
# cryptoKeyVersions/1, which is the one their users name (output mac_key_versions).
resource "google_kms_crypto_key" "mac" {
  #checkov:skip=CKV_GCP_43:Cloud KMS rotates ENCRYPT_DECRYPT keys only; a MAC key takes no rotation_period (the API refuses it). A fingerprint must stay the same for the same card for as long as the card is kept, so its key version is never replaced.
  for_each = local.mac_keys

  name                       = each.key
  key_ring                   = google_kms_key_ring.this.id
  purpose                    = "MAC"
  destroy_scheduled_duration = var.destroy_scheduled_duration
  labels                     = var.labels

  version_template {
    algorithm        = "HMAC_SHA256"
    protection_level = each.value.protection_level
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_binding" "this" {
  for_each = local.iam

  crypto_key_id = local.key_ids[each.value.key]
  role          = each.value.role
  members       = each.value.members
}

# What a service needs to rotate a key itself, beyond encrypting and decrypting with it: read the
# key (its primary version, at start), add a version, make it the primary, list the versions and
# disable the old ones once every data key is re-wrapped. A custom role rather than
# roles/cloudkms.admin, which would also let the service destroy key versions (crypto-shredding
# every card they protect), restore them, change the key's IAM policy (hand the key to anyone),
# and create keys and import jobs. None of those is granted here: a disabled version can still
# be enabled again by a person, a destroyed one never.
resource "google_project_iam_custom_role" "rotator" {
  count = length(local.rotators) > 0 ? 1 : 0

  project     = var.project_id
  role_id     = "${replace(var.prefix, "-", "_")}_kmsKeyRotator"
  title       = "${var.prefix} Cloud KMS key rotator"
  description = "Rotate a Cloud KMS key from the application: create a version, make it primary, list versions, disable old ones. No destroy, no IAM."
  permissions = [
    "cloudkms.cryptoKeys.get",
    "cloudkms.cryptoKeys.update",
    "cloudkms.cryptoKeyVersions.create",
    "cloudkms.cryptoKeyVersions.list",
    "cloudkms.cryptoKeyVersions.update",
  ]
}

resource "google_kms_crypto_key_iam_binding" "rotators" {
  for_each = local.rotators

  crypto_key_id = google_kms_crypto_key.this[each.key].id
  role          = google_project_iam_custom_role.rotator[0].name
  members       = each.value
}
