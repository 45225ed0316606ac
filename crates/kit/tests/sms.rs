//! The SMS gateways against HTTP mocks of both provider shapes: success, 5xx then success (one
//! message), a timeout with an unknown outcome (no duplicate anywhere), a provider down
//! (failover), the breaker opening and half-opening, the per-number limit, a refused number, and
//! the delivery-callback signature.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use fintech_kit::messages::{MessageError, MessageSender};
use fintech_kit::ratelimit::{Limiter, Rule, Store};
use fintech_kit::sms::{
    BreakerPolicy, BreakerState, GatewaySender, RetryPolicy, SmsProvider, TwilioProvider, VonageProvider,
    status_callback_url, twilio_signature, verify_twilio_signature, verify_vonage_signature, vonage_signature,
};
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TO: &str = "+15551234567";
const CODE_TEXT: &str = "Your FINTECH verification code is 123456.";
const TWILIO_PATH: &str = "/2010-04-01/Accounts/AC123/Messages.json";

fn http() -> reqwest::Client {
    fintech_http::http_client().timeout(Duration::from_millis(500)).build().unwrap()
}

fn twilio(base: &str) -> Arc<dyn SmsProvider> {
    Arc::new(TwilioProvider {
        base_url: base.into(),
        account_sid: "AC123".into(),
        auth_token: "twilio-token".into(),
        from: "+15550000000".into(),
        status_callback: Some("https://api.example.com/api/notifications/v1/sms/status".into()),
        http: http(),
    })
}

fn vonage(base: &str) -> Arc<dyn SmsProvider> {
    Arc::new(VonageProvider {
        base_url: base.into(),
        api_key: "key".into(),
        api_secret: "secret".into(),
        from: "FINTECH".into(),
        status_callback: None,
        http: http(),
    })
}

struct Setup {
    sender: GatewaySender,
    _dir: tempfile::TempDir,
    dead_letters: std::path::PathBuf,
}

fn sender(providers: Vec<Arc<dyn SmsProvider>>, breaker: BreakerPolicy, per_number: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dir.path().join("sms").join("dead-letters.jsonl");
    let limiter = Limiter::new(
        "sms_per_number_test",
        Rule { capacity: per_number, refill_every: Duration::from_secs(3600) },
        &Store::Memory,
    );
    let retry =
        RetryPolicy { attempts: 2, initial_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(20) };
    let sender = GatewaySender::new(providers, breaker, retry, limiter, dead_letters.clone());
    Setup { sender, _dir: dir, dead_letters }
}

fn accepted_twilio() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(serde_json::json!({ "sid": "SM1", "status": "queued" }))
}

fn accepted_vonage() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({ "messages": [{ "status": "0", "message-id": "V1" }] }))
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_message_goes_through_the_first_provider() {
    let (t, v) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(header_exists("authorization"))
        .and(body_string_contains("To=%2B15551234567"))
        .and(body_string_contains("StatusCallback="))
        .respond_with(accepted_twilio())
        .mount(&t)
        .await;
    let setup = sender(vec![twilio(&t.uri()), vonage(&v.uri())], BreakerPolicy::default(), 10);
    let id = setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
    assert_eq!(id.len(), 36, "our message id");
    assert_eq!((received(&t).await, received(&v).await), (1, 0));
}

#[tokio::test]
async fn a_5xx_is_retried_and_the_message_is_sent_once() {
    let (t, v) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&t)
        .await;
    Mock::given(method("POST")).respond_with(accepted_twilio()).with_priority(2).mount(&t).await;
    let setup = sender(vec![twilio(&t.uri()), vonage(&v.uri())], BreakerPolicy::default(), 10);
    setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
    assert_eq!((received(&t).await, received(&v).await), (2, 0), "one retry, one message accepted");
}

#[tokio::test]
async fn a_timeout_is_not_sent_again_anywhere() {
    let (t, v) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).respond_with(accepted_twilio().set_delay(Duration::from_secs(2))).mount(&t).await;
    Mock::given(method("POST")).respond_with(accepted_vonage()).mount(&v).await;
    let setup = sender(vec![twilio(&t.uri()), vonage(&v.uri())], BreakerPolicy::default(), 10);
    let error = setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap_err();
    assert!(matches!(error, MessageError::Ambiguous(_)), "{error:?}");
    assert!(error.to_string().contains("not sent again"), "{error}");
    assert_eq!((received(&t).await, received(&v).await), (1, 0), "no duplicate SMS");
    let letters = std::fs::read_to_string(&setup.dead_letters).unwrap();
    assert!(letters.contains("\"to_last_digits\":\"67\"") && letters.contains("may have been sent"), "{letters}");
    assert!(!letters.contains("123456") && !letters.contains(TO), "no text, no number: {letters}");
}

#[tokio::test]
async fn a_provider_that_is_down_fails_over_to_the_next() {
    let v = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .and(body_string_contains("to=15551234567"))
        .and(body_string_contains("api_key=key"))
        .respond_with(accepted_vonage())
        .mount(&v)
        .await;
    // Nothing listens there: refused before anything was sent.
    let down = format!("http://127.0.0.1:{}", fintech_testkit::free_port());
    let setup = sender(vec![twilio(&down), vonage(&v.uri())], BreakerPolicy::default(), 10);
    setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
    assert_eq!(received(&v).await, 1);
}

#[tokio::test]
async fn the_breaker_opens_then_lets_one_trial_through() {
    let (t, v) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(4)
        .with_priority(1)
        .mount(&t)
        .await;
    Mock::given(method("POST")).respond_with(accepted_twilio()).with_priority(2).mount(&t).await;
    Mock::given(method("POST")).respond_with(accepted_vonage()).mount(&v).await;
    let breaker = BreakerPolicy { failures_to_open: 4, cool_down: Duration::from_millis(400) };
    let setup = sender(vec![twilio(&t.uri()), vonage(&v.uri())], breaker, 10);
    for n in 0..2 {
        setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
        assert_eq!(received(&t).await, 2 * (n + 1), "two attempts on twilio, then vonage");
    }
    assert_eq!(setup.sender.breaker_state("twilio"), Some(BreakerState::Open));
    setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
    assert_eq!(received(&t).await, 4, "an open breaker sends nothing to twilio");
    assert_eq!(received(&v).await, 3);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(setup.sender.breaker_state("twilio"), Some(BreakerState::HalfOpen));
    setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
    assert_eq!(received(&t).await, 5, "one trial");
    assert_eq!(received(&v).await, 3, "the trial succeeded");
    assert_eq!(setup.sender.breaker_state("twilio"), Some(BreakerState::Closed));
}

#[tokio::test]
async fn too_many_messages_to_one_number_are_refused_with_a_reason() {
    let t = MockServer::start().await;
    Mock::given(method("POST")).respond_with(accepted_twilio()).mount(&t).await;
    let setup = sender(vec![twilio(&t.uri())], BreakerPolicy::default(), 2);
    for _ in 0..2 {
        setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap();
    }
    let error = setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap_err();
    assert!(matches!(error, MessageError::Limited(_)), "{error:?}");
    assert!(error.to_string().starts_with("too many messages to this number; try again in"), "{error}");
    assert_eq!(received(&t).await, 2);
    setup.sender.send_sms("+15557654321", CODE_TEXT, "otp_sign_in").await.unwrap();
}

#[tokio::test]
async fn a_refused_number_is_not_tried_elsewhere() {
    let (t, v) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(400)).mount(&t).await;
    Mock::given(method("POST")).respond_with(accepted_vonage()).mount(&v).await;
    let setup = sender(vec![twilio(&t.uri()), vonage(&v.uri())], BreakerPolicy::default(), 10);
    let error = setup.sender.send_sms(TO, CODE_TEXT, "otp_sign_in").await.unwrap_err();
    assert!(matches!(error, MessageError::Undelivered(_)), "{error:?}");
    assert_eq!((received(&t).await, received(&v).await), (1, 0));
    assert_eq!(setup.sender.breaker_state("twilio"), Some(BreakerState::Closed), "not the provider's fault");
    let bad = setup.sender.send_sms("15551234567", CODE_TEXT, "otp_sign_in").await.unwrap_err();
    assert!(matches!(bad, MessageError::Invalid(_)), "checked before anything is sent");
}

#[test]
fn delivery_callbacks_are_verified_with_the_providers_signature() {
    let url = "https://api.example.com/api/notifications/v1/sms/status";
    let params = vec![
        ("MessageStatus".to_string(), "delivered".to_string()),
        ("MessageSid".to_string(), "SM1".to_string()),
        ("AccountSid".to_string(), "AC123".to_string()),
    ];
    let signature = twilio_signature("twilio-token", url, &params);
    // The same HMAC-SHA1 computed by openssl over Twilio's recipe (URL, then sorted name+value).
    let data = format!("{url}AccountSidAC123MessageSidSM1MessageStatusdelivered");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf '%s' \"$DATA\" | openssl dgst -sha1 -hmac twilio-token -binary | base64")
        .env("DATA", &data)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), signature);
    assert!(verify_twilio_signature("twilio-token", url, &params, &signature));
    let mut tampered = params.clone();
    tampered[0].1 = "failed".into();
    assert!(!verify_twilio_signature("twilio-token", url, &tampered, &signature));
    assert!(!verify_twilio_signature("other-token", url, &params, &signature));
    assert!(!verify_twilio_signature("twilio-token", url, &params, "not base64!"));
}

#[test]
fn vonage_receipts_are_verified_with_the_signature_secret() {
    let now = 1_790_000_000_i64;
    let mut params: Vec<(String, String)> = [
        ("messageId", "0A0000001234"),
        ("status", "delivered"),
        ("client-ref", "0192-our-id"),
        ("err-code", "0"),
        ("text", "a=b&c"),
        ("timestamp", "1790000000"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    let sig = vonage_signature("sig-secret", &params);
    // openssl over the documented recipe: sorted `&name=value`, `&` and `=` in values as `_`.
    let data = "&client-ref=0192-our-id&err-code=0&messageId=0A0000001234&status=delivered&text=a_b_c\
                &timestamp=1790000000";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf '%s' \"$DATA\" | openssl dgst -sha256 -hmac sig-secret -hex | sed 's/.*= //'")
        .env("DATA", data)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().to_ascii_uppercase(), sig);
    params.push(("sig".into(), sig.to_ascii_lowercase()));
    let max_age = std::time::Duration::from_secs(300);
    assert!(verify_vonage_signature("sig-secret", &params, now + 10, max_age), "case does not matter");
    assert!(!verify_vonage_signature("sig-secret", &params, now + 301, max_age), "a replay is too old");
    assert!(!verify_vonage_signature("other-secret", &params, now, max_age));
    let mut tampered = params.clone();
    tampered[1].1 = "failed".into();
    assert!(!verify_vonage_signature("sig-secret", &tampered, now, max_age));
    let unsigned: Vec<_> = params.iter().filter(|(k, _)| k != "sig").cloned().collect();
    assert!(!verify_vonage_signature("sig-secret", &unsigned, now, max_age));
}

#[test]
fn status_callbacks_name_the_message() {
    assert_eq!(status_callback_url("https://x.example/cb", "m1"), "https://x.example/cb?message_id=m1");
    assert_eq!(status_callback_url("https://x.example/cb?a=1", "m1"), "https://x.example/cb?a=1&message_id=m1");
}
