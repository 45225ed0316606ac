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

module "kms" {
  source     = "../.."
  project_id = "example-project"
  prefix     = "demo"
  location   = "europe-west1"
  labels     = { app = "fintech", env = "demo" }

  rotation_period = "7776000s"

  keys = {
    # vault's key-encryption key: vault wraps data keys with it and rotates it itself.
    vault = {
      protection_level     = "HSM"
      encrypter_decrypters = ["serviceAccount:demo-vault@example-project.iam.gserviceaccount.com"]
      rotators             = ["serviceAccount:demo-vault@example-project.iam.gserviceaccount.com"]
    }
    # vault's card fingerprints (MacSign), in the same protection level.
    vault-fingerprint = {
      purpose          = "MAC"
      protection_level = "HSM"
      signer_verifiers = ["serviceAccount:demo-vault@example-project.iam.gserviceaccount.com"]
    }
  }
}

output "vault_key" {
  value = module.kms.key_ids["vault"]
}

output "vault_fingerprint_key" {
  value = module.kms.mac_key_versions["vault-fingerprint"]
}
