//! Events between services.
//!
//! - [`EventEnvelope`]: what travels (id, type, source, ordering key, time, data).
//! - [`outbox`]: events are written in the same database transaction as the business change, and
//!   a [`outbox::OutboxRelay`] publishes them afterwards, in commit order, at least once.
//! - [`inbox`]: consumers record each processed event id in the same transaction as their effect,
//!   so a redelivered event has no second effect.
//! - [`EventBus`]: the transport. [`memory::InProcessBus`] serves the embedded mode with Pub/Sub's
//!   semantics (at-least-once, per-ordering-key order, bounded retries, then a dead letter);
//!   [`pubsub::PubSubBus`] is Google Cloud Pub/Sub behind the same trait (the distributed mode).

pub mod inbox;
pub mod lease;
pub mod memory;
pub mod outbox;
pub mod pubsub;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The platform's own tables (outbox, relay lease, inbox), one folder per engine.
pub static SQLITE_MIGRATIONS: fintech_db::sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
pub static MYSQL_MIGRATIONS: fintech_db::sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// One domain event. `ordering_key` is the aggregate's id: events with the same key are
/// delivered in the order they were committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: String,
    pub ordering_key: String,
    pub time: String,
    pub data: serde_json::Value,
}

impl EventEnvelope {
    /// A new event with a fresh time-ordered id and the current time.
    pub fn new(
        event_type: impl Into<String>,
        source: impl Into<String>,
        ordering_key: impl Into<String>,
        data: serde_json::Value,
    ) -> Self {
        EventEnvelope {
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.into(),
            source: source.into(),
            ordering_key: ordering_key.into(),
            time: fintech_telemetry::now_rfc3339(),
            data,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("subscription {0} is full; publish again later")]
    Full(String),
    #[error("subscription {0} already exists")]
    DuplicateSubscription(String),
    #[error("the event bus is shutting down")]
    Closed,
    #[error("event bus transport error: {0}")]
    Transport(String),
}

/// Why a handler did not process an event. Every error is retried until the subscription's
/// attempt limit; after that the event goes to the dead letters.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(e: impl fmt::Display) -> Self {
        HandlerError(e.to_string())
    }
}

/// What a subscription does with each delivered event. Must be idempotent (see [`inbox`]).
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError>;
}

/// Retry policy of a subscription: exponential backoff with full jitter, bounded attempts.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// How long one attempt may run before it counts as failed (Pub/Sub's ack deadline).
    pub attempt_timeout: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Pub/Sub's own dead-letter policy allows 5 to 100 attempts; 5 is its default minimum.
        RetryPolicy {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (attempt counts from 1), with full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = exp.min(self.max_backoff);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::random_range(0..=cap_ms))
    }
}

/// A subscription: one consuming service's view of a topic.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    pub topic: String,
    pub retry: RetryPolicy,
}

/// The transport between services.
#[async_trait]
pub trait EventBus: Send + Sync + fmt::Debug {
    /// Publishes `events` (in order) to `topic`. Returning `Ok` means the bus has taken them:
    /// Pub/Sub has stored them; the in-process bus has delivered them to every subscription
    /// (processed or dead-lettered), because it has nowhere durable to keep them.
    async fn publish(&self, topic: &str, events: &[EventEnvelope]) -> Result<(), BusError>;

    /// Starts delivering `subscription`'s events to `handler`.
    async fn subscribe(&self, subscription: Subscription, handler: Arc<dyn EventHandler>) -> Result<(), BusError>;
}

/// Where events go after their last failed attempt.
#[async_trait]
pub trait DeadLetterSink: Send + Sync + fmt::Debug {
    async fn dead_letter(&self, subscription: &str, event: &EventEnvelope, error: &str);
}
