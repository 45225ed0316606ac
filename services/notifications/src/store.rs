//! notifications' tables: recipients and deliveries. SQL here is portable between SQLite and MySQL.

use fintech_db::Db;
use fintech_db::sqlx::{self, Row, any::AnyRow};
use serde::Serialize;

/// A customer's name and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub customer_id: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
}

/// Records (or replaces) a customer's addresses.
pub async fn upsert_recipient(conn: &mut sqlx::AnyConnection, r: &Recipient) -> Result<(), sqlx::Error> {
    let now = fintech_telemetry::now_rfc3339();
    let done = sqlx::query(
        "UPDATE notification_recipients SET name = ?, email = ?, phone = ?, updated_at = ? WHERE customer_id = ?",
    )
    .bind(&r.name)
    .bind(&r.email)
    .bind(&r.phone)
    .bind(&now)
    .bind(&r.customer_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO notification_recipients (customer_id, name, email, phone, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&r.customer_id)
        .bind(&r.name)
        .bind(&r.email)
        .bind(&r.phone)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn recipient(db: &Db, customer_id: &str) -> Result<Option<Recipient>, sqlx::Error> {
    let row = sqlx::query("SELECT customer_id, name, email, phone FROM notification_recipients WHERE customer_id = ?")
        .bind(customer_id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| {
        Ok(Recipient {
            customer_id: row.try_get("customer_id")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
        })
    })
    .transpose()
}

/// Where a message stands.
pub mod status {
    /// Written before the message leaves; found again on a redelivery, it means the outcome is
    /// unknown (the process stopped while sending), and it becomes `ambiguous`.
    pub const SENDING: &str = "sending";
    /// Handed to the gateway or SMTP server.
    pub const SENT: &str = "sent";
    /// The provider reported it delivered to the handset (SMS status callbacks).
    pub const DELIVERED: &str = "delivered";
    /// The provider reported it could not be delivered.
    pub const FAILED: &str = "failed";
    /// It may or may not have left; never sent again.
    pub const AMBIGUOUS: &str = "ambiguous";
    /// Refused for good (an invalid number, a refused mailbox), or no gateway took it.
    pub const UNDELIVERABLE: &str = "undeliverable";
    /// Not sent: the recipient got too many messages lately.
    pub const LIMITED: &str = "limited";
    /// Not sent: no address, or the text failed the card-number check.
    pub const SKIPPED: &str = "skipped";
    /// Not sent yet for a reason that may pass (server unreachable): tried again with the event.
    pub const RETRYING: &str = "retrying";
}

/// One message, as operators and its recipient see it (the address masked).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    /// `payment_receipt`, `refund_notice`, `transfer_sent`, `transfer_received`,
    /// `contact_confirmation`, `security_alert`.
    pub kind: String,
    /// `email` or `sms`.
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// `a•••@example.com`, `•••••••4567`.
    pub address_hint: String,
    /// `sending`, `sent`, `delivered`, `failed`, `ambiguous`, `undeliverable`, `limited`,
    /// `skipped`, `retrying`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn delivery(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        kind: row.try_get("kind")?,
        channel: row.try_get("channel")?,
        customer_id: row.try_get("customer_id")?,
        address_hint: row.try_get("address_hint")?,
        status: row.try_get("status")?,
        message_id: row.try_get("message_id")?,
        detail: row.try_get("detail")?,
        attempts: fintech_db::get_i64(row, "attempts")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "id, event_id, kind, channel, customer_id, address_hint, status, message_id, detail, attempts, created_at, updated_at";

pub async fn find(db: &Db, event_id: &str, kind: &str, channel: &str) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notification_deliveries WHERE event_id = ? AND kind = ? AND channel = ?");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(event_id).bind(kind).bind(channel).fetch_optional(db.pool()).await?;
    row.as_ref().map(delivery).transpose()
}

/// Records a new delivery; false if the same (event, kind, channel) was recorded meanwhile.
pub async fn insert(db: &Db, d: &Delivery) -> Result<bool, sqlx::Error> {
    let d = d.clone();
    let result = db
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO notification_deliveries (id, event_id, kind, channel, customer_id, address_hint, status, \
                     message_id, detail, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&d.id)
                .bind(&d.event_id)
                .bind(&d.kind)
                .bind(&d.channel)
                .bind(&d.customer_id)
                .bind(&d.address_hint)
                .bind(&d.status)
                .bind(&d.message_id)
                .bind(&d.detail)
                .bind(d.attempts)
                .bind(&d.created_at)
                .bind(&d.updated_at)
                .execute(&mut *conn)
                .await
            })
        })
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if fintech_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves a delivery from `from` to `to`; false if it was no longer in `from`.
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[&str],
    to: &str,
    message_id: Option<&str>,
    detail: Option<&str>,
    count_attempt: bool,
) -> Result<bool, sqlx::Error> {
    let placeholders = vec!["?"; from.len()].join(", ");
    let sql = format!(
        "UPDATE notification_deliveries SET status = ?, message_id = COALESCE(?, message_id), detail = ?, \
         attempts = attempts + ?, updated_at = ? WHERE id = ? AND status IN ({placeholders})"
    );
    let (id, to) = (id.to_owned(), to.to_owned());
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let (message_id, detail) = (message_id.map(str::to_owned), detail.map(|d| d.chars().take(300).collect::<String>()));
    let done = db
        .write(move |conn| {
            Box::pin(async move {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(to)
                    .bind(message_id)
                    .bind(detail)
                    .bind(i64::from(count_attempt))
                    .bind(fintech_telemetry::now_rfc3339())
                    .bind(id);
                for f in from {
                    q = q.bind(f);
                }
                q.execute(&mut *conn).await
            })
        })
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The delivery of a message id (an SMS status callback names it).
pub async fn by_message_id(db: &Db, message_id: &str) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notification_deliveries WHERE message_id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(message_id).fetch_optional(db.pool()).await?;
    row.as_ref().map(delivery).transpose()
}

/// The newest deliveries, of one customer or of all, newest first.
pub async fn recent(db: &Db, customer_id: Option<&str>, limit: u32) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = match customer_id {
        Some(c) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM notification_deliveries WHERE customer_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(c).bind(i64::from(limit)).fetch_all(db.pool()).await?
        }
        None => {
            let sql =
                format!("SELECT {COLUMNS} FROM notification_deliveries ORDER BY created_at DESC, id DESC LIMIT ?");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit)).fetch_all(db.pool()).await?
        }
    };
    rows.iter().map(delivery).collect()
}
