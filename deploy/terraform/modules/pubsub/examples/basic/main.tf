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

module "pubsub" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  labels     = { app = "fintech", env = "demo" }

  topics = {
    "payments.events" = { publishers = ["payments"], subscribers = ["notifications", "audit"] }
  }

  service_members = {
    payments      = "serviceAccount:demo-payments@example-project.iam.gserviceaccount.com"
    notifications = "serviceAccount:demo-notifications@example-project.iam.gserviceaccount.com"
    audit         = "serviceAccount:demo-audit@example-project.iam.gserviceaccount.com"
  }

  allowed_persistence_regions = ["europe-west1"]
}

output "subscriptions" {
  value = module.pubsub.subscriptions
}
