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

module "workload_identity" {
  source        = "../.."
  project_id    = "example-project"
  prefix        = "demo"
  workload_pool = "example-project.svc.id.goog"
  namespace     = "fintech"

  services = {
    payments     = { project_roles = ["roles/cloudsql.client"] }
    "contact-us" = { project_roles = ["roles/cloudsql.client"], sign_blob = true }
    web          = { kubernetes_service_accounts = ["fintech-web"] }
  }
}

output "emails" {
  value = module.workload_identity.emails
}
