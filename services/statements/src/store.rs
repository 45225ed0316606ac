//! statements' tables. SQL here is portable between SQLite and MySQL.

use fintech_db::Db;
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};
use serde::Serialize;

/// An account statements are made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAccount {
    pub account_id: String,
    pub customer_id: String,
    pub currency: String,
    pub opened_at: String,
}

pub async fn remember_account(conn: &mut AnyConnection, a: &KnownAccount) -> Result<(), sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO statement_accounts (account_id, customer_id, currency, opened_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&a.account_id)
    .bind(&a.customer_id)
    .bind(&a.currency)
    .bind(&a.opened_at)
    .execute(&mut *conn)
    .await;
    match done {
        Err(e) if fintech_db::is_unique_violation(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

fn known(row: &AnyRow) -> Result<KnownAccount, sqlx::Error> {
    Ok(KnownAccount {
        account_id: row.try_get("account_id")?,
        customer_id: row.try_get("customer_id")?,
        currency: row.try_get("currency")?,
        opened_at: row.try_get("opened_at")?,
    })
}

pub async fn account(db: &Db, account_id: &str) -> Result<Option<KnownAccount>, sqlx::Error> {
    let row =
        sqlx::query("SELECT account_id, customer_id, currency, opened_at FROM statement_accounts WHERE account_id = ?")
            .bind(account_id)
            .fetch_optional(db.pool())
            .await?;
    row.as_ref().map(known).transpose()
}

/// Accounts opened before `before` (an RFC 3339 time or a `YYYY-MM` prefix) without a statement
/// of `month`, after the account id `after` in id order (`""`: from the first), at most `limit`.
pub async fn missing(
    db: &Db,
    month: &str,
    before: &str,
    after: &str,
    limit: u32,
) -> Result<Vec<KnownAccount>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.account_id, a.customer_id, a.currency, a.opened_at FROM statement_accounts a \
         WHERE a.opened_at < ? AND a.account_id > ? \
         AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.account_id = a.account_id AND s.month = ?) \
         ORDER BY a.account_id LIMIT ?",
    )
    .bind(before)
    .bind(after)
    .bind(month)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(known).collect()
}

/// A stored statement, as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Statement {
    pub id: String,
    pub account_id: String,
    pub customer_id: String,
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub currency: String,
    pub opening_minor: i64,
    pub closing_minor: i64,
    /// Money in and out during the month.
    pub credits_minor: i64,
    pub debits_minor: i64,
    /// Postings in the month.
    pub lines: i64,
    pub created_at: String,
}

fn statement(row: &AnyRow) -> Result<Statement, sqlx::Error> {
    Ok(Statement {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        customer_id: row.try_get("customer_id")?,
        month: row.try_get("month")?,
        currency: row.try_get("currency")?,
        opening_minor: fintech_db::get_i64(row, "opening_minor")?,
        closing_minor: fintech_db::get_i64(row, "closing_minor")?,
        credits_minor: fintech_db::get_i64(row, "credits_minor")?,
        debits_minor: fintech_db::get_i64(row, "debits_minor")?,
        lines: fintech_db::get_i64(row, "line_count")?,
        created_at: row.try_get("created_at")?,
    })
}

const COLUMNS: &str = "id, account_id, customer_id, month, currency, opening_minor, closing_minor, credits_minor, debits_minor, line_count, created_at";

/// Records a statement; false if one of the same account and month exists (made meanwhile).
pub async fn insert(db: &Db, s: &Statement) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO statements (id, account_id, customer_id, month, currency, opening_minor, closing_minor, \
         credits_minor, debits_minor, line_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.id)
    .bind(&s.account_id)
    .bind(&s.customer_id)
    .bind(&s.month)
    .bind(&s.currency)
    .bind(s.opening_minor)
    .bind(s.closing_minor)
    .bind(s.credits_minor)
    .bind(s.debits_minor)
    .bind(s.lines)
    .bind(&s.created_at)
    .execute(db.pool())
    .await;
    match done {
        Ok(_) => Ok(true),
        Err(e) if fintech_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<Statement>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM statements WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(statement).transpose()
}

pub async fn by_account_month(db: &Db, account_id: &str, month: &str) -> Result<Option<Statement>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM statements WHERE account_id = ? AND month = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(month).fetch_optional(db.pool()).await?;
    row.as_ref().map(statement).transpose()
}

/// An account's statements, newest month first.
pub async fn of_account(db: &Db, account_id: &str) -> Result<Vec<Statement>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM statements WHERE account_id = ? ORDER BY month DESC");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).fetch_all(db.pool()).await?;
    rows.iter().map(statement).collect()
}
