# Runs offline (the module needs no provider): terraform test, from modules/catalog.

run "derives_streams_and_databases_from_the_real_catalog" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["contact-us"] == "contact_us"
    error_message = "contact-us must own the contact_us database (its configuration key)."
  }

  assert {
    condition     = !contains(keys(output.databases), "web")
    error_message = "web owns no database."
  }

  assert {
    condition     = length(output.topics["contact-us.events"].publishers) == 1 && contains(output.topics["contact-us.events"].publishers, "contact-us")
    error_message = "contact-us.events must be published by contact-us only."
  }

  assert {
    condition     = contains(output.topics["contact-us.events"].subscribers, "notifications") && contains(output.topics["contact-us.events"].subscribers, "audit")
    error_message = "notifications and audit must consume contact-us.events."
  }

  assert {
    condition     = alltrue([for name, t in output.topics : contains(t.subscribers, "audit")])
    error_message = "audit must consume every event stream."
  }

  assert {
    condition     = length(output.kms_users) == 1 && contains(output.kms_users, "vault")
    error_message = "Only vault may use the key-encryption key."
  }

  assert {
    condition     = length(output.workload_identities["web"].project_roles) == 0 && contains(output.workload_identities["ledger"].project_roles, "roles/cloudsql.client")
    error_message = "Only services with a database get the Cloud SQL client role."
  }
}

run "wires_accounts_and_payments_to_the_ledger" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["accounts"] == "accounts" && output.databases["payments"] == "payments"
    error_message = "accounts and payments must own the accounts and payments databases (their configuration keys)."
  }

  assert {
    condition     = alltrue([for svc in ["accounts", "payments"] : length(output.topics["${svc}.events"].publishers) == 1 && contains(output.topics["${svc}.events"].publishers, svc)])
    error_message = "accounts.events and payments.events must be published by accounts and payments only."
  }

  assert {
    condition     = alltrue([for svc in ["accounts", "payments"] : contains(output.workload_identities[svc].project_roles, "roles/cloudsql.client")])
    error_message = "accounts and payments have a database: their accounts need the Cloud SQL client role."
  }

  assert {
    condition     = alltrue([for svc in ["ledger", "accounts", "payments"] : contains(output.third_party_secrets["ledger-service-token"], svc)])
    error_message = "The ledger and its callers (accounts, payments) must all read ledger-service-token."
  }

  assert {
    condition     = length(output.third_party_secrets["accounts-staff-token"]) == 1 && contains(output.third_party_secrets["accounts-staff-token"], "accounts") && length(output.third_party_secrets["payments-api-token"]) == 1 && contains(output.third_party_secrets["payments-api-token"], "payments")
    error_message = "accounts-staff-token and payments-api-token must be readable by their own service only."
  }
}

run "rejects_a_stream_nobody_publishes" {
  command = plan

  variables {
    catalog_file = "tests/orphan-stream.yaml"
  }

  expect_failures = [output.topics]
}
