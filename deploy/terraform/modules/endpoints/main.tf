# Cloud Endpoints service configuration from the platform's OpenAPI document: API management,
# monitoring and (with ESPv2) API keys and quotas for the public API. A new document version
# rolls out a new service configuration.

resource "google_endpoints_service" "this" {
  project        = var.project_id
  service_name   = var.service_name
  openapi_config = file(var.openapi_path)
}

# The managed service must be enabled in the project whose proxies serve it.
resource "google_project_service" "this" {
  project            = var.project_id
  service            = google_endpoints_service.this.service_name
  disable_on_destroy = false
}

resource "google_endpoints_service_iam_binding" "controller" {
  count = length(var.controllers) > 0 ? 1 : 0

  service_name = google_endpoints_service.this.service_name
  role         = "roles/servicemanagement.serviceController"
  members      = var.controllers
}
