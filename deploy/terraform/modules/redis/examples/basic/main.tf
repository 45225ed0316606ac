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

module "network" {
  source     = "../../../network"
  project_id = "example-project"
  prefix     = "demo"
  region     = "europe-west1"
}

module "redis" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  region     = "europe-west1"
  labels     = { app = "fintech", env = "demo" }

  network_id        = module.network.network_id
  reserved_ip_range = module.network.private_service_access_range_name
}

output "host" {
  value = module.redis.host
}

output "server_ca_certificates" {
  value = module.redis.server_ca_certificates
}
