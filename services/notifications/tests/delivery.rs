//! notifications' delivery rules, driving its event handler directly with events as the bus
//! would deliver them (again and again): e-mail through a real SMTP server (aiosmtpd, started on
//! a free 127.0.0.1 port by the test), SMS to the embedded outbox, on SQLite and on MariaDB.
//!
//! - an event delivered twice sends each message once;
//! - an SMTP server that is down leaves the message `retrying` and hands the event back; once it
//!   is up, the redelivery sends it (one message, two attempts);
//! - a message interrupted mid-send (the row still `sending`) is never sent again: `ambiguous`;
//! - the per-recipient limit stops a flood, recorded as `limited`;
//! - security alerts reach the account's owner, by SMS only for changes that matter.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use fintech_db::sqlx::{self, Row};
use fintech_db::{Db, PoolLimits};
use fintech_events::{EventEnvelope, EventHandler};
use fintech_kit::email::{EmailSender, SmtpSender, SmtpServer};
use fintech_kit::messages::FileOutbox;
use fintech_kit::ratelimit::Store;
use fintech_notifications::config::NotificationsConfig;
use fintech_notifications::{NotificationsService, Notifier};
use fintech_testkit::{MariaDb, SmtpSink};
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    MariaDb,
}

struct Setup {
    db: Db,
    outbox: FileOutbox,
    _dir: tempfile::TempDir,
}

async fn setup(backend: Backend) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}/notifications.db", dir.path().display()),
        Backend::MariaDb => MariaDb::shared().fresh_database_url(),
    };
    fintech_kit::migrate(&NotificationsService, &url).await.unwrap();
    let db = Db::connect(&url, PoolLimits::default()).await.unwrap();
    let outbox = FileOutbox::new(dir.path().join("outbox"));
    Setup { db, outbox, _dir: dir }
}

fn smtp(port: u16) -> Arc<dyn EmailSender> {
    let server = SmtpServer::from_url(&format!("smtp://127.0.0.1:{port}?tls=none"), None, "test").unwrap();
    Arc::new(SmtpSender::new(server, "FINTECH <no-reply@fintech.test>", std::time::Duration::from_secs(10)).unwrap())
}

fn notifier(s: &Setup, email: Arc<dyn EmailSender>, per_hour: u32) -> Notifier {
    let config = NotificationsConfig { per_recipient_per_hour: per_hour, ..NotificationsConfig::default() };
    let limiter = Notifier::limiter(&config, &Store::Memory);
    Notifier::new(s.db.clone(), email, Arc::new(s.outbox.clone()), limiter, config)
}

fn customer(id: &str, phone: Option<&str>) -> EventEnvelope {
    let data = json!({ "customer_id": id, "kind": "individual", "kyc_status": "pending", "name": "Bea Silva",
                       "email": format!("{id}@example.com"), "phone": phone });
    EventEnvelope::new("customer.created", "accounts", id, data)
}

fn transfer(from: &str, to: &str, amount: i64) -> EventEnvelope {
    let id = uuid::Uuid::now_v7().to_string();
    let data = json!({ "id": id, "kind": "transfer", "payer_account_id": "acc-1", "payee_account_id": "acc-2",
        "amount_minor": amount, "currency": "EUR", "fee_minor": 0, "status": "succeeded", "captured_minor": amount,
        "refunded_minor": 0, "description": "dinner", "payer_customer_id": from, "payee_customer_id": to });
    EventEnvelope::new("transfer.completed", "payments", id, data)
}

async fn rows(db: &Db) -> Vec<(String, String, String, i64)> {
    let rows =
        sqlx::query("SELECT kind, channel, status, attempts FROM notification_deliveries ORDER BY kind, channel")
            .fetch_all(db.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            let attempts = r.try_get::<i64, _>(3).or_else(|_| r.try_get::<i32, _>(3).map(i64::from)).unwrap();
            (r.get(0), r.get(1), r.get(2), attempts)
        })
        .collect()
}

fn sms_files(outbox: &FileOutbox) -> Vec<serde_json::Value> {
    let Ok(dir) = std::fs::read_dir(outbox.sms_dir()) else { return Vec::new() };
    dir.map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap()).collect()
}

async fn redelivery_and_retry(backend: Backend) {
    let s = setup(backend).await;
    // The SMTP server is down at first: a port nothing listens on.
    let down = fintech_testkit::free_port();
    let n = notifier(&s, smtp(down), 30);
    n.handle(&customer("ana", None)).await.unwrap();
    n.handle(&customer("bob", Some("+15557654321"))).await.unwrap();
    let event = transfer("ana", "bob", 2_550);

    let error = n.handle(&event).await.unwrap_err();
    assert!(error.0.contains("not sent yet"), "{error}");
    let r = rows(&s.db).await;
    assert_eq!(
        r,
        [
            ("transfer_received".into(), "email".into(), "retrying".into(), 1),
            ("transfer_received".into(), "sms".into(), "sent".into(), 1),
            ("transfer_sent".into(), "email".into(), "retrying".into(), 1),
        ],
        "the SMS left; the e-mails wait for the server"
    );

    // The server is up: the bus delivers the event again; only the e-mails go, once each.
    let sink = SmtpSink::start(None);
    let n = notifier(&s, smtp(sink.port()), 30);
    n.handle(&event).await.unwrap();
    n.handle(&event).await.unwrap();
    let r = rows(&s.db).await;
    assert!(r.iter().all(|(_, _, status, _)| status == "sent"), "{r:?}");
    assert_eq!(r.iter().map(|x| x.3).collect::<Vec<_>>(), [2, 1, 2], "two attempts for the e-mails");
    let mail = sink.parsed();
    assert_eq!(mail.len(), 2, "{mail:?}");
    let to_bob = mail.iter().find(|m| m["to"] == "bob@example.com").unwrap();
    assert_eq!(to_bob["subject"], "You received 25.50 EUR");
    assert_eq!(to_bob["content_type"], "multipart/alternative");
    assert!(to_bob["text"].as_str().unwrap().contains("Hello Bea Silva,\n\nYou received 25.50 EUR."), "{to_bob}");
    assert!(to_bob["html"].as_str().unwrap().contains("You received <strong>25.50 EUR</strong>."), "{to_bob}");
    let to_ana = mail.iter().find(|m| m["to"] == "ana@example.com").unwrap();
    assert_eq!(to_ana["subject"], "You sent 25.50 EUR");
    assert_eq!(to_ana["from"], "FINTECH <no-reply@fintech.test>");
    let sms = sms_files(&s.outbox);
    assert_eq!(sms.len(), 1, "one SMS, never repeated");
    assert_eq!(sms[0]["to"], "+15557654321");
    assert!(sms[0]["body"].as_str().unwrap().starts_with("FINTECH: you received 25.50 EUR."), "{}", sms[0]);

    // A send interrupted after its row was claimed: on redelivery it is not sent again.
    let event = transfer("ana", "bob", 100);
    sqlx::query(
        "INSERT INTO notification_deliveries (id, event_id, kind, channel, customer_id, address_hint, status, \
         message_id, detail, attempts, created_at, updated_at) \
         VALUES ('d-1', ?, 'transfer_sent', 'email', 'ana', 'a•••@example.com', 'sending', NULL, NULL, 1, 't', 't')",
    )
    .bind(&event.id)
    .execute(s.db.pool())
    .await
    .unwrap();
    n.handle(&event).await.unwrap();
    let status: String = sqlx::query("SELECT status FROM notification_deliveries WHERE id = 'd-1'")
        .fetch_one(s.db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "ambiguous");
    let mail = sink.parsed();
    assert_eq!(mail.len(), 3, "only bob's notice of the second transfer");
    assert!(!mail.iter().any(|m| m["subject"] == "You sent 1.00 EUR"), "{mail:?}");
    s.db.close().await;
}

#[tokio::test]
async fn redelivered_events_send_nothing_twice_and_retry_what_did_not_leave_sqlite() {
    redelivery_and_retry(Backend::Sqlite).await;
}

#[tokio::test]
async fn redelivered_events_send_nothing_twice_and_retry_what_did_not_leave_mariadb() {
    redelivery_and_retry(Backend::MariaDb).await;
}

#[tokio::test]
async fn a_flood_to_one_recipient_is_limited() {
    let s = setup(Backend::Sqlite).await;
    let n = notifier(&s, Arc::new(s.outbox.clone()), 3);
    n.handle(&customer("ana", None)).await.unwrap();
    for _ in 0..5 {
        n.handle(&transfer("ana", "nobody-known", 100)).await.unwrap();
    }
    let r = rows(&s.db).await;
    let statuses: Vec<&str> = r.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "sent").count(), 3, "{r:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "limited").count(), 2, "{r:?}");
    let mails = std::fs::read_dir(s.outbox.email_dir()).unwrap().count();
    assert_eq!(mails, 3);
}

#[tokio::test]
async fn security_alerts_reach_the_owner() {
    let s = setup(Backend::Sqlite).await;
    let n = notifier(&s, Arc::new(s.outbox.clone()), 30);
    n.handle(&customer("ana", Some("+15551230000"))).await.unwrap();
    let signed_in = EventEnvelope::new("security.sign_in_succeeded", "identity", "ana", json!({ "ip": "203.0.113.9" }));
    n.handle(&signed_in).await.unwrap();
    let mfa = EventEnvelope::new("security.second_factor_enabled", "identity", "ana", json!({ "kind": "totp" }));
    n.handle(&mfa).await.unwrap();
    let failed = EventEnvelope::new("security.sign_in_failed", "identity", "ana", json!({}));
    n.handle(&failed).await.unwrap();
    let r = rows(&s.db).await;
    assert_eq!(
        r.iter().map(|x| (x.0.as_str(), x.1.as_str())).collect::<Vec<_>>(),
        [("security_alert", "email"), ("security_alert", "email"), ("security_alert", "sms")],
        "two e-mails, one SMS (the second factor), nothing for a failed sign-in"
    );
    let sms = sms_files(&s.outbox);
    assert!(sms[0]["body"].as_str().unwrap().contains("second sign-in factor"), "{}", sms[0]);
}

#[tokio::test]
async fn a_contact_request_is_confirmed_and_support_is_alerted() {
    let s = setup(Backend::Sqlite).await;
    let config =
        NotificationsConfig { support_email: Some("support@fintech.test".into()), ..NotificationsConfig::default() };
    let limiter = Notifier::limiter(&config, &Store::Memory);
    let n = Notifier::new(s.db.clone(), Arc::new(s.outbox.clone()), Arc::new(s.outbox.clone()), limiter, config);
    let data = json!({ "request_id": "req-1", "name": "Carla <b>", "email": "carla@example.com",
                       "subject": "Card lost", "has_attachment": true });
    let event = EventEnvelope::new("contact.requested", "contact-us", "req-1", data);
    n.handle(&event).await.unwrap();
    n.handle(&event).await.unwrap();
    let mut mail: Vec<serde_json::Value> = std::fs::read_dir(s.outbox.email_dir())
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    mail.sort_by_key(|m| m["to"].as_str().unwrap().to_owned());
    assert_eq!(mail.len(), 2, "one each, once: {mail:?}");
    assert_eq!(
        (mail[0]["to"].as_str(), mail[0]["kind"].as_str()),
        (Some("carla@example.com"), Some("contact_confirmation"))
    );
    let alert = &mail[1];
    assert_eq!((alert["to"].as_str(), alert["kind"].as_str()), (Some("support@fintech.test"), Some("support_alert")));
    assert_eq!(alert["subject"], "New contact request: Card lost");
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .starts_with("A new contact request (with an attachment) from Carla <b> <carla@example.com>")
    );
    assert!(alert["html"].as_str().unwrap().contains("from Carla &lt;b&gt; &lt;carla@example.com&gt;"));
}
