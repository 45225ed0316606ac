terraform {
  # Remote state in Cloud Storage (versioned bucket, created by envs/bootstrap). Bucket and
  # prefix come from the pipeline (partial configuration), one prefix per build so concurrent or
  # crashed builds never share state:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=fintech/ci/${BUILD_NUMBER}"
  backend "gcs" {
    prefix = "fintech/ci/manual"
  }
}
