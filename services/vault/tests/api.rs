//! Black-box tests of vault over real HTTP, on SQLite and MariaDB: cards stored and shown
//! masked, the same card recognised, other customers' cards invisible, charges for payments
//! only, and a KEK rotation after which every card still works and the old key is retired.

#![allow(clippy::unwrap_used)]

use fintech_auth::{Kind, Role};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use fintech_vault::VaultService;
use fintech_vault::acquirer::test_cards;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.http.request(method, app.url("vault", path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn card(number: &str) -> Value {
    json!({ "number": number, "exp_month": 12, "exp_year": 2031 })
}

async fn cards_and_charges(backend: Backend) {
    let app = TestApp::spawn(&[&IdentityService, &VaultService], Spawn::new(backend)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let (ana_id, bob_id) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let (ana, bob) = (minter.user(Kind::Customer, &ana_id), minter.user(Kind::Customer, &bob_id));
    let post = reqwest::Method::POST;

    let (status, stored) = call(&app, &ana, post.clone(), "/v1/cards", Some(card("4242 4242 4242 4242"))).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let token = stored["token"].as_str().unwrap().to_owned();
    assert_eq!((stored["masked"].as_str(), stored["brand"].as_str()), (Some("424242******4242"), Some("visa")));
    assert!(!stored.to_string().contains("4242424242424242"));
    let (status, again) = call(&app, &ana, post.clone(), "/v1/cards", Some(card("4242-4242-4242-4242"))).await;
    assert_eq!(
        (status, again["token"].as_str()),
        (StatusCode::OK, Some(token.as_str())),
        "the same card, the same token"
    );
    let renewed = json!({ "number": "4242424242424242", "exp_month": 6, "exp_year": 2030 });
    let (status, again) = call(&app, &ana, post.clone(), "/v1/cards", Some(renewed)).await;
    assert_eq!(
        (status, again["token"].as_str(), again["exp_year"].as_u64()),
        (StatusCode::OK, Some(token.as_str()), Some(2030))
    );
    let (_, bobs) = call(&app, &bob, post.clone(), "/v1/cards", Some(card("4242424242424242"))).await;
    assert_ne!(bobs["token"], stored["token"], "another customer's card of the same number is another token");
    assert_eq!(bobs["fingerprint"], stored["fingerprint"], "but the same fingerprint");

    // Bad input: refused, nothing stored; a CVV is never accepted here.
    let (y, _) = fintech_vault::domain::Expiry::current();
    for (body, code) in [
        (card("4242424242424241"), "invalid_number"),
        (json!({ "number": "4242424242424242", "exp_month": 1, "exp_year": y - 1 }), "card_expired"),
        (json!({ "number": "4242424242424242", "exp_month": 13, "exp_year": 2031 }), "invalid_expiry"),
        (json!({ "number": 4242424242424242u64, "exp_month": 12, "exp_year": 2031 }), "invalid_shape"),
        (json!({ "number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvv": "123" }), "invalid_shape"),
    ] {
        let (status, problem) = call(&app, &ana, post.clone(), "/v1/cards", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
        assert!(
            !problem.to_string().contains("4242424242424242") && !problem.to_string().contains("123\""),
            "{problem}"
        );
    }

    // Who sees what: the owner and support staff; bob hears 404; staff cannot store cards.
    let path = format!("/v1/cards/{token}");
    assert_eq!(call(&app, &ana, reqwest::Method::GET, &path, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, &minter.staff(&[Role::Support]), reqwest::Method::GET, &path, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, &bob, reqwest::Method::GET, &path, None).await.0, StatusCode::NOT_FOUND);
    let (_, list) = call(&app, &ana, reqwest::Method::GET, "/v1/cards", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, _) =
        call(&app, &minter.staff(&[Role::Admin]), post.clone(), "/v1/cards", Some(card(test_cards::APPROVED))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Charges: payments only, and only the owner's card.
    let charge = |id: &str, customer: &str| json!({ "charge_id": id, "token": token, "customer_id": customer, "amount_minor": 500, "currency": "USD", "cvv": "123" });
    let payments = minter.service("payments", "vault");
    let (status, ok) = call(&app, &payments, post.clone(), "/v1/charges", Some(charge("ch_1", &ana_id))).await;
    assert_eq!(
        (status, ok["outcome"].as_str(), ok["last4"].as_str()),
        (StatusCode::OK, Some("approved"), Some("4242")),
        "{ok}"
    );
    let (status, _) = call(&app, &payments, post.clone(), "/v1/charges", Some(charge("ch_2", &bob_id))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not bob's card");
    for token in [&ana, &minter.staff(&[Role::Admin]), &minter.service("accounts", "vault")] {
        let (status, _) = call(&app, token, post.clone(), "/v1/charges", Some(charge("ch_3", &ana_id))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) =
        call(&app, &minter.service("payments", "ledger"), post.clone(), "/v1/charges", Some(charge("ch_3", &ana_id)))
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a token for another audience");
    let mut other_amount = charge("ch_1", &ana_id);
    other_amount["amount_minor"] = json!(501);
    let (status, problem) = call(&app, &payments, post.clone(), "/v1/charges", Some(other_amount)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("charge_id_reused")));
    let db = app.db("vault").await;
    let uses: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM card_uses").fetch_one(db.pool()).await.unwrap();
    assert_eq!(uses, 1, "every use of a number is recorded");

    // Rotation: admins only; afterwards every card is wrapped by the new KEK and still charges.
    assert_eq!(
        call(&app, &minter.staff(&[Role::Operator]), post.clone(), "/v1/keys/rotate", None).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, rotation) = call(&app, &minter.staff(&[Role::Admin]), post.clone(), "/v1/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{rotation}");
    assert_eq!(rotation["rewrapped"], 2);
    assert_eq!(rotation["retired"].as_array().unwrap().len(), 1);
    let keks: Vec<String> = sqlx::query_scalar("SELECT DISTINCT kek_id FROM cards").fetch_all(db.pool()).await.unwrap();
    assert_eq!(keks, vec![rotation["kek_id"].as_str().unwrap().to_owned()]);
    let (status, ok) = call(&app, &payments, post.clone(), "/v1/charges", Some(charge("ch_4", &ana_id))).await;
    assert_eq!((status, ok["outcome"].as_str()), (StatusCode::OK, Some("approved")), "{ok}");
    let key_file = std::fs::read_to_string(app.data_dir.join("vault/keys.json")).unwrap();
    let file: Value = serde_json::from_str(&key_file).unwrap();
    let retired = rotation["retired"][0].as_str().unwrap();
    let state = file["keks"].as_array().unwrap().iter().find(|k| k["id"] == retired).unwrap()["state"].clone();
    assert_eq!(state, "retired");

    // The database holds ciphertext only.
    let rows: Vec<String> = sqlx::query_scalar("SELECT pan_ciphertext FROM cards").fetch_all(db.pool()).await.unwrap();
    assert!(rows.iter().all(|c| !c.contains("4242")));
}

fintech_testkit::on_both_engines!(cards_and_charges);
