# What the Helm deployment and the SQL setup stage need (modules/environment); none of it is secret.

output "cluster_name" {
  description = "GKE cluster (gcloud container clusters get-credentials <name> --region <region>)."
  value       = module.environment.cluster_name
}

output "region" {
  description = "Region of the environment."
  value       = module.environment.region
}

output "service_accounts" {
  description = "Google service account per service, for the iam.gke.io/gcp-service-account annotation."
  value       = module.environment.service_accounts
}

output "cloud_sql_cidr" {
  description = "Private service access range of Cloud SQL (Helm networkPolicy.cloudSql.cidrs)."
  value       = module.environment.cloud_sql_cidr
}

output "sql_connection_name" {
  description = "Cloud SQL instance connection name for the Cloud SQL Auth Proxy."
  value       = module.environment.sql_connection_name
}

output "database_url_secrets" {
  description = "Secret Manager secret holding each service's database URL."
  value       = module.environment.database_url_secrets
}

output "redis" {
  description = "Redis endpoint (TLS), the secrets holding its AUTH string, its URL (Helm redis.urlSecret) and its server CA certificates (Helm redis.caSecret), those certificates as PEM, and its address range (Helm networkPolicy.redis.cidrs)."
  value       = module.environment.redis
}

output "topics" {
  description = "Pub/Sub topic per event stream."
  value       = module.environment.topics
}

output "subscriptions" {
  description = "Pub/Sub subscription per <consumer>.<stream> (its name after the prefix, e.g. audit.payments.events)."
  value       = module.environment.subscriptions
}

output "buckets" {
  description = "Bucket name per catalog bucket."
  value       = module.environment.buckets
}

output "vault_kms_key" {
  description = "Key-encryption key of the vault service."
  value       = module.environment.vault_kms_key
}

output "vault_kms_fingerprint_key" {
  description = "HMAC-SHA256 key version of vault's card fingerprints; null without keys of its own (ci)."
  value       = module.environment.vault_kms_fingerprint_key
}
