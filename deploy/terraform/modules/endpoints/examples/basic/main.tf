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

module "endpoints" {
  source       = "../.."
  project_id   = "example-project"
  service_name = "api.fintech.example.com"
  openapi_path = "${path.module}/openapi.yaml"
}

output "config_id" {
  value = module.endpoints.config_id
}
