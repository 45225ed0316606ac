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

module "gke" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  region     = "europe-west1"
  labels     = { app = "fintech", env = "demo" }

  network_id       = module.network.network_id
  subnet_id        = module.network.subnet_id
  node_network_tag = module.network.node_network_tag

  master_authorized_networks = [
    { cidr_block = "203.0.113.0/28", display_name = "ci-agents" },
  ]

  node_pools = {
    default = { machine_type = "e2-standard-4", min_count = 1, max_count = 3 }
  }
}

output "cluster_name" {
  value = module.gke.cluster_name
}
