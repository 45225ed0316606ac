//! The service's own tables, `audit_records` and `audit_head`. SQL here is portable between
//! SQLite and MySQL except where [`Engine`] says otherwise. Nothing here updates or deletes a
//! record: the log is append-only.

use fintech_db::Engine;
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};

use crate::chain::HashInput;

/// A record as stored, every field as read (a tampered row is read as it is, not refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: i64,
    pub event_id: String,
    pub topic: String,
    pub event_type: String,
    pub source: String,
    pub subject: String,
    pub occurred_at: String,
    pub recorded_at: String,
    /// The event's data, JSON text exactly as hashed.
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredRecord {
    /// The fields its hash covers, with `seq` as the chain numbers it (from 1).
    pub fn hash_input(&self, seq: u64) -> HashInput<'_> {
        HashInput {
            prev_hash: &self.prev_hash,
            seq,
            event_id: &self.event_id,
            topic: &self.topic,
            event_type: &self.event_type,
            source: &self.source,
            subject: &self.subject,
            occurred_at: &self.occurred_at,
            recorded_at: &self.recorded_at,
            data: &self.data,
        }
    }
}

fn from_row(row: &AnyRow) -> Result<StoredRecord, sqlx::Error> {
    Ok(StoredRecord {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        topic: row.try_get("topic")?,
        event_type: row.try_get("event_type")?,
        source: row.try_get("source")?,
        subject: row.try_get("subject")?,
        occurred_at: row.try_get("occurred_at")?,
        recorded_at: row.try_get("recorded_at")?,
        data: row.try_get("data")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Whether both audit tables exist (a database that was never migrated for audit has neither).
pub async fn tables_present(conn: &mut AnyConnection, engine: Engine) -> Result<bool, sqlx::Error> {
    let sql = match engine {
        Engine::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('audit_records', 'audit_head')"
        }
        Engine::MySql => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name IN ('audit_records', 'audit_head')"
        }
    };
    let found: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
    Ok(found == 2)
}

fn head_from(row: Option<AnyRow>) -> Result<Option<(i64, String)>, sqlx::Error> {
    match row {
        Some(row) => Ok(Some((row.try_get("seq")?, row.try_get("hash")?))),
        None => Ok(None),
    }
}

/// The chain's head (`seq`, `hash`), as a plain read. `None` when the row is gone.
pub async fn head(conn: &mut AnyConnection) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_optional(&mut *conn).await?;
    head_from(row)
}

/// The head, locked for the rest of the caller's write transaction: `FOR UPDATE` on MySQL; on
/// SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the database's write lock.
pub async fn lock_head(conn: &mut AnyConnection, engine: Engine) -> Result<Option<(i64, String)>, sqlx::Error> {
    let sql = match engine {
        Engine::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
        Engine::MySql => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    };
    let row = sqlx::query(sql).fetch_optional(&mut *conn).await?;
    head_from(row)
}

/// Inserts record `seq` (the same number as `input.seq`, as stored).
pub async fn insert_record(
    conn: &mut AnyConnection,
    seq: i64,
    input: &HashInput<'_>,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_records (seq, event_id, topic, event_type, source, subject, occurred_at, recorded_at, \
         data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(input.event_id)
    .bind(input.topic)
    .bind(input.event_type)
    .bind(input.source)
    .bind(input.subject)
    .bind(input.occurred_at)
    .bind(input.recorded_at)
    .bind(input.data)
    .bind(input.prev_hash)
    .bind(hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the head from `from_seq` to (`seq`, `hash`). False when the head was not at
/// `from_seq`: a guard that holds by construction under the lock.
pub async fn advance_head(
    conn: &mut AnyConnection,
    from_seq: i64,
    seq: i64,
    hash: &str,
    updated_at: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE audit_head SET seq = ?, hash = ?, updated_at = ? WHERE id = 1 AND seq = ?")
        .bind(seq)
        .bind(hash)
        .bind(updated_at)
        .bind(from_seq)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// At most `limit` records with a seq above `after`, in seq order.
pub async fn records_after(conn: &mut AnyConnection, after: i64, limit: u32) -> Result<Vec<StoredRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, event_id, topic, event_type, source, subject, occurred_at, recorded_at, data, prev_hash, hash \
         FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// How many records the log holds.
pub async fn count_records(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_records").fetch_one(&mut *conn).await
}
