terraform {
  # The state bucket is created by this very configuration. First apply: put a
  # backend_override.tf containing `terraform { backend "local" {} }` next to this file, apply,
  # delete the override, then move the state into the new bucket:
  #   terraform init -migrate-state -backend-config="bucket=<state_bucket output>"
  backend "gcs" {
    prefix = "fintech/bootstrap"
  }
}
