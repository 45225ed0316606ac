//! The ledger engine: one writer per process applies transfers in batches.
//!
//! Concurrent requests queue up; the writer takes everything queued (up to
//! [`MAX_OPS_PER_COMMIT`]) and applies it in ONE database transaction, each operation inside
//! its own savepoint so that a refused transfer does not undo its neighbours. One commit means
//! one fsync for the whole group (group commit). Every request gets its own result.
//!
//! Correctness does not depend on there being one writer: every balance change is a single
//! conditional `UPDATE` whose `WHERE` clause carries the check (account open, same currency,
//! enough available funds, no overflow). The row lock that statement takes (MySQL) or the
//! database write lock (SQLite) makes check-and-change atomic, so neither a lost update nor a
//! write skew on the overdraft check can happen, even with several replicas writing. The
//! transfer id is the primary key, so a transfer is recorded at most once; a pending transfer's
//! id is unique among resolutions, so a hold is posted or voided at most once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fintech_db::Db;
use fintech_events::EventEnvelope;
use sqlx::any::AnyRow;
use sqlx::{Acquire, AnyConnection, Row};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::{Account, AccountStatus, NewAccount, NewTransfer, Resolve, Transfer, TransferKind};
use crate::error::{LedgerError, Side};
use crate::{SERVICE, TOPIC};

/// Most operations applied in one commit.
pub const MAX_OPS_PER_COMMIT: usize = 2048;
/// Requests waiting for the writer; beyond this, callers wait (backpressure).
const QUEUE_CAPACITY: usize = 8192;
/// Attempts of a group whose commit failed for a retryable reason (deadlock, lock timeout).
const COMMIT_ATTEMPTS: u32 = 3;

/// The result of applying one operation.
#[derive(Debug, Clone)]
pub struct Applied {
    pub transfer: Transfer,
    /// True when the id existed with the same content: nothing new happened.
    pub replayed: bool,
}

enum Op {
    Transfer(NewTransfer),
    Resolve(Resolve),
}

struct Command {
    ops: Vec<Op>,
    reply: oneshot::Sender<Vec<Result<Applied, LedgerError>>>,
}

/// Handle to the ledger of one database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    db: Db,
    commands: mpsc::Sender<Command>,
}

fn now_ms() -> i64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl Ledger {
    /// Starts the writer and the expiry sweeper; both stop on `shutdown`.
    pub fn start(db: Db, outbox: Arc<Notify>, shutdown: CancellationToken, sweep_every: Duration) -> Ledger {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let ledger = Ledger { db: db.clone(), commands: tx };
        tokio::spawn(writer(db, rx, outbox, shutdown.clone()));
        tokio::spawn(sweeper(ledger.clone(), shutdown, sweep_every));
        ledger
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<Result<Applied, LedgerError>>, LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command { ops, reply }).await.map_err(|_| LedgerError::Unavailable)?;
        rx.await.map_err(|_| LedgerError::Unavailable)
    }

    /// Applies one single-phase or pending transfer.
    pub async fn transfer(&self, t: NewTransfer) -> Result<Applied, LedgerError> {
        self.submit(vec![Op::Transfer(t)]).await?.pop().unwrap_or(Err(LedgerError::Unavailable))
    }

    /// Applies many transfers in order, each on its own (per-item results).
    pub async fn transfers(&self, ts: Vec<NewTransfer>) -> Result<Vec<Result<Applied, LedgerError>>, LedgerError> {
        self.submit(ts.into_iter().map(Op::Transfer).collect()).await
    }

    /// Posts or voids (or expires) a pending transfer.
    pub async fn resolve(&self, r: Resolve) -> Result<Applied, LedgerError> {
        self.submit(vec![Op::Resolve(r)]).await?.pop().unwrap_or(Err(LedgerError::Unavailable))
    }

    /// Creates an account; the same id with the same settings returns it (`false`: not new).
    pub async fn create_account(&self, a: &NewAccount) -> Result<(Account, bool), LedgerError> {
        let inserted = sqlx::query(
            "INSERT INTO ledger_accounts (id, currency, allow_overdraft, status, created_at) VALUES (?, ?, ?, 'open', ?)",
        )
        .bind(&a.id)
        .bind(a.currency.code())
        .bind(i64::from(a.allow_overdraft))
        .bind(fintech_telemetry::now_rfc3339())
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok((self.account(&a.id).await?, true)),
            Err(e) if fintech_db::is_unique_violation(&e) => {
                let existing = self.account(&a.id).await?;
                if existing.currency == a.currency.code() && existing.allow_overdraft == a.allow_overdraft {
                    Ok((existing, false))
                } else {
                    Err(LedgerError::AccountIdReused)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Freezes, unfreezes or closes an account. Closing needs zero balance and no holds;
    /// closed is final.
    pub async fn set_status(&self, id: &str, status: AccountStatus) -> Result<Account, LedgerError> {
        let done = sqlx::query(
            "UPDATE ledger_accounts SET status = ? WHERE id = ? AND status <> 'closed' \
             AND (? <> 'closed' OR (debits_pending = 0 AND credits_pending = 0 AND debits_posted = credits_posted))",
        )
        .bind(status.as_str())
        .bind(id)
        .bind(status.as_str())
        .execute(self.db.pool())
        .await?;
        let account = self.account(id).await?;
        if done.rows_affected() == 0 && account.status != status {
            return Err(if account.status == AccountStatus::Closed {
                LedgerError::AccountClosedForGood
            } else {
                LedgerError::AccountNotEmpty
            });
        }
        Ok(account)
    }

    pub async fn account(&self, id: &str) -> Result<Account, LedgerError> {
        let row = sqlx::query(
            "SELECT id, currency, allow_overdraft, status, debits_posted, credits_posted, debits_pending, \
             credits_pending, created_at FROM ledger_accounts WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(account_from_row).transpose()?.ok_or(LedgerError::NotFound)
    }

    pub async fn get_transfer(&self, id: &str) -> Result<(Transfer, Option<Transfer>), LedgerError> {
        let mut conn = self.db.pool().acquire().await?;
        let transfer = find_transfer(&mut conn, id).await?.ok_or(LedgerError::NotFound)?;
        let resolution =
            if transfer.kind == TransferKind::Pending { find_resolution(&mut conn, id).await? } else { None };
        Ok((transfer, resolution))
    }

    /// Postings of an account, newest first; `before` is the cursor (a posting seq).
    pub async fn postings(
        &self,
        account_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Posting>, LedgerError> {
        let rows = sqlx::query(
            "SELECT seq, transfer_id, direction, amount_minor, currency, created_at FROM postings \
             WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(account_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Posting {
                    seq: r.try_get("seq")?,
                    transfer_id: r.try_get("transfer_id")?,
                    direction: if r.try_get::<String, _>("direction")? == "D" { "debit" } else { "credit" },
                    amount_minor: r.try_get("amount_minor")?,
                    currency: r.try_get("currency")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(LedgerError::from)
    }

    /// Pending transfers whose timeout has passed and that nothing resolved yet.
    async fn expired_holds(&self, limit: u32) -> Result<Vec<String>, LedgerError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT p.id FROM transfers p WHERE p.kind = 'pending' AND p.expires_at_ms <= ? \
             AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_id = p.id) LIMIT ?",
        )
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// One line of an account's history.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Posting {
    pub seq: i64,
    pub transfer_id: String,
    /// `debit` or `credit`.
    pub direction: &'static str,
    pub amount_minor: i64,
    pub currency: String,
    pub created_at: String,
}

fn account_from_row(row: &AnyRow) -> Result<Account, sqlx::Error> {
    let debits_posted: i64 = row.try_get("debits_posted")?;
    let credits_posted: i64 = row.try_get("credits_posted")?;
    let debits_pending: i64 = row.try_get("debits_pending")?;
    let status: String = row.try_get("status")?;
    // Totals are bounded by the UPDATE guards, so these differences cannot overflow.
    let balance = credits_posted.saturating_sub(debits_posted);
    Ok(Account {
        id: row.try_get("id")?,
        currency: row.try_get("currency")?,
        allow_overdraft: row.try_get::<i64, _>("allow_overdraft")? != 0,
        status: AccountStatus::parse(&status).unwrap_or(AccountStatus::Frozen),
        debits_posted,
        credits_posted,
        debits_pending,
        credits_pending: row.try_get("credits_pending")?,
        balance_minor: balance,
        available_minor: balance.saturating_sub(debits_pending),
        created_at: row.try_get("created_at")?,
    })
}

const TRANSFER_COLUMNS: &str = "id, kind, debit_account_id, credit_account_id, amount_minor, currency, code, \
    reference, pending_id, timeout_ms, expires_at_ms, created_at";

fn transfer_from_row(row: &AnyRow) -> Result<Transfer, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(Transfer {
        id: row.try_get("id")?,
        kind: TransferKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown kind {kind}").into()))?,
        debit_account_id: row.try_get("debit_account_id")?,
        credit_account_id: row.try_get("credit_account_id")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        code: row.try_get("code")?,
        reference: row.try_get("reference")?,
        pending_id: row.try_get("pending_id")?,
        timeout_ms: row.try_get("timeout_ms")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn find_transfer(conn: &mut AnyConnection, id: &str) -> Result<Option<Transfer>, sqlx::Error> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(transfer_from_row).transpose()
}

async fn find_resolution(conn: &mut AnyConnection, pending_id: &str) -> Result<Option<Transfer>, sqlx::Error> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE pending_id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(pending_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(transfer_from_row).transpose()
}

/// Does a stored transfer match a request with the same id?
fn same_transfer(stored: &Transfer, t: &NewTransfer) -> bool {
    let kind = if t.pending { TransferKind::Pending } else { TransferKind::Posted };
    stored.kind == kind
        && stored.debit_account_id == t.debit_account_id
        && stored.credit_account_id == t.credit_account_id
        && stored.amount_minor == t.amount_minor
        && stored.currency == t.currency.code()
        && stored.code == t.code
        && stored.reference == t.reference
        && stored.timeout_ms == t.timeout_ms
}

fn same_resolution(stored: &Transfer, r: &Resolve) -> bool {
    stored.kind == r.kind
        && stored.pending_id.as_deref() == Some(r.pending_id.as_str())
        && r.amount_minor.is_none_or(|a| a == stored.amount_minor)
}

/// Why did a conditional balance update touch no row?
async fn diagnose(
    conn: &mut AnyConnection,
    account_id: &str,
    currency: &str,
    side: Side,
    column: &str,
    amount: i64,
) -> Result<LedgerError, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, currency, allow_overdraft, status, debits_posted, credits_posted, debits_pending, \
         credits_pending, created_at FROM ledger_accounts WHERE id = ?",
    )
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(account) = row.as_ref().map(account_from_row).transpose()? else {
        return Ok(LedgerError::AccountNotFound(side));
    };
    if account.currency != currency {
        return Ok(LedgerError::CurrencyMismatch(side));
    }
    match account.status {
        AccountStatus::Frozen => return Ok(LedgerError::AccountFrozen(side)),
        AccountStatus::Closed => return Ok(LedgerError::AccountClosed(side)),
        AccountStatus::Open => {}
    }
    let total = match column {
        "debits_posted" => account.debits_posted,
        "debits_pending" => account.debits_pending,
        "credits_posted" => account.credits_posted,
        _ => account.credits_pending,
    };
    if total.checked_add(amount).is_none() {
        return Ok(LedgerError::Overflow(side));
    }
    Ok(LedgerError::InsufficientFunds)
}

/// The outcome of one operation inside the group's transaction.
enum Outcome {
    Done(Applied),
    /// A refusal: the operation's savepoint is rolled back, the group goes on.
    Refused(LedgerError),
    /// Another writer inserted the same id (or resolved the same hold) first: roll back the
    /// savepoint, then answer from what is stored.
    Raced,
}

fn stage_event(t: &Transfer) -> EventEnvelope {
    let data = serde_json::to_value(t).unwrap_or_default();
    // Ordered by the debit account: the events of one account's money leave in order.
    EventEnvelope::new(format!("ledger.transfer.{}", t.kind.as_str()), SERVICE, t.debit_account_id.clone(), data)
}

async fn insert_transfer(conn: &mut AnyConnection, t: &Transfer) -> Result<(), sqlx::Error> {
    let sql = format!("INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&t.id)
        .bind(t.kind.as_str())
        .bind(&t.debit_account_id)
        .bind(&t.credit_account_id)
        .bind(t.amount_minor)
        .bind(&t.currency)
        .bind(&t.code)
        .bind(&t.reference)
        .bind(&t.pending_id)
        .bind(t.timeout_ms)
        .bind(t.expires_at_ms)
        .bind(&t.created_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_postings(conn: &mut AnyConnection, t: &Transfer, amount: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO postings (transfer_id, account_id, direction, amount_minor, currency, created_at) \
         VALUES (?, ?, 'D', ?, ?, ?), (?, ?, 'C', ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.debit_account_id)
    .bind(amount)
    .bind(&t.currency)
    .bind(&t.created_at)
    .bind(&t.id)
    .bind(&t.credit_account_id)
    .bind(amount)
    .bind(&t.currency)
    .bind(&t.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds `amount` to `column` of an open account of `currency`, refusing overflow and, for a
/// debit of an account without overdraft, a result below zero available.
async fn add_to_balance(
    conn: &mut AnyConnection,
    account_id: &str,
    currency: &str,
    column: &'static str,
    amount: i64,
    check_available: bool,
) -> Result<bool, sqlx::Error> {
    let available = if check_available {
        " AND (allow_overdraft = 1 OR credits_posted - debits_posted - debits_pending >= ?)"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE ledger_accounts SET {column} = {column} + ? \
         WHERE id = ? AND currency = ? AND status = 'open' AND {column} <= ?{available}"
    );
    let mut q =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(amount).bind(account_id).bind(currency).bind(i64::MAX - amount);
    if check_available {
        q = q.bind(amount);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected() == 1)
}

async fn apply_transfer(conn: &mut AnyConnection, t: &NewTransfer, now: i64) -> Result<Outcome, sqlx::Error> {
    if let Some(existing) = find_transfer(conn, &t.id).await? {
        return Ok(if same_transfer(&existing, t) {
            Outcome::Done(Applied { transfer: existing, replayed: true })
        } else {
            Outcome::Refused(LedgerError::TransferIdReused)
        });
    }
    let currency = t.currency.code();
    let (debit_col, credit_col) =
        if t.pending { ("debits_pending", "credits_pending") } else { ("debits_posted", "credits_posted") };
    if !add_to_balance(conn, &t.debit_account_id, currency, debit_col, t.amount_minor, true).await? {
        let why = diagnose(conn, &t.debit_account_id, currency, Side::Debit, debit_col, t.amount_minor).await?;
        return Ok(Outcome::Refused(why));
    }
    if !add_to_balance(conn, &t.credit_account_id, currency, credit_col, t.amount_minor, false).await? {
        let why = diagnose(conn, &t.credit_account_id, currency, Side::Credit, credit_col, t.amount_minor).await?;
        return Ok(Outcome::Refused(why));
    }
    let transfer = Transfer {
        id: t.id.clone(),
        kind: if t.pending { TransferKind::Pending } else { TransferKind::Posted },
        debit_account_id: t.debit_account_id.clone(),
        credit_account_id: t.credit_account_id.clone(),
        amount_minor: t.amount_minor,
        currency: currency.to_owned(),
        code: t.code.clone(),
        reference: t.reference.clone(),
        pending_id: None,
        timeout_ms: t.timeout_ms,
        expires_at_ms: t.timeout_ms.map(|ms| now.saturating_add(ms)),
        created_at: fintech_telemetry::now_rfc3339(),
    };
    match insert_transfer(conn, &transfer).await {
        Err(e) if fintech_db::is_unique_violation(&e) => return Ok(Outcome::Raced),
        other => other?,
    }
    if !t.pending {
        insert_postings(conn, &transfer, t.amount_minor).await?;
    }
    fintech_events::outbox::stage(conn, TOPIC, &stage_event(&transfer)).await?;
    Ok(Outcome::Done(Applied { transfer, replayed: false }))
}

async fn apply_resolve(conn: &mut AnyConnection, r: &Resolve, now: i64) -> Result<Outcome, sqlx::Error> {
    if let Some(existing) = find_transfer(conn, &r.id).await? {
        return Ok(if same_resolution(&existing, r) {
            Outcome::Done(Applied { transfer: existing, replayed: true })
        } else {
            Outcome::Refused(LedgerError::TransferIdReused)
        });
    }
    let Some(pending) = find_transfer(conn, &r.pending_id).await? else {
        return Ok(Outcome::Refused(LedgerError::PendingNotFound));
    };
    if pending.kind != TransferKind::Pending {
        return Ok(Outcome::Refused(LedgerError::NotPending));
    }
    if let Some(done) = find_resolution(conn, &pending.id).await? {
        return Ok(Outcome::Refused(LedgerError::PendingAlreadyResolved(done.kind.as_str().to_owned())));
    }
    let expired = pending.expires_at_ms.is_some_and(|at| at <= now);
    match r.kind {
        TransferKind::Expire if !expired => {
            return Ok(Outcome::Refused(LedgerError::Invariant("expiring a live hold")));
        }
        TransferKind::Post | TransferKind::Void if expired => return Ok(Outcome::Refused(LedgerError::PendingExpired)),
        _ => {}
    }
    let held = pending.amount_minor;
    let posted = match r.kind {
        TransferKind::Post => r.amount_minor.unwrap_or(held),
        _ => 0,
    };
    if posted > held {
        return Ok(Outcome::Refused(LedgerError::AmountExceedsPending));
    }
    // Release the hold and post what is posted. The guards only fail if the stored totals are
    // inconsistent, which would be a bug: refuse loudly rather than write nonsense.
    for (account, pending_col, posted_col) in [
        (&pending.debit_account_id, "debits_pending", "debits_posted"),
        (&pending.credit_account_id, "credits_pending", "credits_posted"),
    ] {
        let sql = format!(
            "UPDATE ledger_accounts SET {pending_col} = {pending_col} - ?, {posted_col} = {posted_col} + ? \
             WHERE id = ? AND {pending_col} >= ? AND {posted_col} <= ?"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(held)
            .bind(posted)
            .bind(account)
            .bind(held)
            .bind(i64::MAX - posted)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(Outcome::Refused(LedgerError::Invariant("hold totals inconsistent")));
        }
    }
    let transfer = Transfer {
        id: r.id.clone(),
        kind: r.kind,
        debit_account_id: pending.debit_account_id.clone(),
        credit_account_id: pending.credit_account_id.clone(),
        amount_minor: if r.kind == TransferKind::Post { posted } else { held },
        currency: pending.currency.clone(),
        code: pending.code.clone(),
        reference: pending.reference.clone(),
        pending_id: Some(pending.id.clone()),
        timeout_ms: None,
        expires_at_ms: None,
        created_at: fintech_telemetry::now_rfc3339(),
    };
    match insert_transfer(conn, &transfer).await {
        Err(e) if fintech_db::is_unique_violation(&e) => return Ok(Outcome::Raced),
        other => other?,
    }
    if posted > 0 {
        insert_postings(conn, &transfer, posted).await?;
    }
    fintech_events::outbox::stage(conn, TOPIC, &stage_event(&transfer)).await?;
    Ok(Outcome::Done(Applied { transfer, replayed: false }))
}

/// After a race was rolled back: answer from what the winner stored.
async fn answer_race(conn: &mut AnyConnection, op: &Op) -> Result<Result<Applied, LedgerError>, sqlx::Error> {
    Ok(match op {
        Op::Transfer(t) => match find_transfer(conn, &t.id).await? {
            Some(existing) if same_transfer(&existing, t) => Ok(Applied { transfer: existing, replayed: true }),
            _ => Err(LedgerError::TransferIdReused),
        },
        Op::Resolve(r) => match find_transfer(conn, &r.id).await? {
            Some(existing) if same_resolution(&existing, r) => Ok(Applied { transfer: existing, replayed: true }),
            Some(_) => Err(LedgerError::TransferIdReused),
            None => match find_resolution(conn, &r.pending_id).await? {
                Some(done) => Err(LedgerError::PendingAlreadyResolved(done.kind.as_str().to_owned())),
                None => Err(LedgerError::Invariant("race without a winner")),
            },
        },
    })
}

/// Applies a group of operations in one transaction; per-operation results.
async fn apply_group(db: &Db, ops: &[&Op]) -> Result<Vec<Result<Applied, LedgerError>>, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let mut sp = tx.begin().await?;
        let outcome = match op {
            Op::Transfer(t) => apply_transfer(&mut sp, t, now).await?,
            Op::Resolve(r) => apply_resolve(&mut sp, r, now).await?,
        };
        match outcome {
            Outcome::Done(applied) => {
                sp.commit().await?;
                results.push(Ok(applied));
            }
            Outcome::Refused(why) => {
                sp.rollback().await?;
                results.push(Err(why));
            }
            Outcome::Raced => {
                sp.rollback().await?;
                results.push(answer_race(&mut tx, op).await?);
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

fn retryable(e: &sqlx::Error) -> bool {
    match e {
        // MySQL: 1213 deadlock, 1205 lock wait timeout. SQLite: busy / locked.
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("40001" | "5" | "6" | "517"))
                || d.message().contains("Deadlock")
                || d.message().contains("Lock wait timeout")
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        _ => false,
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Command>, outbox: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            cmd = rx.recv() => cmd,
            () = shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut group = vec![first];
        let mut count = group[0].ops.len();
        while count < MAX_OPS_PER_COMMIT {
            match rx.try_recv() {
                Ok(cmd) => {
                    count += cmd.ops.len();
                    group.push(cmd);
                }
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = group.iter().flat_map(|c| c.ops.iter()).collect();
        let mut attempt = 0;
        let results = loop {
            attempt += 1;
            match apply_group(&db, &ops).await {
                Ok(results) => break Some(results),
                Err(e) if attempt < COMMIT_ATTEMPTS && retryable(&e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        attempt,
                        ops = ops.len(),
                        "ledger group retried"
                    );
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(error = &e as &dyn std::error::Error, ops = ops.len(), "ledger group failed");
                    break None;
                }
            }
        };
        let Some(mut results) = results else {
            // Nothing of the group committed; every caller is told so and may retry.
            for cmd in group {
                let failed = cmd.ops.iter().map(|_| Err(LedgerError::Unavailable)).collect();
                let _ = cmd.reply.send(failed);
            }
            continue;
        };
        if results.iter().any(|r| r.as_ref().is_ok_and(|a| !a.replayed)) {
            outbox.notify_one();
        }
        for cmd in group {
            let rest = results.split_off(cmd.ops.len().min(results.len()));
            let mine = std::mem::replace(&mut results, rest);
            let _ = cmd.reply.send(mine);
        }
    }
    // Answer whatever is still queued so no caller waits forever.
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        let _ = cmd.reply.send(cmd.ops.iter().map(|_| Err(LedgerError::Unavailable)).collect());
    }
}

/// Voids holds whose timeout passed.
async fn sweeper(ledger: Ledger, shutdown: CancellationToken, every: Duration) {
    const BATCH: u32 = 500;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let ids = match ledger.expired_holds(BATCH).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "expiry sweep failed");
                continue;
            }
        };
        for pending_id in ids {
            let r = Resolve {
                id: format!("expire-{}", uuid::Uuid::now_v7().simple()),
                pending_id,
                kind: TransferKind::Expire,
                amount_minor: None,
            };
            match ledger.resolve(r).await {
                Ok(_) | Err(LedgerError::PendingAlreadyResolved(_)) => {}
                Err(e) => tracing::warn!(error = &e as &dyn std::error::Error, "expiring a hold failed"),
            }
        }
    }
}

/// Scripted interleavings of two database transactions: the lost update and the write skew on
/// the overdraft check that MySQL's REPEATABLE READ allows for naive read-then-write code do not
/// happen with the ledger's conditional updates. Each anomaly is first shown to happen with the
/// naive code (on MariaDB), so the test would notice if the ledger's statements allowed it.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod isolation_tests {
    use super::*;
    use fintech_testkit::MariaDb;

    async fn database(engine: fintech_db::Engine) -> (Db, Option<tempfile::TempDir>) {
        let (url, dir) = match engine {
            fintech_db::Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                (format!("sqlite://{}/ledger.db", dir.path().display()), Some(dir))
            }
            fintech_db::Engine::MySql => (MariaDb::shared().fresh_database_url(), None),
        };
        fintech_kit::migrate(&crate::LedgerService, &url).await.unwrap();
        let db = Db::connect(&url, fintech_db::PoolLimits::default()).await.unwrap();
        sqlx::query(
            "INSERT INTO ledger_accounts (id, currency, allow_overdraft, status, credits_posted, created_at) \
             VALUES ('a', 'USD', 0, 'open', 100, 'now')",
        )
        .execute(db.pool())
        .await
        .unwrap();
        (db, dir)
    }

    async fn column(db: &Db, name: &'static str) -> i64 {
        let sql = format!("SELECT {name} FROM ledger_accounts WHERE id = 'a'");
        sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(db.pool()).await.unwrap().get(0)
    }

    /// Two debits of 60 against 100 available, interleaved: one must be refused.
    async fn no_write_skew_on_the_overdraft_check(engine: fintech_db::Engine) {
        let (db, _dir) = database(engine).await;
        let mut first = db.begin_write().await.unwrap();
        assert!(add_to_balance(&mut first, "a", "USD", "debits_posted", 60, true).await.unwrap());
        let other = db.clone();
        let second = tokio::spawn(async move {
            let mut tx = other.begin_write().await.unwrap();
            let ok = add_to_balance(&mut tx, "a", "USD", "debits_posted", 60, true).await.unwrap();
            tx.commit().await.unwrap();
            ok
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second writer waits for the first");
        first.commit().await.unwrap();
        assert!(!second.await.unwrap(), "the second debit is refused once the first committed");
        assert_eq!(column(&db, "debits_posted").await, 60);
    }

    /// Two credits of 10, interleaved: both count.
    async fn no_lost_update(engine: fintech_db::Engine) {
        let (db, _dir) = database(engine).await;
        let mut first = db.begin_write().await.unwrap();
        assert!(add_to_balance(&mut first, "a", "USD", "credits_posted", 10, false).await.unwrap());
        let other = db.clone();
        let second = tokio::spawn(async move {
            let mut tx = other.begin_write().await.unwrap();
            let ok = add_to_balance(&mut tx, "a", "USD", "credits_posted", 10, false).await.unwrap();
            tx.commit().await.unwrap();
            ok
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        first.commit().await.unwrap();
        assert!(second.await.unwrap());
        assert_eq!(column(&db, "credits_posted").await, 120);
    }

    /// The same interleavings with naive read-check-write code do produce both anomalies on
    /// MariaDB at its default REPEATABLE READ: the tests above would catch them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_naive_code_shows_both_anomalies_on_mariadb() {
        let (db, _dir) = database(fintech_db::Engine::MySql).await;
        let read = "SELECT credits_posted - debits_posted, credits_posted FROM ledger_accounts WHERE id = 'a'";
        let mut t1 = db.pool().begin().await.unwrap();
        let mut t2 = db.pool().begin().await.unwrap();
        let (avail1, credits1): (i64, i64) = sqlx::query_as(read).fetch_one(&mut *t1).await.unwrap();
        let (avail2, credits2): (i64, i64) = sqlx::query_as(read).fetch_one(&mut *t2).await.unwrap();
        assert!(avail1 >= 60 && avail2 >= 60, "both checks pass on their snapshots");
        let write = "UPDATE ledger_accounts SET debits_posted = debits_posted + 60, credits_posted = ? WHERE id = 'a'";
        sqlx::query(write).bind(credits1 + 10).execute(&mut *t1).await.unwrap();
        t1.commit().await.unwrap();
        sqlx::query(write).bind(credits2 + 10).execute(&mut *t2).await.unwrap();
        t2.commit().await.unwrap();
        assert_eq!(column(&db, "debits_posted").await, 120, "write skew: 120 debited from 100");
        assert_eq!(column(&db, "credits_posted").await, 110, "lost update: one credit of 10 vanished");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_no_write_skew() {
        no_write_skew_on_the_overdraft_check(fintech_db::Engine::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_no_write_skew() {
        no_write_skew_on_the_overdraft_check(fintech_db::Engine::MySql).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_no_lost_update() {
        no_lost_update(fintech_db::Engine::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_no_lost_update() {
        no_lost_update(fintech_db::Engine::MySql).await;
    }
}
