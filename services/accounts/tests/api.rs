//! Black-box API tests of accounts (with the ledger in the same process, and with the ledger in
//! another process over HTTP), on SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use fintech_accounts::AccountsService;
use fintech_auth::Role;
use fintech_db::sqlx::{self, Row};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// accounts' secret at identity when it calls the ledger over HTTP.
const ACCOUNTS_SECRET: &str = "accounts-test-service-secret-0123456789abcdef";

struct App {
    accounts: TestApp,
    /// identity and the ledger in another process, when accounts runs alone.
    ledger: Option<TestApp>,
    minter: Minter,
    /// An operator's token (staff with every role).
    staff: String,
}

impl App {
    fn new(accounts: TestApp, ledger: Option<TestApp>) -> App {
        let minter = Minter::from_registry(&ledger.as_ref().unwrap_or(&accounts).registry).unwrap();
        let staff = minter.staff(&[Role::Admin]);
        App { accounts, ledger, minter, staff }
    }
}

async fn together(backend: Backend) -> App {
    App::new(TestApp::spawn(&[&IdentityService, &LedgerService, &AccountsService], Spawn::new(backend)).await, None)
}

async fn apart(backend: Backend) -> App {
    let spawn = Spawn::new(backend).with("identity.service_secrets.accounts", ACCOUNTS_SECRET);
    let ledger = TestApp::spawn(&[&IdentityService, &LedgerService], spawn).await;
    let spawn = Spawn::new(backend)
        .with("accounts.ledger_url", ledger.base.clone())
        .with("auth.identity_url", ledger.base.clone())
        .with("auth.service_secret", ACCOUNTS_SECRET);
    App::new(TestApp::spawn(&[&AccountsService], spawn).await, Some(ledger))
}

impl App {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(&self.staff, method, path, body).await
    }

    async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.accounts.http.request(method, self.accounts.url("accounts", path)).bearer_auth(token);
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
        let token = self.minter.service("payments", "ledger");
        let resp =
            base.http.post(base.url("ledger", "/v1/transfers")).bearer_auth(token).json(&body).send().await.unwrap();
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

/// Customers register and see only themselves; another customer's ids answer as missing; roles
/// guard staff actions; unknown fields (`kyc_status`) are refused.
async fn customers_see_only_their_own(app: App) {
    use fintech_auth::Kind;
    let (ana, bob) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let (ana_token, bob_token) = (app.minter.user(Kind::Customer, &ana), app.minter.user(Kind::Customer, &bob));
    let me = json!({ "kind": "individual", "name": "Ana Lima", "email": "ana@example.com" });
    let (status, c) = app.call_as(&ana_token, reqwest::Method::POST, "/v1/customers", Some(me.clone())).await;
    assert_eq!((status, c["id"].as_str()), (StatusCode::CREATED, Some(ana.as_str())), "{c}");
    assert_code(
        app.call_as(&ana_token, reqwest::Method::POST, "/v1/customers", Some(me.clone())).await,
        StatusCode::CONFLICT,
        "customer_exists",
    );
    let business = json!({ "kind": "business", "name": "Shop", "email": "shop@example.com" });
    let (status, _) = app.call_as(&bob_token, reqwest::Method::POST, "/v1/customers", Some(business)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a person registers an individual");
    let mut mass = me.clone();
    mass["kyc_status"] = json!("verified");
    let (status, _) = app.call_as(&bob_token, reqwest::Method::POST, "/v1/customers", Some(mass)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "kyc_status cannot be set by its owner");
    app.call_as(&bob_token, reqwest::Method::POST, "/v1/customers", Some(me)).await;

    // Customers cannot verify themselves; the operator does.
    let verify = Some(json!({ "status": "verified" }));
    assert_code(
        app.call_as(&ana_token, reqwest::Method::POST, &format!("/v1/customers/{ana}/kyc"), verify.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let support = app.minter.staff(&[fintech_auth::Role::Support]);
    assert_code(
        app.call_as(&support, reqwest::Method::POST, &format!("/v1/customers/{ana}/kyc"), verify.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    for id in [&ana, &bob] {
        let (status, _) = app.post(&format!("/v1/customers/{id}/kyc"), json!({ "status": "verified" })).await;
        assert_eq!(status, StatusCode::OK);
    }
    let open = |customer: &str| Some(json!({ "customer_id": customer, "currency": "USD" }));
    let (status, account) = app.call_as(&ana_token, reqwest::Method::POST, "/v1/accounts", open(&ana)).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let account = account["id"].as_str().unwrap().to_owned();

    // bob sees none of ana's, and cannot open an account for her.
    assert_code(
        app.call_as(&bob_token, reqwest::Method::GET, &format!("/v1/customers/{ana}"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_code(
        app.call_as(&bob_token, reqwest::Method::GET, &format!("/v1/accounts/{account}"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_code(
        app.call_as(&bob_token, reqwest::Method::POST, "/v1/accounts", open(&ana)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customer_not_found",
    );
    assert_code(
        app.call_as(&bob_token, reqwest::Method::GET, "/v1/system-accounts", None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_code(
        app.call_as(&bob_token, reqwest::Method::GET, "/v1/accounts/system:fees:USD", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // ana, support staff and payments (with a token bound to accounts) see her account.
    for token in [&ana_token, &support, &app.minter.service("payments", "accounts")] {
        let (status, view) = app.call_as(token, reqwest::Method::GET, &format!("/v1/accounts/{account}"), None).await;
        assert_eq!((status, view["customer_id"].as_str()), (StatusCode::OK, Some(ana.as_str())), "{view}");
    }
    // A token for another audience, or of another service, is not accepted here.
    let (status, _) = app
        .call_as(
            &app.minter.service("payments", "ledger"),
            reqwest::Method::GET,
            &format!("/v1/accounts/{account}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_code(
        app.call_as(
            &app.minter.service("accounts", "accounts"),
            reqwest::Method::GET,
            &format!("/v1/accounts/{account}"),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_code(
        app.call_as(
            &ana_token,
            reqwest::Method::POST,
            &format!("/v1/accounts/{account}/status"),
            Some(json!({ "status": "frozen" })),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
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
    customers_see_only_their_own with together,
);
