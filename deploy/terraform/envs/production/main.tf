# Production. The pipeline plans it after staging passed, shows the plan, and applies it only
# after a manual approval; terraform then changes only what drifted from this code. Everything is
# built by modules/environment; what makes it production is set below. Compared with staging:
# regional (high-availability) Cloud SQL with a longer backup retention and backups kept outside
# the region, more and larger nodes, the STABLE release channel, a larger Redis.

locals {
  labels = merge(var.labels, { app = "fintech", env = "production", managed-by = "terraform" })
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

  # Production's own values.
  deletion_protection         = true
  customer_managed_encryption = true

  gke = {
    release_channel = "STABLE"
    node_pools = {
      default = {
        machine_type = "n2-standard-4"
        min_count    = 2
        max_count    = 6
      }
    }
  }

  cloudsql = {
    tier                           = "db-custom-4-15360"
    availability_type              = "REGIONAL"
    disk_size_gb                   = 100
    disk_autoresize_limit_gb       = 2000
    retained_backups               = 35
    transaction_log_retention_days = 7
    backup_location                = var.backup_location
  }

  redis_memory_size_gb = 5
}
