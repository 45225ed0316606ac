//! The Idempotency-Key contract over real HTTP, on SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use fintech_db::{Db, Engine, PoolLimits};
use fintech_kit::idempotency::{self, IdempotencyKey, IdempotencySettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Server {
    base: String,
    effects: Arc<AtomicUsize>,
    db: Db,
    _stop: tokio_util::sync::DropGuard,
    _dir: Option<tempfile::TempDir>,
}

async fn charge(
    State(effects): State<Arc<AtomicUsize>>,
    Extension(key): Extension<IdempotencyKey>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    // Slow enough that concurrent duplicates really overlap.
    tokio::time::sleep(Duration::from_millis(150)).await;
    if body["amount"].as_i64().unwrap_or(0) <= 0 {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "code": "invalid_amount" })));
    }
    if body["fail"] == true {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "code": "unavailable" })));
    }
    let n = effects.fetch_add(1, Ordering::SeqCst) + 1;
    (StatusCode::CREATED, Json(json!({ "charge": key.derive_id("ch"), "amount": body["amount"], "effect": n })))
}

async fn slow(State(effects): State<Arc<AtomicUsize>>) -> StatusCode {
    tokio::time::sleep(Duration::from_secs(4)).await;
    effects.fetch_add(1, Ordering::SeqCst);
    StatusCode::CREATED
}

async fn server(engine: Engine) -> Server {
    let (url, dir) = match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}/idem.db", dir.path().display()), Some(dir))
        }
        Engine::MySql => (fintech_testkit::MariaDb::shared().fresh_database_url(), None),
    };
    fintech_db::create_database_if_absent(&url).await.unwrap();
    let db = Db::connect(&url, PoolLimits { max_connections: 16, ..PoolLimits::default() }).await.unwrap();
    let platform = match engine {
        Engine::Sqlite => &fintech_events::SQLITE_MIGRATIONS,
        Engine::MySql => &fintech_events::MYSQL_MIGRATIONS,
    };
    db.migrate(platform).await.unwrap();
    let effects = Arc::new(AtomicUsize::new(0));
    let mut settings = IdempotencySettings::new("test");
    settings.per_caller = false;
    settings.wait = Duration::from_millis(1500);
    let router = Router::new().route("/charge", post(charge)).route("/slow", post(slow)).with_state(effects.clone());
    let router = idempotency::layer(router, db.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move { fintech_http::server::serve(listener, router, token, Duration::from_secs(1)).await });
    Server { base, effects, db, _stop: stop.drop_guard(), _dir: dir }
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, String) {
    let mut req = http.post(url).json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, resp.text().await.unwrap())
}

async fn contract(engine: Engine) {
    let s = server(engine).await;
    let http = fintech_http::http_client().build().expect("an HTTP client");
    let url = format!("{}/charge", s.base);

    // 50 concurrent identical requests: one effect, 50 identical answers.
    let answers =
        futures::future::join_all((0..50).map(|_| send(&http, &url, Some("key-1"), json!({ "amount": 500 })))).await;
    assert_eq!(s.effects.load(Ordering::SeqCst), 1, "exactly one effect");
    let first = &answers[0];
    for a in &answers {
        assert_eq!((a.0, &a.2), (StatusCode::CREATED, &first.2), "identical replies");
    }
    assert_eq!(answers.iter().filter(|a| a.1.is_some()).count(), 49, "49 replays");
    let body: Value = serde_json::from_str(&first.2).unwrap();
    assert!(body["charge"].as_str().unwrap().starts_with("ch_"));

    // Later, the same key and body: the stored answer again, no new effect.
    let again = send(&http, &url, Some("key-1"), json!({ "amount": 500 })).await;
    assert_eq!((again.0, again.1.as_deref(), &again.2), (StatusCode::CREATED, Some("true"), &first.2));
    // The same key with another body or path: 422.
    let other = send(&http, &url, Some("key-1"), json!({ "amount": 501 })).await;
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(other.2.contains("idempotency_key_reused"), "{}", other.2);
    // Errors once execution began are stored too.
    let bad = send(&http, &url, Some("key-2"), json!({ "amount": 0 })).await;
    let bad_again = send(&http, &url, Some("key-2"), json!({ "amount": 0 })).await;
    assert_eq!(
        (bad.0, bad_again.0, bad_again.1.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNPROCESSABLE_ENTITY, Some("true"))
    );
    // 5xx is not stored: the key can be retried (and the retry acts).
    let failed = send(&http, &url, Some("key-3"), json!({ "amount": 7, "fail": true })).await;
    assert_eq!((failed.0, failed.1), (StatusCode::SERVICE_UNAVAILABLE, None));
    let retried = send(&http, &url, Some("key-3"), json!({ "amount": 7, "fail": true })).await;
    assert_eq!(retried.1, None, "not a replay");
    // Missing or malformed key: 400, nothing runs.
    let effects = s.effects.load(Ordering::SeqCst);
    assert_eq!(send(&http, &url, None, json!({ "amount": 1 })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(send(&http, &url, Some("has space"), json!({ "amount": 1 })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.effects.load(Ordering::SeqCst), effects);

    // In flight past the wait: 409; once done: replayed.
    let slow_url = format!("{}/slow", s.base);
    let first = tokio::spawn({
        let (http, url) = (http.clone(), slow_url.clone());
        async move { send(&http, &url, Some("key-4"), json!({})).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = send(&http, &slow_url, Some("key-4"), json!({})).await;
    assert_eq!(busy.0, StatusCode::CONFLICT);
    assert!(busy.2.contains("idempotency_key_in_use"), "{}", busy.2);
    assert_eq!(first.await.unwrap().0, StatusCode::CREATED);
    assert_eq!(send(&http, &slow_url, Some("key-4"), json!({})).await.1.as_deref(), Some("true"));

    // A request that died mid-way holds its key only until its lease ends.
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, locked_until_ms, created_at_ms) \
         VALUES ('test', ?, 'x', 'in_progress', 0, 0)",
    )
    .bind(idempotency::stored_key("key-5"))
    .execute(s.db.pool())
    .await
    .unwrap();
    let hash_mismatch = send(&http, &url, Some("key-5"), json!({ "amount": 1 })).await;
    assert_eq!(hash_mismatch.0, StatusCode::UNPROCESSABLE_ENTITY, "a different request never takes a key over");
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(b"POST\n/charge\n{\"amount\":1}").iter().map(|b| format!("{b:02x}")).collect()
    };
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, locked_until_ms, created_at_ms) \
         VALUES ('test', ?, ?, 'in_progress', 0, 0)",
    )
    .bind(idempotency::stored_key("key-6"))
    .bind(hash)
    .execute(s.db.pool())
    .await
    .unwrap();
    let before = s.effects.load(Ordering::SeqCst);
    let taken_over = send(&http, &url, Some("key-6"), json!({ "amount": 1 })).await;
    assert_eq!((taken_over.0, taken_over.1), (StatusCode::CREATED, None), "the same request takes over a dead key");
    assert_eq!(s.effects.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_idempotency_contract() {
    contract(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_idempotency_contract() {
    contract(Engine::MySql).await;
}
