# Private, versioned buckets: uniform bucket-level access (no object ACLs), public access
# prevention enforced, lifecycle rules that bound the cost of old versions, soft delete, and an
# optional customer-managed key. Access is granted per bucket, never project-wide.

locals {
  # One authoritative binding per bucket and role (map keys known at plan time).
  iam = merge([
    for key, b in var.buckets : {
      for role, members in {
        "roles/storage.objectUser"    = b.object_users
        "roles/storage.objectCreator" = b.object_creators
        "roles/storage.objectViewer"  = b.object_viewers
      } : "${key} ${role}" => { bucket = key, role = role, members = members } if length(members) > 0
    }
  ]...)
}

resource "google_storage_bucket" "this" {
  for_each = var.buckets

  project                     = var.project_id
  name                        = "${var.prefix}-${each.key}"
  location                    = coalesce(each.value.location, var.location)
  storage_class               = each.value.storage_class
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  # Always versioned: an overwritten or deleted statement or attachment can be recovered.
  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = each.value.soft_delete_retention_seconds
  }

  dynamic "encryption" {
    for_each = each.value.kms_key_name == null ? [] : [each.value.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  dynamic "logging" {
    for_each = var.access_log_bucket == null ? [] : [var.access_log_bucket]
    content {
      log_bucket        = logging.value
      log_object_prefix = "${var.prefix}-${each.key}/"
    }
  }

  # Old versions: gone after N days as noncurrent, or once more than N newer versions exist.
  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = each.value.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      num_newer_versions = each.value.max_noncurrent_versions
      with_state         = "ARCHIVED"
    }
  }

  lifecycle_rule {
    action {
      type = "AbortIncompleteMultipartUpload"
    }
    condition {
      age = 1
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.nearline_after_days == null ? [] : [each.value.nearline_after_days]
    content {
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.delete_after_days == null ? [] : [each.value.delete_after_days]
    content {
      action {
        type = "Delete"
      }
      condition {
        age        = lifecycle_rule.value
        with_state = "LIVE"
      }
    }
  }
}

resource "google_storage_bucket_iam_binding" "this" {
  for_each = local.iam

  bucket  = google_storage_bucket.this[each.value.bucket].name
  role    = each.value.role
  members = each.value.members
}
