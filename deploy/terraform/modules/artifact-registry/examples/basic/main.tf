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

module "registry" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  location   = "europe-west1"
  labels     = { app = "fintech", env = "demo" }

  writers = { ci = "serviceAccount:ci-build@example-project.iam.gserviceaccount.com" }
  readers = { nodes = "serviceAccount:demo-gke-nodes@example-project.iam.gserviceaccount.com" }
}

output "url" {
  value = module.registry.url
}
