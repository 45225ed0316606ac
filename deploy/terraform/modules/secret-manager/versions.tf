terraform {
  # 1.11: write-only arguments and ephemeral values keep generated passwords out of state;
  # variable validations may also refer to other variables (1.9).
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
