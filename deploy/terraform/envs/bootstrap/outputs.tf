output "state_bucket" {
  description = "Bucket for the environments' Terraform state (backend config bucket=...)."
  value       = module.state.names["tfstate"]
}

output "registry" {
  description = "The image repository, as the environments' registry variable expects it."
  value = {
    project_id = var.project_id
    location   = module.registry.location
    name       = module.registry.name
    url        = module.registry.url
  }
}

output "ci_vault_kms_key" {
  description = "Key-encryption key lent to vault in the CI environments (envs/ci variable vault_kms_key_id)."
  value       = module.kms.key_ids["ci-vault"]
}
