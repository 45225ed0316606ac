//! Conservation under fire, end to end: 16 concurrent clients send thousands of random
//! payments (captured at once, or authorized then captured, canceled or left), refunds,
//! account-to-account transfers and top-ups over 53 accounts, through payments, accounts and
//! the ledger over real HTTP. First attempts are cut off now and then (a dropped connection),
//! database connections are killed (MariaDB), and the whole application is restarted halfway.
//! Every request is retried with the same Idempotency-Key until its answer is definitive.
//! Afterwards: the currency sums to zero, no account without overdraft is below zero, the money
//! held by customers, merchants and fees is exactly what was topped up, every acknowledged
//! payment is stored with the amounts its client saw, and replaying requests changes nothing.
//! On SQLite and MariaDB.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fintech_accounts::AccountsService;
use fintech_auth::{Kind, Role};
use fintech_db::Db;
use fintech_db::sqlx::{self, Row};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_payments::PaymentsService;
use fintech_risk::RiskService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use fintech_vault::VaultService;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const OPS_PER_CLIENT: usize = 150;
const PAYERS: usize = 50;
const MERCHANTS: usize = 3;
const OPENING_TOPUP: i64 = 20_000;

fn spawn(backend: Backend) -> Spawn {
    Spawn::new(backend)
}

const SERVICES: [&dyn fintech_kit::Service; 6] =
    [&IdentityService, &LedgerService, &AccountsService, &VaultService, &RiskService, &PaymentsService];

/// One request as sent: replayed verbatim at the end.
#[derive(Debug, Clone)]
struct Sent {
    token: String,
    path: String,
    key: String,
    body: Value,
    status: StatusCode,
    answer: Value,
}

/// Sends until the answer is definitive: not a dropped connection, a timeout, a 5xx or a 409
/// "still in progress". Some first attempts are cut off after a millisecond.
async fn send(
    http: &reqwest::Client,
    token: &str,
    base: &RwLock<String>,
    path: &str,
    key: &str,
    body: &Value,
    rng: &mut StdRng,
) -> (StatusCode, Value) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let url = format!("{}/api/payments{path}", base.read().unwrap());
        let mut req = http.post(url).bearer_auth(token).header("Idempotency-Key", key).json(body);
        if attempt == 1 && rng.random_ratio(1, 10) {
            req = req.timeout(Duration::from_millis(1));
        }
        if let Ok(resp) = req.send().await {
            let status = resp.status();
            if let Ok(v) = resp.json::<Value>().await {
                let in_progress = status == StatusCode::CONFLICT && v["code"] == "idempotency_key_in_use";
                if !status.is_server_error() && !in_progress {
                    return (status, v);
                }
            }
        }
        assert!(attempt < 2_000, "no definitive answer for {path} {body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a client knows of a payment it made: (captured, refunded, status).
type Known = HashMap<String, (i64, i64, String)>;

struct Shared {
    http: reqwest::Client,
    /// Each account's owner's token: payments and transfers are made by the payer.
    tokens: HashMap<String, String>,
    /// Staff with every role: top-ups, captures, cancels and refunds.
    staff: String,
    base: RwLock<String>,
    payers: Vec<String>,
    merchants: Vec<String>,
    topped_up: AtomicI64,
    done: AtomicUsize,
    sent: Mutex<Vec<Sent>>,
}

async fn client(n: usize, shared: Arc<Shared>) -> Known {
    let mut rng = StdRng::seed_from_u64(1000 + n as u64);
    let mut known: Known = HashMap::new();
    let call = async |rng: &mut StdRng, path: String, key: String, body: Value| {
        let payer = body["payer_account_id"].as_str().or(body["from_account_id"].as_str());
        let token = payer.and_then(|p| shared.tokens.get(p)).unwrap_or(&shared.staff).clone();
        let (status, answer) = send(&shared.http, &token, &shared.base, &path, &key, &body, rng).await;
        shared.sent.lock().unwrap().push(Sent { token, path, key, body, status, answer: answer.clone() });
        (status, answer)
    };
    for i in 0..OPS_PER_CLIENT {
        shared.done.fetch_add(1, Ordering::SeqCst);
        let payer = shared.payers[rng.random_range(0..PAYERS)].clone();
        let merchant = shared.merchants[rng.random_range(0..MERCHANTS)].clone();
        let key = format!("c{n}-{i}");
        let amount = rng.random_range(1..2_000i64);
        match rng.random_range(0..10) {
            // Pay at once, or authorize and then capture (all or part), cancel, or leave it.
            0..=6 => {
                let capture = rng.random_ratio(2, 3);
                let fee = if rng.random_bool(0.5) { amount / 20 } else { 0 };
                let body = json!({ "payer_account_id": payer, "payee_account_id": merchant, "amount_minor": amount,
                                   "currency": "USD", "fee_minor": fee, "capture": capture });
                let (status, p) = call(&mut rng, "/v1/payments".into(), key.clone(), body).await;
                if status == StatusCode::CONFLICT {
                    assert_eq!(p["code"], "insufficient_funds", "{p}");
                    continue;
                }
                assert_eq!(status, StatusCode::CREATED, "{p}");
                let id = p["id"].as_str().unwrap().to_owned();
                known.insert(
                    id.clone(),
                    (p["captured_minor"].as_i64().unwrap(), 0, p["status"].as_str().unwrap().into()),
                );
                if capture {
                    continue;
                }
                let (path, body) = match rng.random_range(0..10) {
                    0..=5 => {
                        (format!("/v1/payments/{id}/capture"), json!({ "amount_minor": rng.random_range(1..=amount) }))
                    }
                    6..=8 => (format!("/v1/payments/{id}/cancel"), json!({})),
                    _ => continue,
                };
                let (status, p) = call(&mut rng, path, format!("{key}-then"), body).await;
                assert_eq!(status, StatusCode::OK, "{p}");
                known.insert(id, (p["captured_minor"].as_i64().unwrap(), 0, p["status"].as_str().unwrap().into()));
            }
            // Refund part or all of what is left of one of this client's captured payments.
            7 => {
                let refundable: Vec<(String, i64)> = known
                    .iter()
                    .filter(|(_, (c, r, s))| matches!(s.as_str(), "captured" | "partially_refunded") && c > r)
                    .map(|(id, (c, r, _))| (id.clone(), c - r))
                    .collect();
                if refundable.is_empty() {
                    continue;
                }
                let (id, left) = refundable[rng.random_range(0..refundable.len())].clone();
                let body = json!({ "amount_minor": rng.random_range(1..=left) });
                let (status, p) = call(&mut rng, format!("/v1/payments/{id}/refunds"), key.clone(), body).await;
                if status == StatusCode::CONFLICT {
                    // The merchant may have paid out its balance in fees and refunds already.
                    assert_eq!(p["code"], "insufficient_funds", "{p}");
                    continue;
                }
                assert!(status.is_success(), "{status}: {p}");
                let refunded = p["refunded_minor"].as_i64().unwrap();
                known.insert(
                    id,
                    (p["captured_minor"].as_i64().unwrap(), refunded, p["status"].as_str().unwrap().into()),
                );
            }
            8 => {
                let mut to = shared.payers[rng.random_range(0..PAYERS)].clone();
                while to == payer {
                    to = shared.payers[rng.random_range(0..PAYERS)].clone();
                }
                let body =
                    json!({ "from_account_id": payer, "to_account_id": to, "amount_minor": amount, "currency": "USD" });
                let (status, p) = call(&mut rng, "/v1/transfers".into(), key.clone(), body).await;
                assert!(status == StatusCode::CREATED || p["code"] == "insufficient_funds", "{status}: {p}");
            }
            _ => {
                let body = json!({ "account_id": payer, "amount_minor": amount, "currency": "USD" });
                let (status, p) = call(&mut rng, "/v1/topups".into(), key.clone(), body).await;
                assert_eq!(status, StatusCode::CREATED, "{p}");
                shared.topped_up.fetch_add(amount, Ordering::SeqCst);
            }
        }
    }
    known
}

/// A customer registers and opens a USD account; staff verifies them. The account and the
/// owner's token.
async fn open(app: &TestApp, minter: &Minter, kind: &str) -> (String, String) {
    let customer = uuid::Uuid::now_v7().to_string();
    let token = minter.user(if kind == "business" { Kind::Merchant } else { Kind::Customer }, &customer);
    let staff = minter.staff(&[Role::Operator]);
    let post = |token: &str, path: &str, body: Value| {
        app.http.post(app.url("accounts", path)).bearer_auth(token).json(&body).send()
    };
    let c =
        post(&token, "/v1/customers", json!({ "kind": kind, "name": "N", "email": "n@example.com" })).await.unwrap();
    assert_eq!(c.status(), StatusCode::CREATED);
    post(&staff, &format!("/v1/customers/{customer}/kyc"), json!({ "status": "verified" })).await.unwrap();
    let a: Value = post(&token, "/v1/accounts", json!({ "customer_id": customer, "currency": "USD" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (a["id"].as_str().unwrap().to_owned(), token)
}

/// Kills the application user's other connections now and then (MariaDB only).
async fn connection_killer(db: Db, stop: Arc<AtomicBool>, hold: Arc<AtomicBool>, killed: Arc<AtomicUsize>) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Not while the services restart: a start whose connections are killed fails, as it
        // would crash-loop in a cluster; the test is about requests in flight.
        if hold.load(Ordering::SeqCst) {
            continue;
        }
        let Ok(rows) = sqlx::query(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE user = 'app' AND id <> CONNECTION_ID()",
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

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    sqlx::query(sql).fetch_one(db.pool()).await.unwrap().get(0)
}

async fn conservation(backend: Backend) {
    let app = TestApp::spawn(&SERVICES, spawn(backend)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let mut tokens = HashMap::new();
    let mut payers = Vec::new();
    for _ in 0..PAYERS {
        let (account, token) = open(&app, &minter, "individual").await;
        tokens.insert(account.clone(), token);
        payers.push(account);
    }
    let mut merchants = Vec::new();
    for _ in 0..MERCHANTS {
        merchants.push(open(&app, &minter, "business").await.0);
    }
    let shared = Arc::new(Shared {
        http: fintech_http::http_client().timeout(Duration::from_secs(30)).build().unwrap(),
        tokens,
        staff: minter.staff(&[Role::Admin]),
        base: RwLock::new(app.base.clone()),
        payers,
        merchants,
        topped_up: AtomicI64::new(0),
        done: AtomicUsize::new(0),
        sent: Mutex::new(Vec::new()),
    });
    let mut rng = StdRng::seed_from_u64(7);
    for (i, payer) in shared.payers.iter().enumerate() {
        let body = json!({ "account_id": payer, "amount_minor": OPENING_TOPUP, "currency": "USD" });
        let (status, p) =
            send(&shared.http, &shared.staff, &shared.base, "/v1/topups", &format!("open-{i}"), &body, &mut rng).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
        shared.topped_up.fetch_add(OPENING_TOPUP, Ordering::SeqCst);
    }

    let clients: Vec<_> = (0..CLIENTS).map(|n| tokio::spawn(client(n, shared.clone()))).collect();
    let stop_killer = Arc::new(AtomicBool::new(false));
    let hold_killer = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicUsize::new(0));
    let killer = (backend == Backend::MariaDb).then(|| {
        let url = app.database_urls.iter().find(|(s, _)| s == "payments").unwrap().1.clone();
        let (stop, hold, killed) = (stop_killer.clone(), hold_killer.clone(), killed.clone());
        tokio::spawn(async move {
            let db =
                Db::connect(&url, fintech_db::PoolLimits { max_connections: 1, ..Default::default() }).await.unwrap();
            connection_killer(db, stop, hold, killed).await;
        })
    });

    // Restart everything halfway, on the same databases and data folder.
    while shared.done.load(Ordering::SeqCst) < CLIENTS * OPS_PER_CLIENT / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hold_killer.store(true, Ordering::SeqCst);
    let (urls, dir, _keep) = app.stop().await;
    let app = TestApp::spawn(&SERVICES, Spawn { reuse: Some((urls, dir)), ..spawn(backend) }).await;
    hold_killer.store(false, Ordering::SeqCst);
    *shared.base.write().unwrap() = app.base.clone();
    let mut known = Known::new();
    for c in clients {
        known.extend(c.await.unwrap());
    }
    stop_killer.store(true, Ordering::SeqCst);
    if let Some(k) = killer {
        k.await.unwrap();
    }
    if backend == Backend::MariaDb {
        assert!(killed.load(Ordering::SeqCst) > 0, "connections were killed during the run");
    }

    let ledger = app.db("ledger").await;
    // The currency sums to zero and no hold is lopsided.
    let posted =
        scalar(&ledger, "SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS SIGNED) FROM ledger_accounts")
            .await;
    let pending = scalar(
        &ledger,
        "SELECT CAST(COALESCE(SUM(credits_pending - debits_pending), 0) AS SIGNED) FROM ledger_accounts",
    )
    .await;
    assert_eq!((posted, pending), (0, 0), "USD sums to zero, posted and pending");
    let negative = scalar(
        &ledger,
        "SELECT COUNT(*) FROM ledger_accounts WHERE allow_overdraft = 0 AND credits_posted - debits_posted - debits_pending < 0",
    )
    .await;
    assert_eq!(negative, 0, "no account without overdraft is below zero");
    // Customers, merchants and the fees account hold exactly what was topped up from the funding
    // account: nothing was created, lost or moved twice.
    let held = scalar(
        &ledger,
        "SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS SIGNED) FROM ledger_accounts \
         WHERE allow_overdraft = 0 OR id = 'system:fees:USD'",
    )
    .await;
    let funded = scalar(
        &ledger,
        "SELECT CAST(debits_posted - credits_posted AS SIGNED) FROM ledger_accounts WHERE id = 'system:funding:USD'",
    )
    .await;
    let topped_up = shared.topped_up.load(Ordering::SeqCst);
    assert_eq!((held, funded), (topped_up, topped_up), "money held equals money topped up");
    assert_eq!(scalar(&ledger, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM transfers").await, 0);

    // Every acknowledged payment is stored as its client last saw it.
    let payments = app.db("payments").await;
    for (id, (captured, refunded, status)) in &known {
        let row = sqlx::query("SELECT captured_minor, refunded_minor, status FROM payments WHERE id = ?")
            .bind(id)
            .fetch_optional(payments.pool())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged payment {id} is missing"));
        let stored: (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(&stored, &(*captured, *refunded, status.clone()), "payment {id}");
    }
    assert!(known.len() > CLIENTS * OPS_PER_CLIENT / 3, "enough payments were made: {}", known.len());

    // Replays: the same key and body answer exactly as the first time and move nothing.
    let journal = scalar(&ledger, "SELECT COUNT(*) FROM transfers").await;
    let sample: Vec<Sent> = shared.sent.lock().unwrap().iter().step_by(17).cloned().collect();
    for s in &sample {
        let (status, mut answer) = send(&shared.http, &s.token, &shared.base, &s.path, &s.key, &s.body, &mut rng).await;
        let mut first = s.answer.clone();
        // A problem carries the id of the request it answers: the replay's own.
        if status.is_client_error() {
            let (Some(then), Some(now)) = (first["request_id"].as_str(), answer["request_id"].as_str()) else {
                panic!("a problem without its request id: {first} / {answer}");
            };
            assert_ne!(then, now);
        }
        for v in [&mut first, &mut answer] {
            if let Some(o) = v.as_object_mut() {
                o.remove("request_id");
            }
        }
        assert_eq!((status, &answer), (s.status, &first), "replay of {} {}", s.path, s.key);
    }
    assert_eq!(scalar(&ledger, "SELECT COUNT(*) FROM transfers").await, journal, "replays moved no money");
}

fintech_testkit::on_both_engines!(conservation);
