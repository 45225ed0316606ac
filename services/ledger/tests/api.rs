//! Black-box API tests of the ledger over real HTTP, on SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fintech_db::Db;
use fintech_db::sqlx::{self, Row};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct App {
    app: TestApp,
    db: Db,
    /// payments' service token for the ledger.
    token: String,
    minter: Minter,
}

async fn spawn_app(backend: Backend) -> App {
    let spawn = Spawn::new(backend).with("ledger.expiry_sweep_ms", 20);
    let app = TestApp::spawn(&[&IdentityService, &LedgerService], spawn).await;
    let db = app.db("ledger").await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    App { app, db, token: minter.service("payments", "ledger"), minter }
}

impl App {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp =
            self.app.http.post(self.app.url("ledger", path)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.app.http.get(self.app.url("ledger", path)).bearer_auth(&self.token).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn account(&self, id: &str, currency: &str, overdraft: bool) {
        let (status, body) =
            self.post("/v1/accounts", json!({ "id": id, "currency": currency, "allow_overdraft": overdraft })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn transfer(&self, id: &str, debit: &str, credit: &str, amount: i64) -> (StatusCode, Value) {
        self.post("/v1/transfers", transfer(id, debit, credit, amount)).await
    }

    async fn balance(&self, id: &str) -> i64 {
        let (status, body) = self.get(&format!("/v1/accounts/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["balance_minor"].as_i64().unwrap()
    }

    /// Everything that a refused request must leave untouched.
    async fn snapshot(&self) -> Vec<String> {
        let mut rows: Vec<String> = sqlx::query(
            "SELECT id, status, debits_posted, credits_posted, debits_pending, credits_pending FROM ledger_accounts ORDER BY id",
        )
        .fetch_all(self.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                r.try_get::<String, _>(0).unwrap(),
                r.try_get::<String, _>(1).unwrap(),
                r.try_get::<i64, _>(2).unwrap(),
                r.try_get::<i64, _>(3).unwrap(),
                r.try_get::<i64, _>(4).unwrap(),
                r.try_get::<i64, _>(5).unwrap()
            )
        })
        .collect();
        for table in ["transfers", "outbox"] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(self.db.pool()).await.unwrap().get(0);
            rows.push(format!("{table}={n}"));
        }
        rows
    }
}

fn transfer(id: &str, debit: &str, credit: &str, amount: i64) -> Value {
    json!({ "id": id, "debit_account_id": debit, "credit_account_id": credit, "amount_minor": amount,
            "currency": "USD", "code": "payment" })
}

fn assert_code(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{code}: {body}");
    assert_eq!(body["code"], code, "{body}");
}

async fn accounts_transfers_and_idempotency(backend: Backend) {
    let app = spawn_app(backend).await;
    app.account("funding:USD", "USD", true).await;
    app.account("alice", "USD", false).await;
    app.account("bob", "USD", false).await;

    // Accounts: same settings → 200 with the account; different settings → 409.
    let (status, _) = app.post("/v1/accounts", json!({ "id": "alice", "currency": "USD" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post("/v1/accounts", json!({ "id": "alice", "currency": "EUR" })).await;
    assert_code(status, &body, StatusCode::CONFLICT, "account_id_reused");

    let (status, body) = app.transfer("fund-1", "funding:USD", "alice", 10_000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "posted");
    let (status, body) = app.transfer("pay-1", "alice", "bob", 2_500).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The same id and content replays the original; other content is refused.
    let resp = app
        .app
        .http
        .post(app.app.url("ledger", "/v1/transfers"))
        .bearer_auth(&app.token)
        .json(&transfer("pay-1", "alice", "bob", 2_500))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    let replay: Value = resp.json().await.unwrap();
    assert_eq!(replay["created_at"], body["created_at"]);
    let (status, body) = app.transfer("pay-1", "alice", "bob", 2_501).await;
    assert_code(status, &body, StatusCode::CONFLICT, "transfer_id_reused");

    assert_eq!(app.balance("alice").await, 7_500);
    assert_eq!(app.balance("bob").await, 2_500);
    assert_eq!(app.balance("funding:USD").await, -10_000);

    let (status, body) = app.get("/v1/transfers/pay-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["amount_minor"], 2_500);
    let (status, body) = app.get("/v1/transfers/nope").await;
    assert_code(status, &body, StatusCode::NOT_FOUND, "not_found");

    // History: newest first, paged by cursor, every posting once.
    for i in 0..5 {
        app.transfer(&format!("h-{i}"), "alice", "bob", 10 + i).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app.get(&format!("/v1/accounts/alice/postings?limit=2{cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for p in page["items"].as_array().unwrap() {
            seen.push(p["transfer_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["h-4", "h-3", "h-2", "h-1", "h-0", "pay-1", "fund-1"]);
}

async fn holds_post_void_and_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    app.account("funding:USD", "USD", true).await;
    app.account("alice", "USD", false).await;
    app.account("shop", "USD", false).await;
    app.transfer("fund", "funding:USD", "alice", 1_000).await;

    let hold = |id: &str, amount: i64, timeout_ms: Option<i64>| {
        let mut t = transfer(id, "alice", "shop", amount);
        t["pending"] = json!(true);
        if let Some(ms) = timeout_ms {
            t["timeout_ms"] = json!(ms);
        }
        t
    };
    let (status, body) = app.post("/v1/transfers", hold("h1", 600, None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, alice) = app.get("/v1/accounts/alice").await;
    assert_eq!((alice["balance_minor"].as_i64(), alice["available_minor"].as_i64()), (Some(1_000), Some(400)));
    // The hold reserves funds: another 600 does not fit.
    let (status, body) = app.post("/v1/transfers", hold("h2", 600, None)).await;
    assert_code(status, &body, StatusCode::CONFLICT, "insufficient_funds");

    // Post part of it: the rest is released.
    let (status, body) = app.post("/v1/transfers/h1/post", json!({ "id": "h1-post", "amount_minor": 700 })).await;
    assert_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "amount_exceeds_pending");
    let (status, body) = app.post("/v1/transfers/h1/post", json!({ "id": "h1-post", "amount_minor": 450 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app.post("/v1/transfers/h1/post", json!({ "id": "h1-post", "amount_minor": 450 })).await;
    assert_eq!(status, StatusCode::OK, "a replayed post is not a second post");
    let (status, body) = app.post("/v1/transfers/h1/void", json!({ "id": "h1-void" })).await;
    assert_code(status, &body, StatusCode::CONFLICT, "pending_already_resolved");
    let (_, alice) = app.get("/v1/accounts/alice").await;
    assert_eq!((alice["balance_minor"].as_i64(), alice["debits_pending"].as_i64()), (Some(550), Some(0)));
    assert_eq!(app.balance("shop").await, 450);

    // Void releases everything.
    app.post("/v1/transfers", hold("h3", 500, None)).await;
    let (status, body) = app.post("/v1/transfers/h3/void", json!({ "id": "h3-void" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["amount_minor"], 500);
    let (_, alice) = app.get("/v1/accounts/alice").await;
    assert_eq!((alice["available_minor"].as_i64(), alice["debits_pending"].as_i64()), (Some(550), Some(0)));

    // A hold lapses after its timeout; the sweeper releases it and nothing can post it.
    app.post("/v1/transfers", hold("h4", 300, Some(30))).await;
    let mut resolved = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_, t) = app.get("/v1/transfers/h4").await;
        if !t["resolved_by"].is_null() {
            resolved = t["resolved_by"].clone();
            break;
        }
    }
    assert_eq!(resolved["kind"], "expire", "the hold expired");
    let (status, body) = app.post("/v1/transfers/h4/post", json!({ "id": "h4-post" })).await;
    assert_code(status, &body, StatusCode::CONFLICT, "pending_already_resolved");
    let (_, alice) = app.get("/v1/accounts/alice").await;
    assert_eq!(alice["debits_pending"], 0);
    let (status, body) = app.post("/v1/transfers/fund/post", json!({ "id": "x" })).await;
    assert_code(status, &body, StatusCode::CONFLICT, "not_pending");
    let (status, body) = app.post("/v1/transfers/none/void", json!({ "id": "y" })).await;
    assert_code(status, &body, StatusCode::NOT_FOUND, "pending_not_found");
}

async fn bad_input_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.account("funding:USD", "USD", true).await;
    app.account("alice", "USD", false).await;
    app.account("bob", "USD", false).await;
    app.account("euro", "EUR", false).await;
    app.account("frozen", "USD", false).await;
    app.account("closed", "USD", false).await;
    app.account("big", "USD", false).await;
    app.account("mint", "USD", true).await;
    app.transfer("fund", "funding:USD", "alice", 1_000).await;
    let (status, body) = app.transfer("fund-big", "mint", "big", i64::MAX - 5).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/v1/accounts/frozen/status", json!({ "status": "frozen" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/v1/accounts/closed/status", json!({ "status": "closed" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/v1/accounts/alice/status", json!({ "status": "closed" })).await;
    assert_code(status, &body, StatusCode::CONFLICT, "account_not_empty");
    let (status, body) = app.post("/v1/accounts/closed/status", json!({ "status": "open" })).await;
    assert_code(status, &body, StatusCode::CONFLICT, "account_closed");
    let before = app.snapshot().await;

    let with = |patch: Value| {
        let mut t = transfer("bad-1", "alice", "bob", 100);
        for (k, v) in patch.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (with(json!({ "amount_minor": 0 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "amount_minor": -100 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "amount_minor": 1.5 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "amount_minor": "100" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (
            with(json!({ "amount_minor": 9_223_372_036_854_775_808u64 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (with(json!({ "currency": "XXX" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "currency": "usd" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "credit_account_id": "euro" })), StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch"),
        (with(json!({ "credit_account_id": "nobody" })), StatusCode::UNPROCESSABLE_ENTITY, "account_not_found"),
        (with(json!({ "debit_account_id": "nobody" })), StatusCode::UNPROCESSABLE_ENTITY, "account_not_found"),
        (with(json!({ "credit_account_id": "frozen" })), StatusCode::CONFLICT, "account_frozen"),
        (with(json!({ "debit_account_id": "closed" })), StatusCode::CONFLICT, "account_closed"),
        (with(json!({ "credit_account_id": "alice" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "id": "has space" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "id": "x".repeat(65) })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "debit_account_id": "../alice" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "amount_minor": 1_001 })), StatusCode::CONFLICT, "insufficient_funds"),
        (
            with(json!({ "debit_account_id": "mint", "credit_account_id": "alice", "amount_minor": 10 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_overflow",
        ),
        (
            with(json!({ "debit_account_id": "funding:USD", "credit_account_id": "big", "amount_minor": 10 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_overflow",
        ),
        (with(json!({ "balance": 1_000_000 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (with(json!({ "pending": true, "timeout_ms": 0 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
    ];
    for (body, status, code) in cases {
        let (got, problem) = app.post("/v1/transfers", body.clone()).await;
        assert_code(got, &problem, status, code);
    }
    // Batches: bad sizes, and per-item results that refuse only the bad items... here all bad.
    let (status, body) = app.post("/v1/transfers/batch", json!({ "transfers": [] })).await;
    assert_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let many: Vec<Value> = (0..1001).map(|i| transfer(&format!("b{i}"), "alice", "bob", 1)).collect();
    let (status, body) = app.post("/v1/transfers/batch", json!({ "transfers": many })).await;
    assert_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (status, body) = app
        .post(
            "/v1/transfers/batch",
            json!({ "transfers": [with(json!({ "amount_minor": 0 })), with(json!({ "amount_minor": 5_000 }))] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][0]["status"], 422);
    assert_eq!(body["results"][1]["problem"]["code"], "insufficient_funds");

    // No token, wrong token, malformed JSON, wrong method, bad path ids.
    let url = app.app.url("ledger", "/v1/transfers");
    let resp = app.app.http.post(&url).json(&with(json!({}))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.app.http.post(&url).bearer_auth("wrong").json(&with(json!({}))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Only accounts and payments write; support staff may read; nobody else.
    use fintech_auth::{Kind, Role};
    let support = app.minter.staff(&[Role::Support]);
    for (token, status) in [
        (app.minter.user(Kind::Customer, "c-1"), StatusCode::FORBIDDEN),
        (support.clone(), StatusCode::FORBIDDEN),
        (app.minter.service("contact-us", "ledger"), StatusCode::FORBIDDEN),
        (app.minter.service("payments", "accounts"), StatusCode::UNAUTHORIZED),
    ] {
        let resp = app.app.http.post(&url).bearer_auth(&token).json(&with(json!({}))).send().await.unwrap();
        assert_eq!(resp.status(), status);
    }
    let resp =
        app.app.http.get(app.app.url("ledger", "/v1/accounts/alice")).bearer_auth(&support).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "support staff reads");
    let resp = app
        .app
        .http
        .post(&url)
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app.app.http.put(&url).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = app.get("/v1/accounts/a%20b").await;
    assert_code(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.post("/v1/accounts/frozen/status", json!({ "status": "gone" })).await;
    assert_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    assert_eq!(app.snapshot().await, before, "refused requests changed nothing");
}

async fn batch_applies_items_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    app.account("funding:USD", "USD", true).await;
    app.account("alice", "USD", false).await;
    app.account("bob", "USD", false).await;
    let items = vec![
        transfer("b1", "funding:USD", "alice", 100),
        transfer("b2", "alice", "bob", 80),
        transfer("b3", "alice", "bob", 80),
        transfer("b1", "funding:USD", "alice", 100),
        transfer("b4", "bob", "alice", 30),
    ];
    let (status, body) = app.post("/v1/transfers/batch", json!({ "transfers": items })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<i64> =
        body["results"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [201, 201, 409, 200, 201], "{body}");
    assert_eq!(app.balance("alice").await, 50);
    assert_eq!(app.balance("bob").await, 50);
}

fintech_testkit::on_both_engines!(
    accounts_transfers_and_idempotency,
    holds_post_void_and_expire,
    bad_input_changes_nothing,
    batch_applies_items_in_order,
);
