# Enables the project's APIs and makes sure the service agents exist, so other modules can grant
# them rights (CMEK keys, dead-letter topics). APIs stay enabled on destroy: turning an API off
# would break anything else in the project that uses it.

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "this" {
  for_each = toset(var.services)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_project_service_identity" "this" {
  provider = google-beta
  for_each = toset(var.service_identities)

  project = var.project_id
  service = each.value

  depends_on = [google_project_service.this]
}

# Reading this creates the Cloud Storage service agent if it does not exist yet.
data "google_storage_project_service_account" "this" {
  project = var.project_id

  depends_on = [google_project_service.this]
}

locals {
  number = data.google_project.this.number

  # Agents with fixed addresses; they exist once their API is enabled.
  agents = {
    artifact_registry = "service-${local.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
    compute           = "service-${local.number}@compute-system.iam.gserviceaccount.com"
    container         = "service-${local.number}@container-engine-robot.iam.gserviceaccount.com"
    pubsub            = "service-${local.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    redis             = "service-${local.number}@cloud-redis.iam.gserviceaccount.com"
    secret_manager    = "service-${local.number}@gcp-sa-secretmanager.iam.gserviceaccount.com"
    sql               = "service-${local.number}@gcp-sa-cloud-sql.iam.gserviceaccount.com"
    storage           = data.google_storage_project_service_account.this.email_address
  }
}
