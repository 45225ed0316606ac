# CI: an ephemeral copy of the platform, built for one pipeline run and always destroyed at the
# end of it, even when the run fails. Everything is built by modules/environment; what differs
# from staging is set below, all in the service of a clean destroy and a short life:
# - deletion protection is off and buckets may be destroyed with their objects (no soft delete):
#   this is the only environment where that is allowed, and only because nothing here outlives
#   the build;
# - no customer-managed keys: Cloud KMS keys can never be deleted, so a per-build key ring would
#   pile up forever. Vault borrows a long-lived CI key from envs/bootstrap;
# - a zonal Cloud SQL instance with minimal backups, small node pools, no uptime checks.

locals {
  labels = merge(var.labels, { app = "fintech", env = "ci", managed-by = "terraform" })
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
  master_authorized_networks = var.master_authorized_networks
  registry                   = var.registry
  openapi_path               = var.openapi_path
  endpoints_service_name     = var.endpoints_service_name
  secret_operators           = var.secret_operators

  # CI's own values.
  deletion_protection                  = false
  force_destroy                        = true
  bucket_soft_delete_retention_seconds = 0
  customer_managed_encryption          = false
  vault_kms_key_id                     = var.vault_kms_key_id

  gke = {
    release_channel = "REGULAR"
    node_pools = {
      default = {
        machine_type = "e2-standard-4"
        min_count    = 1
        max_count    = 2
      }
    }
  }

  cloudsql = {
    tier                           = "db-custom-1-3840"
    availability_type              = "ZONAL"
    retained_backups               = 1
    transaction_log_retention_days = 1
    retain_backups_on_delete       = false
  }

  redis_memory_size_gb = 1
}
