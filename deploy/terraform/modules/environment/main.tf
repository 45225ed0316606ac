# One environment of the platform: every module the services need, wired together the same way
# in ci, staging and production. What differs between environments comes in as variables set by
# envs/<env>/main.tf: sizes, high availability, backups, deletion protection, and whether the
# environment has Cloud KMS keys of its own (staging, production) or borrows vault's key from
# envs/bootstrap (ci: Cloud KMS keys can never be deleted, so an ephemeral environment creates
# none). The providers, with the environment's default labels, are configured by the caller.

locals {
  members = module.workload_identity.members

  secrets = merge(
    { for svc, _ in module.catalog.databases : "${svc}-database-url" => { accessors = [local.members[svc]] } },
    # Written by the redis module from the instance: its AUTH string, the whole URL the
    # services read as FINTECH_REDIS__URL (rediss://:<AUTH>@<host>:6378/0), and the server CA
    # certificates they trust (FINTECH_REDIS__CA_FILE; public, read the same way as the URL).
    { "redis-auth" = { accessors = [for svc in module.catalog.redis_users : local.members[svc]] } },
    { "redis-url" = { accessors = [for svc in module.catalog.redis_users : local.members[svc]] } },
    { "redis-ca" = { accessors = [for svc in module.catalog.redis_users : local.members[svc]] } },
    { for secret, users in module.catalog.third_party_secrets : secret => {
      accessors      = [for svc in users : local.members[svc]]
      version_adders = var.secret_operators
    } },
  )

  # With customer-managed encryption: vault's keys and one CMEK key per data service, each usable
  # only by the service agent that encrypts with it. vault's keys (its Cloud KMS key store,
  # FINTECH_VAULT__KEY_STORE=cloud_kms): the key-encryption key, which vault encrypts and decrypts
  # data keys with and rotates itself (rotators: a new primary version, then the old ones
  # disabled; never destroyed), and the HMAC-SHA256 key of the card fingerprints (MacSign), at
  # the same protection level.
  vault_users            = [for svc in module.catalog.kms_users : local.members[svc]]
  vault_protection_level = "HSM"
  kms_keys = {
    vault             = { protection_level = local.vault_protection_level, encrypter_decrypters = local.vault_users, rotators = local.vault_users }
    vault-fingerprint = { purpose = "MAC", protection_level = local.vault_protection_level, signer_verifiers = local.vault_users }
    sql               = { encrypter_decrypters = [module.project.service_agents.sql] }
    redis             = { encrypter_decrypters = [module.project.service_agents.redis] }
    pubsub            = { encrypter_decrypters = [module.project.service_agents.pubsub] }
    storage           = { encrypter_decrypters = [module.project.service_agents.storage] }
    secrets           = { encrypter_decrypters = [module.project.service_agents.secret_manager] }
    gke               = { encrypter_decrypters = [module.project.service_agents.container] }
    disks             = { encrypter_decrypters = [module.project.service_agents.compute] }
  }

  # The CMEK key of each data service; null (Google-managed keys) without customer-managed
  # encryption. Written out key by key: checkov does not resolve the module's variables when
  # this map is a for expression, and then checks none of the environment's settings.
  cmek = {
    sql     = var.customer_managed_encryption ? module.kms[0].key_ids["sql"] : null
    redis   = var.customer_managed_encryption ? module.kms[0].key_ids["redis"] : null
    pubsub  = var.customer_managed_encryption ? module.kms[0].key_ids["pubsub"] : null
    storage = var.customer_managed_encryption ? module.kms[0].key_ids["storage"] : null
    secrets = var.customer_managed_encryption ? module.kms[0].key_ids["secrets"] : null
    gke     = var.customer_managed_encryption ? module.kms[0].key_ids["gke"] : null
    disks   = var.customer_managed_encryption ? module.kms[0].key_ids["disks"] : null
  }
}

module "catalog" {
  source       = "../catalog"
  catalog_file = "${path.module}/../../services.yaml"
}

module "project" {
  source     = "../project-services"
  project_id = var.project_id
}

module "kms" {
  source = "../kms"
  count  = var.customer_managed_encryption ? 1 : 0

  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = var.labels
  keys       = local.kms_keys
}

# Without keys of its own, vault's account gets access to the borrowed long-lived key for as long
# as the environment exists: encrypt and decrypt only. The key is shared by every CI build, so no
# build may rotate it (a rotation disables the versions the other builds' cards are wrapped
# with), and there is no borrowed fingerprint key: vault keeps its local key file in ci
# (deploy/helm/fintech/values-ci.yaml).
resource "google_kms_crypto_key_iam_member" "vault" {
  for_each = var.customer_managed_encryption ? toset([]) : toset(module.catalog.kms_users)

  crypto_key_id = var.vault_kms_key_id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.members[each.key]
}

module "network" {
  source     = "../network"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = var.labels

  subnet_cidr                 = "10.10.0.0/20"
  pods_cidr                   = "10.20.0.0/14"
  services_cidr               = "10.30.0.0/20"
  private_service_access_cidr = "10.40.0.0/16"
}

module "gke" {
  source     = "../gke"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = var.labels

  network_id                 = module.network.network_id
  subnet_id                  = module.network.subnet_id
  pods_range_name            = module.network.pods_range_name
  services_range_name        = module.network.services_range_name
  node_network_tag           = module.network.node_network_tag
  master_ipv4_cidr_block     = "172.16.0.0/28"
  master_authorized_networks = var.master_authorized_networks
  enable_private_endpoint    = var.gke.private_endpoint
  release_channel            = var.gke.release_channel
  node_pools                 = var.gke.node_pools
  database_encryption_key    = local.cmek.gke
  boot_disk_kms_key          = local.cmek.disks
  deletion_protection        = var.deletion_protection
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
  source        = "../workload-identity"
  project_id    = var.project_id
  prefix        = var.prefix
  workload_pool = module.gke.workload_pool
  services      = module.catalog.workload_identities
}

module "secrets" {
  source              = "../secret-manager"
  project_id          = var.project_id
  prefix              = var.prefix
  labels              = var.labels
  secrets             = local.secrets
  replica_locations   = [var.region]
  kms_key_names       = var.customer_managed_encryption ? { (var.region) = local.cmek.secrets } : {}
  deletion_protection = var.deletion_protection
}

module "cloudsql" {
  source     = "../cloudsql"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = var.labels

  network_id         = module.network.network_id
  allocated_ip_range = module.network.private_service_access_range_name
  kms_key_name       = local.cmek.sql

  database_version               = "MYSQL_8_0"
  tier                           = var.cloudsql.tier
  availability_type              = var.cloudsql.availability_type
  disk_size_gb                   = var.cloudsql.disk_size_gb
  disk_autoresize_limit_gb       = var.cloudsql.disk_autoresize_limit_gb
  retained_backups               = var.cloudsql.retained_backups
  transaction_log_retention_days = var.cloudsql.transaction_log_retention_days
  backup_location                = var.cloudsql.backup_location
  retain_backups_on_delete       = var.cloudsql.retain_backups_on_delete
  deletion_protection            = var.deletion_protection

  databases               = values(module.catalog.databases)
  database_url_secret_ids = { for svc, db in module.catalog.databases : db => module.secrets.ids["${svc}-database-url"] }
  password_version        = var.password_version
}

module "redis" {
  source     = "../redis"
  project_id = var.project_id
  prefix     = var.prefix
  region     = var.region
  labels     = var.labels

  network_id          = module.network.network_id
  reserved_ip_range   = module.network.private_service_access_range_name
  memory_size_gb      = var.redis_memory_size_gb
  auth_secret_id      = module.secrets.ids["redis-auth"]
  url_secret_id       = module.secrets.ids["redis-url"]
  ca_secret_id        = module.secrets.ids["redis-ca"]
  kms_key_name        = local.cmek.redis
  deletion_protection = var.deletion_protection
}

module "pubsub" {
  source     = "../pubsub"
  project_id = var.project_id
  prefix     = var.prefix
  labels     = var.labels

  topics                      = module.catalog.topics
  service_members             = local.members
  dead_letter_readers         = var.dead_letter_readers
  allowed_persistence_regions = [var.region]
  kms_key_name                = local.cmek.pubsub
}

module "storage" {
  source     = "../storage"
  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = var.labels

  force_destroy = var.force_destroy
  buckets = {
    for bucket, users in module.catalog.buckets : bucket => {
      kms_key_name                  = local.cmek.storage
      object_users                  = [for svc in users : local.members[svc]]
      soft_delete_retention_seconds = var.bucket_soft_delete_retention_seconds
    }
  }
}

module "endpoints" {
  source = "../endpoints"
  count  = var.openapi_path == null ? 0 : 1

  project_id   = var.project_id
  service_name = var.endpoints_service_name
  openapi_path = var.openapi_path
}

module "monitoring" {
  source     = "../monitoring"
  project_id = var.project_id
  prefix     = var.prefix
  labels     = var.labels

  notification_email = var.notification_email
  cluster_name       = module.gke.cluster_name
  sql_instance_name  = module.cloudsql.instance_name
  public_host        = var.public_host
}
