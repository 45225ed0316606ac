output "instance_name" {
  description = "Name of the Cloud SQL instance."
  value       = google_sql_database_instance.this.name
}

output "connection_name" {
  description = "project:region:instance, for the Cloud SQL Auth Proxy."
  value       = google_sql_database_instance.this.connection_name
}

output "private_ip_address" {
  description = "Private IP of the instance."
  value       = google_sql_database_instance.this.private_ip_address
}

output "databases" {
  description = "Database names, one per service."
  value       = sort([for d in google_sql_database.service : d.name])
}

output "users" {
  description = "MySQL user per service (same name as its database)."
  value       = { for k, u in google_sql_user.service : k => u.name }
}

output "database_url_secret_versions" {
  description = "Secret Manager version holding each service's connection URL."
  value       = { for k, v in google_secret_manager_secret_version.database_url : k => v.name }
}
