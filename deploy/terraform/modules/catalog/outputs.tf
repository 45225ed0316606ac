output "services" {
  description = "Every service with its catalog entry, defaults filled in."
  value       = local.services
}

output "workload_identities" {
  description = "Input for the workload-identity module: each service with the project roles it needs (Cloud SQL client for the Auth Proxy if it owns a database), and whether it signs blobs as itself (a service with buckets: its V4 signed download links)."
  value = {
    for name, s in local.services : name => {
      project_roles = s.database != null ? ["roles/cloudsql.client"] : []
      sign_blob     = length(s.buckets) > 0
    }
  }
}

output "databases" {
  description = "Database (and MySQL user) name per service that owns one."
  value       = local.databases
  precondition {
    condition     = length(distinct(values(local.databases))) == length(local.databases)
    error_message = "Two services in the catalog name the same database."
  }
}

output "topics" {
  description = "Input for the pubsub module: each event stream with its publisher and its consumers."
  value       = local.topics
  precondition {
    condition     = alltrue([for stream in local.consumed_streams : contains(keys(local.topics), stream)])
    error_message = "A service consumes an event stream that no service publishes."
  }
}

output "buckets" {
  description = "Services that read and write each bucket."
  value       = local.buckets
}

output "redis_users" {
  description = "Services that use Redis."
  value       = sort([for name, s in local.services : name if s.redis])
}

output "third_party_secrets" {
  description = "Services that read each operator-provided secret (third-party credentials, shared tokens)."
  value       = local.third_party_secrets
}

output "kms_users" {
  description = "Services that use the vault key-encryption key."
  value       = sort([for name, s in local.services : name if s.kms])
}
