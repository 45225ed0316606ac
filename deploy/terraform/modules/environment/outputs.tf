# What the Helm deployment and the SQL setup stage need; none of it is secret. The environments
# pass every output through under the same name.

output "cluster_name" {
  description = "GKE cluster (gcloud container clusters get-credentials <name> --region <region>)."
  value       = module.gke.cluster_name
}

output "region" {
  description = "Region of the environment."
  value       = var.region
}

output "service_accounts" {
  description = "Google service account per service, for the iam.gke.io/gcp-service-account annotation."
  value       = module.workload_identity.emails
}

output "cloud_sql_cidr" {
  description = "Private service access range of Cloud SQL (Helm networkPolicy.cloudSql.cidrs)."
  value       = module.network.private_service_access_cidr
}

output "sql_connection_name" {
  description = "Cloud SQL instance connection name for the Cloud SQL Auth Proxy."
  value       = module.cloudsql.connection_name
}

output "database_url_secrets" {
  description = "Secret Manager secret holding each service's database URL."
  value       = { for svc, _ in module.catalog.databases : svc => module.secrets.secret_ids["${svc}-database-url"] }
}

output "redis" {
  description = "Redis endpoint (TLS), the secrets holding its AUTH string, its URL (Helm redis.urlSecret, FINTECH_REDIS__URL) and its server CA certificates (Helm redis.caSecret, FINTECH_REDIS__CA_FILE), those certificates as PEM (public), and the address range it is in (Helm networkPolicy.redis.cidrs)."
  value = {
    host            = module.redis.host
    port            = module.redis.port
    auth_secret     = module.secrets.secret_ids["redis-auth"]
    url_secret      = module.secrets.secret_ids["redis-url"]
    ca_secret       = module.secrets.secret_ids["redis-ca"]
    ca_certificates = module.redis.server_ca_certificates
    cidr            = module.network.private_service_access_cidr
  }
}

output "topics" {
  description = "Pub/Sub topic per event stream."
  value       = module.pubsub.topics
}

output "subscriptions" {
  description = "Pub/Sub subscription per <consumer>.<stream> (its name after the prefix, e.g. audit.payments.events)."
  value       = module.pubsub.subscriptions
}

output "buckets" {
  description = "Bucket name per catalog bucket."
  value       = module.storage.names
}

output "vault_kms_key" {
  description = "Key-encryption key of the vault service (FINTECH_VAULT__KMS_KEY): the environment's own, or the borrowed vault_kms_key_id."
  value       = var.customer_managed_encryption ? module.kms[0].key_ids["vault"] : var.vault_kms_key_id
}

output "vault_kms_fingerprint_key" {
  description = "HMAC-SHA256 key version of vault's card fingerprints (FINTECH_VAULT__KMS_FINGERPRINT_KEY, …/cryptoKeys/vault-fingerprint/cryptoKeyVersions/1); null without keys of its own (ci: vault keeps its local key file)."
  value       = var.customer_managed_encryption ? module.kms[0].mac_key_versions["vault-fingerprint"] : null
}
