# Staging: the same platform as production at a smaller size. The pipeline plans and applies it
# on every master build (terraform only changes what drifted), then deploys with Helm after a
# manual approval. Everything is built by modules/environment; staging's own values are set below.

locals {
  labels = merge(var.labels, { app = "fintech", env = "staging", managed-by = "terraform" })
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = local.labels
}

provider "google-beta" {
  project        = var.project_id
  region         = var.region
  default_labels = local.labels
}

module "environment" {
  source = "../../modules/environment"

  project_id                 = var.project_id
  region                     = var.region
  prefix                     = var.prefix
  labels                     = local.labels
  notification_email         = var.notification_email
  public_host                = var.public_host
  master_authorized_networks = var.master_authorized_networks
  registry                   = var.registry
  openapi_path               = var.openapi_path
  endpoints_service_name     = var.endpoints_service_name
  secret_operators           = var.secret_operators
  dead_letter_readers        = var.dead_letter_readers
  password_version           = var.password_version

  # Staging's own values.
  deletion_protection         = true
  customer_managed_encryption = true

  gke = {
    release_channel = "REGULAR"
    node_pools = {
      default = {
        machine_type = "e2-standard-4"
        min_count    = 1
        max_count    = 3
      }
    }
  }

  cloudsql = {
    tier                           = "db-custom-2-7680"
    availability_type              = "ZONAL"
    retained_backups               = 7
    transaction_log_retention_days = 7
  }

  redis_memory_size_gb = 1
}
