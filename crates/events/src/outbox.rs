//! The transactional outbox and its relay.
//!
//! A service stages its events with [`stage`] inside the transaction that makes the business
//! change, as the transaction's last write; the event is published if and only if the change
//! commits. The [`OutboxRelay`] then publishes unpublished rows in commit (`seq`) order and marks
//! them published. If it dies between publishing and marking, the rows are published again
//! after restart: delivery is at least once, and consumers dedupe by event id ([`crate::inbox`]).
//!
//! A transaction that already writes rows its events can be built from (the ledger's
//! append-only journal) stages a reference instead, with [`stage_derived`]: one row naming the
//! event source and the keys of those rows; the relay builds the events from them when it
//! publishes ([`EventSource`]).
//!
//! One relay per database runs at a time: it holds a lease row (`outbox_lease`) that it renews
//! on every pass, so replicas of a service do not publish the same rows concurrently and the
//! per-key order holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

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

/// Events a service builds, when they are published, from rows it committed together with the
/// outbox row that names them, instead of writing a second copy of those rows into the outbox.
///
/// The rows must never change once committed (an append-only journal), so every read builds the
/// same events, with the same ids: a relay that publishes a row again after a crash sends exactly
/// what it sent before, and consumers dedupe by event id as usual.
#[async_trait]
pub trait EventSource: Send + Sync + std::fmt::Debug {
    /// The name stored in the outbox rows that reference this source.
    fn name(&self) -> &'static str;
    /// The events of `keys`, one per key, in the order of `keys`. A key without its row is an
    /// error: the row was committed with the reference, so it cannot be missing.
    async fn events(&self, conn: &mut AnyConnection, keys: &[String]) -> Result<Vec<EventEnvelope>, sqlx::Error>;
}

/// Stages the events that `source` will build from the rows `keys` (committed in this same
/// transaction), in order, as one outbox row per [`MAX_EVENTS_PER_ROW`]. `first` gives the row's
/// ordering key and event type (the first event's), for operators reading the table.
pub async fn stage_derived(
    conn: &mut AnyConnection,
    topic: &str,
    source: &'static str,
    first: (&str, &str),
    keys: &[String],
) -> Result<(), sqlx::Error> {
    for chunk in keys.chunks(MAX_EVENTS_PER_ROW) {
        if chunk.is_empty() {
            continue;
        }
        let payload = serde_json::to_string(chunk).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO outbox (event_id, topic, ordering_key, event_type, source, occurred_at, payload, event_count, \
             derived_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(topic)
        .bind(first.0)
        .bind(first.1)
        .bind(source)
        .bind(fintech_telemetry::now_rfc3339())
        .bind(payload)
        .bind(i64::try_from(chunk.len()).unwrap_or(i64::MAX))
        .bind(source)
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
    #[error("outbox row {seq} names the event source {name:?}, which this relay does not have")]
    UnknownSource { seq: i64, name: String },
    #[error("outbox row {seq}: the event source {name:?} built {built} events for {keys} keys")]
    IncompleteSource { seq: i64, name: String, keys: usize, built: usize },
}

/// Publishes a database's outbox to the bus.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    db: Db,
    bus: Arc<dyn EventBus>,
    config: RelayConfig,
    lease: crate::lease::Lease,
    wake: Arc<Notify>,
    sources: HashMap<&'static str, Arc<dyn EventSource>>,
}

impl OutboxRelay {
    pub fn new(db: Db, bus: Arc<dyn EventBus>, config: RelayConfig) -> Self {
        let lease = crate::lease::Lease::new(db.clone(), "relay", config.lease);
        OutboxRelay { db, bus, config, lease, wake: Arc::new(Notify::new()), sources: HashMap::new() }
    }

    /// The event sources that rows staged with [`stage_derived`] name.
    #[must_use]
    pub fn with_sources(mut self, sources: impl IntoIterator<Item = Arc<dyn EventSource>>) -> Self {
        self.sources.extend(sources.into_iter().map(|s| (s.name(), s)));
        self
    }

    /// A handle that wakes the relay right away (call after committing staged events).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Takes or renews the lease. False when another live relay holds it.
    pub async fn acquire_lease(&self) -> Result<bool, sqlx::Error> {
        self.lease.acquire().await
    }

    /// One pass: publishes up to a batch of rows in `seq` order and marks them. Returns how many
    /// were published. The caller must hold the lease.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let rows = sqlx::query(
            "SELECT seq, event_id, topic, ordering_key, event_type, source, occurred_at, payload, event_count, \
             derived_from FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?",
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
            if let Some(name) = row.try_get::<Option<String>, _>("derived_from")? {
                let keys: Vec<String> = serde_json::from_str(&payload).map_err(|_| RelayError::CorruptPayload(seq))?;
                let Some(builder) = self.sources.get(name.as_str()) else {
                    return Err(RelayError::UnknownSource { seq, name });
                };
                let mut conn = self.db.pool().acquire().await?;
                let events = builder.events(&mut conn, &keys).await?;
                if events.len() != keys.len() {
                    let built = events.len();
                    return Err(RelayError::IncompleteSource { seq, name, keys: keys.len(), built });
                }
                batch.extend(events.into_iter().map(|e| (seq, topic.clone(), e)));
                continue;
            }
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
            self.db
                .write(move |conn| {
                    Box::pin(async move {
                        let placeholders = vec!["?"; seqs.len()].join(", ");
                        let sql = format!("UPDATE outbox SET published_at = ? WHERE seq IN ({placeholders})");
                        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(fintech_telemetry::now_rfc3339());
                        for seq in seqs {
                            update = update.bind(seq);
                        }
                        update.execute(&mut *conn).await?;
                        Ok(())
                    })
                })
                .await?;
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
        self.db
            .write(move |conn| {
                Box::pin(async move { Ok(sqlx::query(sql).bind(cutoff).execute(&mut *conn).await?.rows_affected()) })
            })
            .await
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
