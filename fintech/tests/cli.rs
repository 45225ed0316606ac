//! The `fintech` binary as a user runs it: `up`, `migrate`, configuration errors.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn fintech() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fintech"));
    // Nothing from the developer's environment leaks into the test.
    cmd.env_clear().stdin(Stdio::null());
    cmd
}

/// A child process killed (and reaped) when the test ends, even by a panic.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fintech up` and waits for its "listening" line; returns the child, its base URL, the
/// startup time and the receiver of the remaining stdout lines.
fn start_up(data_dir: &std::path::Path) -> (Running, String, Duration, mpsc::Receiver<String>) {
    start(data_dir, &["up", "--port", "0"])
}

fn start(data_dir: &std::path::Path, args: &[&str]) -> (Running, String, Duration, mpsc::Receiver<String>) {
    start_with(data_dir, args, &[])
}

fn start_with(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Running, String, Duration, mpsc::Receiver<String>) {
    let started = Instant::now();
    // The data folder comes from its environment variable, as in a container.
    let mut command = fintech();
    command.envs(env.iter().copied());
    if args.first() == Some(&"serve") {
        // A service alone verifies tokens with identity's keys over HTTP; fetched only when a
        // token arrives, so an address where nothing listens is enough for open routes.
        command.env("FINTECH_AUTH__IDENTITY_URL", "http://127.0.0.1:9");
    }
    let child = command
        .args(args)
        .env("FINTECH_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("fintech up printed where it listens");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        if v["message"] == "listening" {
            let base = v["address"].as_str().unwrap().to_owned();
            return (child, base, started.elapsed(), rx);
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn up_serves_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, startup, rx) = start_up(dir.path());
    println!("fintech up: listening after {} ms", startup.as_millis());

    let http = fintech_http::http_client().build().expect("an HTTP client");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["contact-us.database"], "ok");
    let created = http
        .post(format!("{base}/api/contact-us/v1/requests"))
        .header("x-request-id", "cli-test-1")
        .json(&serde_json::json!({"name": "Ana", "email": "ana@example.com", "subject": "Hi", "message": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The first administrator's password was generated into the data folder; with it, staff
    // signs in and reads the request.
    let password = std::fs::read_to_string(dir.path().join("identity/bootstrap-admin-password")).unwrap();
    let session: Value = http
        .post(format!("{base}/api/identity/v1/sign-in"))
        .json(&serde_json::json!({"email": "admin@fintech.local", "password": password.trim()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap_or_else(|| panic!("{session}"));
    let listed = http.get(format!("{base}/api/contact-us/v1/requests")).bearer_auth(token).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"route="/api/contact-us/v1/requests",status="201""#), "{metrics}");

    sigterm(&child.0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "fintech up did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit after SIGTERM: {status}");

    // Every line is one JSON object in the Cloud Logging shape; the request's lines carry its id.
    let lines: Vec<String> = rx.try_iter().collect();
    let mut saw_request = false;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        for key in ["severity", "message", "time"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        if v["request_id"] == "cli-test-1" && v["httpRequest"]["status"] == 201 {
            saw_request = true;
        }
    }
    assert!(saw_request, "access log line with the request id: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("\"stopped\"")), "{lines:#?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

fn migrate_all(url: &str) -> Child {
    fintech()
        .args(["migrate", "all"])
        .env("FINTECH_MIGRATE_DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn assert_success(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
}

async fn tables(url: &str) -> Vec<String> {
    let db = fintech_db::Db::connect(url, fintech_db::PoolLimits::default()).await.unwrap();
    let sql = match db.engine() {
        fintech_db::Engine::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        fintech_db::Engine::MySql => {
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1"
        }
    };
    let rows: Vec<(String,)> = fintech_db::sqlx::query_as(sql).fetch_all(db.pool()).await.unwrap();
    db.close().await;
    rows.into_iter().map(|(n,)| n).collect()
}

#[tokio::test]
async fn migrate_creates_everything_and_is_safe_twice_and_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/{{service}}.db", dir.path().display());
    let mariadb = fintech_testkit::MariaDb::shared().fresh_database_url();
    // `{service}` names one database per service; the database itself does not exist yet.
    let mariadb = format!("{}_{{service}}", mariadb);
    for template in [sqlite, mariadb] {
        let (a, b) = (migrate_all(&template), migrate_all(&template));
        assert_success(a);
        assert_success(b);
        assert_success(migrate_all(&template));
        let url = template.replace("{service}", "contact_us");
        let names = tables(&url).await;
        for table in ["contact_requests", "contact_attachments", "outbox", "inbox", "outbox_lease", "_sqlx_migrations"]
        {
            assert!(names.iter().any(|n| n == table), "{table} in {names:?} ({url})");
        }
    }
}

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = fintech()
        .args(["up", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("FINTECH_HTTP__REQUEST_TIMEOUT_MS", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http.request_timeout_ms"), "{stderr}");

    let out = fintech().args(["up", "--data-dir"]).arg(dir.path()).env("FINTECH_HTTP__PORTT", "1").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("portt"));

    // Typos in section or service names are refused, not silently ignored.
    for (var, value, named) in [
        ("FINTECH_HTTPP__PORT", "1", "httpp is not a configuration section"),
        ("FINTECH_DATABASE__CONTACTUS__URL", "sqlite://x.db", "database.contactus names no service"),
        ("FINTECH_LOG__LEVEL", "info,[", "log.level is not a valid filter"),
        ("FINTECH_EVENTS__BACKEND", "pubsub", "gcp.project_id is required with events.backend=pubsub"),
        ("FINTECH_EVENTS__BACKEND", "kafka", "events.backend"),
        ("FINTECH_EVENTS__PUBSUB_EMULATOR", "http://127.0.0.1:1", "needs events.backend=pubsub"),
        ("FINTECH_STORAGE__BACKEND", "gcs", "storage.bucket is required with storage.backend=gcs"),
        ("FINTECH_STORAGE__BUCKET", "b", "needs storage.backend=gcs"),
        ("FINTECH_SMS__PROVIDERS", "twilio", "sms.twilio.base_url is required: twilio is in sms.providers"),
        ("FINTECH_SMS__PROVIDERS", "pigeon", "names an unknown provider \"pigeon\""),
        ("FINTECH_EMAIL__SMTP_URL", "http://mail.example.com", "email.smtp_url"),
        ("FINTECH_EMAIL__SMTP_URL", "smtp://u:secret-pw@mail.example.com?tls=none", "only sent over TLS"),
        ("FINTECH_EMAIL__FROM", "not an address", "email.from is not an address"),
        ("FINTECH_NOTIFICATIONS__PER_RECIPIENT_PER_HOUR", "0", "notifications.per_recipient_per_hour"),
    ] {
        let out = fintech().args(["up", "--data-dir"]).arg(dir.path()).env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{var}: {stderr}");
        assert!(!stderr.contains("secret-pw"), "a password is never echoed: {stderr}");
    }

    let out = fintech()
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .env("FINTECH_DATABASE__CONTACT_US__URL", "postgres://x/y")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database.contact_us.url") && !stderr.contains("postgres://x/y"), "{stderr}");
}

#[test]
fn unknown_service_lists_the_known_ones() {
    let out = fintech().args(["serve", "nope"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown service \"nope\"") && stderr.contains("contact-us"), "{stderr}");
}

#[test]
fn a_service_alone_needs_identity() {
    let dir = tempfile::tempdir().unwrap();
    let out = fintech().args(["serve", "ledger", "--port", "0", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.identity_url") && stderr.contains("FINTECH_AUTH__IDENTITY_URL"), "{stderr}");
}

#[tokio::test]
async fn a_service_alone_keeps_its_events_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base, _, _rx) = start(dir.path(), &["serve", "contact-us", "--port", "0"]);
    let created = fintech_http::http_client()
        .build()
        .expect("an HTTP client")
        .post(format!("{base}/api/contact-us/v1/requests"))
        .json(&serde_json::json!({"name": "Ana", "email": "ana@example.com", "subject": "Hi", "message": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    tokio::time::sleep(Duration::from_millis(700)).await;
    sigterm(&child.0);
    drop(child);
    let url = format!("sqlite://{}/contact-us.db", dir.path().display());
    let db = fintech_db::Db::connect(&url, fintech_db::PoolLimits::default()).await.unwrap();
    let (waiting,): (i64,) = fintech_db::sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(waiting, 1, "not published to a bus no consumer listens on");
}

/// The distributed mode's event path: contact-us and audit as two processes, each with its own
/// data folder, on Pub/Sub (the real emulator). The contact request's event reaches audit's log.
#[tokio::test]
async fn services_in_separate_processes_exchange_events_over_pubsub() {
    let emulator = fintech_testkit::PubSubEmulator::shared();
    let (endpoint, project) = (emulator.endpoint(), emulator.project());
    let env = [
        ("FINTECH_EVENTS__BACKEND", "pubsub"),
        ("FINTECH_EVENTS__PUBSUB_EMULATOR", endpoint.as_str()),
        ("FINTECH_GCP__PROJECT_ID", project.as_str()),
        ("FINTECH_EVENTS__PUBSUB_PREFIX", "fintech-local-"),
    ];
    let (audit_dir, contact_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // audit first: its subscriptions must exist before anything is published (in GCP, Terraform's).
    let (audit, _, _, _audit_rx) = start_with(audit_dir.path(), &["serve", "audit", "--port", "0"], &env);
    let (contact, base, _, _contact_rx) = start_with(contact_dir.path(), &["serve", "contact-us", "--port", "0"], &env);
    let http = fintech_http::http_client().build().expect("an HTTP client");
    let contact_request =
        serde_json::json!({"name": "Ana", "email": "ana@example.com", "subject": "Hi", "message": "Hello"});
    let created = http.post(format!("{base}/api/contact-us/v1/requests")).json(&contact_request).send().await.unwrap();
    assert_eq!(created.status(), 201);

    let url = format!("sqlite://{}/audit.db", audit_dir.path().display());
    let db = fintech_db::Db::connect(&url, fintech_db::PoolLimits::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let types: Vec<String> = loop {
        let types: Vec<String> = fintech_db::sqlx::query_scalar("SELECT event_type FROM audit_records ORDER BY seq")
            .fetch_all(db.pool())
            .await
            .unwrap();
        if !types.is_empty() || Instant::now() > deadline {
            break types;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(types, vec!["contact.requested".to_string()], "the other process's event, once");
    let contact_db = format!("sqlite://{}/contact-us.db", contact_dir.path().display());
    let contact_db = fintech_db::Db::connect(&contact_db, fintech_db::PoolLimits::default()).await.unwrap();
    let (waiting,): (i64,) = fintech_db::sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(contact_db.pool())
        .await
        .unwrap();
    assert_eq!(waiting, 0, "published to Pub/Sub");
    sigterm(&contact.0);
    sigterm(&audit.0);
}

/// `storage.backend=gcs`: the bucket is a Cloud Storage bucket (the real emulator here), and
/// readiness says whether it can be reached.
#[tokio::test]
async fn a_service_keeps_its_objects_in_cloud_storage_when_configured() {
    let emulator = fintech_testkit::StorageEmulator::shared().endpoint();
    let http = fintech_http::http_client().build().expect("an HTTP client");
    for (bucket, ready) in [(fintech_testkit::StorageEmulator::BUCKET, 200), ("no-such-bucket", 503)] {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("FINTECH_STORAGE__BACKEND", "gcs"),
            ("FINTECH_STORAGE__BUCKET", bucket),
            ("FINTECH_STORAGE__EMULATOR", emulator.as_str()),
        ];
        let (child, base, _, _rx) = start_with(dir.path(), &["serve", "contact-us", "--port", "0"], &env);
        let response = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(response.status(), ready, "{bucket}: {}", response.text().await.unwrap());
        assert!(!dir.path().join("bucket").exists(), "nothing written to the local folder");
        sigterm(&child.0);
    }
}

fn audit_verify(data_dir: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let out = fintech().args(["audit", "verify"]).args(extra).env("FINTECH_DATA_DIR", data_dir).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The audit trail end to end: security records (a sign-up, a failed sign-in) and domain events
/// (a contact request) reach the hash-chained log in `fintech up`; `fintech audit verify`
/// passes on it, and fails, naming the record, once a record is altered or removed.
#[tokio::test]
async fn audit_log_records_security_events_and_verify_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base, _, _rx) = start_up(dir.path());
    let http = fintech_http::http_client().build().expect("an HTTP client");
    let identity = |path: &str| format!("{base}/api/identity/v1/{path}");
    let body = serde_json::json!({ "email": "ana@example.com", "password": "correct horse battery" });
    assert_eq!(http.post(identity("sign-up")).json(&body).send().await.unwrap().status(), 201);
    let wrong = serde_json::json!({ "email": "ana@example.com", "password": "not her password at all" });
    assert_eq!(http.post(identity("sign-in")).json(&wrong).send().await.unwrap().status(), 401);
    let contact = serde_json::json!({"name": "Ana", "email": "ana@example.com", "subject": "Hi", "message": "Hello"});
    let created = http.post(format!("{base}/api/contact-us/v1/requests")).json(&contact).send().await.unwrap();
    assert_eq!(created.status(), 201);

    let url = format!("sqlite://{}/audit.db", dir.path().display());
    let db = fintech_db::Db::connect(&url, fintech_db::PoolLimits::default()).await.unwrap();
    let wanted =
        ["security.bootstrap_admin_created", "security.user_signed_up", "security.sign_in_failed", "contact.requested"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let types: Vec<String> = loop {
        let types: Vec<String> = fintech_db::sqlx::query_scalar("SELECT event_type FROM audit_records ORDER BY seq")
            .fetch_all(db.pool())
            .await
            .unwrap();
        if wanted.iter().all(|w| types.iter().any(|t| t.starts_with(w))) || Instant::now() > deadline {
            break types;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for w in wanted {
        assert!(types.iter().any(|t| t.starts_with(w)), "{w} not in the audit log: {types:?}");
    }
    let data: String =
        fintech_db::sqlx::query_scalar("SELECT data FROM audit_records WHERE event_type = 'security.sign_in_failed'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(!data.contains("not her password"), "no password in a security record: {data}");
    assert!(!data.contains("ana@example.com"), "the address typed is recorded as a hash only: {data}");
    assert!(data.contains("email_sha256"), "{data}");
    sigterm(&child.0);
    drop(child);

    let (ok, stdout, stderr) = audit_verify(dir.path(), &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("ok: {} records", types.len())), "{stdout}");
    let head = stdout.split_whitespace().collect::<Vec<_>>();
    let anchor = format!("{}:{}", head[4], head[5]);
    let (ok, _, _) = audit_verify(dir.path(), &["--expect-head", &anchor]);
    assert!(ok, "the head just read is its own anchor");

    // One character of record 2 changed: caught and named.
    fintech_db::sqlx::query("UPDATE audit_records SET subject = 'someone-else' WHERE seq = 2")
        .execute(db.pool())
        .await
        .unwrap();
    let (ok, stdout, _) = audit_verify(dir.path(), &[]);
    assert!(!ok);
    assert!(stdout.contains("TAMPERED: record 2 was altered"), "{stdout}");
    // A record removed: caught too.
    fintech_db::sqlx::query("DELETE FROM audit_records WHERE seq = 2").execute(db.pool()).await.unwrap();
    let (ok, stdout, _) = audit_verify(dir.path(), &[]);
    assert!(!ok && stdout.starts_with("TAMPERED"), "{stdout}");
    let (ok, _, stderr) = audit_verify(&dir.path().join("nowhere"), &[]);
    assert!(!ok && stderr.contains("there is no audit database"), "{stderr}");
}
