//! webhooks end to end, with identity, the ledger and accounts in the same process: a merchant's
//! own events reach its endpoint (an HTTP mock on 127.0.0.1, allowed by configuration), signed so
//! that the documented recipe (openssl here) verifies them; failures are retried with backoff
//! until one succeeds; an endpoint failing again and again is disabled, then enabled again by its
//! merchant; a delivery is replayed on demand; internal addresses are refused (in a second
//! process that allows none).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fintech_accounts::AccountsService;
use fintech_auth::{Kind, Role};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use fintech_webhooks::WebhooksService;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let (status, body) = app.call("webhooks", token, &format!("/v1/endpoints/{endpoint}/deliveries"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The merchant's recipe, with openssl: HMAC-SHA256 of `<t>.<body>` keyed by the secret, in hex.
fn openssl_v1(secret: &str, t: &str, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signed");
    std::fs::write(&file, &signed).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-hex"])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().rsplit(' ').next().unwrap().to_owned()
}

#[tokio::test]
async fn merchants_receive_signed_events_retried_disabled_and_replayed_sqlite() {
    merchant_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn merchants_receive_signed_events_retried_disabled_and_replayed_mariadb() {
    merchant_flow(Backend::MariaDb).await;
}

async fn merchant_flow(backend: Backend) {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&hooks)
        .await;
    let broken = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&broken).await;

    let spawn = Spawn::new(backend)
        .with("webhooks.allowed_networks", "127.0.0.0/8")
        .with("webhooks.backoff_base_ms", 50)
        .with("webhooks.backoff_max_ms", 200)
        .with("webhooks.poll_ms", 20)
        .with("webhooks.max_attempts", 6)
        .with("webhooks.disable_after_failures", 4);
    let services: [&dyn fintech_kit::Service; 4] =
        [&IdentityService, &LedgerService, &AccountsService, &WebhooksService];
    let app = TestApp::spawn(&services, spawn).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let merchant_id = uuid::Uuid::now_v7().to_string();
    let shop = minter.user(Kind::Merchant, &merchant_id);

    let (status, created) = app
        .call(
            "webhooks",
            &shop,
            "/v1/endpoints",
            Some(json!({ "url": format!("{}/hooks", hooks.uri()), "events": ["customer.created", "account.opened"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let (_, listed) = app.call("webhooks", &shop, "/v1/endpoints", None).await;
    assert_eq!(listed["items"][0]["id"], endpoint.as_str());
    assert!(!listed.to_string().contains(&secret), "the secret is shown once: {listed}");
    let (status, broken_endpoint) = app
        .call(
            "webhooks",
            &shop,
            "/v1/endpoints",
            Some(json!({ "url": format!("{}/down", broken.uri()), "events": ["customer.kyc_changed"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{broken_endpoint}");
    let broken_endpoint = broken_endpoint["id"].as_str().unwrap().to_owned();

    // The merchant registers its business: customer.created, about it.
    let body = json!({ "kind": "business", "name": "Shop", "email": "shop@example.com" });
    let (status, c) = app.call("accounts", &shop, "/v1/customers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");

    // 500, 500, then 204: three attempts, one success.
    let done = wait_for("the delivery to succeed", async || {
        deliveries(&app, &shop, &endpoint).await.into_iter().find(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(done["attempts"], 3, "{done}");
    assert_eq!(done["event_type"], "customer.created");
    let received = hooks.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    let last = &received[2];
    let header = |name: &str| last.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("fintech-event-id"), done["event_id"].as_str().unwrap());
    assert_eq!(header("content-type"), "application/json");
    let signature = header("fintech-signature");
    let (t, v1) = signature.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    assert_eq!(v1.strip_prefix("v1=").unwrap(), openssl_v1(&secret, t, &last.body), "{signature}");
    let now = fintech_telemetry::now_unix_ms() / 1000;
    assert!(fintech_webhooks::signing::verify(&secret, &signature, &last.body, now, 300));
    let payload: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(payload["type"], "customer.created");
    assert_eq!(payload["data"]["customer_id"], merchant_id.as_str());

    // KYC verified: the broken endpoint fails 4 times in a row and is disabled; nothing more goes.
    let staff = minter.staff(&[Role::Operator]);
    let kyc = Some(json!({ "status": "verified" }));
    let (status, _) = app.call("accounts", &staff, &format!("/v1/customers/{merchant_id}/kyc"), kyc).await;
    assert_eq!(status, StatusCode::OK);
    let disabled = wait_for("the broken endpoint to be disabled", async || {
        let (_, e) = app.call("webhooks", &shop, &format!("/v1/endpoints/{broken_endpoint}"), None).await;
        (e["status"] == "disabled").then_some(e)
    })
    .await;
    assert_eq!(disabled["disabled_reason"], "disabled after 4 failed attempts in a row", "{disabled}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(broken.received_requests().await.unwrap().len(), 4, "no attempt while disabled");
    let waiting = deliveries(&app, &shop, &broken_endpoint).await;
    assert_eq!((waiting[0]["status"].as_str(), waiting[0]["attempts"].as_i64()), (Some("pending"), Some(4)));

    // The merchant fixes its server and enables the endpoint: the waiting delivery goes out.
    broken.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&broken).await;
    let (status, enabled) =
        app.call("webhooks", &shop, &format!("/v1/endpoints/{broken_endpoint}/enable"), Some(json!({}))).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("enabled")), "{enabled}");
    wait_for("the waiting delivery", async || {
        deliveries(&app, &shop, &broken_endpoint).await.into_iter().find(|d| d["status"] == "succeeded")
    })
    .await;

    // Replay: the same event again, on demand; another merchant can neither see nor replay it.
    let other = minter.user(Kind::Merchant, &uuid::Uuid::now_v7().to_string());
    let replay = format!("/v1/deliveries/{}/replay", done["id"].as_str().unwrap());
    let (status, _) = app.call("webhooks", &other, &replay, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.call("webhooks", &other, &format!("/v1/endpoints/{endpoint}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let customer = minter.user(Kind::Customer, &uuid::Uuid::now_v7().to_string());
    let (status, _) = app.call("webhooks", &customer, "/v1/endpoints", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, replayed) = app.call("webhooks", &shop, &replay, Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    let received =
        wait_for("the replay", async || Some(hooks.received_requests().await.unwrap()).filter(|r| r.len() == 4)).await;
    assert_eq!(
        received[3].headers.get("fintech-event-id").unwrap().to_str().unwrap(),
        done["event_id"].as_str().unwrap()
    );
    assert_eq!(received[3].body, received[2].body, "the same payload");
}

#[tokio::test]
async fn internal_addresses_are_refused() {
    // No network allowed: loopback is refused like the rest.
    let app = TestApp::spawn(&[&IdentityService, &WebhooksService], Spawn::new(Backend::Sqlite)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let shop = minter.user(Kind::Merchant, &uuid::Uuid::now_v7().to_string());
    for url in [
        "http://127.0.0.1:8080/hooks",
        "https://127.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal.invalid/",
        "https://10.0.0.7/hooks",
        "https://192.168.1.20/hooks",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[fd00::1]/hooks",
        "https://localhost/hooks",
        "https://user:pw@example.com/hooks",
        "ftp://example.com/hooks",
        "not a url",
    ] {
        let (status, problem) = app
            .call("webhooks", &shop, "/v1/endpoints", Some(json!({ "url": url, "events": ["payment.captured"] })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["code"], "url_not_allowed", "{url}: {problem}");
    }
    let (status, problem) = app
        .call(
            "webhooks",
            &shop,
            "/v1/endpoints",
            Some(json!({ "url": "https://93.184.215.14/hooks", "events": ["payment.exploded"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["code"], "invalid_events", "{problem}");
    let (status, created) = app
        .call(
            "webhooks",
            &shop,
            "/v1/endpoints",
            Some(json!({ "url": "https://93.184.215.14/hooks", "events": ["payment.captured"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "a public address is accepted: {created}");
}
