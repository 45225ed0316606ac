//! The transactional outbox and its relay.
//!
//! A service stages its events with [`stage`] inside the transaction that makes the business
//! change, as the transaction's last write; the event is published if and only if the change
//! commits. The [`OutboxRelay`] then publishes unpublished rows in commit (`seq`) order and marks
//! them published. If it dies between publishing and marking, the rows are published again
//! after restart: delivery is at least once, and consumers dedupe by event id ([`crate::inbox`]).
//!
//! One relay per database runs at a time: it holds a lease row (`outbox_lease`) that it renews
//! on every pass, so replicas of a service do not publish the same rows concurrently and the
//! per-key order holds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fintech_db::sqlx::{self, AnyConnection, Row};
use fintech_db::{Db, Engine};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{EventBus, EventEnvelope};

/// Most events one outbox row carries (a JSON array of about 0.5 KB per event: well under
/// MySQL's 16 MB `MEDIUMTEXT` and default packet size).
pub const MAX_EVENTS_PER_ROW: usize = 4096;

/// Stages `event` for publication on `topic`, inside the caller's transaction.
pub async fn stage(conn: &mut AnyConnection, topic: &str, event: &EventEnvelope) -> Result<(), sqlx::Error> {
    stage_many(conn, topic, std::slice::from_ref(event)).await
}

/// Stages many events, in order, inside the caller's transaction. They are stored as one
/// outbox row (per [`MAX_EVENTS_PER_ROW`]): its payload is the JSON array of the envelopes and
/// the relay publishes them one by one, in order. A single event keeps the one-event row shape.
pub async fn stage_many(conn: &mut AnyConnection, topic: &str, events: &[EventEnvelope]) -> Result<(), sqlx::Error> {
    for chunk in events.chunks(MAX_EVENTS_PER_ROW) {
        let [first, ..] = chunk else { continue };
        let payload = if let [only] = chunk {
            only.data.to_string()
        } else {
            serde_json::to_string(chunk).map_err(|e| sqlx::Error::Encode(Box::new(e)))?
        };
        sqlx::query(
            "INSERT INTO outbox (event_id, topic, ordering_key, event_type, source, occurred_at, payload, event_count) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&first.id)
        .bind(topic)
        .bind(&first.ordering_key)
        .bind(&first.event_type)
        .bind(&first.source)
        .bind(&first.time)
        .bind(payload)
        .bind(i64::try_from(chunk.len()).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Relay settings; every one is bounded.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows read and published per pass.
    pub batch_size: u32,
    /// Sleep between passes when there is nothing to publish (a commit can wake it earlier).
    pub idle_poll: Duration,
    /// How long a lease holds without renewal before another relay may take over.
    pub lease: Duration,
    /// Longest wait after a failed publish (backoff doubles up to this).
    pub max_backoff: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch_size: 256,
            idle_poll: Duration::from_millis(250),
            lease: Duration::from_secs(15),
            max_backoff: Duration::from_secs(10),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database error")]
    Db(#[from] sqlx::Error),
    #[error("publish failed")]
    Bus(#[from] crate::BusError),
    #[error("outbox row {0} has a payload that is not JSON")]
    CorruptPayload(i64),
}

/// Publishes a database's outbox to the bus.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    db: Db,
    bus: Arc<dyn EventBus>,
    config: RelayConfig,
    owner: String,
    wake: Arc<Notify>,
}

impl OutboxRelay {
    pub fn new(db: Db, bus: Arc<dyn EventBus>, config: RelayConfig) -> Self {
        OutboxRelay { db, bus, config, owner: uuid::Uuid::new_v4().to_string(), wake: Arc::new(Notify::new()) }
    }

    /// A handle that wakes the relay right away (call after committing staged events).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Takes or renews the lease. False when another live relay holds it.
    pub async fn acquire_lease(&self) -> Result<bool, sqlx::Error> {
        let now = fintech_telemetry::now_unix_ms();
        let done = sqlx::query(
            "UPDATE outbox_lease SET owner = ?, expires_at_ms = ? \
             WHERE name = 'relay' AND (owner = ? OR expires_at_ms < ?)",
        )
        .bind(&self.owner)
        .bind(now.saturating_add(fintech_telemetry::duration_ms(self.config.lease)))
        .bind(&self.owner)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One pass: publishes up to a batch of rows in `seq` order and marks them. Returns how many
    /// were published. The caller must hold the lease.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let rows = sqlx::query(
            "SELECT seq, event_id, topic, ordering_key, event_type, source, occurred_at, payload, event_count \
             FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?",
        )
        .bind(i64::from(self.config.batch_size))
        .fetch_all(self.db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // (row seq, topic, event): a row carrying many events contributes them all, in order.
        // Rows are taken whole until the pass holds about `batch_size` events.
        let mut batch: Vec<(i64, String, EventEnvelope)> = Vec::with_capacity(rows.len());
        for row in rows {
            if batch.len() >= self.config.batch_size as usize {
                break;
            }
            let seq: i64 = row.try_get("seq")?;
            let topic: String = row.try_get("topic")?;
            let payload: String = row.try_get("payload")?;
            if row.try_get::<i64, _>("event_count")? > 1 {
                let events: Vec<EventEnvelope> =
                    serde_json::from_str(&payload).map_err(|_| RelayError::CorruptPayload(seq))?;
                batch.extend(events.into_iter().map(|e| (seq, topic.clone(), e)));
                continue;
            }
            let data = serde_json::from_str(&payload).map_err(|_| RelayError::CorruptPayload(seq))?;
            batch.push((
                seq,
                topic,
                EventEnvelope {
                    id: row.try_get("event_id")?,
                    event_type: row.try_get("event_type")?,
                    source: row.try_get("source")?,
                    ordering_key: row.try_get("ordering_key")?,
                    time: row.try_get("occurred_at")?,
                    data,
                },
            ));
        }
        // Publish runs of the same topic together, in order; mark each run once it is taken.
        let mut start = 0;
        while start < batch.len() {
            let topic = batch[start].1.clone();
            let end = batch[start..].iter().position(|(_, t, _)| *t != topic).map_or(batch.len(), |p| start + p);
            let events: Vec<EventEnvelope> = batch[start..end].iter().map(|(_, _, e)| e.clone()).collect();
            self.bus.publish(&topic, &events).await?;
            // Mark exactly the rows published: a range could cover a row with a lower seq whose
            // transaction commits later (MySQL allocates AUTO_INCREMENT before commit).
            let mut seqs: Vec<i64> = batch[start..end].iter().map(|(seq, _, _)| *seq).collect();
            seqs.dedup();
            let placeholders = vec!["?"; seqs.len()].join(", ");
            let sql = format!("UPDATE outbox SET published_at = ? WHERE seq IN ({placeholders})");
            let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(fintech_telemetry::now_rfc3339());
            for seq in seqs {
                update = update.bind(seq);
            }
            update.execute(self.db.pool()).await?;
            start = end;
        }
        Ok(batch.len())
    }

    /// Deletes published rows older than the retention.
    pub async fn purge_published(&self) -> Result<u64, sqlx::Error> {
        let cutoff =
            SystemTime::now().checked_sub(self.config.retention).map(fintech_telemetry::rfc3339).unwrap_or_default();
        let sql = match self.db.engine() {
            Engine::Sqlite => "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?",
            Engine::MySql => "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ? LIMIT 10000",
        };
        Ok(sqlx::query(sql).bind(cutoff).execute(self.db.pool()).await?.rows_affected())
    }

    /// Runs until `shutdown` fires. Errors are logged and retried with backoff; they never end
    /// the loop.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut passes: u64 = 0;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let pass = async {
                if !self.acquire_lease().await? {
                    return Ok::<Option<usize>, RelayError>(None);
                }
                passes += 1;
                if passes % 10_000 == 1 {
                    self.purge_published().await?;
                }
                Ok(Some(self.relay_once().await?))
            };
            let wait = match pass.await {
                Ok(Some(n)) if n >= self.config.batch_size as usize => Duration::ZERO,
                Ok(Some(_)) => {
                    backoff = Duration::from_millis(50);
                    self.config.idle_poll
                }
                // Another relay holds the lease: check back well before it would expire.
                Ok(None) => self.config.lease / 3,
                Err(e) => {
                    tracing::warn!(error = &e as &dyn std::error::Error, "outbox relay pass failed; retrying");
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    backoff
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
