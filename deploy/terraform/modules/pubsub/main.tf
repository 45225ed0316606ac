# One topic per event stream and one subscription per consuming service, with per-key ordering
# (the events carry an ordering key), bounded exponential-backoff redelivery and a dead-letter
# topic per consumer. A dead-letter topic has a "hold" subscription, since Pub/Sub drops
# messages published to a topic nobody subscribes to.
#
# A subscription is named "<consumer>.<stream>" (after the prefix), the name the service
# subscribes under in the code (audit subscribes as "audit.identity.events", ...).

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  subscriptions = merge([
    for topic, t in var.topics : {
      for consumer in t.subscribers : "${consumer}.${topic}" => { topic = topic, consumer = consumer }
    }
  ]...)

  consumers = toset(flatten([for t in var.topics : t.subscribers]))

  publishers = merge([
    for topic, t in var.topics : {
      for service in t.publishers : "${topic}.${service}" => { topic = topic, service = service }
    }
  ]...)

  dead_letter_readers = merge([
    for consumer in local.consumers : {
      for member in var.dead_letter_readers : "${consumer} ${member}" => { consumer = consumer, member = member }
    }
  ]...)
}

resource "google_pubsub_topic" "stream" {
  for_each = var.topics

  project                    = var.project_id
  name                       = "${var.prefix}-${each.key}"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.message_retention_duration
  labels                     = var.labels

  dynamic "message_storage_policy" {
    for_each = length(var.allowed_persistence_regions) > 0 ? [1] : []
    content {
      allowed_persistence_regions = var.allowed_persistence_regions
    }
  }
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = local.consumers

  project                    = var.project_id
  name                       = "${var.prefix}-${each.key}.dead-letter"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.message_retention_duration
  labels                     = merge(var.labels, { purpose = "dead-letter" })

  dynamic "message_storage_policy" {
    for_each = length(var.allowed_persistence_regions) > 0 ? [1] : []
    content {
      allowed_persistence_regions = var.allowed_persistence_regions
    }
  }
}

resource "google_pubsub_subscription" "consumer" {
  for_each = local.subscriptions

  project = var.project_id
  name    = "${var.prefix}-${each.key}"
  topic   = google_pubsub_topic.stream[each.value.topic].id
  labels  = merge(var.labels, { consumer = each.value.consumer })

  enable_message_ordering    = true
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = false

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.consumer].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire for inactivity: a consumer that is down for a while must not lose its queue.
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each = local.consumers

  project                    = var.project_id
  name                       = "${var.prefix}-${each.key}.dead-letter.hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  labels                     = merge(var.labels, { consumer = each.key, purpose = "dead-letter" })
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent moves undeliverable messages: it must publish to the dead-letter
# topics and acknowledge on the source subscriptions.
resource "google_pubsub_topic_iam_member" "dead_letter_agent_publisher" {
  for_each = google_pubsub_topic.dead_letter

  project = var.project_id
  topic   = each.value.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_agent_subscriber" {
  for_each = google_pubsub_subscription.consumer

  project      = var.project_id
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Services: publish on their own streams, consume only their own subscriptions.
resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publishers

  project = var.project_id
  topic   = google_pubsub_topic.stream[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = var.service_members[each.value.service]
}

resource "google_pubsub_subscription_iam_member" "subscriber" {
  for_each = local.subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.consumer[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = var.service_members[each.value.consumer]
}

# Each consumer dead-letters a message itself on its last delivery attempt: it publishes the
# message, with the reason, to its own dead-letter topic and then acknowledges it (the
# subscription's dead-letter policy above stays as the backstop). It may publish to that topic only.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.consumers

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = var.service_members[each.key]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_reader" {
  for_each = local.dead_letter_readers

  project      = var.project_id
  subscription = google_pubsub_subscription.dead_letter_hold[each.value.consumer].name
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}
