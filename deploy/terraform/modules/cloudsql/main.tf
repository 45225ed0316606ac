# Cloud SQL for MySQL, reachable by private IP only and only through the Cloud SQL Auth Proxy,
# with TLS required, regional high availability, daily backups plus binary logs for
# point-in-time recovery, and one database and user per service. User passwords are generated
# here and written to the users and to Secret Manager through write-only arguments, so they
# never appear in code, plans or state. The provider deletes MySQL's default root@% user after
# creation; no root password is ever set.

locals {
  security_flags = {
    local_infile       = "off" # no LOAD DATA LOCAL: a compromised client cannot read server-side files
    skip_show_database = "on"  # users only see the databases they have privileges on
    slow_query_log     = "on"
    long_query_time    = "1"
    log_output         = "FILE" # slow query log goes to Cloud Logging
  }
  database_flags = merge(local.security_flags, var.database_flags)
  databases      = toset(var.databases)
}

resource "google_sql_database_instance" "this" {
  project             = var.project_id
  name                = "${var.prefix}-mysql"
  region              = var.region
  database_version    = var.database_version
  encryption_key_name = var.kms_key_name
  deletion_protection = var.deletion_protection

  settings {
    edition                     = var.edition
    tier                        = var.tier
    availability_type           = var.availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_size_gb
    disk_autoresize             = true
    disk_autoresize_limit       = var.disk_autoresize_limit_gb
    deletion_protection_enabled = var.deletion_protection
    retain_backups_on_delete    = var.retain_backups_on_delete
    connector_enforcement       = var.connector_enforcement
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled       = false
      private_network    = var.network_id
      allocated_ip_range = var.allocated_ip_range
      ssl_mode           = var.ssl_mode
    }

    backup_configuration {
      enabled                        = true
      binary_log_enabled             = true
      start_time                     = var.backup_start_time
      location                       = var.backup_location
      transaction_log_retention_days = var.transaction_log_retention_days

      backup_retention_settings {
        retained_backups = var.retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.maintenance_window.day
      hour         = var.maintenance_window.hour
      update_track = var.maintenance_window.update_track
    }

    insights_config {
      query_insights_enabled  = true
      query_string_length     = 1024
      record_application_tags = false
      record_client_address   = false
    }

    password_validation_policy {
      enable_password_policy      = true
      min_length                  = 20
      complexity                  = "COMPLEXITY_DEFAULT"
      disallow_username_substring = true
    }

    dynamic "database_flags" {
      for_each = local.database_flags
      content {
        name  = database_flags.key
        value = database_flags.value
      }
    }
  }
}

resource "google_sql_database" "service" {
  for_each = local.databases

  project   = var.project_id
  instance  = google_sql_database_instance.this.name
  name      = each.key
  charset   = "utf8mb4"
  collation = "utf8mb4_bin"
}

# Ephemeral: generated during plan/apply, never stored. The unreserved URL characters keep the
# password usable inside a connection URL without escaping; 40 characters from 66 symbols is
# over 240 bits.
ephemeral "random_password" "service" {
  for_each = local.databases

  length           = 40
  special          = true
  override_special = "-_.~"
  min_lower        = 4
  min_upper        = 4
  min_numeric      = 4
  min_special      = 2
}

resource "google_sql_user" "service" {
  for_each = local.databases

  project             = var.project_id
  instance            = google_sql_database_instance.this.name
  name                = each.key
  host                = "%"
  password_wo         = ephemeral.random_password.service[each.key].result
  password_wo_version = var.password_version
}

# Written in the same apply as the user, from the same ephemeral value: the secret and the user
# change together whenever password_version changes.
resource "google_secret_manager_secret_version" "database_url" {
  for_each = local.databases

  secret                 = var.database_url_secret_ids[each.key]
  secret_data_wo         = "mysql://${each.key}:${ephemeral.random_password.service[each.key].result}@${var.proxy_address}/${each.key}"
  secret_data_wo_version = tostring(var.password_version)

  depends_on = [google_sql_user.service, google_sql_database.service]
}
