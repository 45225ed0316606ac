//! identity's one-time codes through a real SMS gateway client (`sms.providers`), against an
//! HTTP mock of a Twilio-style API: the code reaches the provider and nothing is written to the
//! file outbox; a gateway that refuses answers 503 `sms_unavailable`, not a 500.

#![allow(clippy::unwrap_used)]

use fintech_identity::IdentityService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MESSAGES: &str = "/2010-04-01/Accounts/AC1/Messages.json";

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(app.url("identity", path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn one_time_codes_go_through_the_gateway() {
    let gateway = MockServer::start().await;
    let spawn = Spawn::new(Backend::Sqlite)
        .with("identity.bootstrap_admin_email", "admin@example.com")
        .with("identity.bootstrap_admin_password", "Quartz-Lantern-Harbor-71")
        .with("sms.providers", "twilio")
        .with("sms.twilio.base_url", gateway.uri())
        .with("sms.twilio.account_sid", "AC1")
        .with("sms.twilio.auth_token", "gateway-token")
        .with("sms.twilio.from", "+15550000000");
    let app = TestApp::spawn(&[&IdentityService], spawn).await;
    let credentials = json!({ "email": "ana@example.com", "password": "codes by text message" });
    assert_eq!(post(&app, "/v1/sign-up", None, credentials.clone()).await.0, StatusCode::CREATED);
    let (status, session) = post(&app, "/v1/sign-in", None, credentials).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["access_token"].as_str().unwrap().to_owned();

    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_string_contains("To=%2B15551234567"))
        .and(body_string_contains("Body=Your+FINTECH+verification+code+is+"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM1" })))
        .up_to_n_times(1)
        .mount(&gateway)
        .await;
    let (status, sent) = post(&app, "/v1/mfa/sms", Some(&token), json!({ "phone": "+15551234567" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(gateway.received_requests().await.unwrap().len(), 1, "the code went to the provider");
    let outbox = app.outbox_dir().join("sms");
    let files = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "nothing in the file outbox");

    // The provider refuses (a 4xx): the caller learns the code was not sent, with a stable code.
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(400)).mount(&gateway).await;
    let (status, problem) = post(&app, "/v1/mfa/sms", Some(&token), json!({ "phone": "+15551234567" })).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("sms_unavailable")),
        "{problem}"
    );
    assert!(!problem.to_string().contains("400"), "no provider internals: {problem}");
    app.stop().await;
}
