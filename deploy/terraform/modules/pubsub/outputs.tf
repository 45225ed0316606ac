output "topics" {
  description = "Topic id per event stream."
  value       = { for k, t in google_pubsub_topic.stream : k => t.id }
}

output "subscriptions" {
  description = "Subscription id per \"<consumer>.<stream>\" (its name after the prefix, e.g. \"audit.payments.events\")."
  value       = { for k, s in google_pubsub_subscription.consumer : k => s.id }
}

output "dead_letter_topics" {
  description = "Dead-letter topic id per consuming service."
  value       = { for k, t in google_pubsub_topic.dead_letter : k => t.id }
}

output "dead_letter_subscriptions" {
  description = "Subscription holding each consumer's dead letters (watch its backlog)."
  value       = { for k, s in google_pubsub_subscription.dead_letter_hold : k => s.name }
}

output "subscription_names" {
  description = "Names of the consumer subscriptions (for monitoring filters)."
  value       = [for s in google_pubsub_subscription.consumer : s.name]
}
