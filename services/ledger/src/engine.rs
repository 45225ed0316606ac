//! The ledger engine: one writer per process applies transfers in batches.
//!
//! Concurrent requests queue up; the writer takes everything queued (about
//! [`MAX_OPS_PER_COMMIT`]) and applies it in ONE database transaction: one commit, one fsync
//! for the whole group (group commit). Every request gets its own result; a refused operation
//! changes nothing and does not stop its neighbours.
//!
//! A group locks the accounts it touches (`FOR UPDATE` in key order on MySQL; SQLite's
//! `BEGIN IMMEDIATE` write lock), then reads the transfers and hold resolutions it names, applies
//! its operations in order in memory with every check (account open, same currency, enough
//! available funds, no overflow), and writes each changed account once, guarded by the totals
//! it read. Check and change happen under the lock, so neither a lost update nor a write skew on
//! the overdraft check can happen, even with several replicas writing. The transfer id is the
//! primary key, so a transfer is recorded at most once; a hold's id is unique among resolutions,
//! so a hold is posted, voided or expired at most once. A conflict with another writer (a
//! duplicate key) fails the group, which is retried and then answers from what is stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use fintech_db::Db;
use fintech_events::EventEnvelope;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::{Account, AccountStatus, NewAccount, NewTransfer, Resolve, Transfer, TransferKind};
use crate::error::{LedgerError, Side};
use crate::{SERVICE, TOPIC};

/// Most operations applied in one commit.
pub const MAX_OPS_PER_COMMIT: usize = 2048;
/// Requests waiting for the writer; beyond this, callers wait (backpressure).
const QUEUE_CAPACITY: usize = 8192;
/// Longest the writer waits for the callers of its previous group to come back and join the
/// next one (a caller answered by a commit usually sends its next request within tens of
/// microseconds; waiting that long saves it a whole commit of its own). Bounded well below one
/// durable commit, and skipped entirely when the previous group had a single caller.
const GATHER_WINDOW: Duration = Duration::from_micros(300);
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
        let (id, currency, overdraft) = (a.id.clone(), a.currency.code().to_owned(), i64::from(a.allow_overdraft));
        // Through the database's writer: in turn with the transfer groups, never against them.
        let inserted = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO ledger_accounts (id, currency, allow_overdraft, status, created_at) \
                         VALUES (?, ?, ?, 'open', ?)",
                    )
                    .bind(id)
                    .bind(currency)
                    .bind(overdraft)
                    .bind(fintech_telemetry::now_rfc3339())
                    .execute(&mut *conn)
                    .await
                })
            })
            .await;
        match inserted {
            Ok(_) => Ok((self.account(&a.id).await?, true)),
            Err(e) if fintech_db::is_unique_violation(&e) => {
                // The id is taken, by a row this read may not see (yet): another request with the
                // same id whose transaction has not committed, or was rolled back after the
                // violation was raised (seen on MariaDB with a retry racing the request it
                // retries). Not "no such account": the caller tries again (503) and gets the
                // account once it is there.
                let existing = match self.account(&a.id).await {
                    Err(LedgerError::NotFound) => return Err(LedgerError::Unavailable),
                    other => other?,
                };
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
        let account_id = id.to_owned();
        let done = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE ledger_accounts SET status = ? WHERE id = ? AND status <> 'closed' AND (? <> 'closed' \
                         OR (debits_pending = 0 AND credits_pending = 0 AND debits_posted = credits_posted))",
                    )
                    .bind(status.as_str())
                    .bind(account_id)
                    .bind(status.as_str())
                    .execute(&mut *conn)
                    .await
                })
            })
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

    /// Postings of an account, newest first; `before` is the cursor (a journal seq).
    ///
    /// The journal is the history: each transfer that moves posted money (a single-phase
    /// transfer, or a hold's post of more than zero) is a debit posting on its debit account and
    /// a credit posting on its credit account. Each side is read through its own index.
    pub async fn postings(
        &self,
        account_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Posting>, LedgerError> {
        let side = |column: &str, alias: &str| {
            format!(
                "SELECT * FROM (SELECT seq, id, debit_account_id, amount_minor, currency, created_at FROM transfers \
                 WHERE {column} = ? AND seq < ? AND kind IN ('posted', 'post') AND amount_minor > 0 \
                 ORDER BY seq DESC LIMIT ?) {alias}"
            )
        };
        let sql = format!(
            "SELECT seq, id, debit_account_id, amount_minor, currency, created_at FROM ({} UNION ALL {}) h \
             ORDER BY seq DESC LIMIT ?",
            side("debit_account_id", "d"),
            side("credit_account_id", "c")
        );
        let (before, limit) = (before.unwrap_or(i64::MAX), i64::from(limit));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .bind(before)
            .bind(limit)
            .bind(account_id)
            .bind(before)
            .bind(limit)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let debit: String = r.try_get("debit_account_id")?;
                Ok(Posting {
                    seq: r.try_get("seq")?,
                    transfer_id: r.try_get("id")?,
                    direction: if debit == account_id { "debit" } else { "credit" }.to_owned(),
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
        .bind(fintech_telemetry::now_unix_ms())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// One line of an account's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Posting {
    pub seq: i64,
    pub transfer_id: String,
    /// `debit` or `credit`.
    pub direction: String,
    pub amount_minor: i64,
    pub currency: String,
    pub created_at: String,
}

fn account_from_row(row: &AnyRow) -> Result<Account, sqlx::Error> {
    let debits_posted: i64 = row.try_get("debits_posted")?;
    let credits_posted: i64 = row.try_get("credits_posted")?;
    let debits_pending: i64 = row.try_get("debits_pending")?;
    let status: String = row.try_get("status")?;
    // Saturating: a display value must not panic even on totals near the limits.
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

/// Rows per multi-row statement (12 parameters per transfer row: well under engine limits).
const CHUNK: usize = 400;

/// An account's balances as loaded (and locked) for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Balances {
    currency: String,
    allow_overdraft: bool,
    status: AccountStatus,
    debits_posted: i64,
    credits_posted: i64,
    debits_pending: i64,
    credits_pending: i64,
}

impl Balances {
    /// What can still be debited; i128 so that no total can overflow the check.
    fn available(&self) -> i128 {
        i128::from(self.credits_posted) - i128::from(self.debits_posted) - i128::from(self.debits_pending)
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Loads the accounts `ids` and locks them for the rest of the transaction: `FOR UPDATE` on
/// MySQL, taken in primary-key order so concurrent writers cannot deadlock on each other; on
/// SQLite the transaction already holds the database's write lock (`BEGIN IMMEDIATE`).
pub(crate) async fn lock_accounts(
    conn: &mut AnyConnection,
    engine: fintech_db::Engine,
    ids: &[String],
) -> Result<BTreeMap<String, Balances>, sqlx::Error> {
    let mut accounts = BTreeMap::new();
    let lock = if engine == fintech_db::Engine::MySql { " FOR UPDATE" } else { "" };
    for chunk in fintech_db::pow2_chunks(ids, CHUNK) {
        let sql = format!(
            "SELECT id, currency, allow_overdraft, status, debits_posted, credits_posted, debits_pending, credits_pending \
             FROM ledger_accounts WHERE id IN ({}) ORDER BY id{lock}",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let status: String = row.try_get("status")?;
            accounts.insert(
                row.try_get("id")?,
                Balances {
                    currency: row.try_get("currency")?,
                    allow_overdraft: row.try_get::<i64, _>("allow_overdraft")? != 0,
                    status: AccountStatus::parse(&status).unwrap_or(AccountStatus::Frozen),
                    debits_posted: row.try_get("debits_posted")?,
                    credits_posted: row.try_get("credits_posted")?,
                    debits_pending: row.try_get("debits_pending")?,
                    credits_pending: row.try_get("credits_pending")?,
                },
            );
        }
    }
    Ok(accounts)
}

/// Writes accounts' new totals, each guarded by the totals it was loaded with, in as few
/// statements as possible. With the locks held the guards always match; if one does not,
/// something wrote behind the lock and the whole group is abandoned (and retried) rather than
/// overwriting it.
pub(crate) async fn write_accounts(
    conn: &mut AnyConnection,
    changes: &[(&str, &Balances, &Balances)],
) -> Result<(), sqlx::Error> {
    const ACCOUNTS_PER_STATEMENT: usize = 100;
    for chunk in fintech_db::pow2_chunks(changes, ACCOUNTS_PER_STATEMENT) {
        let case = |column: &str| format!("{column} = CASE id {} END", vec!["WHEN ? THEN ?"; chunk.len()].join(" "));
        let guard = vec![
            "(id = ? AND debits_posted = ? AND credits_posted = ? AND debits_pending = ? AND credits_pending = ?)";
            chunk.len()
        ]
        .join(" OR ");
        let sql = format!(
            "UPDATE ledger_accounts SET {}, {}, {}, {} WHERE {guard}",
            case("debits_posted"),
            case("credits_posted"),
            case("debits_pending"),
            case("credits_pending")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for column in 0..4 {
            for (id, _, after) in chunk {
                let value = match column {
                    0 => after.debits_posted,
                    1 => after.credits_posted,
                    2 => after.debits_pending,
                    _ => after.credits_pending,
                };
                q = q.bind(*id).bind(value);
            }
        }
        for (id, before, _) in chunk {
            q = q
                .bind(*id)
                .bind(before.debits_posted)
                .bind(before.credits_posted)
                .bind(before.debits_pending)
                .bind(before.credits_pending);
        }
        let done = q.execute(&mut *conn).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(sqlx::Error::Protocol("a ledger account changed behind its lock".into()));
        }
    }
    Ok(())
}

async fn load_transfers(
    conn: &mut AnyConnection,
    column: &'static str,
    keys: &[String],
) -> Result<Vec<Transfer>, sqlx::Error> {
    let mut found = Vec::new();
    for chunk in fintech_db::pow2_chunks(keys, CHUNK) {
        let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE {column} IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in chunk {
            q = q.bind(k);
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.push(transfer_from_row(&row)?);
        }
    }
    Ok(found)
}

async fn insert_transfers(conn: &mut AnyConnection, transfers: &[Transfer]) -> Result<(), sqlx::Error> {
    for chunk in fintech_db::pow2_chunks(transfers, CHUNK) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES {values}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            q = q
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
                .bind(&t.created_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The name of the ledger's event source: events are built from the journal when published.
pub const JOURNAL_EVENTS: &str = "ledger.journal";

/// `ledger.transfer.<kind>`: the type of a transfer's event.
fn event_type(t: &Transfer) -> String {
    format!("ledger.transfer.{}", t.kind.as_str())
}

/// A transfer's event. Its id is derived from the transfer id (a name-based UUID, version 8 over
/// SHA-256), so the event built again after a relay restart is the same event.
fn transfer_event(t: &Transfer) -> Result<EventEnvelope, sqlx::Error> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("fintech:ledger:transfer:{}", t.id).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(EventEnvelope {
        id: uuid::Uuid::new_v8(bytes).to_string(),
        event_type: event_type(t),
        source: SERVICE.to_owned(),
        // Ordered by the debit account: the events of one account's money leave in order.
        ordering_key: t.debit_account_id.clone(),
        time: t.created_at.clone(),
        data: serde_json::to_value(t).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
    })
}

/// The ledger's transfer events, built from the journal (append-only) when the outbox relay
/// publishes them: a group commit stages only its transfer ids.
#[derive(Debug)]
pub struct JournalEvents;

#[async_trait::async_trait]
impl fintech_events::outbox::EventSource for JournalEvents {
    fn name(&self) -> &'static str {
        JOURNAL_EVENTS
    }

    async fn events(&self, conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<EventEnvelope>, sqlx::Error> {
        let mut found: HashMap<String, Transfer> =
            load_transfers(conn, "id", ids).await?.into_iter().map(|t| (t.id.clone(), t)).collect();
        ids.iter().filter_map(|id| found.remove(id)).map(|t| transfer_event(&t)).collect()
    }
}

/// The group's working state: what is stored plus what this group has done so far, so that
/// later operations see earlier ones (a batch is applied in order).
struct Working {
    accounts: BTreeMap<String, Balances>,
    transfers: HashMap<String, Transfer>,
    resolutions: HashMap<String, Transfer>,
    new: Vec<Transfer>,
    now: i64,
    created_at: String,
}

fn check_side(accounts: &BTreeMap<String, Balances>, id: &str, currency: &str, side: Side) -> Result<(), LedgerError> {
    let account = accounts.get(id).ok_or(LedgerError::AccountNotFound(side))?;
    if account.currency != currency {
        return Err(LedgerError::CurrencyMismatch(side));
    }
    match account.status {
        AccountStatus::Open => Ok(()),
        AccountStatus::Frozen => Err(LedgerError::AccountFrozen(side)),
        AccountStatus::Closed => Err(LedgerError::AccountClosed(side)),
    }
}

impl Working {
    fn apply_transfer(&mut self, t: &NewTransfer) -> Result<Applied, LedgerError> {
        if let Some(existing) = self.transfers.get(&t.id) {
            return if same_transfer(existing, t) {
                Ok(Applied { transfer: existing.clone(), replayed: true })
            } else {
                Err(LedgerError::TransferIdReused)
            };
        }
        let currency = t.currency.code();
        check_side(&self.accounts, &t.debit_account_id, currency, Side::Debit)?;
        let debit = self.accounts.get(&t.debit_account_id).ok_or(LedgerError::AccountNotFound(Side::Debit))?;
        let debit_total = if t.pending { debit.debits_pending } else { debit.debits_posted };
        let new_debit = debit_total.checked_add(t.amount_minor).ok_or(LedgerError::Overflow(Side::Debit))?;
        if !debit.allow_overdraft && debit.available() < i128::from(t.amount_minor) {
            return Err(LedgerError::InsufficientFunds);
        }
        check_side(&self.accounts, &t.credit_account_id, currency, Side::Credit)?;
        let credit = self.accounts.get(&t.credit_account_id).ok_or(LedgerError::AccountNotFound(Side::Credit))?;
        let credit_total = if t.pending { credit.credits_pending } else { credit.credits_posted };
        let new_credit = credit_total.checked_add(t.amount_minor).ok_or(LedgerError::Overflow(Side::Credit))?;
        // Every check passed: change the working balances.
        if let Some(d) = self.accounts.get_mut(&t.debit_account_id) {
            if t.pending { d.debits_pending = new_debit } else { d.debits_posted = new_debit }
        }
        if let Some(c) = self.accounts.get_mut(&t.credit_account_id) {
            if t.pending { c.credits_pending = new_credit } else { c.credits_posted = new_credit }
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
            expires_at_ms: t.timeout_ms.map(|ms| self.now.saturating_add(ms)),
            created_at: self.created_at.clone(),
        };
        self.record(transfer.clone());
        Ok(Applied { transfer, replayed: false })
    }

    fn apply_resolve(&mut self, r: &Resolve) -> Result<Applied, LedgerError> {
        if let Some(existing) = self.transfers.get(&r.id) {
            return if same_resolution(existing, r) {
                Ok(Applied { transfer: existing.clone(), replayed: true })
            } else {
                Err(LedgerError::TransferIdReused)
            };
        }
        let pending = self.transfers.get(&r.pending_id).cloned().ok_or(LedgerError::PendingNotFound)?;
        if pending.kind != TransferKind::Pending {
            return Err(LedgerError::NotPending);
        }
        if let Some(done) = self.resolutions.get(&pending.id) {
            return Err(LedgerError::PendingAlreadyResolved(done.kind.as_str().to_owned()));
        }
        let expired = pending.expires_at_ms.is_some_and(|at| at <= self.now);
        match r.kind {
            TransferKind::Expire if !expired => return Err(LedgerError::Invariant("expiring a live hold")),
            TransferKind::Post | TransferKind::Void if expired => return Err(LedgerError::PendingExpired),
            _ => {}
        }
        let held = pending.amount_minor;
        let posted = if r.kind == TransferKind::Post { r.amount_minor.unwrap_or(held) } else { 0 };
        if posted > held {
            return Err(LedgerError::AmountExceedsPending);
        }
        let (Some(debit), Some(credit)) =
            (self.accounts.get(&pending.debit_account_id), self.accounts.get(&pending.credit_account_id))
        else {
            return Err(LedgerError::Invariant("a hold's account is missing"));
        };
        let new_debit =
            (debit.debits_pending.checked_sub(held).filter(|v| *v >= 0), debit.debits_posted.checked_add(posted));
        let new_credit =
            (credit.credits_pending.checked_sub(held).filter(|v| *v >= 0), credit.credits_posted.checked_add(posted));
        let ((Some(dp), Some(dd)), (Some(cp), Some(cc))) = (new_debit, new_credit) else {
            return Err(LedgerError::Invariant("hold totals inconsistent"));
        };
        if let Some(d) = self.accounts.get_mut(&pending.debit_account_id) {
            d.debits_pending = dp;
            d.debits_posted = dd;
        }
        if let Some(c) = self.accounts.get_mut(&pending.credit_account_id) {
            c.credits_pending = cp;
            c.credits_posted = cc;
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
            created_at: self.created_at.clone(),
        };
        self.resolutions.insert(pending.id.clone(), transfer.clone());
        self.record(transfer.clone());
        Ok(Applied { transfer, replayed: false })
    }

    fn record(&mut self, t: Transfer) {
        self.transfers.insert(t.id.clone(), t.clone());
        self.new.push(t);
    }
}

/// Applies a group of operations in one transaction; per-operation results.
///
/// Reads everything the group needs in a few statements (the transfers it names, the
/// resolutions of the holds it names, the accounts it touches — locked), applies the operations
/// in order in memory with every check, then writes each changed account once and inserts the
/// new transfers (the journal, which is also each account's history) and their events with
/// multi-row statements. A refused operation changes
/// nothing. A duplicate-key error (another process recorded the same id first) fails the group,
/// which the writer retries: the retry then sees the winner and answers from it.
async fn apply_group(db: &Db, ops: &[&Op]) -> Result<Vec<Result<Applied, LedgerError>>, sqlx::Error> {
    let mut ids: Vec<String> = Vec::new();
    let mut pending_ids: Vec<String> = Vec::new();
    for op in ops {
        match op {
            Op::Transfer(t) => ids.push(t.id.clone()),
            Op::Resolve(r) => {
                ids.push(r.id.clone());
                ids.push(r.pending_id.clone());
                pending_ids.push(r.pending_id.clone());
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    pending_ids.sort_unstable();
    pending_ids.dedup();
    // Which accounts the holds being resolved touch: a hold never changes, so this read may come
    // from outside the transaction. It must: on MySQL the transaction's first plain read fixes
    // its snapshot, and that has to happen after the account locks below (see the next comment).
    let holds = if pending_ids.is_empty() {
        Vec::new()
    } else {
        let mut pool_conn = db.pool().acquire().await?;
        load_transfers(&mut pool_conn, "id", &pending_ids).await?
    };
    let mut account_ids: Vec<String> = Vec::new();
    for op in ops {
        if let Op::Transfer(t) = op {
            account_ids.extend([t.debit_account_id.clone(), t.credit_account_id.clone()]);
        }
    }
    for hold in &holds {
        account_ids.extend([hold.debit_account_id.clone(), hold.credit_account_id.clone()]);
    }
    account_ids.sort_unstable();
    account_ids.dedup();

    let mut tx = db.begin_write().await?;
    let accounts = lock_accounts(&mut tx, db.engine(), &account_ids).await?;
    // Only now the transfers and resolutions: any other writer touching the same accounts has
    // committed before we got their locks, so on MySQL (REPEATABLE READ, snapshot taken at this
    // first plain read) and on SQLite (one writer) we see what it recorded.
    let transfers: HashMap<String, Transfer> =
        load_transfers(&mut tx, "id", &ids).await?.into_iter().map(|t| (t.id.clone(), t)).collect();
    let resolutions: HashMap<String, Transfer> = load_transfers(&mut tx, "pending_id", &pending_ids)
        .await?
        .into_iter()
        .filter_map(|t| t.pending_id.clone().map(|p| (p, t)))
        .collect();
    // A hold created after the first read has accounts this group did not lock: start over.
    for pending_id in &pending_ids {
        if let Some(hold) = transfers.get(pending_id)
            && !(accounts.contains_key(&hold.debit_account_id) && accounts.contains_key(&hold.credit_account_id))
        {
            return Err(sqlx::Error::Protocol("a hold appeared during the group; retrying".into()));
        }
    }
    let before = accounts.clone();
    let mut work = Working {
        accounts,
        transfers,
        resolutions,
        new: Vec::new(),
        now: fintech_telemetry::now_unix_ms(),
        created_at: fintech_telemetry::now_rfc3339(),
    };
    let results: Vec<Result<Applied, LedgerError>> = ops
        .iter()
        .map(|op| match op {
            Op::Transfer(t) => work.apply_transfer(t),
            Op::Resolve(r) => work.apply_resolve(r),
        })
        .collect();
    let changes: Vec<(&str, &Balances, &Balances)> = work
        .accounts
        .iter()
        .filter_map(|(id, after)| before.get(id).filter(|old| *old != after).map(|old| (id.as_str(), old, after)))
        .collect();
    write_accounts(&mut tx, &changes).await?;
    insert_transfers(&mut tx, &work.new).await?;
    if let Some(first) = work.new.first() {
        let ids: Vec<String> = work.new.iter().map(|t| t.id.clone()).collect();
        let first = (first.debit_account_id.as_str(), event_type(first));
        fintech_events::outbox::stage_derived(&mut tx, TOPIC, JOURNAL_EVENTS, (first.0, &first.1), &ids).await?;
    }
    tx.commit().await?;
    Ok(results)
}

fn retryable(e: &sqlx::Error) -> bool {
    if fintech_db::is_unique_violation(e) {
        // Another process recorded the same transfer id or resolved the same hold first.
        return true;
    }
    match e {
        // MySQL: 1213 deadlock, 1205 lock wait timeout. SQLite: busy / locked.
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("40001" | "5" | "6" | "517"))
                || d.message().contains("Deadlock")
                || d.message().contains("Lock wait timeout")
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Command>, outbox: Arc<Notify>, shutdown: CancellationToken) {
    // A command taken from the queue that did not fit in the previous group.
    let mut carried: Option<Command> = None;
    // Callers answered by the previous commit: about as many are about to send again.
    let mut expected: usize = 1;
    loop {
        let first = match carried.take() {
            Some(cmd) => Some(cmd),
            None => tokio::select! {
                cmd = rx.recv() => cmd,
                () = shutdown.cancelled() => None,
            },
        };
        let Some(first) = first else { break };
        let mut group = vec![first];
        let mut count = group[0].ops.len();
        // Gather what is queued. While fewer callers than the previous group's have joined,
        // keep yielding (so they can run) for at most GATHER_WINDOW: joining this group costs
        // them far less than waiting for the next commit. A group never exceeds
        // MAX_OPS_PER_COMMIT unless a single command is larger (a batch is never split).
        let gather_started = std::time::Instant::now();
        while count < MAX_OPS_PER_COMMIT {
            match rx.try_recv() {
                Ok(cmd) if count + cmd.ops.len() > MAX_OPS_PER_COMMIT => {
                    carried = Some(cmd);
                    break;
                }
                Ok(cmd) => {
                    count += cmd.ops.len();
                    group.push(cmd);
                }
                Err(_) if group.len() < expected && gather_started.elapsed() < GATHER_WINDOW => {
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        expected = group.len();
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

/// The ledger's events, built from the journal by the outbox relay: one per new transfer, in
/// order, with the transfer as data and an id that is the same every time it is built.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod event_tests {
    use super::*;
    use fintech_events::memory::{InProcessBus, MemoryDeadLetters};
    use fintech_events::outbox::{OutboxRelay, RelayConfig};
    use fintech_events::{EventBus, EventHandler, HandlerError, Subscription};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<EventEnvelope>>);

    #[async_trait::async_trait]
    impl EventHandler for Collect {
        async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transfer_events_are_built_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db", dir.path().display());
        fintech_kit::migrate(&crate::LedgerService, &url).await.unwrap();
        let db = Db::connect(&url, fintech_db::PoolLimits::default()).await.unwrap();
        let shutdown = CancellationToken::new();
        let ledger = Ledger::start(db.clone(), Arc::new(Notify::new()), shutdown.clone(), Duration::from_secs(3600));
        let usd: fintech_money::Currency = "USD".parse().unwrap();
        for (id, overdraft) in [("funding", true), ("alice", false)] {
            ledger
                .create_account(&NewAccount { id: id.into(), currency: usd, allow_overdraft: overdraft })
                .await
                .unwrap();
        }
        let batch = vec![
            NewTransfer::new("t1", "funding", "alice", 500, usd, "topup"),
            NewTransfer::new("t2", "alice", "funding", 9_999, usd, "refused: not enough money"),
            NewTransfer::new("t3", "alice", "funding", 200, usd, "fee"),
        ];
        let results = ledger.transfers(batch).await.unwrap();
        assert!(results[1].is_err());
        // A replay changes nothing and stages nothing.
        ledger.transfer(NewTransfer::new("t1", "funding", "alice", 500, usd, "topup")).await.unwrap();
        let rows: Vec<(String, Option<String>, i64)> =
            sqlx::query_as("SELECT payload, derived_from, event_count FROM outbox").fetch_all(db.pool()).await.unwrap();
        assert_eq!(rows, vec![(r#"["t1","t3"]"#.to_owned(), Some(JOURNAL_EVENTS.to_owned()), 2)]);

        let bus = Arc::new(InProcessBus::new(Arc::new(MemoryDeadLetters::default())));
        let seen = Arc::new(Collect::default());
        let subscription = Subscription { name: "test".into(), topic: TOPIC.into(), retry: Default::default() };
        bus.subscribe(subscription, seen.clone()).await.unwrap();
        let relay = OutboxRelay::new(db.clone(), bus, RelayConfig::default())
            .with_sources([Arc::new(JournalEvents) as Arc<dyn fintech_events::outbox::EventSource>]);
        assert_eq!(relay.relay_once().await.unwrap(), 2);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.0.lock().unwrap().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "events not delivered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Different ordering keys (debit accounts) are delivered independently: sort by transfer.
        let mut events = seen.0.lock().unwrap().clone();
        events.sort_by(|a, b| a.data["id"].as_str().cmp(&b.data["id"].as_str()));
        assert_eq!(events.iter().map(|e| e.data["id"].as_str().unwrap()).collect::<Vec<_>>(), ["t1", "t3"]);
        assert_eq!(events[0].event_type, "ledger.transfer.posted");
        assert_eq!(events[0].ordering_key, "funding");
        assert_eq!(events[1].data["amount_minor"], 200);
        assert_eq!(events[1].data["debit_account_id"], "alice");
        // Built again (a relay restarted before marking the row), the events are the same events.
        let mut conn = db.pool().acquire().await.unwrap();
        let again = fintech_events::outbox::EventSource::events(&JournalEvents, &mut conn, &["t1".into(), "t3".into()])
            .await
            .unwrap();
        assert_eq!(again.iter().map(|e| &e.id).collect::<Vec<_>>(), events.iter().map(|e| &e.id).collect::<Vec<_>>());
        assert_ne!(events[0].id, events[1].id);
        shutdown.cancel();
    }
}

/// Scripted interleavings of two database transactions: the lost update and the write skew on
/// the overdraft check that MySQL's REPEATABLE READ allows for naive read-then-write code do not
/// happen with the ledger's locked reads and guarded writes. Each anomaly is first shown to happen with the
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
             VALUES ('a', 'USD', 0, 'open', 100, 'now'), ('x', 'USD', 1, 'open', 0, 'now')",
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

    fn transfer(id: &str, debit: &str, credit: &str, amount: i64) -> Op {
        Op::Transfer(NewTransfer {
            id: id.into(),
            debit_account_id: debit.into(),
            credit_account_id: credit.into(),
            amount_minor: amount,
            currency: "USD".parse().unwrap(),
            code: "test".into(),
            reference: String::new(),
            pending: false,
            timeout_ms: None,
        })
    }

    /// Another writer holds account `a` (locked, about to write `change`) while the ledger
    /// applies `op`; returns the ledger's result once the first writer committed.
    async fn interleave(db: &Db, change: impl FnOnce(&mut Balances), op: Op) -> Result<Applied, LedgerError> {
        let mut first = db.begin_write().await.unwrap();
        let locked = lock_accounts(&mut first, db.engine(), &["a".to_owned()]).await.unwrap();
        let before = locked["a"].clone();
        assert_eq!(before.available(), 100);
        let other = db.clone();
        let second = tokio::spawn(async move { apply_group(&other, &[&op]).await.unwrap().pop().unwrap() });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the ledger waits for the first writer's lock");
        let mut after = before.clone();
        change(&mut after);
        write_accounts(&mut first, &[("a", &before, &after)]).await.unwrap();
        first.commit().await.unwrap();
        second.await.unwrap()
    }

    /// Two debits of 60 against 100 available, interleaved: the second is refused.
    async fn no_write_skew_on_the_overdraft_check(engine: fintech_db::Engine) {
        let (db, _dir) = database(engine).await;
        let result = interleave(&db, |b| b.debits_posted += 60, transfer("t2", "a", "x", 60)).await;
        assert!(matches!(result, Err(LedgerError::InsufficientFunds)), "{result:?}");
        assert_eq!(column(&db, "debits_posted").await, 60);
    }

    /// Two credits of 10, interleaved: both count.
    async fn no_lost_update(engine: fintech_db::Engine) {
        let (db, _dir) = database(engine).await;
        let result = interleave(&db, |b| b.credits_posted += 10, transfer("t2", "x", "a", 10)).await;
        assert!(result.is_ok(), "{result:?}");
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
