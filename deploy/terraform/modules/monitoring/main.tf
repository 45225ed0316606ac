# What the on-call engineer is paged for: 5xx responses (log-based, from the services' JSON
# access logs), error rate and p99 latency (Managed Prometheus metrics the services export),
# Cloud SQL CPU and disk, Pub/Sub dead letters and consumer lag, and HTTPS uptime of the
# public entry point. Every policy notifies one e-mail channel.

locals {
  channels = [google_monitoring_notification_channel.email.id]

  # Consumer subscriptions of this environment (not the dead-letter hold subscriptions).
  consumer_subscriptions = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id = starts_with(\"${var.prefix}-\") AND NOT resource.labels.subscription_id = ends_with(\".dead-letter.hold\")"
  # The subscriptions that keep each consumer's dead letters.
  dead_letter_holds = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id = starts_with(\"${var.prefix}-\") AND resource.labels.subscription_id = ends_with(\".dead-letter.hold\")"

  prometheus_selector = "cluster=\"${var.cluster_name}\", namespace=\"${var.namespace}\""

  uptime_checks = var.public_host == null ? toset([]) : toset(var.uptime_paths)
}

resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "${var.prefix} on-call e-mail"
  type         = "email"
  labels = {
    email_address = var.notification_email
  }
  user_labels = var.labels
}

# --- HTTP errors and latency -------------------------------------------------------------------

# The services log one JSON line per request; Cloud Logging lifts its httpRequest object into
# the entry's httpRequest field, so the status is matched there.
resource "google_logging_metric" "http_5xx" {
  project     = var.project_id
  name        = "${var.prefix}-http-5xx"
  description = "5xx responses logged by the FINTECH services in ${var.prefix}."
  filter      = <<-EOT
    resource.type="k8s_container"
    resource.labels.cluster_name="${var.cluster_name}"
    resource.labels.namespace_name="${var.namespace}"
    httpRequest.status>=500
  EOT

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "Service that answered."
    }
  }

  label_extractors = {
    service = "EXTRACT(jsonPayload.service)"
  }
}

resource "google_monitoring_alert_policy" "http_5xx" {
  project               = var.project_id
  display_name          = "${var.prefix}: 5xx responses"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "More than ${var.http_5xx_threshold} 5xx responses in 5 minutes for a service"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.http_5xx.name}\" AND resource.type=\"k8s_container\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.http_5xx_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A service answers with server errors. Find the request ids in its error log lines (severity=ERROR) and the cause chain logged with them."
  }
}

resource "google_monitoring_alert_policy" "error_rate" {
  project               = var.project_id
  display_name          = "${var.prefix}: error rate"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "5xx share above ${var.error_rate_threshold * 100} % for 5 minutes"
    condition_prometheus_query_language {
      query               = <<-EOT
        sum by (job) (rate(fintech_http_requests_total{${local.prometheus_selector}, status=~"5.."}[5m]))
          / sum by (job) (rate(fintech_http_requests_total{${local.prometheus_selector}}[5m]))
          > ${var.error_rate_threshold}
      EOT
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.error_rate_threshold * 100} % of a service's requests fail. Check recent rollouts (helm history) and the service's error logs; roll back if a release caused it."
  }
}

resource "google_monitoring_alert_policy" "latency" {
  project               = var.project_id
  display_name          = "${var.prefix}: p99 latency"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "p99 latency above ${var.latency_p99_seconds} s for 10 minutes"
    condition_prometheus_query_language {
      query               = <<-EOT
        histogram_quantile(0.99,
          sum by (job, le) (rate(fintech_http_request_duration_seconds_bucket{${local.prometheus_selector}}[5m])))
          > ${var.latency_p99_seconds}
      EOT
      duration            = "600s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A service is slow. Look at its dependencies first: Cloud SQL CPU, connection pool waits, third-party gateway timeouts."
  }
}

# --- Cloud SQL ---------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "sql_cpu" {
  count = var.sql_instance_name == null ? 0 : 1

  project               = var.project_id
  display_name          = "${var.prefix}: Cloud SQL CPU"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "CPU above ${var.sql_cpu_threshold * 100} % for 10 minutes"
    condition_threshold {
      filter          = "metric.type=\"cloudsql.googleapis.com/database/cpu/utilization\" AND resource.type=\"cloudsql_database\" AND resource.labels.database_id=\"${var.project_id}:${var.sql_instance_name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.sql_cpu_threshold
      duration        = "600s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The database is CPU-bound. Check Query Insights for the top queries; scale the tier if the load is legitimate."
  }
}

resource "google_monitoring_alert_policy" "sql_disk" {
  count = var.sql_instance_name == null ? 0 : 1

  project               = var.project_id
  display_name          = "${var.prefix}: Cloud SQL disk"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "Disk above ${var.sql_disk_threshold * 100} %"
    condition_threshold {
      filter          = "metric.type=\"cloudsql.googleapis.com/database/disk/utilization\" AND resource.type=\"cloudsql_database\" AND resource.labels.database_id=\"${var.project_id}:${var.sql_instance_name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.sql_disk_threshold
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The database disk is filling up and has reached its autoresize limit or grows faster than it resizes. Raise disk_autoresize_limit_gb or find the growing tables."
  }
}

# --- Pub/Sub -----------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${var.prefix}: Pub/Sub dead letters"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "Messages moved to a dead-letter topic"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.consumer_subscriptions}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.subscription_id"]
      }
      trigger {
        count = 1
      }
    }
  }

  # The services dead-letter a message themselves on its last attempt (they publish it to their
  # dead-letter topic and acknowledge it), which dead_letter_message_count does not count: that
  # metric covers only the subscriptions' dead-letter policy, the backstop. Every dead letter,
  # either way, waits in its consumer's hold subscription.
  conditions {
    display_name = "Dead letters waiting in a hold subscription"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dead_letter_holds}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A consumer gave up on events after its maximum delivery attempts. They wait in \"<prefix>-<consumer>.dead-letter.hold\" (attributes dead_letter_subscription, dead_letter_attempts and dead_letter_error when the service dead-lettered them itself); fix the cause, then replay them. The alert stays open while the hold subscription has messages."
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  project               = var.project_id
  display_name          = "${var.prefix}: Pub/Sub consumer lag"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "Oldest unacknowledged message older than ${var.oldest_unacked_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.consumer_subscriptions}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A consumer is falling behind or stuck on an ordering key. Check its pods (restarts, readiness) and its error logs."
  }
}

# --- Uptime of the public entry point ------------------------------------------------------------

resource "google_monitoring_uptime_check_config" "https" {
  for_each = local.uptime_checks

  project      = var.project_id
  display_name = "${var.prefix} https ${each.key}"
  timeout      = "10s"
  period       = "60s"
  checker_type = "STATIC_IP_CHECKERS"
  user_labels  = var.labels

  http_check {
    path           = each.key
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"
    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.public_host
    }
  }
}

resource "google_monitoring_alert_policy" "uptime" {
  for_each = google_monitoring_uptime_check_config.https

  project               = var.project_id
  display_name          = "${var.prefix}: ${var.public_host}${each.key} down"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "Uptime check failing from more than one location"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${each.value.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "60s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The public entry point does not answer over HTTPS. Check the gateway pods, the load balancer and the certificate."
  }
}
