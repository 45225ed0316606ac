//! Black-box API tests of contact-us over real HTTP, run twice: on SQLite and on a real MariaDB
//! server started by the tests.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fintech_auth::{Kind, Role};
use fintech_contact_us::ContactUs;
use fintech_db::Db;
use fintech_db::sqlx::{self, Row};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const MAX_ATTACHMENT_BYTES: usize = 64 * 1024;

async fn spawn_app(backend: Backend) -> App {
    let spawn = Spawn::new(backend).with("contact_us.attachments.max_bytes", MAX_ATTACHMENT_BYTES);
    let app = TestApp::spawn(&[&IdentityService, &ContactUs], spawn).await;
    let db = app.db("contact-us").await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    App { staff: minter.staff(&[Role::Support]), minter, app, db }
}

/// The running service plus a pool on its database, for assertions.
struct App {
    app: TestApp,
    db: Db,
    minter: Minter,
    /// Support staff's token.
    staff: String,
}

impl std::ops::Deref for App {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        self.app.url("contact-us", path)
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(self.db.pool()).await.unwrap();
        row.try_get::<i64, _>("n").unwrap()
    }

    fn stored_objects(&self) -> usize {
        fn walk(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
            })
        }
        walk(&self.data_dir.join("bucket/objects"))
    }

    async fn post_json(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/v1/requests")).json(body).send().await.unwrap()
    }
}

/// A client that never reuses a connection (for requests the server refuses before reading).
fn one_shot() -> reqwest::Client {
    fintech_http::http_client().pool_max_idle_per_host(0).build().unwrap()
}

fn valid() -> Value {
    json!({ "name": "Ana Lima", "email": "ana@example.com", "subject": "Card declined", "message": "Hello,\nmy card was declined." })
}

fn form_fields() -> Form {
    Form::new()
        .text("name", "Ana Lima")
        .text("email", "ana@example.com")
        .text("subject", "Statement")
        .text("message", "See the attached scan.")
}

fn pdf_bytes(len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.resize(len, b'x');
    v
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
async fn assert_problem(resp: reqwest::Response, status: StatusCode, code: &str, case: &str) -> Value {
    assert_eq!(resp.status(), status, "{case}");
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"), "{case}");
    let header_id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{case}: {body}");
    assert_eq!(body["status"], status.as_u16(), "{case}");
    assert_eq!(body["type"], format!("urn:fintech:problem:{code}"), "{case}");
    assert_eq!(body["request_id"].as_str(), header_id.as_deref(), "{case}");
    body
}

async fn created_then_read_by_staff(backend: Backend) {
    let app = spawn_app(backend).await;
    let resp = app.post_json(&valid()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/contact-us/v1/requests/{id}"));
    assert_eq!(created["status"], "open");
    assert!(created.get("message").is_none(), "the reply does not echo the message");

    let resp = app
        .http
        .get(app.url(&format!("/v1/requests/{id}")))
        .header("authorization", format!("bearer {}", app.staff))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the auth scheme is case-insensitive");
    assert_eq!(resp.headers()["cache-control"], "no-store", "personal data is never cached");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["email"], "ana@example.com");
    assert_eq!(got["message"], "Hello,\nmy card was declined.");

    // The event left through the outbox, in the same transaction as the row.
    let row =
        sqlx::query("SELECT event_type, ordering_key, payload FROM outbox").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(row.try_get::<String, _>("event_type").unwrap(), "contact.requested");
    assert_eq!(row.try_get::<String, _>("ordering_key").unwrap(), id);
    let payload: Value = serde_json::from_str(&row.try_get::<String, _>("payload").unwrap()).unwrap();
    assert_eq!(payload["email"], "ana@example.com");
    assert!(payload.get("message").is_none());
    // ...and the relay marks it published shortly after the commit wakes it.
    let mut published = false;
    for _ in 0..50 {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NOT NULL")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        if row.try_get::<i64, _>("n").unwrap() == 1 {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(published, "the outbox relay published the event");
}

async fn attachment_is_stored_and_downloadable(backend: Backend) {
    let app = spawn_app(backend).await;
    let pdf = pdf_bytes(10_000);
    let form = form_fields()
        .part("attachment", Part::bytes(pdf.clone()).file_name("../../scan.pdf").mime_str("application/pdf").unwrap());
    let resp = app.http.post(app.url("/v1/requests")).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["attachment"]["file_name"], "scan.pdf");
    assert_eq!(created["attachment"]["size_bytes"], 10_000);
    assert_eq!(app.stored_objects(), 1);

    let id = created["id"].as_str().unwrap();
    let resp =
        app.http.get(app.url(&format!("/v1/requests/{id}/attachment"))).bearer_auth(&app.staff).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(resp.headers()["content-disposition"], "attachment; filename=\"scan.pdf\"");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // A request without an attachment answers 404 on the download.
    let plain: Value = app.post_json(&valid()).await.json().await.unwrap();
    let resp = app
        .http
        .get(app.url(&format!("/v1/requests/{}/attachment", plain["id"].as_str().unwrap())))
        .bearer_auth(&app.staff)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found", "no attachment").await;
}

async fn bad_input_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut v = valid();

    // Missing and invalid fields: 422 with every field named.
    let body =
        assert_problem(app.post_json(&json!({})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "empty")
            .await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "subject", "message", "email"]);
    v["email"] = json!("not-an-email");
    let body =
        assert_problem(app.post_json(&v).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "email").await;
    assert_eq!(body["errors"][0]["code"], "invalid_email");
    v = valid();
    v["message"] = json!("x".repeat(10_001));
    assert_problem(app.post_json(&v).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "long").await;
    v = valid();
    v["role"] = json!("admin");
    assert_problem(app.post_json(&v).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "mass assignment")
        .await;
    v = valid();
    v["name"] = json!(42);
    assert_problem(app.post_json(&v).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "type").await;

    // Malformed JSON, wrong content types, too large.
    let post = |ct: Option<&str>, body: Vec<u8>| {
        let mut req = app.http.post(app.url("/v1/requests")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let resp = post(Some("application/json"), br#"{"name": "Ana""#.to_vec()).await.unwrap();
    assert_problem(resp, StatusCode::BAD_REQUEST, "malformed_json", "malformed").await;
    let resp = post(Some("application/json"), b"\xff\xfe".to_vec()).await.unwrap();
    assert_problem(resp, StatusCode::BAD_REQUEST, "malformed_json", "not utf-8").await;
    let resp = post(None, serde_json::to_vec(&valid()).unwrap()).await.unwrap();
    assert_problem(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "no type").await;
    let resp = post(Some("text/plain"), b"hello".to_vec()).await.unwrap();
    assert_problem(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "text").await;
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(70 * 1024));
    let resp = one_shot()
        .post(app.url("/v1/requests"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "json too large").await;
    let resp = post(Some("multipart/form-data"), b"--x--".to_vec()).await.unwrap();
    assert_problem(resp, StatusCode::BAD_REQUEST, "malformed_multipart", "no boundary").await;

    // Attachments: forbidden type, content not matching the type, too large, unknown field,
    // valid file with invalid fields (the file must not be written).
    let send = |form: Form| app.http.post(app.url("/v1/requests")).multipart(form).send();
    let exe = Part::bytes(b"MZ\x90\x00".to_vec()).file_name("a.exe").mime_str("application/x-msdownload").unwrap();
    let resp = send(form_fields().part("attachment", exe)).await.unwrap();
    assert_problem(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "attachment_type_not_allowed", "exe").await;
    let fake = Part::bytes(b"MZ\x90\x00".to_vec()).file_name("a.pdf").mime_str("application/pdf").unwrap();
    let resp = send(form_fields().part("attachment", fake)).await.unwrap();
    assert_problem(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "attachment_type_not_allowed", "fake pdf").await;
    let big = Part::bytes(pdf_bytes(MAX_ATTACHMENT_BYTES + 1)).file_name("a.pdf").mime_str("application/pdf").unwrap();
    let resp = send(form_fields().part("attachment", big)).await.unwrap();
    assert_problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "attachment_too_large", "big").await;
    let huge = Part::bytes(pdf_bytes(4 * MAX_ATTACHMENT_BYTES)).file_name("a.pdf").mime_str("application/pdf").unwrap();
    // The server answers before reading such a body and closes the connection: send it on a
    // connection of its own, as a client that pools connections would have to.
    let resp = one_shot()
        .post(app.url("/v1/requests"))
        .multipart(form_fields().part("attachment", huge))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "body over the route limit");
    let resp = send(form_fields().text("role", "admin")).await.unwrap();
    assert_problem(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "unknown field").await;
    let ok_pdf = Part::bytes(pdf_bytes(100)).file_name("a.pdf").mime_str("application/pdf").unwrap();
    let bad_email = Form::new().text("name", "A").text("email", "nope").text("subject", "s").text("message", "m");
    let resp = send(bad_email.part("attachment", ok_pdf)).await.unwrap();
    assert_problem(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "valid file, bad email").await;

    // Routing and staff access.
    let resp = app.http.get(format!("{}/api/nope", app.base)).send().await.unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found", "unknown route").await;
    let resp = app.http.delete(app.url("/v1/requests")).send().await.unwrap();
    assert!(resp.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_problem(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "wrong method").await;
    let resp = app.http.get(app.url("/v1/requests")).send().await.unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized", "no token").await;
    let resp = app.http.get(app.url("/v1/requests")).bearer_auth("wrong").send().await.unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized", "wrong token").await;
    // Customers and services do not read contact requests; staff without a role neither.
    for token in [
        app.minter.user(Kind::Customer, &uuid::Uuid::now_v7().to_string()),
        app.minter.service("payments", "contact-us"),
        app.minter.staff(&[]),
    ] {
        let resp = app.http.get(app.url("/v1/requests")).bearer_auth(&token).send().await.unwrap();
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden", "not support staff").await;
    }
    let staff_get = |path: String| app.http.get(app.url(&path)).bearer_auth(&app.staff).send();
    let resp = staff_get("/v1/requests/not-a-uuid".into()).await.unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found", "bad id").await;
    let resp = staff_get(format!("/v1/requests/{}", uuid::Uuid::now_v7())).await.unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found", "unknown id").await;
    for (query, code) in [
        ("limit=0", "invalid_query"),
        ("limit=abc", "invalid_query"),
        ("cursor=x", "invalid_cursor"),
        ("evil=1", "invalid_query"),
    ] {
        let resp = staff_get(format!("/v1/requests?{query}")).await.unwrap();
        assert_problem(resp, StatusCode::BAD_REQUEST, code, query).await;
    }

    // Nothing was written by any of it.
    assert_eq!(app.count("contact_requests").await, 0);
    assert_eq!(app.count("contact_attachments").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    assert_eq!(app.stored_objects(), 0);
}

async fn pages_cover_everything_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut v = valid();
        v["subject"] = json!(format!("subject {i}"));
        let created: Value = app.post_json(&v).await.json().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app.url("/v1/requests?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.http.get(url).bearer_auth(&app.staff).send().await.unwrap().json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
}

fintech_testkit::on_both_engines!(
    created_then_read_by_staff,
    attachment_is_stored_and_downloadable,
    bad_input_changes_nothing,
    pages_cover_everything_newest_first,
);
