terraform {
  required_version = ">= 1.11.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 8.7"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 8.7"
    }
  }
}

provider "google" {
  project = "example-project"
  region  = "europe-west1"
}

provider "google-beta" {
  project = "example-project"
  region  = "europe-west1"
}

module "network" {
  source     = "../../../network"
  project_id = "example-project"
  prefix     = "demo"
  region     = "europe-west1"
}

module "secrets" {
  source     = "../../../secret-manager"
  project_id = "example-project"
  prefix     = "demo"
  secrets = {
    payments-database-url = {}
    ledger-database-url   = {}
  }
}

# MySQL 8.0, regional HA, private IP only, TLS, backups with point-in-time recovery, one
# database and user per service; the users' connection URLs land in Secret Manager.
module "cloudsql" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  region     = "europe-west1"
  labels     = { app = "fintech", env = "demo" }

  network_id         = module.network.network_id
  allocated_ip_range = module.network.private_service_access_range_name

  databases = ["payments", "ledger"]
  database_url_secret_ids = {
    payments = module.secrets.ids["payments-database-url"]
    ledger   = module.secrets.ids["ledger-database-url"]
  }
}

output "connection_name" {
  value = module.cloudsql.connection_name
}
