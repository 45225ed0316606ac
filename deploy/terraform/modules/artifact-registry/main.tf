# The Docker repository the service pipelines push images to. Tags are immutable (a version tag
# always names the same digest, and deployments use digests anyway); cleanup deletes old
# untagged builds but always keeps the newest versions of every image.

resource "google_artifact_registry_repository" "this" {
  project                = var.project_id
  location               = var.location
  repository_id          = "${var.prefix}-images"
  description            = "FINTECH service images."
  format                 = "DOCKER"
  mode                   = "STANDARD_REPOSITORY"
  kms_key_name           = var.kms_key_name
  cleanup_policy_dry_run = var.cleanup_dry_run
  labels                 = var.labels

  docker_config {
    immutable_tags = true
  }

  vulnerability_scanning_config {
    enablement_config = "INHERITED"
  }

  cleanup_policies {
    id     = "keep-recent-versions"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_versions
    }
  }

  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = var.delete_untagged_after
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "reader" {
  for_each = var.readers

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

resource "google_artifact_registry_repository_iam_member" "writer" {
  for_each = var.writers

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
