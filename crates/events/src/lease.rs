//! Leases: at most one live holder of a named job among a service's replicas, in the service's
//! own database (the platform's `outbox_lease` table, one row per name). The outbox relay holds
//! `relay`; a service's periodic job may hold one of its own (statements' monthly pass).
//!
//! [`Lease::acquire`] takes the lease when it is free or expired, renews it when this holder has
//! it, and answers false when another holder's lease is still live. A holder that dies loses it
//! after the lease's length; a holder that runs longer must renew (acquire again) before then.

use std::time::Duration;

use fintech_db::Db;

/// One holder's claim on the lease `name`.
#[derive(Debug, Clone)]
pub struct Lease {
    db: Db,
    name: String,
    owner: String,
    length: Duration,
}

impl Lease {
    /// A holder (a random owner id) of the lease `name` (at most 64 characters), for `length`
    /// after each acquisition.
    pub fn new(db: Db, name: &str, length: Duration) -> Lease {
        Lease { db, name: name.to_owned(), owner: uuid::Uuid::new_v4().to_string(), length }
    }

    /// This holder's owner id, as stored.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes or renews the lease. False when another live holder has it.
    pub async fn acquire(&self) -> Result<bool, sqlx::Error> {
        let now = fintech_telemetry::now_unix_ms();
        let expires = now.saturating_add(fintech_telemetry::duration_ms(self.length));
        let (name, owner) = (self.name.clone(), self.owner.clone());
        // Through the database's writer (on SQLite: in turn with the service's own writes).
        let taken = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    if take(&mut *conn, &name, &owner, expires, now).await? {
                        return Ok(true);
                    }
                    // Held by another, or the first use of the name: then its row, free, and the
                    // same update (a row made meanwhile by another holder: that one goes first).
                    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_lease WHERE name = ?")
                        .bind(name.clone())
                        .fetch_one(&mut *conn)
                        .await?;
                    if exists > 0 {
                        return Ok(false);
                    }
                    let made = sqlx::query("INSERT INTO outbox_lease (name, owner, expires_at_ms) VALUES (?, '', 0)")
                        .bind(name.clone())
                        .execute(&mut *conn)
                        .await;
                    match made {
                        Ok(_) => {}
                        Err(e) if fintech_db::is_unique_violation(&e) => return Ok(false),
                        Err(e) => return Err(e),
                    }
                    take(&mut *conn, &name, &owner, expires, now).await
                })
            })
            .await?;
        Ok(taken)
    }
}

/// The lease `name` for `owner` until `expires` (ms) if free, expired (before `now`) or `owner`'s.
async fn take(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    owner: &str,
    expires: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outbox_lease SET owner = ?, expires_at_ms = ? WHERE name = ? AND (owner = ? OR expires_at_ms < ?)",
    )
    .bind(owner)
    .bind(expires)
    .bind(name)
    .bind(owner)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
