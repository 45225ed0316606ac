# Production. The pipeline plans it after staging passed, shows the plan, and applies it only
# after a manual approval; terraform then changes only what drifted from this code. Compared with
# staging: regional (high-availability) Cloud SQL with a longer backup retention and backups kept
# outside the region, more and larger nodes, the STABLE release channel, a larger Redis.

locals {
  labels = merge(var.labels, { app = "fintech", env = "production", managed-by = "terraform" })

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

module "kms" {
  source     = "../../modules/kms"
  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = local.labels

  keys = {
    vault   = { protection_level = "HSM", encrypter_decrypters = [for svc in module.catalog.kms_users : local.members[svc]] }
    sql     = { encrypter_decrypters = [module.project.service_agents.sql] }
    redis   = { encrypter_decrypters = [module.project.service_agents.redis] }
    pubsub  = { encrypter_decrypters = [module.project.service_agents.pubsub] }
    storage = { encrypter_decrypters = [module.project.service_agents.storage] }
    secrets = { encrypter_decrypters = [module.project.service_agents.secret_manager] }
    gke     = { encrypter_decrypters = [module.project.service_agents.container] }
    disks   = { encrypter_decrypters = [module.project.service_agents.compute] }
  }
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
  release_channel            = "STABLE"
  database_encryption_key    = module.kms.key_ids["gke"]
  boot_disk_kms_key          = module.kms.key_ids["disks"]

  node_pools = {
    default = {
      machine_type = "n2-standard-4"
      min_count    = 2
      max_count    = 6
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
  source            = "../../modules/secret-manager"
  project_id        = var.project_id
  prefix            = var.prefix
  labels            = local.labels
  secrets           = local.secrets
  replica_locations = [var.region]
  kms_key_names     = { (var.region) = module.kms.key_ids["secrets"] }
}

module "cloudsql" {
  source     = "../../modules/cloudsql"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = local.labels

  network_id         = module.network.network_id
  allocated_ip_range = module.network.private_service_access_range_name
  kms_key_name       = module.kms.key_ids["sql"]

  database_version               = "MYSQL_8_0"
  tier                           = "db-custom-4-15360"
  availability_type              = "REGIONAL"
  disk_size_gb                   = 100
  disk_autoresize_limit_gb       = 2000
  retained_backups               = 35
  transaction_log_retention_days = 7
  backup_location                = var.backup_location

  databases               = values(module.catalog.databases)
  database_url_secret_ids = { for svc, db in module.catalog.databases : db => module.secrets.ids["${svc}-database-url"] }
  password_version        = var.password_version
}

module "redis" {
  source     = "../../modules/redis"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = local.labels

  network_id        = module.network.network_id
  reserved_ip_range = module.network.private_service_access_range_name
  memory_size_gb    = 5
  auth_secret_id    = module.secrets.ids["redis-auth"]
  kms_key_name      = module.kms.key_ids["redis"]
}

module "pubsub" {
  source     = "../../modules/pubsub"
  project_id = var.project_id
  prefix     = var.prefix
  labels     = local.labels

  topics                      = module.catalog.topics
  service_members             = local.members
  dead_letter_readers         = var.dead_letter_readers
  allowed_persistence_regions = [var.region]
  kms_key_name                = module.kms.key_ids["pubsub"]
}

module "storage" {
  source     = "../../modules/storage"
  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = local.labels

  buckets = {
    for bucket, users in module.catalog.buckets : bucket => {
      kms_key_name = module.kms.key_ids["storage"]
      object_users = [for svc in users : local.members[svc]]
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
  public_host        = var.public_host
}
