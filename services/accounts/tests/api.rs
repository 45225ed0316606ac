//! Black-box API tests of accounts (with the ledger in the same process, and with the ledger in
//! another process over HTTP), on SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use fintech_accounts::AccountsService;
use fintech_db::sqlx::{self, Row};
use fintech_ledger::LedgerService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAFF: &str = "accounts-test-staff-token-0123456789abcdef";
const LEDGER: &str = "ledger-test-service-token-0123456789abcdef";

struct App {
    accounts: TestApp,
    /// The ledger's own app when it runs in another process.
    ledger: Option<TestApp>,
}

async fn together(backend: Backend) -> App {
    let spawn = Spawn::new(backend)
        .with("accounts.placeholder_staff_token", STAFF)
        .with("ledger.placeholder_service_token", LEDGER);
    App { accounts: TestApp::spawn(&[&LedgerService, &AccountsService], spawn).await, ledger: None }
}

async fn apart(backend: Backend) -> App {
    let ledger =
        TestApp::spawn(&[&LedgerService], Spawn::new(backend).with("ledger.placeholder_service_token", LEDGER)).await;
    let spawn = Spawn::new(backend)
        .with("accounts.placeholder_staff_token", STAFF)
        .with("accounts.ledger_url", ledger.base.clone())
        .with("accounts.ledger_token", LEDGER);
    App { accounts: TestApp::spawn(&[&AccountsService], spawn).await, ledger: Some(ledger) }
}

impl App {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.accounts.http.request(method, self.accounts.url("accounts", path)).bearer_auth(STAFF);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Moves money in the ledger directly (as payments will).
    async fn fund(&self, account: &str, amount: i64) {
        let base = self.ledger.as_ref().unwrap_or(&self.accounts);
        let body = json!({ "id": format!("fund-{account}"), "debit_account_id": "system:funding:USD",
                           "credit_account_id": account, "amount_minor": amount, "currency": "USD", "code": "funding" });
        let resp =
            base.http.post(base.url("ledger", "/v1/transfers")).bearer_auth(LEDGER).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    async fn customer(&self, kind: &str) -> String {
        let (status, c) =
            self.post("/v1/customers", json!({ "kind": kind, "name": "Ana Lima", "email": "ana@example.com" })).await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        c["id"].as_str().unwrap().to_owned()
    }

    async fn counts(&self) -> (i64, i64, i64) {
        let db = self.accounts.db("accounts").await;
        let mut out = Vec::new();
        for sql in ["SELECT COUNT(*) FROM customers", "SELECT COUNT(*) FROM accounts", "SELECT COUNT(*) FROM outbox"] {
            out.push(sqlx::query(sql).fetch_one(db.pool()).await.unwrap().get::<i64, _>(0));
        }
        (out[0], out[1], out[2])
    }
}

fn assert_code(got: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{code}: {}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
}

async fn lifecycle(app: App) {
    let (status, system) = app.get("/v1/system-accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(system["items"].as_array().unwrap().len(), 9, "settlement, fees, funding in USD, EUR, GBP");

    let ana = app.customer("individual").await;
    assert_code(
        app.post("/v1/accounts", json!({ "customer_id": ana, "currency": "USD" })).await,
        StatusCode::CONFLICT,
        "kyc_not_verified",
    );
    let (status, c) = app.post(&format!("/v1/customers/{ana}/kyc"), json!({ "status": "verified" })).await;
    assert_eq!((status, c["kyc_status"].as_str()), (StatusCode::OK, Some("verified")));
    let (status, usd) = app.post("/v1/accounts", json!({ "customer_id": ana, "currency": "USD" })).await;
    assert_eq!(status, StatusCode::CREATED, "{usd}");
    assert_eq!((usd["kind"].as_str(), usd["balance_minor"].as_i64()), (Some("customer"), Some(0)));
    assert_code(
        app.post("/v1/accounts", json!({ "customer_id": ana, "currency": "USD" })).await,
        StatusCode::CONFLICT,
        "account_exists",
    );
    let (status, _) = app.post("/v1/accounts", json!({ "customer_id": ana, "currency": "EUR" })).await;
    assert_eq!(status, StatusCode::CREATED);

    let shop = app.customer("business").await;
    app.post(&format!("/v1/customers/{shop}/kyc"), json!({ "status": "verified" })).await;
    let (_, merchant) = app.post("/v1/accounts", json!({ "customer_id": shop, "currency": "USD" })).await;
    assert_eq!(merchant["kind"], "merchant");

    // Balances come from the ledger; money blocks closing; frozen and closed reach the ledger.
    let id = usd["id"].as_str().unwrap();
    app.fund(id, 1_234).await;
    let (_, view) = app.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!(view["balance_minor"], 1_234);
    assert_code(
        app.post(&format!("/v1/accounts/{id}/status"), json!({ "status": "closed" })).await,
        StatusCode::CONFLICT,
        "account_not_empty",
    );
    let (status, view) = app.post(&format!("/v1/accounts/{id}/status"), json!({ "status": "frozen" })).await;
    assert_eq!((status, view["status"].as_str()), (StatusCode::OK, Some("frozen")));
    let eur = app.post("/v1/accounts", json!({ "customer_id": shop, "currency": "EUR" })).await.1;
    let eur = eur["id"].as_str().unwrap();
    let (status, view) = app.post(&format!("/v1/accounts/{eur}/status"), json!({ "status": "closed" })).await;
    assert_eq!((status, view["status"].as_str()), (StatusCode::OK, Some("closed")));
    assert_code(
        app.post(&format!("/v1/accounts/{eur}/status"), json!({ "status": "open" })).await,
        StatusCode::CONFLICT,
        "invalid_status_change",
    );
    assert_code(
        app.post("/v1/accounts/system:fees:USD/status", json!({ "status": "frozen" })).await,
        StatusCode::CONFLICT,
        "invalid_status_change",
    );
}

async fn bad_input_changes_nothing(app: App) {
    let ana = app.customer("individual").await;
    let before = app.counts().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "name": "A", "email": "nope" }), "email"),
        (json!({ "name": "A", "email": "a@b.co", "phone": "0123" }), "phone"),
        (json!({ "name": "", "email": "a@b.co" }), "name"),
        (json!({ "name": "A", "email": "a@b.co", "kind": "robot" }), "kind"),
        (json!({ "name": "A", "email": "a@b.co", "kyc_status": "verified" }), "body"),
        (json!({ "email": "a@b.co" }), "name"),
    ];
    for (body, field) in cases {
        let (status, problem) = app.post("/v1/customers", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{field}: {problem}");
    }
    assert_code(
        app.post("/v1/accounts", json!({ "customer_id": ana, "currency": "XXX" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_code(
        app.post("/v1/accounts", json!({ "customer_id": "x", "currency": "USD" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let nobody = uuid::Uuid::now_v7().to_string();
    assert_code(
        app.post("/v1/accounts", json!({ "customer_id": nobody, "currency": "USD" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customer_not_found",
    );
    assert_code(
        app.post("/v1/accounts", json!({ "customer_id": ana, "currency": "USD" })).await,
        StatusCode::CONFLICT,
        "kyc_not_verified",
    );
    assert_code(
        app.post(&format!("/v1/customers/{ana}/kyc"), json!({ "status": "maybe" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_code(
        app.post(&format!("/v1/customers/{nobody}/kyc"), json!({ "status": "verified" })).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_code(app.get("/v1/customers/not-an-id").await, StatusCode::NOT_FOUND, "not_found");
    assert_code(app.get("/v1/accounts/acc_nope").await, StatusCode::NOT_FOUND, "not_found");
    assert_code(
        app.post("/v1/accounts/acc_nope/status", json!({ "status": "frozen" })).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let resp = app.accounts.http.get(app.accounts.url("accounts", "/v1/system-accounts")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.counts().await, before, "refused requests changed nothing");
}

macro_rules! on_both_engines {
    ($($name:ident with $make:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::$make(super::Backend::Sqlite).await).await })*
        }
        mod mariadb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::$make(super::Backend::MariaDb).await).await })*
        }
    };
}

async fn lifecycle_in_process(app: App) {
    lifecycle(app).await;
}

async fn lifecycle_over_http(app: App) {
    lifecycle(app).await;
}

on_both_engines!(
    lifecycle_in_process with together,
    lifecycle_over_http with apart,
    bad_input_changes_nothing with together,
);
