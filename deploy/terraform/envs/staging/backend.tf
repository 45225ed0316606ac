terraform {
  # Remote state in Cloud Storage (versioned bucket, created by envs/bootstrap). The bucket is
  # not named in code: pass it at init time (partial configuration), e.g.
  #   terraform init -backend-config=backend.hcl        # backend.hcl: bucket = "<state bucket>"
  #   terraform init -backend-config="bucket=fintech-tfstate"
  backend "gcs" {
    prefix = "fintech/staging"
  }
}
