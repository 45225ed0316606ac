output "project_number" {
  description = "Number of the project."
  value       = local.number
}

output "service_agents" {
  description = "IAM member (serviceAccount:<email>) of each service agent, by short name: artifact_registry, compute, container, pubsub, redis, secret_manager, sql, storage."
  value       = { for k, email in local.agents : k => "serviceAccount:${email}" }
  depends_on  = [google_project_service_identity.this]
}

output "enabled_services" {
  description = "APIs enabled by this module; depend on it before creating resources that need them."
  value       = [for s in google_project_service.this : s.service]
}
