//! `fintech bench ledger`: the ledger's throughput next to the raw limit of the same database
//! engine on the same machine, measured in the same run, with their ratio.
//!
//! - raw single-row durable commits: C connections, each inserting one row per transaction
//!   (SQLite: WAL + synchronous=FULL; MariaDB: whatever the server enforces, which should be
//!   `innodb_flush_log_at_trx_commit=1`);
//! - raw batched insert: 1000 rows per transaction, one connection, into a copy of the ledger's
//!   journal table (same columns, keys and indexes; the same ids and accounts as the ledger
//!   batches), so the ratio is the cost of the ledger's work on top of bare inserts of its rows;
//! - ledger single transfers: C concurrent callers, one transfer each call (group commit);
//! - ledger batches: 1000 transfers per call.
//!
//! Durability is never traded: the ledger runs with the same settings as the raw runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fintech_db::sqlx::{self, Row};
use fintech_db::{Db, Engine, PoolLimits};
use fintech_ledger::domain::{NewAccount, NewTransfer};
use fintech_ledger::{Ledger, LedgerService};
use tokio_util::sync::CancellationToken;

const BATCH: usize = 1000;
/// Accounts the benchmark's transfers move money between.
const ACCOUNTS: usize = 64;

/// What one measurement produced.
#[derive(Debug, Clone)]
struct Figure {
    per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>10.0}/s", self.per_second)?;
        if let (Some(p50), Some(p99)) = (self.p50_ms, self.p99_ms) {
            write!(f, "   p50 {p50:>6.2} ms   p99 {p99:>6.2} ms")?;
        }
        Ok(())
    }
}

fn percentile(sorted_us: &[u64], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    // Index arithmetic on a latency list: floats are fine here, this is not money.
    #[allow(clippy::float_arithmetic)]
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    #[allow(clippy::float_arithmetic)]
    Some(sorted_us[idx] as f64 / 1000.0)
}

#[allow(clippy::float_arithmetic)]
fn figure(count: u64, elapsed: Duration, mut latencies_us: Vec<u64>) -> Figure {
    latencies_us.sort_unstable();
    Figure {
        per_second: count as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies_us, 0.50),
        p99_ms: percentile(&latencies_us, 0.99),
    }
}

async fn fresh_db(url: &str) -> anyhow::Result<Db> {
    fintech_kit::migrate(&LedgerService, url).await?;
    let db = Db::connect(url, PoolLimits { max_connections: 32, ..PoolLimits::default() }).await?;
    let raw_single = match db.engine() {
        Engine::Sqlite => {
            "CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY AUTOINCREMENT, v BIGINT NOT NULL)"
        }
        Engine::MySql => {
            "CREATE TABLE IF NOT EXISTS bench_raw (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB"
        }
    };
    sqlx::query(raw_single).execute(db.pool()).await?;
    // The raw batched rows go into a copy of the journal itself: same columns, same keys and
    // indexes (id, the two history indexes, the partial ones), so the raw figure is what bare
    // inserts of the ledger's own rows cost and the ratio is the ledger's overhead on top.
    for statement in journal_copy_ddl(&db).await? {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(db.pool()).await?;
    }
    Ok(db)
}

/// The statements that create `bench_raw_transfers` as a copy of the `transfers` journal.
async fn journal_copy_ddl(db: &Db) -> anyhow::Result<Vec<String>> {
    Ok(match db.engine() {
        Engine::MySql => vec!["CREATE TABLE IF NOT EXISTS bench_raw_transfers LIKE transfers".to_owned()],
        Engine::Sqlite => {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'transfers' AND sql IS NOT NULL \
                 ORDER BY type = 'index', name",
            )
            .fetch_all(db.pool())
            .await?;
            anyhow::ensure!(!rows.is_empty(), "the ledger's journal table is missing");
            rows.into_iter()
                .map(|(sql,)| {
                    // `CREATE TABLE "transfers" (...)`, `CREATE INDEX transfers_debit ON transfers (...)`.
                    sql.replace("\"transfers\"", "bench_raw_transfers")
                        .replace(" ON transfers ", " ON bench_raw_transfers ")
                        .replace("INDEX transfers_", "INDEX bench_raw_transfers_")
                        .replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
                        .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
                        .replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ")
                })
                .collect()
        }
    })
}

/// C tasks, each committing one single-row insert per transaction, for `seconds`.
async fn raw_single(db: &Db, concurrency: usize, seconds: u64) -> anyhow::Result<Figure> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (db, stop, count) = (db.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let mut tx = db.begin_write().await?;
                sqlx::query("INSERT INTO bench_raw (v) VALUES (?)").bind(1i64).execute(&mut *tx).await?;
                tx.commit().await?;
                lat.push(t.elapsed().as_micros() as u64);
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, sqlx::Error>(lat)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok(figure(count.load(Ordering::Relaxed), started.elapsed(), lat))
}

/// One connection inserting 1000 transfer-shaped rows per transaction, for `seconds`.
async fn raw_batched(db: &Db, seconds: u64) -> anyhow::Result<Figure> {
    // Every column bound, as the ledger binds them (its values vary per row).
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; BATCH].join(", ");
    let sql = format!(
        "INSERT INTO bench_raw_transfers (id, kind, debit_account_id, credit_account_id, amount_minor, currency, code, \
         reference, pending_id, timeout_ms, expires_at_ms, created_at) VALUES {values}"
    );
    let started = Instant::now();
    let mut rows = 0u64;
    let mut round = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut tx = db.begin_write().await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        let now = fintech_telemetry::now_rfc3339();
        for i in 0..BATCH {
            // The same ids and accounts as the ledger batches of [`ledger_batches`] will use.
            let (debit, credit) = batch_accounts(i);
            q = q
                .bind(format!("bench-raw-{round}-{i}"))
                .bind("posted")
                .bind(format!("bench:{debit}"))
                .bind(format!("bench:{credit}"))
                .bind(1i64)
                .bind("USD")
                .bind("bench")
                .bind("")
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(now.clone());
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        rows += BATCH as u64;
        round += 1;
    }
    Ok(figure(rows, started.elapsed(), Vec::new()))
}

async fn setup_accounts(ledger: &Ledger, n: usize) -> anyhow::Result<Vec<String>> {
    let usd: fintech_money::Currency = "USD".parse()?;
    let funding = NewAccount { id: "bench:funding".into(), currency: usd, allow_overdraft: true };
    ledger.create_account(&funding).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("bench:{i}");
        let account = NewAccount { id: id.clone(), currency: usd, allow_overdraft: false };
        ledger.create_account(&account).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id);
    }
    let fund: Vec<NewTransfer> =
        ids.iter().map(|id| transfer(format!("bench-fund-{id}"), "bench:funding", id, 1_000_000_000)).collect();
    for result in ledger.transfers(fund).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        result.map_err(|e| anyhow::anyhow!("funding failed: {e}"))?;
    }
    Ok(ids)
}

fn transfer(id: String, debit: &str, credit: &str, amount: i64) -> NewTransfer {
    let usd = "USD".parse().unwrap_or_else(|_| unreachable!("USD is listed"));
    NewTransfer::new(id, debit, credit, amount, usd, "bench")
}

async fn ledger_single(
    ledger: &Ledger,
    accounts: &[String],
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Figure> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (ledger, stop, count, accounts) = (ledger.clone(), stop.clone(), count.clone(), accounts.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let debit = &accounts[(c + i) % accounts.len()];
                let credit = &accounts[(c + i + 1) % accounts.len()];
                let t = Instant::now();
                ledger
                    .transfer(transfer(format!("bench-s-{c}-{i}"), debit, credit, 1))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                lat.push(t.elapsed().as_micros() as u64);
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok(figure(count.load(Ordering::Relaxed), started.elapsed(), lat))
}

/// The accounts (indexes into the benchmark's [`ACCOUNTS`]) of the i-th transfer of a batch.
fn batch_accounts(i: usize) -> (usize, usize) {
    (i % ACCOUNTS, (i + 1) % ACCOUNTS)
}

async fn ledger_batches(ledger: &Ledger, accounts: &[String], seconds: u64) -> anyhow::Result<Figure> {
    let started = Instant::now();
    let mut n = 0u64;
    let mut round = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        let batch: Vec<NewTransfer> = (0..BATCH)
            .map(|i| {
                let (debit, credit) = batch_accounts(i);
                transfer(format!("bench-b-{round}-{i}"), &accounts[debit], &accounts[credit], 1)
            })
            .collect();
        for r in ledger.transfers(batch).await.map_err(|e| anyhow::anyhow!("{e}"))? {
            r.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        n += BATCH as u64;
        round += 1;
    }
    Ok(figure(n, started.elapsed(), Vec::new()))
}

#[allow(clippy::float_arithmetic)]
fn ratio(a: &Figure, b: &Figure) -> f64 {
    a.per_second / b.per_second
}

/// Runs the ledger benchmark on one database URL and prints the figures.
pub async fn ledger(url: &str, concurrencies: &[usize], seconds: u64) -> anyhow::Result<()> {
    let engine = Engine::from_url(url)?;
    let db = fresh_db(url).await.context("preparing the benchmark database")?;
    let callers = concurrencies.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ");
    println!("ledger benchmark on {engine:?}: {callers} concurrent callers, {seconds} s per phase");
    if engine == Engine::MySql {
        let row = sqlx::query("SELECT CAST(@@innodb_flush_log_at_trx_commit AS SIGNED)").fetch_one(db.pool()).await?;
        let flush: i64 = row.get(0);
        println!("  innodb_flush_log_at_trx_commit = {flush}");
        anyhow::ensure!(
            flush == 1,
            "the server does not flush the log at each commit; the figures would not be durable"
        );
    }
    println!("  [1/4] raw single-row durable commits (1 connection, then {callers}) ...");
    // The engine's limit at each concurrency is the better of 1 and C connections (SQLite's
    // busy handler sleeps under contention; MariaDB shares log flushes between connections).
    let raw_one = raw_single(&db, 1, seconds).await?;
    let mut raws = Vec::new();
    for &c in concurrencies {
        let many = raw_single(&db, c, seconds).await?;
        raws.push(if raw_one.per_second >= many.per_second { raw_one.clone() } else { many });
    }
    println!("  [2/4] raw batched inserts ({BATCH} rows per commit into a copy of the journal table) ...");
    let raw_batch = raw_batched(&db, seconds).await?;
    let shutdown = CancellationToken::new();
    let ledger =
        Ledger::start(db.clone(), Arc::new(tokio::sync::Notify::new()), shutdown.clone(), Duration::from_secs(3600));
    let accounts = setup_accounts(&ledger, ACCOUNTS).await?;
    println!("  [3/4] ledger single transfers ({callers} callers) ...");
    let mut singles = Vec::new();
    for &c in concurrencies {
        singles.push(ledger_single(&ledger, &accounts, c, seconds).await?);
    }
    println!("  [4/4] ledger batches ({BATCH} transfers per call) ...");
    let batches = ledger_batches(&ledger, &accounts, seconds).await?;
    shutdown.cancel();
    println!();
    for ((c, raw), single) in concurrencies.iter().zip(&raws).zip(&singles) {
        println!("  {c:>4} callers: raw single-row commits  {raw}   (best of 1 and {c} connections)");
        println!("  {c:>4} callers: ledger single transfers {single}   ratio {:.2}x raw commits", ratio(single, raw));
    }
    println!("  raw batched rows          {raw_batch}");
    println!("  ledger batched transfers  {batches}   ratio {:.2}x raw batched rows", ratio(&batches, &raw_batch));
    println!(
        "  (raw rows go into a copy of the journal table, with its indexes: id, debit and credit history. On top,"
    );
    println!("   the ledger locks and reads the accounts and ids, checks each transfer, updates each account once per");
    println!("   group and stages the group's events as one outbox row naming its transfers)");
    db.close().await;
    Ok(())
}

/// `fintech bench payments`: payments end to end over HTTP on the embedded default (SQLite):
/// Idempotency-Key layer, payments' own write and outbox, the ledger's group commit.
pub mod payments {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use fintech_auth::{Kind, Role};
    use fintech_config::ConfigSource;
    use fintech_identity::mint::Minter;
    use fintech_kit::{Host, PlatformSettings, Service};
    use serde_json::{Value, json};
    use tokio_util::sync::CancellationToken;

    use super::figure;

    const PAYERS: usize = 64;

    async fn call(
        http: &reqwest::Client,
        token: &str,
        url: String,
        key: Option<String>,
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut req = http.post(url).bearer_auth(token).json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        anyhow::ensure!(status.is_success(), "{status}: {v}");
        Ok(v)
    }

    pub async fn run(concurrency: usize, seconds: u64) -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("fintech-bench-payments-{}", std::process::id()));
        let config = ConfigSource::from_figment(figment::Figment::new());
        let settings = PlatformSettings::load(&config)?;
        let shutdown = CancellationToken::new();
        let host = Host::embedded(config, settings, dir.clone(), shutdown.clone());
        let services: [&dyn Service; 6] = [
            &fintech_identity::IdentityService,
            &fintech_ledger::LedgerService,
            &fintech_accounts::AccountsService,
            &fintech_vault::VaultService,
            &fintech_risk::RiskService,
            &fintech_payments::PaymentsService,
        ];
        let app =
            host.start(&services).await.context("starting identity, ledger, accounts, vault, risk and payments")?;
        // Tokens straight from identity's issuer (no password hashing in the set-up).
        let minter = Minter::from_registry(&host.registry).context("identity's issuer")?;
        let operator = minter.staff(&[Role::Operator]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(fintech_http::server::serve(
            listener,
            app.router.clone(),
            shutdown.clone(),
            Duration::from_secs(5),
        ));
        println!(
            "payments benchmark: {concurrency} concurrent HTTP clients, {seconds} s, SQLite (WAL, synchronous=FULL)"
        );
        println!("  setting up {PAYERS} payers and a merchant ...");
        let http = fintech_http::http_client().pool_max_idle_per_host(concurrency).build()?;
        // Each customer registers themselves and opens their account; the operator verifies them.
        let open = |kind: Kind| {
            let (http, base, operator) = (http.clone(), base.clone(), operator.clone());
            let id = uuid::Uuid::now_v7().to_string();
            let own = minter.user(kind, &id);
            async move {
                let customer_kind = if kind == Kind::Merchant { "business" } else { "individual" };
                call(
                    &http,
                    &own,
                    format!("{base}/api/accounts/v1/customers"),
                    None,
                    json!({ "kind": customer_kind, "name": "Bench", "email": "bench@example.com" }),
                )
                .await?;
                call(
                    &http,
                    &operator,
                    format!("{base}/api/accounts/v1/customers/{id}/kyc"),
                    None,
                    json!({ "status": "verified" }),
                )
                .await?;
                let a = call(
                    &http,
                    &own,
                    format!("{base}/api/accounts/v1/accounts"),
                    None,
                    json!({ "customer_id": id, "currency": "USD" }),
                )
                .await?;
                Ok::<(String, String), anyhow::Error>((a["id"].as_str().unwrap_or_default().to_owned(), own))
            }
        };
        let (merchant, _) = open(Kind::Merchant).await?;
        let mut payers = Vec::new();
        for i in 0..PAYERS {
            let (payer, payer_token) = open(Kind::Customer).await?;
            call(
                &http,
                &operator,
                format!("{base}/api/payments/v1/topups"),
                Some(format!("bench-topup-{i}")),
                json!({ "account_id": payer, "amount_minor": 1_000_000_000i64, "currency": "USD" }),
            )
            .await?;
            payers.push((payer, payer_token));
        }
        println!("  paying ...");
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let (http, base, stop, count) = (http.clone(), base.clone(), stop.clone(), count.clone());
            let ((payer, payer_token), merchant) = (payers[c % PAYERS].clone(), merchant.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    call(
                        &http,
                        &payer_token,
                        format!("{base}/api/payments/v1/payments"),
                        Some(format!("bench-{c}-{i}")),
                        json!({ "payer_account_id": payer, "payee_account_id": merchant, "amount_minor": 1,
                                "currency": "USD" }),
                    )
                    .await?;
                    lat.push(t.elapsed().as_micros() as u64);
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, anyhow::Error>(lat)
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let f = figure(count.load(Ordering::Relaxed), started.elapsed(), lat);
        println!();
        println!("  payments end to end over HTTP  {f}");
        println!("  (target 13,000/s with p99 <= 20 ms; each payment makes 3 writes on the payments database (the");
        println!("   key's claim, the payment with its event, the stored answer), each joining a group commit, and");
        println!("   joins one ledger group commit; HTTP clients and server share the same 2 cores)");
        shutdown.cancel();
        let _ = server.await;
        app.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
