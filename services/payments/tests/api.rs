//! Black-box tests of payments with accounts and the ledger in the same process, over real
//! HTTP, on SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use fintech_accounts::AccountsService;
use fintech_auth::{Kind, Role};
use fintech_db::sqlx::{self, Row};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_ledger::LedgerService;
use fintech_payments::PaymentsService;
use fintech_risk::RiskService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use fintech_vault::VaultService;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A customer with one account, and their token.
#[derive(Debug, Clone)]
struct Party {
    account: String,
    customer: String,
    token: String,
}

struct App {
    app: TestApp,
    minter: Minter,
    /// Staff with every role.
    staff: String,
    ana: String,
    shop: String,
    bob: String,
    parties: Vec<Party>,
}

async fn request(
    app: &TestApp,
    service: &str,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = match body {
        Some(b) => app.http.post(app.url(service, path)).json(&b),
        None => app.http.get(app.url(service, path)),
    };
    req = req.bearer_auth(token);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A customer registers themselves, staff verifies them, they open an account.
async fn open(app: &TestApp, minter: &Minter, kind: &str, currency: &str) -> Party {
    let customer = uuid::Uuid::now_v7().to_string();
    let token = minter.user(if kind == "business" { Kind::Merchant } else { Kind::Customer }, &customer);
    let body = json!({ "kind": kind, "name": "N", "email": "n@example.com" });
    let (status, c) = request(app, "accounts", &token, "/v1/customers", None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let staff = minter.staff(&[Role::Operator]);
    let verified = Some(json!({ "status": "verified" }));
    request(app, "accounts", &staff, &format!("/v1/customers/{customer}/kyc"), None, verified).await;
    let party = Party { account: String::new(), customer, token };
    Party { account: open_account(app, &party, currency).await, ..party }
}

/// Another account of `party`'s, in `currency`.
async fn open_account(app: &TestApp, party: &Party, currency: &str) -> String {
    let body = json!({ "customer_id": party.customer, "currency": currency });
    let (status, a) = request(app, "accounts", &party.token, "/v1/accounts", None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    a["id"].as_str().unwrap().to_owned()
}

async fn spawn_app(backend: Backend) -> App {
    let services: [&dyn fintech_kit::Service; 6] =
        [&IdentityService, &LedgerService, &AccountsService, &VaultService, &RiskService, &PaymentsService];
    let app = TestApp::spawn(&services, Spawn::new(backend)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let staff = minter.staff(&[Role::Admin]);
    let ana = open(&app, &minter, "individual", "USD").await;
    let shop = open(&app, &minter, "business", "USD").await;
    let bob = open(&app, &minter, "individual", "USD").await;
    let a = App {
        ana: ana.account.clone(),
        shop: shop.account.clone(),
        bob: bob.account.clone(),
        parties: vec![ana, shop, bob],
        app,
        minter,
        staff,
    };
    let (status, body) = a
        .pay("/v1/topups", "topup-ana", json!({ "account_id": a.ana, "amount_minor": 10_000, "currency": "USD" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    a
}

impl App {
    fn ana(&self) -> &Party {
        &self.parties[0]
    }
    fn shop(&self) -> &Party {
        &self.parties[1]
    }
    fn bob(&self) -> &Party {
        &self.parties[2]
    }

    /// POSTs as whoever does this in real life: staff tops up, the payee (the shop) captures,
    /// cancels and refunds, ana pays and transfers.
    async fn pay(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let token = if path.starts_with("/v1/topups") {
            &self.staff
        } else if ["/capture", "/cancel", "/refunds"].iter().any(|p| path.ends_with(p)) {
            &self.shop().token
        } else {
            &self.ana().token
        };
        request(&self.app, "payments", token, path, Some(key), Some(body)).await
    }

    async fn pay_as(&self, token: &str, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        request(&self.app, "payments", token, path, Some(key), Some(body)).await
    }

    async fn balance(&self, account: &str) -> (i64, i64) {
        let (_, a) = request(&self.app, "accounts", &self.staff, &format!("/v1/accounts/{account}"), None, None).await;
        (a["balance_minor"].as_i64().unwrap(), a["available_minor"].as_i64().unwrap())
    }

    async fn fees(&self) -> i64 {
        let (_, a) = request(&self.app, "accounts", &self.staff, "/v1/accounts/system:fees:USD", None, None).await;
        a["balance_minor"].as_i64().unwrap()
    }

    /// Ledger journal and outbox rows, to prove refused requests moved nothing.
    async fn ledger_rows(&self) -> (i64, i64) {
        let db = self.app.db("ledger").await;
        let t: i64 = sqlx::query("SELECT COUNT(*) FROM transfers").fetch_one(db.pool()).await.unwrap().get(0);
        let p: i64 = sqlx::query("SELECT COUNT(*) FROM outbox").fetch_one(db.pool()).await.unwrap().get(0);
        (t, p)
    }
}

fn payment(payer: &str, payee: &str, amount: i64, fee: i64, capture: bool) -> Value {
    json!({ "payer_account_id": payer, "payee_account_id": payee, "amount_minor": amount, "currency": "USD",
            "fee_minor": fee, "capture": capture })
}

async fn payment_lifecycle(backend: Backend) {
    let a = spawn_app(backend).await;
    // Capture at once, with a fee charged to the merchant.
    let (status, p) = a.pay("/v1/payments", "p1", payment(&a.ana, &a.shop, 2_500, 100, true)).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("captured")), "{p}");
    assert_eq!(a.balance(&a.ana).await, (7_500, 7_500));
    assert_eq!(a.balance(&a.shop).await.0, 2_400);
    assert_eq!(a.fees().await, 100);

    // Authorize, capture part; the rest of the hold is released.
    let (_, auth) = a.pay("/v1/payments", "p2", payment(&a.ana, &a.shop, 1_000, 100, false)).await;
    assert_eq!(auth["status"], "authorized");
    assert_eq!(a.balance(&a.ana).await, (7_500, 6_500));
    let id = auth["id"].as_str().unwrap();
    let (status, cap) = a.pay(&format!("/v1/payments/{id}/capture"), "p2-cap", json!({ "amount_minor": 600 })).await;
    assert_eq!((status, cap["captured_minor"].as_i64()), (StatusCode::OK, Some(600)), "{cap}");
    assert_eq!(a.balance(&a.ana).await, (6_900, 6_900));
    assert_eq!(a.balance(&a.shop).await.0, 2_400 + 600 - 100);
    let (status, body) = a.pay(&format!("/v1/payments/{id}/cancel"), "p2-cancel", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_payment_state")));

    // Refunds: partial, then never more than captured.
    let (_, r1) = a.pay(&format!("/v1/payments/{id}/refunds"), "r1", json!({ "amount_minor": 300 })).await;
    assert_eq!(r1["status"], "partially_refunded");
    let (status, body) = a.pay(&format!("/v1/payments/{id}/refunds"), "r2", json!({ "amount_minor": 301 })).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("refund_exceeds_captured")));
    let (_, r3) = a.pay(&format!("/v1/payments/{id}/refunds"), "r3", json!({ "amount_minor": 300 })).await;
    assert_eq!(r3["status"], "refunded");
    assert_eq!(a.balance(&a.ana).await.0, 7_500);
    // A refund retried after its stored answer was lost counts once.
    let db = a.app.db("payments").await;
    sqlx::query("DELETE FROM idempotency_keys WHERE idem_key = ?")
        .bind(fintech_kit::idempotency::stored_key("r1"))
        .execute(db.pool())
        .await
        .unwrap();
    let rows = a.ledger_rows().await;
    let (status, again) = a.pay(&format!("/v1/payments/{id}/refunds"), "r1", json!({ "amount_minor": 300 })).await;
    assert_eq!((status, again["refunded_minor"].as_i64()), (StatusCode::OK, Some(600)), "{again}");
    assert_eq!(a.ledger_rows().await, rows, "no second refund in the ledger");
    let refunds: i64 = sqlx::query("SELECT COUNT(*) FROM refunds").fetch_one(db.pool()).await.unwrap().get(0);
    assert_eq!(refunds, 2);

    // Cancel releases a hold; transfers move money between customers.
    let (_, auth) = a.pay("/v1/payments", "p3", payment(&a.ana, &a.shop, 500, 0, false)).await;
    let id = auth["id"].as_str().unwrap();
    let (_, canceled) = a.pay(&format!("/v1/payments/{id}/cancel"), "p3-cancel", json!({})).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(a.balance(&a.ana).await, (7_500, 7_500));
    let (status, t) = a
        .pay(
            "/v1/transfers",
            "t1",
            json!({ "from_account_id": a.ana, "to_account_id": a.bob, "amount_minor": 250, "currency": "USD" }),
        )
        .await;
    assert_eq!((status, t["status"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{t}");
    assert_eq!(a.balance(&a.bob).await.0, 250);
    let (status, got) = request(&a.app, "payments", &a.ana().token, &format!("/v1/payments/{id}"), None, None).await;
    assert_eq!((status, got["status"].as_str()), (StatusCode::OK, Some("canceled")));
}

async fn idempotency_contract(backend: Backend) {
    let a = spawn_app(backend).await;
    let before = a.ledger_rows().await;
    let body = payment(&a.ana, &a.shop, 100, 0, true);
    let answers = futures::future::join_all((0..50).map(|_| a.pay("/v1/payments", "same-key", body.clone()))).await;
    let first = &answers[0];
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert!(answers.iter().all(|x| x == first), "identical replies");
    let after = a.ledger_rows().await;
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "exactly one ledger transfer and its event");
    assert_eq!(a.balance(&a.ana).await.0, 9_900);
    let (status, other) = a.pay("/v1/payments", "same-key", payment(&a.ana, &a.shop, 101, 0, true)).await;
    assert_eq!((status, other["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));
    let (status, missing) = request(&a.app, "payments", &a.ana().token, "/v1/payments", None, Some(body)).await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::BAD_REQUEST, Some("idempotency_key_required")));
}

async fn bad_input_moves_nothing(backend: Backend) {
    let a = spawn_app(backend).await;
    let eur = open(&a.app, &a.minter, "individual", "EUR").await.account;
    let chf = open_account(&a.app, a.ana(), "CHF").await;
    let chf_shop = open(&a.app, &a.minter, "business", "CHF").await.account;
    request(
        &a.app,
        "accounts",
        &a.staff,
        &format!("/v1/accounts/{}/status", a.bob),
        None,
        Some(json!({ "status": "frozen" })),
    )
    .await;
    let before = a.ledger_rows().await;
    let p = |patch: Value| {
        let mut body = payment(&a.ana, &a.shop, 100, 0, true);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (p(json!({ "amount_minor": 0 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "amount_minor": -1 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (
            p(json!({ "amount_minor": 9_223_372_036_854_775_808u64 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (p(json!({ "amount_minor": 12.5 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "currency": "ABC" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "currency": "EUR" })), StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch"),
        (p(json!({ "payee_account_id": eur })), StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch"),
        (p(json!({ "payee_account_id": "acc_nobody" })), StatusCode::UNPROCESSABLE_ENTITY, "account_not_found"),
        (p(json!({ "payee_account_id": a.bob })), StatusCode::CONFLICT, "account_frozen"),
        (p(json!({ "payee_account_id": a.ana })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "payer_account_id": "bad id" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "fee_minor": 101 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "amount_minor": 10_001 })), StatusCode::CONFLICT, "insufficient_funds"),
        (p(json!({ "status": "captured" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "payer_account_id": "system:funding:USD" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (p(json!({ "payee_account_id": "system:fees:USD" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (
            p(json!({ "payer_account_id": chf, "payee_account_id": chf_shop, "currency": "CHF", "fee_minor": 10 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "fees_unavailable",
        ),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let (got, problem) = a.pay("/v1/payments", &format!("bad-{i}"), body).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "case {i}: {problem}");
    }
    let (status, body) = a.pay("/v1/payments/pay_nope/refunds", "bad-r", json!({ "amount_minor": 1 })).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let body = payment(&a.ana, &a.shop, 100, 0, true);
    let url = a.app.url("payments", "/v1/payments");
    let resp = a.app.http.post(&url).header("Idempotency-Key", "k").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(a.ledger_rows().await, before, "refused payments moved no money");
    assert_eq!(a.balance(&a.ana).await, (10_000, 10_000));
    // The refused caller's key is not spent: with the token, the same request runs.
    let (status, paid) = a.pay("/v1/payments", "k", body).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(a.balance(&a.ana).await.0, 9_900);
}

/// Per-object authorization: another customer's payments and accounts are invisible (404 or
/// `account_not_found`, as if missing), roles and API-key scopes are enforced, and the same
/// Idempotency-Key used by two callers makes two independent payments.
async fn callers_see_and_move_only_their_own(backend: Backend) {
    let a = spawn_app(backend).await;
    let (ana, bob, shop) = (a.ana().clone(), a.bob().clone(), a.shop().clone());
    let (status, p) = a.pay("/v1/payments", "own-1", payment(&a.ana, &a.shop, 1_000, 0, false)).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (p["payer_customer_id"].as_str(), p["payee_customer_id"].as_str()),
        (Some(&*ana.customer), Some(&*shop.customer))
    );
    let before = a.ledger_rows().await;

    // bob neither sees nor touches ana's payment, nor pays from her account.
    let path = format!("/v1/payments/{id}");
    let get = async |token: &str| request(&a.app, "payments", token, &path, None, None).await;
    let (status, body) = get(&bob.token).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
    for action in ["capture", "cancel", "refunds"] {
        let (status, body) = a
            .pay_as(
                &bob.token,
                &format!("/v1/payments/{id}/{action}"),
                &format!("bob-{action}"),
                json!({ "amount_minor": 1 }),
            )
            .await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{action}: {body}");
    }
    let (status, body) = a.pay_as(&bob.token, "/v1/payments", "bob-steal", payment(&a.ana, &a.bob, 100, 0, true)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("account_not_found")),
        "{body}"
    );
    let steal = json!({ "from_account_id": a.ana, "to_account_id": a.bob, "amount_minor": 100, "currency": "USD" });
    let (status, body) = a.pay_as(&bob.token, "/v1/transfers", "bob-steal-2", steal).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("account_not_found")),
        "{body}"
    );

    // Roles and scopes: customers do not top up; the payer does not capture; support staff
    // reads but does not capture; an API key with payments:read cannot pay or capture.
    let topup = json!({ "account_id": a.bob, "amount_minor": 100, "currency": "USD" });
    let (status, body) = a.pay_as(&bob.token, "/v1/topups", "bob-topup", topup.clone()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let (status, _) = a.pay_as(&ana.token, &format!("/v1/payments/{id}/capture"), "ana-cap", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let support = a.minter.staff(&[Role::Support]);
    assert_eq!(get(&support).await.0, StatusCode::OK);
    assert_eq!(get(&a.minter.staff(&[Role::Operator])).await.0, StatusCode::OK, "operators hold support's role");
    let (status, _) = a.pay_as(&support, &format!("/v1/payments/{id}/capture"), "sup-cap", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let read_only = a.minter.api_key(&shop.customer, &["payments:read"]);
    assert_eq!(get(&read_only).await.0, StatusCode::OK);
    let (status, _) = a.pay_as(&read_only, &format!("/v1/payments/{id}/capture"), "ro-cap", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let service = a.minter.service("payments", "ledger");
    assert_eq!(get(&service).await.0, StatusCode::UNAUTHORIZED, "a token bound to the ledger is refused here");
    assert_eq!(a.ledger_rows().await, before, "refused callers moved nothing");

    // The shop's API key with payments:manage captures.
    let manage = a.minter.api_key(&shop.customer, &["payments:manage"]);
    let (status, body) = a.pay_as(&manage, &format!("/v1/payments/{id}/capture"), "shop-cap", json!({})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("captured")), "{body}");

    // One key, two callers: two payments with different ids, each replayed only to its owner.
    let topup_bob = a.pay("/v1/topups", "topup-bob", topup).await;
    assert_eq!(topup_bob.0, StatusCode::CREATED);
    let (s1, p1) = a.pay_as(&ana.token, "/v1/payments", "shared-key", payment(&a.ana, &a.shop, 10, 0, true)).await;
    let (s2, p2) = a.pay_as(&bob.token, "/v1/payments", "shared-key", payment(&a.bob, &a.shop, 10, 0, true)).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED), "{p1} {p2}");
    assert_ne!(p1["id"], p2["id"]);
    assert_eq!(a.balance(&a.bob).await.0, 90);
}

/// Card payments with every simulator test card: approved (money from the acquirer's
/// settlement account to the shop, less the fee), declined, insufficient funds, expired, and a
/// network timeout retried safely with the same key: one charge, one ledger transfer.
async fn card_payments(backend: Backend) {
    use fintech_vault::acquirer::{Simulator, test_cards};
    let a = spawn_app(backend).await;
    let ana = a.ana().clone();
    let simulator = a.app.registry.get::<std::sync::Arc<Simulator>>().unwrap();
    let store = async |token: &str, number: &str| {
        let body = json!({ "number": number, "exp_month": 12, "exp_year": 2031 });
        let (status, card) = request(&a.app, "vault", token, "/v1/cards", None, Some(body)).await;
        assert!(status.is_success(), "{card}");
        card["token"].as_str().unwrap().to_owned()
    };
    let pay = |card: &str, amount: i64| {
        json!({ "card_token": card, "payee_account_id": a.shop, "amount_minor": amount, "currency": "USD",
                "fee_minor": 30, "cvv": "123" })
    };
    let settlement = || a.balance("system:settlement:USD");

    let approved = store(&ana.token, test_cards::APPROVED).await;
    let (status, p) = a.pay("/v1/card-payments", "card-1", pay(&approved, 1_000)).await;
    assert_eq!(
        (status, p["status"].as_str(), p["card_last4"].as_str()),
        (StatusCode::CREATED, Some("captured"), Some("4242")),
        "{p}"
    );
    assert_eq!(p["kind"], "card");
    assert_eq!(a.balance(&a.shop).await.0, 970);
    assert_eq!(settlement().await.0, -1_000);
    assert!(!p.to_string().contains(test_cards::APPROVED));
    let (status, again) = a.pay("/v1/card-payments", "card-1", pay(&approved, 1_000)).await;
    assert_eq!((status, &again), (StatusCode::CREATED, &p), "a replay");
    let mut other_cvv = pay(&approved, 1_000);
    other_cvv["cvv"] = json!("456");
    let (status, _) = a.pay("/v1/card-payments", "card-1", other_cvv).await;
    assert_eq!(status, StatusCode::CREATED, "the CVV is not part of the stored request");
    assert_eq!(simulator.approved_charges(), 1);

    let rows = a.ledger_rows().await;
    for (number, code) in [
        (test_cards::DECLINED, "card_declined"),
        (test_cards::INSUFFICIENT_FUNDS, "insufficient_funds"),
        (test_cards::EXPIRED, "expired_card"),
    ] {
        let card = store(&ana.token, number).await;
        let (status, problem) = a.pay("/v1/card-payments", &format!("d-{code}"), pay(&card, 500)).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::PAYMENT_REQUIRED, Some("card_declined")),
            "{problem}"
        );
        assert_eq!(problem["errors"][0]["code"], code);
        let id =
            problem["detail"].as_str().unwrap().split_whitespace().find(|w| w.starts_with("cp_")).unwrap().to_owned();
        let (_, recorded) = request(&a.app, "payments", &ana.token, &format!("/v1/payments/{id}"), None, None).await;
        assert_eq!((recorded["status"].as_str(), recorded["decline_code"].as_str()), (Some("declined"), Some(code)));
    }
    assert_eq!(a.ledger_rows().await.0, rows.0, "declined cards moved no money");

    // A timeout: the answer is lost, the outcome unknown (503, not stored); the retry with the
    // same key gets the approval, and the card was charged once.
    let slow = store(&ana.token, test_cards::TIMEOUT).await;
    let (status, problem) = a.pay("/v1/card-payments", "slow-1", pay(&slow, 700)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("acquirer_unavailable")));
    let (status, p) = a.pay("/v1/card-payments", "slow-1", pay(&slow, 700)).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("captured")), "{p}");
    assert_eq!(simulator.approved_charges(), 2);
    assert_eq!(a.balance(&a.shop).await.0, 970 + 670);

    // Someone else's card, a bad CVV, a staff or merchant caller: refused, nothing charged.
    let bob = a.bob().clone();
    let (status, problem) = a.pay_as(&bob.token, "/v1/card-payments", "bob-card", pay(&approved, 100)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("card_not_found")),
        "{problem}"
    );
    let mut bad_cvv = pay(&approved, 100);
    bad_cvv["cvv"] = json!("12");
    let (status, problem) = a.pay("/v1/card-payments", "bad-cvv", bad_cvv).await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_cvv"))
    );
    let (status, _) = a.pay_as(&a.staff, "/v1/card-payments", "staff-card", pay(&approved, 100)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A payee that cannot receive: refused before the card is charged.
    request(
        &a.app,
        "accounts",
        &a.staff,
        &format!("/v1/accounts/{}/status", a.shop),
        None,
        Some(json!({ "status": "frozen" })),
    )
    .await;
    let (status, problem) = a.pay("/v1/card-payments", "to-frozen", pay(&approved, 100)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("account_frozen")), "{problem}");
    assert_eq!(simulator.approved_charges(), 2);
    // Card payments are captured at once; cancel and refund are refused for now.
    let id = p["id"].as_str().unwrap();
    let (status, problem) =
        a.pay(&format!("/v1/payments/{id}/refunds"), "card-refund", json!({ "amount_minor": 1 })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("card_payment_unchangeable")));
}

/// Risk judges every card payment before vault charges it: a declined attempt is recorded
/// as declined (`risk_declined`) and the card is never charged; a review goes through and is
/// listed for staff.
async fn card_payments_judged_by_risk(backend: Backend) {
    use fintech_vault::acquirer::{Simulator, test_cards};
    let a = spawn_app(backend).await;
    let ana = a.ana().clone();
    let simulator = a.app.registry.get::<std::sync::Arc<Simulator>>().unwrap();
    let rules = json!({
        "review_at": 50, "decline_at": 100,
        "amount_limits": [{ "currency": "USD", "above_minor": 5_000, "score": 50 }],
        "velocity": [{ "key": "card", "window_seconds": 600, "max_attempts": 2, "score": 100 }],
        // The simulator's declined card, 4000 0000 0000 0002.
        "blocked_bins": ["400000"]
    });
    let put = a.app.http.put(a.app.url("risk", "/v1/rules")).bearer_auth(&a.staff).json(&rules).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let store = async |number: &str| {
        let body = json!({ "number": number, "exp_month": 12, "exp_year": 2031 });
        let (status, card) = request(&a.app, "vault", &ana.token, "/v1/cards", None, Some(body)).await;
        assert!(status.is_success(), "{card}");
        card["token"].as_str().unwrap().to_owned()
    };
    let pay = |card: &str, amount: i64| json!({ "card_token": card, "payee_account_id": a.shop, "amount_minor": amount, "currency": "USD" });
    let uses = async || -> i64 {
        let db = a.app.db("vault").await;
        sqlx::query("SELECT COUNT(*) FROM card_uses").fetch_one(db.pool()).await.unwrap().get(0)
    };

    let blocked = store(test_cards::DECLINED).await;
    let (status, problem) = a.pay("/v1/card-payments", "blocked-1", pay(&blocked, 100)).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("risk_declined")));
    assert!(!problem.to_string().contains("blocked_bin"), "the rule is not told to the customer: {problem}");
    assert_eq!(uses().await, 0, "a declined attempt never reaches the card network");
    let id = problem["detail"].as_str().unwrap().split_whitespace().find(|w| w.starts_with("cp_")).unwrap().to_owned();
    let (_, recorded) = request(&a.app, "payments", &ana.token, &format!("/v1/payments/{id}"), None, None).await;
    assert_eq!(
        (recorded["status"].as_str(), recorded["decline_code"].as_str()),
        (Some("declined"), Some("risk_declined"))
    );
    let (status, verdict) = request(&a.app, "risk", &a.staff, &format!("/v1/assessments/{id}"), None, None).await;
    assert_eq!((status, verdict["reasons"][0]["code"].as_str()), (StatusCode::OK, Some("blocked_bin")), "{verdict}");

    // A large amount is charged and flagged for review.
    let card = store(test_cards::APPROVED).await;
    let (status, p) = a.pay("/v1/card-payments", "big-1", pay(&card, 6_000)).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("captured")), "{p}");
    let (_, review) = request(&a.app, "risk", &a.staff, "/v1/assessments?decision=review", None, None).await;
    assert_eq!(review["items"][0]["id"], p["id"]);
    // A replay under the same key is not judged (nor counted) again.
    let (status, _) = a.pay("/v1/card-payments", "big-1", pay(&card, 6_000)).await;
    assert_eq!(status, StatusCode::CREATED);
    // Card velocity: two earlier attempts on the card, the third is declined before vault.
    let (status, _) = a.pay("/v1/card-payments", "small-1", pay(&card, 100)).await;
    assert_eq!(status, StatusCode::CREATED);
    let charged = simulator.approved_charges();
    let (status, problem) = a.pay("/v1/card-payments", "small-2", pay(&card, 100)).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("risk_declined")));
    assert_eq!(simulator.approved_charges(), charged);
    assert_eq!(a.balance(&a.shop).await.0, 6_100, "only the approved attempts moved money");
}

fintech_testkit::on_both_engines!(
    card_payments_judged_by_risk,
    card_payments,
    payment_lifecycle,
    idempotency_contract,
    bad_input_moves_nothing,
    callers_see_and_move_only_their_own
);
