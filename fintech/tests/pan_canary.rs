//! The PAN canary test: Luhn-valid canary card numbers and CVVs go through every flow that
//! takes input, the error paths included (bad expiry, wrong types, unknown fields, a number in
//! free text, in a URL path, in headers, in an Idempotency-Key, in another customer's request).
//! Afterwards no log line, no file of the data folder (every database with its WAL, the bucket,
//! the dead letters, the key file) and no answer holds a full canary number or a canary CVV
//! next to its field name: only vault's ciphertext.
//!
//! Not covered yet: SMS and e-mail outboxes (the notifications service is not built), and a
//! handler panic carrying card data (no handler panics on input).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use fintech_auth::{Kind, Role};
use fintech_identity::mint::Minter;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use fintech_vault::acquirer::test_cards;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The check digit that makes `prefix` Luhn-valid.
fn with_check_digit(prefix: &str) -> String {
    (0..10).map(|d| format!("{prefix}{d}")).find(|n| fintech_types::card::luhn_valid(n)).unwrap()
}

/// Canary CVVs: each must never be found next to a CVV field name.
const CVVS: [&str; 3] = ["739", "826", "5914"];

fn cvv_patterns() -> Vec<String> {
    CVVS.iter()
        .flat_map(|c| {
            [format!("\"cvv\":\"{c}\""), format!("\"cvv\": \"{c}\""), format!("\"cvv\":{c}"), format!("cvv={c}")]
        })
        .collect()
}

fn every_file(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            every_file(&path, out);
        } else {
            out.push(path);
        }
    }
}

struct Client<'a> {
    app: &'a TestApp,
    answers: Mutex<Vec<String>>,
}

impl Client<'_> {
    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        self.answers.lock().unwrap().push(text.clone());
        assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE, "{status}: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(
        &self,
        service: &str,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.app.http.post(self.app.url(service, path)).bearer_auth(token).json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    async fn post_raw(&self, service: &str, path: &str, token: &str, key: &str, body: String) -> (StatusCode, Value) {
        let req = self
            .app
            .http
            .post(self.app.url(service, path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body);
        self.send(req).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_or_cvv_outside_vault() {
    let logs: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    fintech_telemetry::init_to("pan-canary", "debug", logs.clone());
    let app = TestApp::spawn(fintech::services::SERVICES, Spawn::new(Backend::Sqlite)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let c = Client { app: &app, answers: Mutex::new(Vec::new()) };
    let canaries: Vec<String> = ["400012345678901", "555512345678901", "3712345678901", "601112345678901"]
        .iter()
        .map(|p| with_check_digit(p))
        .collect();
    let amex = canaries[2].clone();
    let mut all_pans = canaries.clone();
    all_pans.extend([test_cards::APPROVED, test_cards::DECLINED, test_cards::TIMEOUT].map(str::to_owned));

    // A customer with an account, a shop with one, money.
    let staff = minter.staff(&[Role::Admin]);
    let mut open = Vec::new();
    for (kind, customer_kind) in [(Kind::Customer, "individual"), (Kind::Merchant, "business")] {
        let id = uuid::Uuid::now_v7().to_string();
        let token = minter.user(kind, &id);
        let body = json!({ "kind": customer_kind, "name": format!("Name {}", canaries[0]), "email": "x@example.com" });
        assert_eq!(c.post("accounts", "/v1/customers", &token, None, body).await.0, StatusCode::CREATED);
        c.post("accounts", &format!("/v1/customers/{id}/kyc"), &staff, None, json!({ "status": "verified" })).await;
        let (_, account) =
            c.post("accounts", "/v1/accounts", &token, None, json!({ "customer_id": id, "currency": "USD" })).await;
        open.push((token, account["id"].as_str().unwrap().to_owned()));
    }
    let ((ana, _), (_shop, shop_account)) = (open[0].clone(), open[1].clone());
    let bob = minter.user(Kind::Customer, &uuid::Uuid::now_v7().to_string());

    // Store every card, twice; then the error paths of storing.
    let mut tokens = Vec::new();
    for pan in &all_pans {
        let spaced: String = pan
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|g| g.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        for number in [pan.clone(), spaced] {
            let (status, card) = c
                .post("vault", "/v1/cards", &ana, None, json!({ "number": number, "exp_month": 12, "exp_year": 2031 }))
                .await;
            assert!(status.is_success(), "{card}");
            tokens.push((pan.clone(), card["token"].as_str().unwrap().to_owned()));
        }
    }
    let (y, _) = fintech_vault::domain::Expiry::current();
    for pan in &canaries {
        for body in [
            format!(r#"{{"number": "{pan}", "exp_month": 12, "exp_year": {}}}"#, y - 1),
            format!(r#"{{"number": "{pan}", "exp_month": 13, "exp_year": 2031}}"#),
            format!(r#"{{"number": {pan}, "exp_month": 12, "exp_year": 2031}}"#),
            format!(r#"{{"number": "{pan}", "exp_month": "{pan}", "exp_year": 2031}}"#),
            format!(r#"{{"number": "{pan}", "exp_month": 12, "exp_year": 2031, "cvv": "{}"}}"#, CVVS[0]),
            format!(r#"{{"number": "{pan}", "exp_month": 12, "exp_year": 2031, "pan": "{pan}"}}"#),
            format!(r#"{{"number": "{pan}x", "exp_month": 12, "exp_year": 2031}}"#),
            format!(r#"{{"number": "{pan}", "exp_month": 12"#),
        ] {
            let (status, _) = c.post_raw("vault", "/v1/cards", &ana, "unused", body).await;
            assert!(status.is_client_error(), "{status}");
        }
        // In a URL path, a request id, a user agent.
        let req = app
            .http
            .get(app.url("vault", &format!("/v1/cards/{pan}")))
            .bearer_auth(&ana)
            .header("x-request-id", pan.as_str())
            .header("user-agent", format!("agent {pan}"));
        assert_eq!(c.send(req).await.0, StatusCode::NOT_FOUND);
    }

    // Card payments with every card and the canary CVVs; error paths with card data in them.
    let pay = |token: &str, cvv: &str| {
        json!({ "card_token": token, "payee_account_id": shop_account, "amount_minor": 250, "currency": "USD",
                "cvv": cvv, "description": "order" })
    };
    for (i, (pan, token)) in tokens.iter().enumerate().step_by(2) {
        let cvv = if *pan == amex { CVVS[2] } else { CVVS[i % 2] };
        let key = format!("canary-{i}");
        let (status, _) = c.post("payments", "/v1/card-payments", &ana, Some(&key), pay(token, cvv)).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The timeout card: the retry with the same key gets the outcome.
            let (status, _) = c.post("payments", "/v1/card-payments", &ana, Some(&key), pay(token, cvv)).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        for (n, body) in [
            pay(token, "12"),
            pay(&format!("card_{pan}"), cvv),
            json!({ "card_token": token, "payee_account_id": shop_account, "amount_minor": 250, "currency": "USD", "cvv": 739 }),
            json!({ "card_token": pan, "payee_account_id": shop_account, "amount_minor": 250, "currency": "USD", "cvv": cvv }),
            json!({ "card_token": token, "payee_account_id": shop_account, "amount_minor": pan, "currency": "USD", "cvv": cvv }),
            json!({ "card_token": token, "payee_account_id": shop_account, "amount_minor": 250, "currency": "USD",
                    "cvv": cvv, "description": format!("card {pan}") }),
            json!({ "card_token": token, "payee_account_id": shop_account, "amount_minor": 250, "currency": "USD",
                    "cvv": cvv, "number": pan }),
        ]
        .into_iter()
        .enumerate()
        {
            c.post("payments", "/v1/card-payments", &ana, Some(&format!("canary-{i}-bad-{n}")), body).await;
        }
        // Someone else's card; a card number as the Idempotency-Key (stored hashed).
        c.post("payments", "/v1/card-payments", &bob, Some(&format!("bob-{i}")), pay(token, cvv)).await;
        c.post("payments", "/v1/card-payments", &ana, Some(pan), pay(&format!("card_{i}x"), cvv)).await;
    }

    // Free text elsewhere: contact requests, sign-up, staff reading them.
    for pan in &canaries {
        let body = json!({ "name": format!("Ana {pan}"), "email": "ana@example.com", "subject": format!("card {pan}"),
                           "message": format!("My card {pan} cvv {} was declined", CVVS[0]) });
        assert_eq!(
            c.send(app.http.post(app.url("contact-us", "/v1/requests")).json(&body)).await.0,
            StatusCode::CREATED
        );
        c.post("identity", "/v1/sign-up", "none", None, json!({ "email": "z@example.com", "password": pan })).await;
        c.post("identity", "/v1/sign-in", "none", None, json!({ "email": "z@example.com", "password": pan })).await;
    }
    let support = minter.staff(&[Role::Support]);
    c.send(app.http.get(app.url("contact-us", "/v1/requests")).bearer_auth(&support)).await;

    // Let the outbox relays publish, then stop everything so that every file is complete.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let data_dir = app.data_dir.clone();
    let answers = std::mem::take(&mut *c.answers.lock().unwrap());
    drop(c);
    drop(minter);
    let (_, _, _keep) = app.stop().await;

    let pans: Vec<String> = all_pans.iter().map(|p| (*p).clone()).collect();
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.lines().count() > 100, "the logs were captured: {} lines", logged.lines().count());
    let mut files = Vec::new();
    every_file(&data_dir, &mut files);
    assert!(files.iter().any(|f| f.ends_with("vault.db")), "{files:?}");
    let mut places: Vec<(String, String)> = vec![("the logs".into(), logged)];
    for answer in &answers {
        places.push(("an answer".into(), answer.clone()));
    }
    for file in &files {
        places.push((file.display().to_string(), String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned()));
    }
    for (place, text) in &places {
        for pan in &pans {
            let groups: Vec<String> = pan.chars().collect::<Vec<_>>().chunks(4).map(|g| g.iter().collect()).collect();
            for form in [pan.clone(), groups.join(" "), groups.join("-")] {
                assert!(!text.contains(&form), "a card number ({}...) in {place}", &form[..6]);
            }
        }
        for pattern in cvv_patterns() {
            assert!(!text.contains(&pattern), "a CVV ({pattern}) in {place}");
        }
    }
    println!("checked {} log bytes, {} answers and {} files", places[0].1.len(), answers.len(), files.len());
}
