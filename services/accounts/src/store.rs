//! The service's tables (portable SQL).

use fintech_db::Db;
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};

use crate::domain::{AccountView, Customer, CustomerKind, KycStatus};

fn customer_from_row(row: &AnyRow) -> Result<Customer, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let kyc: String = row.try_get("kyc_status")?;
    Ok(Customer {
        id: row.try_get("id")?,
        kind: CustomerKind::parse(&kind).unwrap_or(CustomerKind::Individual),
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        kyc_status: KycStatus::parse(&kyc).unwrap_or(KycStatus::Pending),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert_customer(conn: &mut AnyConnection, c: &Customer) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customers (id, kind, name, email, phone, kyc_status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&c.id)
    .bind(c.kind.as_str())
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(c.kyc_status.as_str())
    .bind(&c.created_at)
    .bind(&c.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn customer(conn: &mut AnyConnection, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, kind, name, email, phone, kyc_status, created_at, updated_at FROM customers WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(customer_from_row).transpose()
}

pub async fn set_kyc(conn: &mut AnyConnection, id: &str, status: KycStatus, now: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE customers SET kyc_status = ?, updated_at = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

fn account_from_row(row: &AnyRow) -> Result<AccountView, sqlx::Error> {
    Ok(AccountView {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        kind: row.try_get("kind")?,
        currency: row.try_get("currency")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        balance_minor: None,
        available_minor: None,
    })
}

const ACCOUNT_COLUMNS: &str = "id, customer_id, kind, currency, status, created_at";

pub async fn insert_account(conn: &mut AnyConnection, a: &AccountView) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO accounts (id, customer_id, kind, currency, status, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&a.id)
        .bind(&a.customer_id)
        .bind(&a.kind)
        .bind(&a.currency)
        .bind(&a.status)
        .bind(&a.created_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn account(db: &Db, id: &str) -> Result<Option<AccountView>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(account_from_row).transpose()
}

pub async fn account_of(
    conn: &mut AnyConnection,
    customer_id: &str,
    currency: &str,
) -> Result<Option<AccountView>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = ? AND currency = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(customer_id).bind(currency).fetch_optional(conn).await?;
    row.as_ref().map(account_from_row).transpose()
}

pub async fn system_accounts(db: &Db) -> Result<Vec<AccountView>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE kind = 'system' ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(db.pool()).await?;
    rows.iter().map(account_from_row).collect()
}

pub async fn set_account_status(conn: &mut AnyConnection, id: &str, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET status = ? WHERE id = ?").bind(status).bind(id).execute(conn).await?;
    Ok(())
}
