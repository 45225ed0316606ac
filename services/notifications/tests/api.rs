//! notifications end to end, in one process with the services whose events it reads: accounts'
//! customers, payments' transfers and contact-us's requests become e-mail through a real SMTP
//! server (aiosmtpd, started by the test on a free 127.0.0.1 port) and SMS through an HTTP mock of
//! a Twilio-style gateway; the providers' signed delivery statuses (Twilio-style and
//! Vonage-style) update the records; customers read their own deliveries only. No message holds
//! the card number a customer typed into a description.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fintech_accounts::AccountsService;
use fintech_auth::{Kind, Role};
use fintech_contact_us::ContactUs;
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_kit::sms::{twilio_signature, vonage_signature};
use fintech_ledger::LedgerService;
use fintech_notifications::NotificationsService;
use fintech_payments::PaymentsService;
use fintech_testkit::SmtpSink;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TWILIO_TOKEN: &str = "twilio-auth-token";
const TWILIO_CALLBACK: &str = "https://api.fintech.test/api/notifications/v1/sms/status/twilio";
const VONAGE_SECRET: &str = "vonage-signature-secret";
const MESSAGES: &str = "/2010-04-01/Accounts/AC1/Messages.json";

/// A verified customer with a USD account: (customer id, token, account id).
async fn customer(app: &TestApp, minter: &Minter, name: &str, email: &str, phone: &str) -> (String, String, String) {
    let id = uuid::Uuid::now_v7().to_string();
    let token = minter.user(Kind::Customer, &id);
    let body = json!({ "kind": "individual", "name": name, "email": email, "phone": phone });
    let (status, c) = app.call("accounts", &token, "/v1/customers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let staff = minter.staff(&[Role::Operator]);
    app.call("accounts", &staff, &format!("/v1/customers/{id}/kyc"), Some(json!({ "status": "verified" }))).await;
    let (status, a) =
        app.call("accounts", &token, "/v1/accounts", Some(json!({ "customer_id": id, "currency": "USD" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    (id, token, a["id"].as_str().unwrap().to_owned())
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn my_deliveries(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.call("notifications", token, "/v1/me/deliveries", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn sms_of(deliveries: &[Value]) -> Value {
    deliveries.iter().find(|d| d["channel"] == "sms").cloned().unwrap()
}

async fn post_form(
    app: &TestApp,
    path: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let body = url_encode(params);
    let mut req =
        app.http.post(app.url("notifications", path)).header("content-type", "application/x-www-form-urlencoded");
    if let Some(sig) = signature {
        req = req.header("X-Twilio-Signature", sig);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn url_encode(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if !out.is_empty() {
            out.push('&');
        }
        for (i, part) in [k, v].into_iter().enumerate() {
            if i == 1 {
                out.push('=');
            }
            for b in part.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test]
async fn events_become_email_and_sms_and_signed_statuses_update_them() {
    let sink = SmtpSink::start(None);
    let gateway = MockServer::start().await;
    let sids = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sids.clone();
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(move |_: &wiremock::Request| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ResponseTemplate::new(201).set_body_json(json!({ "sid": format!("SM{n}") }))
        })
        .mount(&gateway)
        .await;
    let spawn = Spawn::new(Backend::Sqlite)
        .with("email.smtp_url", format!("smtp://{}?tls=none", sink.address()))
        .with("email.from", "FINTECH <no-reply@fintech.test>")
        .with("sms.providers", "twilio")
        .with("sms.twilio.base_url", gateway.uri())
        .with("sms.twilio.account_sid", "AC1")
        .with("sms.twilio.auth_token", TWILIO_TOKEN)
        .with("sms.twilio.from", "+15550000000")
        .with("sms.twilio.status_callback", TWILIO_CALLBACK)
        .with("sms.vonage.signature_secret", VONAGE_SECRET);
    let services: [&dyn fintech_kit::Service; 8] = [
        &IdentityService,
        &LedgerService,
        &AccountsService,
        &fintech_vault::VaultService,
        &fintech_risk::RiskService,
        &PaymentsService,
        &ContactUs,
        &NotificationsService,
    ];
    let app = TestApp::spawn(&services, spawn).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let staff = minter.staff(&[Role::Admin]);
    let (ana, ana_token, ana_account) = customer(&app, &minter, "Ana Lopes", "ana@example.com", "+15551110001").await;
    let (bob, bob_token, bob_account) = customer(&app, &minter, "Bob <Lee>", "bob@example.com", "+15551110002").await;
    let topup = json!({ "account_id": ana_account, "amount_minor": 10_000, "currency": "USD" });
    let (status, body) = app.call("payments", &staff, "/v1/topups", Some(topup)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // ana pays bob, and types her card number into the description.
    let transfer = json!({ "from_account_id": ana_account, "to_account_id": bob_account, "amount_minor": 2_500,
                           "currency": "USD", "description": "rent, my card 4111 1111 1111 1111" });
    let (status, body) = app.call("payments", &ana_token, "/v1/transfers", Some(transfer)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mail = wait_for("two e-mails", async || Some(sink.parsed()).filter(|m| m.len() >= 2)).await;
    let to_bob = mail.iter().find(|m| m["to"] == "bob@example.com").unwrap();
    assert_eq!(to_bob["subject"], "You received 25.00 USD");
    let text = to_bob["text"].as_str().unwrap();
    assert!(text.starts_with("Hello Bob <Lee>,\n\nYou received 25.00 USD.\n"), "{text}");
    // payments keeps no card number in a description; notifications would mask one (•••• 1111).
    assert!(text.contains("Description: rent, my card [redacted]"), "{text}");
    let html = to_bob["html"].as_str().unwrap();
    assert!(html.contains("Hello Bob &lt;Lee&gt;,"), "{html}");
    let to_ana = mail.iter().find(|m| m["to"] == "ana@example.com").unwrap();
    assert_eq!(to_ana["subject"], "You sent 25.00 USD");
    for m in &mail {
        let all = m.to_string();
        assert!(!all.contains("4111 1111 1111 1111") && !all.contains("4111111111111111"), "{all}");
    }
    let requests =
        wait_for("bob's SMS", async || Some(gateway.received_requests().await.unwrap()).filter(|r| !r.is_empty()))
            .await;
    assert_eq!(requests.len(), 1, "only the receiver gets an SMS");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&requests[0].body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(field("To"), "+15551110002");
    assert!(field("Body").starts_with("FINTECH: you received 25.00 USD."), "{form:?}");

    // Each customer reads their own deliveries; support staff read everyone's.
    let bobs = wait_for("bob's deliveries", async || {
        Some(my_deliveries(&app, &bob_token).await).filter(|d| d.len() == 2 && d.iter().all(|x| x["status"] == "sent"))
    })
    .await;
    assert!(bobs.iter().all(|d| d["customer_id"] == bob.as_str()), "{bobs:?}");
    let sms = sms_of(&bobs);
    assert_eq!(sms["address_hint"], "••••••••0002");
    let message_id = sms["message_id"].as_str().unwrap().to_owned();
    assert_eq!(field("StatusCallback"), format!("{TWILIO_CALLBACK}?message_id={message_id}"));
    let anas = my_deliveries(&app, &ana_token).await;
    assert_eq!(anas.len(), 1, "{anas:?}");
    assert_eq!(anas[0]["customer_id"], ana.as_str());
    let (status, _) = app.call("notifications", &ana_token, "/v1/deliveries", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "customers do not read others' deliveries");
    let support = minter.staff(&[Role::Support]);
    let (status, all) = app.call("notifications", &support, &format!("/v1/deliveries?customer_id={bob}"), None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["items"].as_array().unwrap().len(), 2);

    // Twilio-style status: a forged one is refused and changes nothing; a signed one is recorded.
    let query = format!("message_id={message_id}");
    let status_path = format!("/v1/sms/status/twilio?{query}");
    let params = pairs(&[("MessageSid", "SM0"), ("MessageStatus", "delivered"), ("AccountSid", "AC1")]);
    let forged = twilio_signature("not-the-token", &format!("{TWILIO_CALLBACK}?{query}"), &params);
    let (status, problem) = post_form(&app, &status_path, &params, Some(&forged)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "invalid_signature", "{problem}");
    assert_eq!(sms_of(&my_deliveries(&app, &bob_token).await)["status"], "sent");
    let (status, _) = post_form(&app, &status_path, &params, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "unsigned");
    let signature = twilio_signature(TWILIO_TOKEN, &format!("{TWILIO_CALLBACK}?{query}"), &params);
    let (status, body) = post_form(&app, &status_path, &params, Some(&signature)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(sms_of(&my_deliveries(&app, &bob_token).await)["status"], "delivered");

    // bob pays ana back: her SMS gets a Vonage-style receipt (our id as client-ref).
    let back = json!({ "from_account_id": bob_account, "to_account_id": ana_account, "amount_minor": 500,
                       "currency": "USD", "description": "change" });
    let (status, body) = app.call("payments", &bob_token, "/v1/transfers", Some(back)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let anas = wait_for("ana's SMS", async || {
        Some(my_deliveries(&app, &ana_token).await)
            .filter(|d| d.iter().any(|x| x["channel"] == "sms" && x["status"] == "sent"))
    })
    .await;
    let ana_sms = sms_of(&anas)["message_id"].as_str().unwrap().to_owned();
    let now = (fintech_telemetry::now_unix_ms() / 1000).to_string();
    let mut receipt = pairs(&[
        ("messageId", "0A01"),
        ("status", "failed"),
        ("err-code", "6"),
        ("client-ref", &ana_sms),
        ("timestamp", &now),
    ]);
    let sig = vonage_signature(VONAGE_SECRET, &receipt);
    let mut tampered = receipt.clone();
    tampered[1].1 = "delivered".into();
    tampered.push(("sig".into(), sig.clone()));
    let (status, _) = post_form(&app, "/v1/sms/status/vonage", &tampered, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "tampered");
    let stale_time = (fintech_telemetry::now_unix_ms() / 1000 - 3_600).to_string();
    let mut stale =
        pairs(&[("messageId", "0A01"), ("status", "failed"), ("client-ref", &ana_sms), ("timestamp", &stale_time)]);
    let stale_sig = vonage_signature(VONAGE_SECRET, &stale);
    stale.push(("sig".into(), stale_sig));
    let (status, _) = post_form(&app, "/v1/sms/status/vonage", &stale, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an hour-old receipt is a replay");
    assert_eq!(sms_of(&my_deliveries(&app, &ana_token).await)["status"], "sent");
    receipt.push(("sig".into(), sig));
    let (status, body) = post_form(&app, "/v1/sms/status/vonage", &receipt, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let failed = sms_of(&my_deliveries(&app, &ana_token).await);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["detail"], "vonage error code 6");

    // Someone writes to support: the confirmation goes to the address they gave.
    let request = json!({ "name": "Carla", "email": "carla@example.com", "subject": "Lost card 4111111111111111",
                          "message": "Please block it." });
    let resp = app.http.post(app.url("contact-us", "/v1/requests")).json(&request).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mail = wait_for("the confirmation", async || {
        Some(sink.parsed()).filter(|m| m.iter().any(|x| x["to"] == "carla@example.com"))
    })
    .await;
    let confirmation = mail.iter().find(|m| m["to"] == "carla@example.com").unwrap();
    assert_eq!(confirmation["subject"], "We received your message");
    let text = confirmation["text"].as_str().unwrap();
    assert!(text.contains("\"Lost card [redacted]\""), "{text}");
    assert!(!confirmation.to_string().contains("4111111111111111"));
}
