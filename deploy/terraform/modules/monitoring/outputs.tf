output "notification_channel_id" {
  description = "Id of the e-mail notification channel."
  value       = google_monitoring_notification_channel.email.id
}

output "log_metric_5xx" {
  description = "Metric type of the 5xx log-based metric."
  value       = "logging.googleapis.com/user/${google_logging_metric.http_5xx.name}"
}

output "alert_policy_ids" {
  description = "Ids of the alert policies."
  value = concat(
    [
      google_monitoring_alert_policy.http_5xx.id,
      google_monitoring_alert_policy.error_rate.id,
      google_monitoring_alert_policy.latency.id,
      google_monitoring_alert_policy.dead_letters.id,
      google_monitoring_alert_policy.oldest_unacked.id,
    ],
    google_monitoring_alert_policy.sql_cpu[*].id,
    google_monitoring_alert_policy.sql_disk[*].id,
    [for p in google_monitoring_alert_policy.uptime : p.id],
  )
}

output "uptime_check_ids" {
  description = "Uptime check id per path."
  value       = { for k, c in google_monitoring_uptime_check_config.https : k => c.uptime_check_id }
}
