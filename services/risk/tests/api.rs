//! Black-box tests of risk over real HTTP, on SQLite and MariaDB: verdicts for payments only,
//! velocity per card, customer and address, amount limits, blocked BINs and countries, the
//! same id answered once, and rules changed by admins (validated, versioned) taking effect at
//! once without a restart.

#![allow(clippy::unwrap_used)]

use fintech_auth::{Kind, Role};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_risk::RiskService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = app.http.request(method, app.url("risk", path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const CARD_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CARD_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn attempt(id: &str, customer: &str, card: &str, bin: &str, ip: &str, amount: i64) -> Value {
    json!({ "id": id, "customer_id": customer, "card_fingerprint": card, "bin": bin, "ip": ip,
            "amount_minor": amount, "currency": "USD" })
}

fn rules() -> Value {
    json!({
        "review_at": 50,
        "decline_at": 100,
        "amount_limits": [{ "currency": "USD", "above_minor": 10_000, "score": 50 }],
        "velocity": [
            { "key": "card", "window_seconds": 600, "max_attempts": 3, "score": 100 },
            { "key": "customer", "window_seconds": 600, "max_attempts": 5, "score": 50 },
            { "key": "ip", "window_seconds": 600, "max_attempts": 8, "score": 100 }
        ],
        "blocked_bins": ["400000"],
        "blocked_countries": ["KP"],
        "bin_countries": [{ "prefix": "5", "country": "US" }, { "prefix": "555555", "country": "KP" }]
    })
}

async fn verdicts_and_rules(backend: Backend) {
    let app = TestApp::spawn(&[&IdentityService, &RiskService], Spawn::new(backend)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let payments = minter.service("payments", "risk");
    let (admin, operator, support) =
        (minter.staff(&[Role::Admin]), minter.staff(&[Role::Operator]), minter.staff(&[Role::Support]));
    let customer = minter.user(Kind::Customer, "c1");

    // Who may do what.
    let body = Some(attempt("p-0", "c1", CARD_A, "424242", "10.0.0.1", 100));
    for token in [&customer, &admin, &minter.service("accounts", "risk")] {
        let (status, _) = call(&app, token, Method::POST, "/v1/assessments", body.clone()).await;
        assert!(matches!(status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED), "{status}");
    }
    let (status, _) = call(&app, &customer, Method::GET, "/v1/rules", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&app, &support, Method::GET, "/v1/rules", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, set) = call(&app, &operator, Method::GET, "/v1/rules", None).await;
    assert_eq!((status, set["version"].as_i64()), (StatusCode::OK, Some(0)), "the built-in defaults");
    let (status, _) = call(&app, &operator, Method::PUT, "/v1/rules", Some(rules())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bad rules: every bad field named, nothing stored.
    let mut bad = rules();
    bad["decline_at"] = json!(40);
    bad["blocked_countries"] = json!(["Korea"]);
    bad["velocity"][0]["window_seconds"] = json!(0);
    let (status, problem) = call(&app, &admin, Method::PUT, "/v1/rules", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["decline_at", "velocity[0].window_seconds", "blocked_countries[0]"]);
    let mut unknown = rules();
    unknown["max_amount"] = json!(1);
    let (status, _) = call(&app, &admin, Method::PUT, "/v1/rules", Some(unknown)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a misspelt rule is refused, not ignored");
    let (_, set) = call(&app, &operator, Method::GET, "/v1/rules", None).await;
    assert_eq!(set["version"], 0);

    // New rules take effect at once.
    let (status, set) = call(&app, &admin, Method::PUT, "/v1/rules", Some(rules())).await;
    assert_eq!((status, set["version"].as_i64()), (StatusCode::OK, Some(1)), "{set}");

    let assess = async |body: Value| {
        let (status, v) = call(&app, &payments, Method::POST, "/v1/assessments", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    };
    let codes = |v: &Value| -> Vec<String> {
        v["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect()
    };

    let v = assess(attempt("p-1", "c1", CARD_A, "424242", "10.0.0.1", 100)).await;
    assert_eq!(
        (v["decision"].as_str(), v["score"].as_i64(), v["rules_version"].as_i64()),
        (Some("approve"), Some(0), Some(1))
    );
    // The same id again: the recorded verdict, not counted twice; another attempt under it: 409.
    assert_eq!(assess(attempt("p-1", "c1", CARD_A, "424242", "10.0.0.1", 100)).await, v);
    let (status, problem) = call(
        &app,
        &payments,
        Method::POST,
        "/v1/assessments",
        Some(attempt("p-1", "c1", CARD_A, "424242", "10.0.0.1", 999)),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("assessment_id_reused")));

    // Amount above the limit: review.
    let v = assess(attempt("p-2", "c1", CARD_A, "424242", "10.0.0.1", 10_001)).await;
    assert_eq!((v["decision"].as_str(), codes(&v)), (Some("review"), vec!["amount_limit".to_owned()]));
    // Card velocity: 3 earlier attempts on card A (p-1, p-2, p-3) → the 4th declines, even
    // under another customer (the fingerprint is the card's, whoever stored it).
    assess(attempt("p-3", "c1", CARD_A, "424242", "10.0.0.1", 100)).await;
    let v = assess(attempt("p-4", "c2", CARD_A, "424242", "10.0.0.2", 100)).await;
    assert_eq!((v["decision"].as_str(), codes(&v)), (Some("decline"), vec!["velocity_card".to_owned()]), "{v}");
    // Blocked BIN and country (by the BIN table, the longest prefix).
    let v = assess(attempt("p-5", "c3", CARD_B, "400000", "10.0.0.3", 100)).await;
    assert_eq!((v["decision"].as_str(), codes(&v)), (Some("decline"), vec!["blocked_bin".to_owned()]));
    let v = assess(attempt("p-6", "c3", CARD_B, "555555", "10.0.0.3", 100)).await;
    assert_eq!((v["decision"].as_str(), v["country"].as_str()), (Some("decline"), Some("KP")));
    let v = assess(attempt("p-7", "c3", CARD_B, "510510", "10.0.0.3", 100)).await;
    assert_eq!((v["decision"].as_str(), v["country"].as_str()), (Some("approve"), Some("US")));

    // Staff read flagged attempts; customers cannot.
    let (status, list) = call(&app, &support, Method::GET, "/v1/assessments?decision=decline", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["p-6", "p-5", "p-4"]);
    let (status, one) = call(&app, &support, Method::GET, "/v1/assessments/p-2", None).await;
    assert_eq!((status, one["decision"].as_str()), (StatusCode::OK, Some("review")));
    let (status, _) = call(&app, &customer, Method::GET, "/v1/assessments/p-2", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&app, &support, Method::GET, "/v1/assessments/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for query in ["decision=maybe", "limit=0", "limit=501"] {
        let (status, problem) = call(&app, &support, Method::GET, &format!("/v1/assessments?{query}"), None).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{query}"
        );
    }

    // Bad attempts: refused, nothing recorded.
    let (status, problem) = call(
        &app,
        &payments,
        Method::POST,
        "/v1/assessments",
        Some(json!({ "id": "bad id!", "customer_id": "c1", "card_fingerprint": "xyz", "bin": "42",
                     "amount_minor": 0, "currency": "usd" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"].as_array().unwrap().len(), 5, "{problem}");

    // Flagged attempts and rule changes are events for the audit log.
    let db = app.db("risk").await;
    let types: Vec<String> = fintech_db::sqlx::query_scalar("SELECT event_type FROM outbox ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(types, ["risk.rules_changed", "risk.review", "risk.decline", "risk.decline", "risk.decline"]);
}

fintech_testkit::on_both_engines!(verdicts_and_rules);
