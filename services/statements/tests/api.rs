//! statements end to end, with identity, the ledger, accounts and payments in the same process:
//! money moves (some of it backdated to last month in the ledger's own table, the only way to
//! have a month that has ended), and the account's statement of last month has the right
//! opening, in, out and closing figures, as CSV and as a PDF that poppler's `pdftotext` reads.
//! Owners and operators ask for it; others see nothing. With the bucket on the Cloud Storage
//! emulator, the links are signed URLs that download the files.

#![allow(clippy::unwrap_used)]

use fintech_accounts::AccountsService;
use fintech_auth::{Kind, Role};
use fintech_db::sqlx;
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_payments::PaymentsService;
use fintech_statements::StatementsService;
use fintech_statements::statement::Month;
use fintech_testkit::StorageEmulator;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// A verified customer with a USD account: (token, account id).
async fn customer(app: &TestApp, minter: &Minter) -> (String, String) {
    let id = uuid::Uuid::now_v7().to_string();
    let token = minter.user(Kind::Customer, &id);
    let body = json!({ "kind": "individual", "name": "N", "email": "n@example.com" });
    assert_eq!(app.call("accounts", &token, "/v1/customers", Some(body)).await.0, StatusCode::CREATED);
    let staff = minter.staff(&[Role::Operator]);
    app.call("accounts", &staff, &format!("/v1/customers/{id}/kyc"), Some(json!({ "status": "verified" }))).await;
    let (status, a) =
        app.call("accounts", &token, "/v1/accounts", Some(json!({ "customer_id": id, "currency": "USD" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    (token, a["id"].as_str().unwrap().to_owned())
}

fn services() -> [&'static dyn fintech_kit::Service; 7] {
    [
        &IdentityService,
        &LedgerService,
        &AccountsService,
        &fintech_vault::VaultService,
        &fintech_risk::RiskService,
        &PaymentsService,
        &StatementsService,
    ]
}

struct World {
    app: TestApp,
    minter: Minter,
    ana: String,
    ana_account: String,
    last_month: Month,
}

/// ana: 100.00 in and 25.00 out last month (backdated), 5.00 out this month.
async fn world(spawn: Spawn, monthly: bool) -> World {
    let app = TestApp::spawn(&services(), spawn.with("statements.monthly", monthly)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let staff = minter.staff(&[Role::Admin]);
    let (ana, ana_account) = customer(&app, &minter).await;
    let (_, bob_account) = customer(&app, &minter).await;
    let topup = json!({ "account_id": ana_account, "amount_minor": 10_000, "currency": "USD" });
    assert_eq!(app.call("payments", &staff, "/v1/topups", Some(topup)).await.0, StatusCode::CREATED);
    let pay = |amount: i64| {
        json!({ "from_account_id": ana_account, "to_account_id": bob_account, "amount_minor": amount,
                                    "currency": "USD", "description": "dinner" })
    };
    assert_eq!(app.call("payments", &ana, "/v1/transfers", Some(pay(2_500))).await.0, StatusCode::CREATED);
    // Move everything so far to the 15th of last month, in the ledger's own table.
    let now = fintech_telemetry::now_rfc3339();
    let last_month = Month::of(&now).unwrap().previous();
    let ledger = app.db("ledger").await;
    sqlx::query("UPDATE transfers SET created_at = ?")
        .bind(format!("{last_month}-15T10:00:00.000Z"))
        .execute(ledger.pool())
        .await
        .unwrap();
    ledger.close().await;
    assert_eq!(app.call("payments", &ana, "/v1/transfers", Some(pay(500))).await.0, StatusCode::CREATED);
    World { app, minter, ana, ana_account, last_month }
}

#[tokio::test]
async fn an_owner_gets_last_months_statement_as_csv_and_pdf_sqlite() {
    owner_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_owner_gets_last_months_statement_as_csv_and_pdf_mariadb() {
    owner_flow(Backend::MariaDb).await;
}

async fn owner_flow(backend: Backend) {
    let w = world(Spawn::new(backend), false).await;
    let ask = json!({ "account_id": w.ana_account, "month": w.last_month.to_string() });
    let (status, s) = w.app.call("statements", &w.ana, "/v1/statements", Some(ask.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(
        (
            s["opening_minor"].as_i64(),
            s["credits_minor"].as_i64(),
            s["debits_minor"].as_i64(),
            s["closing_minor"].as_i64()
        ),
        (Some(0), Some(10_000), Some(2_500), Some(7_500)),
        "{s}"
    );
    assert_eq!(s["lines"], 2);
    let (status, again) = w.app.call("statements", &w.ana, "/v1/statements", Some(ask)).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &s["id"]), "made once");

    // The month under way, a malformed month, someone else's account.
    let this_month = Month::of(&fintech_telemetry::now_rfc3339()).unwrap().to_string();
    let (status, p) = w
        .app
        .call("statements", &w.ana, "/v1/statements", Some(json!({ "account_id": w.ana_account, "month": this_month })))
        .await;
    assert_eq!((status, p["code"].as_str()), (StatusCode::CONFLICT, Some("month_not_over")), "{p}");
    let (status, p) = w
        .app
        .call("statements", &w.ana, "/v1/statements", Some(json!({ "account_id": w.ana_account, "month": "2026-13" })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let eve = w.minter.user(Kind::Customer, &uuid::Uuid::now_v7().to_string());
    let id = s["id"].as_str().unwrap();
    for path in [
        format!("/v1/statements/{id}"),
        format!("/v1/statements?account_id={}", w.ana_account),
        format!("/v1/statements/{id}/files/pdf"),
    ] {
        assert_eq!(w.app.call("statements", &eve, &path, None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = w
        .app
        .call(
            "statements",
            &eve,
            "/v1/statements",
            Some(json!({ "account_id": w.ana_account, "month": w.last_month.to_string() })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let support = w.minter.staff(&[Role::Support]);
    let (status, listed) =
        w.app.call("statements", &support, &format!("/v1/statements?account_id={}", w.ana_account), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));

    // The bucket here is a local folder: the links are this service's own routes.
    let (_, view) = w.app.call("statements", &w.ana, &format!("/v1/statements/{id}"), None).await;
    let csv_link = view["links"]["csv"].as_str().unwrap();
    assert_eq!(csv_link, format!("/api/statements/v1/statements/{id}/files/csv"));
    let csv = w.app.http.get(format!("{}{csv_link}", w.app.base)).bearer_auth(&w.ana).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "date,reference,direction,amount,balance_after,currency");
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[1].contains(",credit,100.00,100.00,USD"), "{csv}");
    assert!(rows[2].contains(",debit,-25.00,75.00,USD"), "{csv}");
    let pdf = w
        .app
        .http
        .get(format!("{}{}", w.app.base, view["links"]["pdf"].as_str().unwrap()))
        .bearer_auth(&w.ana)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let text = pdftotext(&pdf);
    for expected in
        ["Opening balance: 0.00 USD", "Money in: 100.00 USD", "Money out: 25.00 USD", "Closing balance: 75.00 USD"]
    {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
}

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; scripts/test.sh installs it)");
    assert!(out.status.success(), "pdftotext refused the file: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "pdftotext complained: {}", String::from_utf8_lossy(&out.stderr));
    // Columns are spread with spaces by -layout: compare words.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_monthly_job_makes_statements_and_links_are_signed_in_the_cloud_bucket() {
    let key = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, &key.stdout).unwrap();
    let spawn = Spawn::new(Backend::Sqlite)
        .with("storage.backend", "gcs")
        .with("storage.bucket", StorageEmulator::BUCKET)
        .with("storage.emulator", StorageEmulator::shared().endpoint())
        .with("storage.signer_service_account", "statements@fintech-test.iam.gserviceaccount.com")
        .with("storage.signing_key_file", key_file.to_str().unwrap())
        .with("statements.monthly_check_ms", 1_000);
    let w = world(spawn, true).await;
    // Accounts opened before this month get last month's statement from the job.
    let db = w.app.db("statements").await;
    sqlx::query("UPDATE statement_accounts SET opened_at = ?")
        .bind(format!("{}-01T00:00:00.000Z", w.last_month))
        .execute(db.pool())
        .await
        .unwrap();
    // An account the ledger does not know, first in id order: its failure must not hold up the
    // accounts after it, in this pass or any other.
    sqlx::query(
        "INSERT INTO statement_accounts (account_id, customer_id, currency, opened_at) VALUES ('!gone', 'nobody', 'USD', ?)",
    )
    .bind(format!("{}-01T00:00:00.000Z", w.last_month))
    .execute(db.pool())
    .await
    .unwrap();
    let list = format!("/v1/statements?account_id={}", w.ana_account);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let statement = loop {
        let (status, listed) = w.app.call("statements", &w.ana, &list, None).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        if let Some(s) = listed["items"].as_array().and_then(|i| i.first()).cloned() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the monthly job made no statement");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (statement["month"].as_str(), statement["closing_minor"].as_i64()),
        (Some(&*w.last_month.to_string()), Some(7_500))
    );
    // The pass ran under the job's lease, held by this (the only) replica.
    let holder: String = sqlx::query_scalar("SELECT owner FROM outbox_lease WHERE name = 'statements-monthly'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(!holder.is_empty(), "the monthly job's lease");
    let gone: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM statements WHERE account_id = '!gone'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(gone, 0, "no statement for an account the ledger does not know");
    db.close().await;
    let (_, view) =
        w.app.call("statements", &w.ana, &format!("/v1/statements/{}", statement["id"].as_str().unwrap()), None).await;
    assert_eq!(view["links"]["expires_in_s"], 300, "{view}");
    let pdf_link = view["links"]["pdf"].as_str().unwrap();
    assert!(pdf_link.contains("X-Goog-Signature="), "a V4 signed URL: {pdf_link}");
    // The link works without a token: it is the signature that grants it, for 5 minutes.
    let pdf = reqwest::get(pdf_link).await.unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    let text = pdftotext(&pdf.bytes().await.unwrap());
    assert!(text.contains("Closing balance: 75.00 USD"), "{text}");
}
