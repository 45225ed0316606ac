terraform {
  # 1.11: write-only arguments (password_wo, secret_data_wo) and ephemeral resources keep the
  # generated passwords out of plans and state; validations also refer to other variables (1.9).
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
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
