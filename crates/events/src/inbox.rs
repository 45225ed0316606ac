//! The idempotent consumer: an inbox of processed event ids per consumer.
//!
//! ```text
//! let mut tx = db.begin_write().await?;
//! if !inbox::claim(&mut tx, db.engine(), "notifications", &event.id).await? {
//!     return Ok(()); // processed before: no second effect
//! }
//! ... the effect, on &mut *tx ...
//! tx.commit().await?;
//! ```
//! The claim and the effect commit together, so a crash between them leaves neither.

use fintech_db::Engine;
use fintech_db::sqlx::{self, AnyConnection};

/// Records `event_id` as processed by `consumer` inside the caller's transaction. Returns false
/// when it was already processed; the caller must then skip its effect.
pub async fn claim(
    conn: &mut AnyConnection,
    engine: Engine,
    consumer: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let sql = match engine {
        Engine::Sqlite => "INSERT OR IGNORE INTO inbox (consumer, event_id, processed_at) VALUES (?, ?, ?)",
        Engine::MySql => "INSERT IGNORE INTO inbox (consumer, event_id, processed_at) VALUES (?, ?, ?)",
    };
    let done =
        sqlx::query(sql).bind(consumer).bind(event_id).bind(fintech_telemetry::now_rfc3339()).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}
