terraform {
  required_version = ">= 1.11.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 8.7"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 8.7"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}

locals {
  labels = { app = "fintech", env = "demo", managed-by = "terraform" }
}

provider "google" {
  project        = "example-project"
  region         = "europe-west1"
  default_labels = local.labels
}

provider "google-beta" {
  project        = "example-project"
  region         = "europe-west1"
  default_labels = local.labels
}

# A long-lived environment at staging's size: every service of deploy/terraform/services.yaml
# with its database, event streams, buckets, secrets and workload identity; its own key ring
# (CMEK everywhere), deletion protection on.
module "environment" {
  source = "../.."

  project_id         = "example-project"
  region             = "europe-west1"
  prefix             = "demo"
  labels             = local.labels
  notification_email = "alerts@example.com"
  public_host        = "api.demo.example.com"

  master_authorized_networks = [{ cidr_block = "203.0.113.0/28", display_name = "jenkins" }]
  registry = {
    project_id = "example-shared"
    location   = "europe-west1"
    name       = "fintech-images"
  }

  gke = {
    release_channel = "REGULAR"
    node_pools = {
      default = { machine_type = "e2-standard-4", min_count = 1, max_count = 3 }
    }
  }

  cloudsql = {
    tier                           = "db-custom-2-7680"
    availability_type              = "REGIONAL"
    retained_backups               = 7
    transaction_log_retention_days = 7
  }

  redis_memory_size_gb = 1
}

output "cluster_name" {
  value = module.environment.cluster_name
}

output "sql_connection_name" {
  value = module.environment.sql_connection_name
}
