//! Security records: sign-ins and their failures, role and key changes, every use of a card
//! number. Each is logged in the `security` target and staged in the service's outbox as a
//! `security.<event>` event, which the audit service chains into its tamper-evident log.
//!
//! A record never holds a password, a token, a key or a card number: callers pass ids, kinds
//! and addresses only.

use std::sync::Arc;

use fintech_db::Db;
use fintech_events::EventEnvelope;
use tokio::sync::Notify;

use crate::ServiceContext;

/// Longest text of an attacker-chosen field (an e-mail address) in a security record.
const MAX_FIELD_CHARS: usize = 254;

/// Where a service writes its security records.
#[derive(Debug, Clone)]
pub struct SecurityLog {
    db: Db,
    source: &'static str,
    topic: &'static str,
    waker: Arc<Notify>,
}

fn bounded(s: &str) -> String {
    s.chars().take(MAX_FIELD_CHARS).collect()
}

impl SecurityLog {
    /// The security log of the service `source`, whose events go to `topic`.
    pub fn new(ctx: &ServiceContext, source: &'static str, topic: &'static str) -> SecurityLog {
        SecurityLog { db: ctx.db.clone(), source, topic, waker: Arc::clone(&ctx.outbox_waker) }
    }

    /// Logs and durably stages the record `event` about `subject` (a user id, an e-mail
    /// address, a card token). Returns once it is committed: a caller that must not act
    /// unrecorded (vault before decrypting a card number) stops on an error.
    pub async fn record(&self, event: &str, subject: &str, fields: &[(&str, &str)]) -> Result<(), sqlx::Error> {
        let subject = bounded(subject);
        let details: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(bounded(v)))).collect();
        let details = serde_json::Value::Object(details);
        tracing::info!(target: "security", event, subject = %subject, details = %details, "security event");
        let data = serde_json::json!({ "event": event, "subject": subject, "details": details });
        let envelope = EventEnvelope::new(format!("security.{event}"), self.source, subject, data);
        let topic = self.topic;
        self.db
            .write(move |conn| Box::pin(async move { fintech_events::outbox::stage(conn, topic, &envelope).await }))
            .await?;
        self.waker.notify_one();
        Ok(())
    }

    /// [`record`](Self::record) for records that must not fail the request (a failed sign-in is
    /// answered whatever happens): a record that cannot be stored is logged as an error.
    pub async fn note(&self, event: &str, subject: &str, fields: &[(&str, &str)]) {
        if let Err(e) = self.record(event, subject, fields).await {
            tracing::error!(target: "security", event, error = &e as &dyn std::error::Error,
                "a security record could not be stored for the audit log");
        }
    }
}
