//! Conservation under fire: 16 concurrent clients send thousands of random transfers and holds
//! over 52 accounts in two currencies, with requests abandoned mid-flight, database connections
//! killed (MariaDB) and the service restarted during the run. Afterwards: every currency sums to
//! zero, no account without overdraft is below zero, every posting is there once, balances
//! equal their postings, and every acknowledged transfer is present. On SQLite and MariaDB.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fintech_db::Db;
use fintech_db::sqlx::{self, Row};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const OPS_PER_CLIENT: usize = 250;
const CURRENCIES: [(&str, usize); 2] = [("USD", 40), ("EUR", 12)];
const OPENING_BALANCE: i64 = 10_000;

fn spawn(backend: Backend) -> Spawn {
    Spawn::new(backend).with("ledger.expiry_sweep_ms", 50)
}

fn accounts(currency: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{}-{i}", currency.to_lowercase())).collect()
}

/// Sends until the answer is definitive (not a dropped connection, timeout or 503), retrying
/// with the same body, so the transfer id makes retries safe. Some first attempts are cut off
/// after a millisecond, like a client that gives up and reconnects.
async fn send(
    http: &reqwest::Client,
    token: &str,
    base: &RwLock<String>,
    path: &str,
    body: &Value,
    rng: &mut StdRng,
) -> (StatusCode, Value) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let url = format!("{}/api/ledger{path}", base.read().unwrap());
        let mut req = http.post(url).bearer_auth(token).json(body);
        if attempt == 1 && rng.random_ratio(1, 10) {
            req = req.timeout(Duration::from_millis(1));
        }
        match req.send().await {
            Ok(resp) if resp.status() != StatusCode::SERVICE_UNAVAILABLE => {
                let status = resp.status();
                if let Ok(v) = resp.json::<Value>().await {
                    return (status, v);
                }
            }
            _ => {}
        }
        assert!(attempt < 2_000, "no definitive answer for {body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn client(
    n: usize,
    http: reqwest::Client,
    token: String,
    base: Arc<RwLock<String>>,
    acked: Arc<Mutex<Vec<String>>>,
    done: Arc<AtomicUsize>,
) {
    let mut rng = StdRng::seed_from_u64(n as u64);
    for i in 0..OPS_PER_CLIENT {
        let (currency, count) = CURRENCIES[rng.random_range(0..CURRENCIES.len())];
        let ids = accounts(currency, count);
        let debit = &ids[rng.random_range(0..count)];
        let mut credit = &ids[rng.random_range(0..count)];
        while credit == debit {
            credit = &ids[rng.random_range(0..count)];
        }
        let id = format!("c{n}-{i}");
        let amount = rng.random_range(1..3_000);
        let pending = rng.random_ratio(1, 5);
        let body = json!({ "id": id, "debit_account_id": debit, "credit_account_id": credit, "amount_minor": amount,
                           "currency": currency, "code": "payment", "pending": pending });
        let (status, answer) = send(&http, &token, &base, "/v1/transfers", &body, &mut rng).await;
        match status {
            StatusCode::CREATED | StatusCode::OK => acked.lock().unwrap().push(id.clone()),
            StatusCode::CONFLICT => assert_eq!(answer["code"], "insufficient_funds", "{answer}"),
            other => panic!("unexpected {other}: {answer}"),
        }
        if pending && status.is_success() {
            // Resolve most holds: post part or all, or void; leave some to expire or to hang.
            let choice = rng.random_range(0..10);
            let (path, resolve) = match choice {
                0..=4 => ("post", json!({ "id": format!("{id}-post"), "amount_minor": rng.random_range(1..=amount) })),
                5..=7 => ("void", json!({ "id": format!("{id}-void") })),
                _ => continue,
            };
            let (status, answer) =
                send(&http, &token, &base, &format!("/v1/transfers/{id}/{path}"), &resolve, &mut rng).await;
            assert!(status.is_success(), "{status}: {answer}");
            acked.lock().unwrap().push(resolve["id"].as_str().unwrap().to_owned());
        }
        done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Kills every other connection of the application user now and then (MariaDB only).
async fn connection_killer(db: Db, stop: Arc<AtomicBool>, hold: Arc<AtomicBool>, killed: Arc<AtomicUsize>) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Not while the services restart: a start whose connections are killed fails, as it
        // would crash-loop in a cluster; the test is about requests in flight.
        if hold.load(Ordering::SeqCst) {
            continue;
        }
        let Ok(rows) = sqlx::query(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE user = 'app' AND id <> CONNECTION_ID() \
             AND db = DATABASE()",
        )
        .fetch_all(db.pool())
        .await
        else {
            continue;
        };
        for row in rows {
            let id: i64 = row.get(0);
            if sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}"))).execute(db.pool()).await.is_ok() {
                killed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

async fn conservation(backend: Backend) {
    let started = Instant::now();
    let app = TestApp::spawn(&[&IdentityService, &LedgerService], spawn(backend)).await;
    let token = Minter::from_registry(&app.registry).unwrap().service("payments", "ledger");
    let http = fintech_http::http_client().timeout(Duration::from_secs(30)).build().unwrap();
    let base = Arc::new(RwLock::new(app.base.clone()));
    let mut setup_rng = StdRng::seed_from_u64(99);
    for (currency, count) in CURRENCIES {
        let funding = format!("funding:{currency}");
        let (s, _) = send(
            &http,
            &token,
            &base,
            "/v1/accounts",
            &json!({ "id": funding, "currency": currency, "allow_overdraft": true }),
            &mut setup_rng,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        for id in accounts(currency, count) {
            let (s, answer) =
                send(&http, &token, &base, "/v1/accounts", &json!({ "id": id, "currency": currency }), &mut setup_rng)
                    .await;
            assert!(s.is_success(), "opening {id}: {s} {answer}");
            let fund = json!({ "id": format!("open-{id}"), "debit_account_id": funding, "credit_account_id": id,
                               "amount_minor": OPENING_BALANCE, "currency": currency, "code": "funding" });
            let (s, answer) = send(&http, &token, &base, "/v1/transfers", &fund, &mut setup_rng).await;
            assert!(s.is_success(), "funding {id}: {s} {answer}");
        }
    }

    let acked = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(n, http.clone(), token.clone(), base.clone(), acked.clone(), done.clone())))
        .collect();
    let stop_killer = Arc::new(AtomicBool::new(false));
    let hold_killer = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicUsize::new(0));
    let killer = (backend == Backend::MariaDb).then(|| {
        let url = app.database_urls.iter().find(|(s, _)| s == "ledger").unwrap().1.clone();
        let (stop, hold, killed) = (stop_killer.clone(), hold_killer.clone(), killed.clone());
        tokio::spawn(async move {
            let db =
                Db::connect(&url, fintech_db::PoolLimits { max_connections: 1, ..Default::default() }).await.unwrap();
            connection_killer(db, stop, hold, killed).await;
        })
    });

    // Restart the service mid-run, on the same database and data folder.
    while done.load(Ordering::SeqCst) < CLIENTS * OPS_PER_CLIENT / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hold_killer.store(true, Ordering::SeqCst);
    let (urls, dir, _keep) = app.stop().await;
    let app =
        TestApp::spawn(&[&IdentityService, &LedgerService], Spawn { reuse: Some((urls, dir)), ..spawn(backend) }).await;
    hold_killer.store(false, Ordering::SeqCst);
    *base.write().unwrap() = app.base.clone();
    for c in clients {
        c.await.unwrap();
    }
    stop_killer.store(true, Ordering::SeqCst);
    if let Some(k) = killer {
        k.await.unwrap();
    }

    let db = app.db("ledger").await;
    // Every currency sums to zero; holds on both sides match.
    for (currency, _) in CURRENCIES {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS SIGNED), \
             CAST(COALESCE(SUM(credits_pending - debits_pending), 0) AS SIGNED) FROM ledger_accounts WHERE currency = ?",
        )
        .bind(currency)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(row.get::<i64, _>(0), 0, "{currency} posted balances sum to zero");
        assert_eq!(row.get::<i64, _>(1), 0, "{currency} holds balance out");
    }
    // No customer account below zero available.
    let negative: i64 = sqlx::query(
        "SELECT COUNT(*) FROM ledger_accounts WHERE allow_overdraft = 0 AND credits_posted - debits_posted - debits_pending < 0",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
    .get(0);
    assert_eq!(negative, 0);
    // The journal: no transfer twice, and its postings (each posting transfer debits one account
    // and credits another) explain every balance.
    let duplicates: i64 =
        sqlx::query("SELECT COUNT(*) - COUNT(DISTINCT id) FROM transfers").fetch_one(db.pool()).await.unwrap().get(0);
    assert_eq!(duplicates, 0, "no transfer is recorded twice");
    let rows = sqlx::query(
        "SELECT a.id, a.credits_posted - a.debits_posted, \
         CAST(COALESCE((SELECT SUM(t.amount_minor) FROM transfers t WHERE t.credit_account_id = a.id \
                        AND t.kind IN ('posted', 'post')), 0) \
            - COALESCE((SELECT SUM(t.amount_minor) FROM transfers t WHERE t.debit_account_id = a.id \
                        AND t.kind IN ('posted', 'post')), 0) AS SIGNED) \
         FROM ledger_accounts a",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut balances = BTreeMap::new();
    for row in rows {
        let (id, balance, from_postings): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(balance, from_postings, "{id}: balance equals its postings");
        balances.insert(id, balance);
    }
    // Every acknowledged transfer is there after the restart.
    let stored: HashSet<String> = sqlx::query("SELECT id FROM transfers")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let acked = acked.lock().unwrap().clone();
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
    println!(
        "{backend:?}: {} acknowledged transfers, {} connections killed, {:.1} s",
        acked.len(),
        killed.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    assert!(acked.len() > CLIENTS * OPS_PER_CLIENT / 2, "most transfers went through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conservation_under_restart_and_dropped_requests() {
    conservation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_conservation_under_restart_and_killed_connections() {
    conservation(Backend::MariaDb).await;
}
