# One Google service account per service, usable only by that service's Kubernetes service
# accounts through Workload Identity, with only the project roles it needs. No keys are created:
# pods get short-lived tokens from the GKE metadata server.

locals {
  project_roles = merge([
    for name, s in var.services : { for r in s.project_roles : "${name} ${r}" => { service = name, role = r } }
  ]...)
}

resource "google_service_account" "service" {
  for_each = var.services

  project      = var.project_id
  account_id   = "${var.prefix}-${each.key}"
  display_name = "FINTECH ${each.key} (${var.prefix})"
  description  = "Workload identity of the ${each.key} service in ${var.prefix}."
}

# Authoritative for this role on an account the module owns: only the listed Kubernetes service
# accounts can ever act as it.
resource "google_service_account_iam_binding" "workload_identity" {
  for_each = var.services

  service_account_id = google_service_account.service[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  members = [
    for pattern in coalesce(each.value.kubernetes_service_accounts, var.kubernetes_service_accounts) :
    "serviceAccount:${var.workload_pool}[${coalesce(each.value.namespace, var.namespace)}/${format(pattern, each.key)}]"
  ]
}

# A service that hands out V4 signed URLs (its bucket's download links) signs them through IAM
# signBlob as its own account: roles/iam.serviceAccountTokenCreator on that account, and on no
# other, so it can sign only as itself (never impersonate another service). No key is created.
resource "google_service_account_iam_member" "sign_blob" {
  for_each = { for name, s in var.services : name => s if s.sign_blob }

  service_account_id = google_service_account.service[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.service[each.key].member
}

resource "google_project_iam_member" "service" {
  for_each = local.project_roles

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.service[each.value.service].member
}
