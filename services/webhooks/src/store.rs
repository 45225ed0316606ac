//! webhooks' tables. SQL here is portable between SQLite and MySQL.

use fintech_db::Db;
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};
use serde::Serialize;

/// A merchant's endpoint, as the merchant sees it (never its secret, shown once at creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Failed attempts in a row, over all its deliveries.
    pub consecutive_failures: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub secret: String,
}

/// One event for one endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending` (waiting for its next attempt), `succeeded` or `failed` (attempts used up).
    pub status: String,
    pub attempts: i64,
    /// When it is tried next (Unix ms), while `pending`.
    pub next_attempt_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub payload: String,
}

fn endpoint(row: &AnyRow) -> Result<Endpoint, sqlx::Error> {
    let events: String = row.try_get("events")?;
    Ok(Endpoint {
        id: row.try_get("id")?,
        merchant_id: row.try_get("merchant_id")?,
        url: row.try_get("url")?,
        events: events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        status: row.try_get("status")?,
        consecutive_failures: fintech_db::get_i64(row, "consecutive_failures")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        secret: row.try_get("secret")?,
    })
}

fn delivery(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        status: row.try_get("status")?,
        attempts: fintech_db::get_i64(row, "attempts")?,
        next_attempt_at: fintech_db::get_i64(row, "next_attempt_at")?,
        last_status_code: fintech_db::get_opt_i64(row, "last_status_code")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        payload: row.try_get("payload")?,
    })
}

const ENDPOINT: &str =
    "id, merchant_id, url, secret, events, status, consecutive_failures, disabled_reason, created_at, updated_at";
const DELIVERY: &str = "id, endpoint_id, event_id, event_type, payload, status, attempts, next_attempt_at, \
                        last_status_code, last_error, created_at, updated_at";

pub async fn insert_endpoint(db: &Db, e: &Endpoint) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, secret, events, status, consecutive_failures, \
         disabled_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)",
    )
    .bind(&e.id)
    .bind(&e.merchant_id)
    .bind(&e.url)
    .bind(&e.secret)
    .bind(e.events.join(","))
    .bind(&e.status)
    .bind(&e.created_at)
    .bind(&e.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn endpoint_by_id(db: &Db, id: &str) -> Result<Option<Endpoint>, sqlx::Error> {
    let sql = format!("SELECT {ENDPOINT} FROM webhook_endpoints WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(endpoint).transpose()
}

pub async fn endpoints_of(db: &Db, merchant_id: &str) -> Result<Vec<Endpoint>, sqlx::Error> {
    let sql = format!("SELECT {ENDPOINT} FROM webhook_endpoints WHERE merchant_id = ? ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(merchant_id).fetch_all(db.pool()).await?;
    rows.iter().map(endpoint).collect()
}

/// Enables or disables an endpoint; enabling clears its failure count.
pub async fn set_status(db: &Db, id: &str, status: &str, reason: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET status = ?, disabled_reason = ?, consecutive_failures = \
         CASE WHEN ? = 'enabled' THEN 0 ELSE consecutive_failures END, updated_at = ? WHERE id = ?",
    )
    .bind(status)
    .bind(reason)
    .bind(status)
    .bind(fintech_telemetry::now_rfc3339())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The enabled endpoints of `merchant_id` that receive `event_type`.
pub async fn subscribers(
    conn: &mut AnyConnection,
    merchant_id: &str,
    event_type: &str,
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let sql = format!("SELECT {ENDPOINT} FROM webhook_endpoints WHERE merchant_id = ? AND status = 'enabled'");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(merchant_id).fetch_all(&mut *conn).await?;
    let all = rows.iter().map(endpoint).collect::<Result<Vec<_>, _>>()?;
    Ok(all.into_iter().filter(|e| e.events.iter().any(|t| t == event_type)).collect())
}

/// Records a delivery to make (once per endpoint and event).
pub async fn insert_delivery(conn: &mut AnyConnection, d: &Delivery) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, \
               next_attempt_at, last_status_code, last_error, created_at, updated_at) \
               VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL, NULL, ?, ?)";
    let done = sqlx::query(sql)
        .bind(&d.id)
        .bind(&d.endpoint_id)
        .bind(&d.event_id)
        .bind(&d.event_type)
        .bind(&d.payload)
        .bind(d.next_attempt_at)
        .bind(&d.created_at)
        .bind(&d.updated_at)
        .execute(&mut *conn)
        .await;
    match done {
        Err(e) if fintech_db::is_unique_violation(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Pending deliveries due by `now` whose endpoint is enabled, oldest first, with their endpoint.
pub async fn due(db: &Db, now: i64, limit: u32) -> Result<Vec<(Delivery, Endpoint)>, sqlx::Error> {
    let sql = "SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.payload, d.status, d.attempts, \
               d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at, \
               e.id AS e_id, e.merchant_id, e.url, e.secret, e.events, e.status AS e_status, e.consecutive_failures, \
               e.disabled_reason, e.created_at AS e_created_at, e.updated_at AS e_updated_at \
               FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND e.status = 'enabled' \
               ORDER BY d.next_attempt_at, d.id LIMIT ?";
    let rows = sqlx::query(sql).bind(now).bind(i64::from(limit)).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            let d = delivery(row)?;
            let events: String = row.try_get("events")?;
            let e = Endpoint {
                id: row.try_get("e_id")?,
                merchant_id: row.try_get("merchant_id")?,
                url: row.try_get("url")?,
                events: events.split(',').map(str::to_owned).collect(),
                status: row.try_get("e_status")?,
                consecutive_failures: fintech_db::get_i64(row, "consecutive_failures")?,
                disabled_reason: row.try_get("disabled_reason")?,
                created_at: row.try_get("e_created_at")?,
                updated_at: row.try_get("e_updated_at")?,
                secret: row.try_get("secret")?,
            };
            Ok((d, e))
        })
        .collect()
}

/// Takes a due delivery for one attempt: moves its next attempt to `lease_until`, only if no
/// other replica took it first. False if it was taken.
pub async fn claim(db: &Db, id: &str, seen_next: i64, lease_until: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at = ?",
    )
    .bind(lease_until)
    .bind(id)
    .bind(seen_next)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What one attempt did.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub succeeded: bool,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
}

/// Records an attempt: the delivery's new state, and the endpoint's failure count (disabling it
/// when `disable_after` failures in a row are reached). Returns whether the endpoint was disabled.
pub async fn record_attempt(
    db: &Db,
    d: &Delivery,
    outcome: &Outcome<'_>,
    next: Option<i64>,
    disable_after: u32,
) -> Result<bool, sqlx::Error> {
    let status = match (outcome.succeeded, next) {
        (true, _) => "succeeded",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    let (id, endpoint_id) = (d.id.clone(), d.endpoint_id.clone());
    let (code, error) = (outcome.status_code, outcome.error.map(|e| e.chars().take(300).collect::<String>()));
    let succeeded = outcome.succeeded;
    db.write(move |conn| {
        Box::pin(async move {
            let now = fintech_telemetry::now_rfc3339();
            sqlx::query(
                "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, \
                 last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
            )
            .bind(status)
            .bind(next.unwrap_or(0))
            .bind(code)
            .bind(error)
            .bind(&now)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
            if succeeded {
                sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = ?")
                    .bind(&endpoint_id)
                    .execute(&mut *conn)
                    .await?;
                return Ok(false);
            }
            sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 WHERE id = ?")
                .bind(&endpoint_id)
                .execute(&mut *conn)
                .await?;
            let reason = format!("disabled after {disable_after} failed attempts in a row");
            let disabled = sqlx::query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?, updated_at = ? \
                 WHERE id = ? AND status = 'enabled' AND consecutive_failures >= ?",
            )
            .bind(reason)
            .bind(&now)
            .bind(&endpoint_id)
            .bind(i64::from(disable_after))
            .execute(&mut *conn)
            .await?;
            Ok(disabled.rows_affected() == 1)
        })
    })
    .await
}

pub async fn delivery_by_id(db: &Db, id: &str) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!("SELECT {DELIVERY} FROM webhook_deliveries WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(delivery).transpose()
}

pub async fn deliveries_of(db: &Db, endpoint_id: &str, limit: u32) -> Result<Vec<Delivery>, sqlx::Error> {
    let sql = format!(
        "SELECT {DELIVERY} FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"
    );
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(endpoint_id).bind(i64::from(limit)).fetch_all(db.pool()).await?;
    rows.iter().map(delivery).collect()
}

/// A manual replay: the delivery is pending again, due now, with a fresh allowance of attempts.
pub async fn replay(db: &Db, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(now_ms)
    .bind(fintech_telemetry::now_rfc3339())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}
