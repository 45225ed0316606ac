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

module "storage" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "acme-demo"
  location   = "europe-west1"
  labels     = { app = "fintech", env = "demo" }

  buckets = {
    statements = {
      nearline_after_days = 90
      object_users        = ["serviceAccount:demo-statements@example-project.iam.gserviceaccount.com"]
    }
  }
}

output "buckets" {
  value = module.storage.names
}
