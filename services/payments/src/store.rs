//! The service's tables (portable SQL).

use fintech_db::Engine;
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};

use crate::domain::Payment;

const COLUMNS: &str = "id, kind, payer_account_id, payee_account_id, amount_minor, currency, fee_minor, status, \
    captured_minor, refunded_minor, description, created_at, updated_at, payer_customer_id, payee_customer_id, card_token, card_last4, decline_code";

fn from_row(r: &AnyRow) -> Result<Payment, sqlx::Error> {
    Ok(Payment {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        payer_account_id: r.try_get("payer_account_id")?,
        payee_account_id: r.try_get("payee_account_id")?,
        amount_minor: r.try_get("amount_minor")?,
        currency: r.try_get("currency")?,
        fee_minor: r.try_get("fee_minor")?,
        status: r.try_get("status")?,
        captured_minor: r.try_get("captured_minor")?,
        refunded_minor: r.try_get("refunded_minor")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        payer_customer_id: r.try_get("payer_customer_id")?,
        payee_customer_id: r.try_get("payee_customer_id")?,
        card_token: r.try_get("card_token")?,
        card_last4: r.try_get("card_last4")?,
        decline_code: r.try_get("decline_code")?,
    })
}

/// The payment, locked for the rest of the transaction on MySQL (SQLite's write transaction
/// already excludes other writers), so that two captures or refunds cannot both pass a check.
pub async fn lock(conn: &mut AnyConnection, engine: Engine, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    let lock = if engine == Engine::MySql { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE id = ?{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn insert(conn: &mut AnyConnection, p: &Payment) -> Result<(), sqlx::Error> {
    let sql = format!("INSERT INTO payments ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.payer_account_id)
        .bind(&p.payee_account_id)
        .bind(p.amount_minor)
        .bind(&p.currency)
        .bind(p.fee_minor)
        .bind(&p.status)
        .bind(p.captured_minor)
        .bind(p.refunded_minor)
        .bind(&p.description)
        .bind(&p.created_at)
        .bind(&p.updated_at)
        .bind(&p.payer_customer_id)
        .bind(&p.payee_customer_id)
        .bind(&p.card_token)
        .bind(&p.card_last4)
        .bind(&p.decline_code)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update(conn: &mut AnyConnection, p: &Payment) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET status = ?, captured_minor = ?, refunded_minor = ?, updated_at = ? WHERE id = ?")
        .bind(&p.status)
        .bind(p.captured_minor)
        .bind(p.refunded_minor)
        .bind(&p.updated_at)
        .bind(&p.id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_refund(
    conn: &mut AnyConnection,
    id: &str,
    payment_id: &str,
    amount: i64,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refunds (id, payment_id, amount_minor, created_at) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(payment_id)
        .bind(amount)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn refund_exists(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT id FROM refunds WHERE id = ?").bind(id).fetch_optional(conn).await?.is_some())
}
