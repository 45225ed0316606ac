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

module "secrets" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  labels     = { app = "fintech", env = "demo" }

  replica_locations = ["europe-west1"]
  secrets = {
    smtp-password = {
      accessors      = ["serviceAccount:demo-notifications@example-project.iam.gserviceaccount.com"]
      version_adders = ["group:fintech-ops@example.com"]
    }
  }
}

output "secret_ids" {
  value = module.secrets.secret_ids
}
