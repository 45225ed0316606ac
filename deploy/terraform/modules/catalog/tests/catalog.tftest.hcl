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

  # Signed download links are signed by IAM signBlob as the service's own account.
  assert {
    condition     = output.buckets["attachments"] == tolist(["contact-us"]) && output.buckets["statements"] == tolist(["statements"])
    error_message = "contact-us uses the attachments bucket and statements the statements bucket, each alone."
  }

  assert {
    condition     = sort([for name, w in output.workload_identities : name if w.sign_blob]) == tolist(["contact-us", "statements"])
    error_message = "Exactly the services with buckets (contact-us, statements) sign blobs as themselves."
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
    condition     = alltrue([for svc in ["accounts", "payments"] : output.third_party_secrets["${svc}-service-secret"] == tolist(sort(["identity", svc]))])
    error_message = "accounts-service-secret and payments-service-secret must be readable by their service and identity (which checks them) only."
  }

  assert {
    condition     = !contains(keys(output.third_party_secrets), "ledger-service-token") && !contains(keys(output.third_party_secrets), "accounts-staff-token") && !contains(keys(output.third_party_secrets), "payments-api-token") && !contains(keys(output.third_party_secrets), "contact-us-staff-token")
    error_message = "The placeholder tokens are gone: identity's service tokens and access tokens replace them."
  }
}

run "gives_identity_its_database_and_secrets" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["identity"] == "identity"
    error_message = "identity must own the identity database (its configuration key)."
  }

  assert {
    condition     = contains(output.workload_identities["identity"].project_roles, "roles/cloudsql.client")
    error_message = "identity has a database: its account needs the Cloud SQL client role."
  }

  assert {
    condition     = output.third_party_secrets["identity-bootstrap-admin-password"] == tolist(["identity"])
    error_message = "identity-bootstrap-admin-password must be readable by identity only."
  }

  assert {
    condition     = alltrue([for secret in ["identity-twilio-auth-token", "identity-vonage-api-secret"] : output.third_party_secrets[secret] == tolist(["identity"])])
    error_message = "The SMS gateways' credentials identity sends one-time codes with must be readable by identity only."
  }

  assert {
    condition     = alltrue([for secret, readers in output.third_party_secrets : contains(readers, "identity") if endswith(secret, "-service-secret")])
    error_message = "identity must read every service secret: it checks them when it issues service tokens."
  }

  assert {
    condition     = alltrue([for secret, readers in output.third_party_secrets : length(readers) == 2 && contains(readers, trimsuffix(secret, "-service-secret")) if endswith(secret, "-service-secret")])
    error_message = "A service secret is readable by its own service and identity only."
  }
}

run "gives_vault_its_database_key_and_acquirer_secret" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["vault"] == "vault"
    error_message = "vault must own the vault database (its configuration key)."
  }

  assert {
    condition     = contains(output.workload_identities["vault"].project_roles, "roles/cloudsql.client")
    error_message = "vault has a database: its account needs the Cloud SQL client role."
  }

  assert {
    condition     = output.third_party_secrets["vault-acquirer-api-key"] == tolist(["vault"])
    error_message = "vault-acquirer-api-key must be readable by vault only: no other service ever talks to the acquirer."
  }

  assert {
    condition     = alltrue([for secret, readers in output.third_party_secrets : !contains(readers, "vault") || secret == "vault-acquirer-api-key"])
    error_message = "vault reads no other operator secret: it calls no service, so it has no secret at identity."
  }

  assert {
    condition     = !contains(keys(output.third_party_secrets), "vault-service-secret") && !contains(output.third_party_secrets["payments-service-secret"], "vault")
    error_message = "vault calls no service: payments calls it with payments' own service secret."
  }
}

run "gives_risk_and_audit_their_databases_and_streams" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["risk"] == "risk" && output.databases["audit"] == "audit"
    error_message = "risk and audit must own the risk and audit databases (their configuration keys)."
  }

  assert {
    condition     = alltrue([for svc in ["risk", "audit"] : contains(output.workload_identities[svc].project_roles, "roles/cloudsql.client")])
    error_message = "risk and audit have a database: their accounts need the Cloud SQL client role."
  }

  assert {
    condition     = alltrue([for svc in ["identity", "vault", "risk"] : length(output.topics["${svc}.events"].publishers) == 1 && contains(output.topics["${svc}.events"].publishers, svc)])
    error_message = "identity.events, vault.events and risk.events must be published by identity, vault and risk only."
  }

  # The streams audit subscribes to in its code (services/audit/src/lib.rs, TOPICS), one
  # subscription each: audit.<stream>.
  assert {
    condition     = alltrue([for stream in ["identity.events", "accounts.events", "ledger.events", "payments.events", "vault.events", "risk.events", "contact-us.events"] : contains(output.topics[stream].subscribers, "audit")])
    error_message = "audit must consume every stream its code subscribes to."
  }

  assert {
    condition     = !contains(keys(output.topics), "audit.events") && length([for name, t in output.topics : name if contains(t.publishers, "audit")]) == 0
    error_message = "audit publishes nothing."
  }

  assert {
    condition     = length([for name, t in output.topics : name if contains(t.subscribers, "risk")]) == 0
    error_message = "risk consumes no stream: payments asks it over HTTP."
  }

  assert {
    condition     = alltrue([for secret, readers in output.third_party_secrets : !contains(readers, "risk") && !contains(readers, "audit")])
    error_message = "risk and audit call no service and no third party: they read no operator secret (payments calls risk with its own service secret)."
  }

  assert {
    condition     = !contains(keys(output.third_party_secrets), "risk-service-secret") && !contains(keys(output.third_party_secrets), "audit-service-secret")
    error_message = "risk and audit have no secret at identity."
  }

  assert {
    condition     = contains(output.redis_users, "risk") && !contains(output.redis_users, "audit")
    error_message = "risk shares its rules in force through Redis; audit keeps its state in its database: it reads no Redis AUTH string."
  }
}

run "gives_notifications_its_streams_and_secrets" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["notifications"] == "notifications" && contains(output.workload_identities["notifications"].project_roles, "roles/cloudsql.client")
    error_message = "notifications must own the notifications database (its configuration key), with the Cloud SQL client role."
  }

  # The streams its code subscribes to (services/notifications/src/lib.rs, TOPICS), one
  # subscription each: notifications.<stream>.
  assert {
    condition     = sort([for name, t in output.topics : name if contains(t.subscribers, "notifications")]) == tolist(["accounts.events", "contact-us.events", "identity.events", "payments.events"])
    error_message = "notifications must consume exactly accounts, payments, contact-us and identity events."
  }

  assert {
    condition     = !contains(keys(output.topics), "notifications.events")
    error_message = "notifications publishes nothing yet: no stream of its own."
  }

  assert {
    condition     = alltrue([for secret in ["notifications-smtp-url", "notifications-twilio-auth-token", "notifications-vonage-api-secret", "notifications-vonage-signature-secret"] : output.third_party_secrets[secret] == tolist(["notifications"])])
    error_message = "The SMTP URL and notifications' SMS credentials (and the Vonage signature secret it verifies delivery receipts with) must be readable by notifications only."
  }

  assert {
    condition     = length([for secret, readers in output.third_party_secrets : secret if contains(readers, "notifications")]) == 4
    error_message = "notifications reads no other operator secret: it calls no service, so it has no secret at identity."
  }

  assert {
    condition     = contains(output.redis_users, "notifications")
    error_message = "notifications keeps its per-recipient limit in Redis."
  }
}

run "gives_webhooks_its_streams_and_no_secret" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["webhooks"] == "webhooks" && contains(output.workload_identities["webhooks"].project_roles, "roles/cloudsql.client")
    error_message = "webhooks must own the webhooks database (its configuration key), with the Cloud SQL client role."
  }

  # The streams its code subscribes to (services/webhooks/src/lib.rs, TOPICS), one
  # subscription each: webhooks.<stream>.
  assert {
    condition     = sort([for name, t in output.topics : name if contains(t.subscribers, "webhooks")]) == tolist(["accounts.events", "payments.events"])
    error_message = "webhooks must consume exactly payments and accounts events."
  }

  assert {
    condition     = !contains(keys(output.topics), "webhooks.events")
    error_message = "webhooks publishes nothing: no stream of its own."
  }

  assert {
    condition     = length([for secret, readers in output.third_party_secrets : secret if contains(readers, "webhooks")]) == 0 && !contains(keys(output.third_party_secrets), "webhooks-service-secret")
    error_message = "webhooks reads no operator secret: it calls no service, so it has no secret at identity."
  }

  assert {
    condition     = !contains(output.redis_users, "webhooks") && length([for b, users in output.buckets : b if contains(users, "webhooks")]) == 0 && !output.workload_identities["webhooks"].sign_blob
    error_message = "webhooks keeps its deliveries in its database: no Redis, no bucket, no signing."
  }
}

run "gives_statements_its_stream_bucket_and_service_secret" {
  command = plan

  variables {
    catalog_file = "../../services.yaml"
  }

  assert {
    condition     = output.databases["statements"] == "statements" && contains(output.workload_identities["statements"].project_roles, "roles/cloudsql.client")
    error_message = "statements must own the statements database (its configuration key), with the Cloud SQL client role."
  }

  # The stream its code subscribes to (services/statements/src/lib.rs, TOPICS):
  # statements.accounts.events.
  assert {
    condition     = sort([for name, t in output.topics : name if contains(t.subscribers, "statements")]) == tolist(["accounts.events"])
    error_message = "statements must consume accounts.events only."
  }

  assert {
    condition     = !contains(keys(output.topics), "statements.events")
    error_message = "statements publishes nothing: no stream of its own."
  }

  assert {
    condition     = output.buckets["statements"] == tolist(["statements"]) && output.workload_identities["statements"].sign_blob
    error_message = "statements alone uses the statements bucket, and signs its download links as itself."
  }

  # It reads the ledger with service tokens: its secret, checked by identity.
  assert {
    condition     = output.third_party_secrets["statements-service-secret"] == tolist(["identity", "statements"])
    error_message = "statements-service-secret must be readable by statements and identity (which checks it) only."
  }

  assert {
    condition     = sort([for secret, readers in output.third_party_secrets : secret if contains(readers, "statements")]) == tolist(["statements-service-secret"])
    error_message = "statements reads no other operator secret."
  }

  assert {
    condition     = !contains(output.redis_users, "statements")
    error_message = "statements uses no Redis."
  }
}

run "rejects_a_stream_nobody_publishes" {
  command = plan

  variables {
    catalog_file = "tests/orphan-stream.yaml"
  }

  expect_failures = [output.topics]
}
