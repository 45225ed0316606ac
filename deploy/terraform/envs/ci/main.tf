# CI: an ephemeral copy of the platform, built for one pipeline run and always destroyed at the
# end of it, even when the run fails. Differences from staging, all in the service of a clean
# destroy and a short life:
# - deletion protection is off and buckets may be destroyed with their objects: this is the only
#   environment where that is allowed, and only because nothing here outlives the build;
# - no customer-managed keys: Cloud KMS keys can never be deleted, so a per-build key ring would
#   pile up forever. Vault borrows a long-lived CI key from envs/bootstrap;
# - a zonal Cloud SQL instance with minimal backups, small node pools, no uptime checks.

locals {
  labels = merge(var.labels, { app = "fintech", env = "ci", managed-by = "terraform" })

  members = module.workload_identity.members

  secrets = merge(
    { for svc, _ in module.catalog.databases : "${svc}-database-url" => { accessors = [local.members[svc]] } },
    { "redis-auth" = { accessors = [for svc in module.catalog.redis_users : local.members[svc]] } },
    { for secret, users in module.catalog.third_party_secrets : secret => {
      accessors      = [for svc in users : local.members[svc]]
      version_adders = var.secret_operators
    } },
  )
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

module "catalog" {
  source       = "../../modules/catalog"
  catalog_file = "${path.module}/../../services.yaml"
}

module "project" {
  source     = "../../modules/project-services"
  project_id = var.project_id
}

# Vault's key-encryption key is long-lived (envs/bootstrap); this build's vault account gets
# access for as long as the build exists.
resource "google_kms_crypto_key_iam_member" "vault" {
  for_each = toset(module.catalog.kms_users)

  crypto_key_id = var.vault_kms_key_id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.members[each.key]
}

module "network" {
  source     = "../../modules/network"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = local.labels

  subnet_cidr                 = "10.10.0.0/20"
  pods_cidr                   = "10.20.0.0/14"
  services_cidr               = "10.30.0.0/20"
  private_service_access_cidr = "10.40.0.0/16"
}

module "gke" {
  source     = "../../modules/gke"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = local.labels

  network_id                 = module.network.network_id
  subnet_id                  = module.network.subnet_id
  pods_range_name            = module.network.pods_range_name
  services_range_name        = module.network.services_range_name
  node_network_tag           = module.network.node_network_tag
  master_ipv4_cidr_block     = "172.16.0.0/28"
  master_authorized_networks = var.master_authorized_networks
  release_channel            = "REGULAR"
  deletion_protection        = false

  node_pools = {
    default = {
      machine_type = "e2-standard-4"
      min_count    = 1
      max_count    = 2
    }
  }
}

# Nodes pull the service images from the shared repository (envs/bootstrap).
resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  project    = var.registry.project_id
  location   = var.registry.location
  repository = var.registry.name
  role       = "roles/artifactregistry.reader"
  member     = module.gke.node_service_account_member
}

module "workload_identity" {
  source        = "../../modules/workload-identity"
  project_id    = var.project_id
  prefix        = var.prefix
  workload_pool = module.gke.workload_pool
  services      = module.catalog.workload_identities
}

module "secrets" {
  source              = "../../modules/secret-manager"
  project_id          = var.project_id
  prefix              = var.prefix
  labels              = local.labels
  secrets             = local.secrets
  replica_locations   = [var.region]
  deletion_protection = false
}

module "cloudsql" {
  source     = "../../modules/cloudsql"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = local.labels

  network_id         = module.network.network_id
  allocated_ip_range = module.network.private_service_access_range_name

  database_version               = "MYSQL_8_0"
  tier                           = "db-custom-1-3840"
  availability_type              = "ZONAL"
  retained_backups               = 1
  transaction_log_retention_days = 1
  retain_backups_on_delete       = false
  deletion_protection            = false

  databases               = values(module.catalog.databases)
  database_url_secret_ids = { for svc, db in module.catalog.databases : db => module.secrets.ids["${svc}-database-url"] }
}

module "redis" {
  source     = "../../modules/redis"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = local.labels

  network_id          = module.network.network_id
  reserved_ip_range   = module.network.private_service_access_range_name
  memory_size_gb      = 1
  auth_secret_id      = module.secrets.ids["redis-auth"]
  deletion_protection = false
}

module "pubsub" {
  source     = "../../modules/pubsub"
  project_id = var.project_id
  prefix     = var.prefix
  labels     = local.labels

  topics                      = module.catalog.topics
  service_members             = local.members
  allowed_persistence_regions = [var.region]
}

module "storage" {
  source     = "../../modules/storage"
  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = local.labels

  force_destroy = true
  buckets = {
    for bucket, users in module.catalog.buckets : bucket => {
      object_users                  = [for svc in users : local.members[svc]]
      soft_delete_retention_seconds = 0
    }
  }
}

module "endpoints" {
  source = "../../modules/endpoints"
  count  = var.openapi_path == null ? 0 : 1

  project_id   = var.project_id
  service_name = var.endpoints_service_name
  openapi_path = var.openapi_path
}

module "monitoring" {
  source     = "../../modules/monitoring"
  project_id = var.project_id
  prefix     = var.prefix
  labels     = local.labels

  notification_email = var.notification_email
  cluster_name       = module.gke.cluster_name
  sql_instance_name  = module.cloudsql.instance_name
}
