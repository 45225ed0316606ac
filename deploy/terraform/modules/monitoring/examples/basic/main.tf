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

module "monitoring" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  labels     = { app = "fintech", env = "demo" }

  notification_email = "oncall@example.com"
  cluster_name       = "demo-gke"
  sql_instance_name  = "demo-mysql"
  public_host        = "api.fintech.example.com"
  uptime_paths       = ["/", "/api/identity/.well-known/jwks.json"]
}

output "alert_policies" {
  value = module.monitoring.alert_policy_ids
}
