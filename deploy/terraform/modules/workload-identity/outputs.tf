output "emails" {
  description = "Service account email per service (annotate the Kubernetes service account with it: iam.gke.io/gcp-service-account)."
  value       = { for k, sa in google_service_account.service : k => sa.email }
}

output "members" {
  description = "IAM member string (serviceAccount:<email>) per service, for granting rights on resources."
  value       = { for k, sa in google_service_account.service : k => sa.member }
}
