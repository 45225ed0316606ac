output "id" {
  description = "Id of the repository."
  value       = google_artifact_registry_repository.this.id
}

output "name" {
  description = "Repository id (name) within its location."
  value       = google_artifact_registry_repository.this.name
}

output "location" {
  description = "Location of the repository."
  value       = google_artifact_registry_repository.this.location
}

output "url" {
  description = "Image path prefix, e.g. europe-west1-docker.pkg.dev/<project>/<repository>."
  value       = "${google_artifact_registry_repository.this.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}
