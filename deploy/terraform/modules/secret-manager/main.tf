# Secret Manager secrets with replication, delayed version destruction and per-secret IAM.
# This module never holds a secret value.

locals {
  # One authoritative binding per secret and role (map keys known at plan time).
  iam = merge([
    for key, s in var.secrets : {
      for role, members in {
        "roles/secretmanager.secretAccessor"     = s.accessors
        "roles/secretmanager.secretVersionAdder" = s.version_adders
      } : "${key} ${role}" => { secret = key, role = role, members = members } if length(members) > 0
    }
  ]...)
}

resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project             = var.project_id
  secret_id           = "${var.prefix}-${each.key}"
  labels              = var.labels
  version_destroy_ttl = var.version_destroy_ttl
  deletion_protection = var.deletion_protection

  replication {
    dynamic "auto" {
      for_each = length(var.replica_locations) == 0 ? [1] : []
      content {}
    }

    dynamic "user_managed" {
      for_each = length(var.replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.replica_locations
          content {
            location = replicas.value

            dynamic "customer_managed_encryption" {
              for_each = contains(keys(var.kms_key_names), replicas.value) ? [var.kms_key_names[replicas.value]] : []
              content {
                kms_key_name = customer_managed_encryption.value
              }
            }
          }
        }
      }
    }
  }
}

resource "google_secret_manager_secret_iam_binding" "this" {
  for_each = local.iam

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = each.value.role
  members   = each.value.members
}
