# Long-lived resources that every environment relies on and that no pipeline ever destroys:
# - the versioned bucket that holds the Terraform state of all environments;
# - the Docker repository that the service pipelines push images to and every environment's
#   nodes pull from (images are built once and promoted by digest);
# - a key ring with the repository's and the state bucket's keys and the key-encryption key that
#   the ephemeral CI environments lend to vault (KMS keys can never be deleted, so CI cannot own
#   one per build).
# Applied by hand by a project owner, rarely.

locals {
  labels = merge(var.labels, { app = "fintech", env = "shared", managed-by = "terraform" })
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

module "project" {
  source     = "../../modules/project-services"
  project_id = var.project_id
  services = [
    "artifactregistry.googleapis.com",
    "cloudkms.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
  ]
  service_identities = []
}

module "kms" {
  source     = "../../modules/kms"
  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = local.labels

  keys = {
    registry = { encrypter_decrypters = [module.project.service_agents.artifact_registry] }
    state    = { encrypter_decrypters = [module.project.service_agents.storage] }
    # Each CI build grants its own vault service account access (envs/ci).
    ci-vault = {}
  }
}

module "state" {
  source     = "../../modules/storage"
  project_id = var.project_id
  prefix     = var.prefix
  location   = var.region
  labels     = local.labels

  buckets = {
    tfstate = {
      kms_key_name                      = module.kms.key_ids["state"]
      noncurrent_version_retention_days = 90
      max_noncurrent_versions           = 50
      object_users                      = var.terraform_runners
    }
  }
}

module "registry" {
  source       = "../../modules/artifact-registry"
  project_id   = var.project_id
  prefix       = var.prefix
  location     = var.region
  labels       = local.labels
  kms_key_name = module.kms.key_ids["registry"]
  writers      = var.image_pushers
}
