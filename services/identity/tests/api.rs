//! Black-box tests of identity over real HTTP: sign-up and sign-in, refresh rotation with reuse
//! detection, sign-out, JWKS and key rotation, staff, API keys, service tokens, and the
//! brute-force limits. On SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use fintech_identity::IdentityService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN_EMAIL: &str = "root@fintech.test";
const ADMIN_PASSWORD: &str = "a long admin passphrase 42";
const PAYMENTS_SECRET: &str = "payments-service-secret-0123456789abcdef";

async fn spawn_app(backend: Backend) -> TestApp {
    let spawn = Spawn::new(backend)
        .with("identity.bootstrap_admin_email", ADMIN_EMAIL)
        .with("identity.bootstrap_admin_password", ADMIN_PASSWORD)
        .with("identity.service_secrets.payments", PAYMENTS_SECRET)
        .with("identity.key_activation_delay_ms", 0)
        .with("identity.trust_forwarded_for", true);
    TestApp::spawn(&[&IdentityService], spawn).await
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    ip: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req =
        app.http.request(method, app.url("identity", path)).header("x-forwarded-for", format!("203.0.113.9, {ip}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let (s, v, _) = call(app, reqwest::Method::POST, path, None, "198.51.100.1", Some(body)).await;
    (s, v)
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Value {
    let (status, session) = post(app, "/v1/sign-in", json!({ "email": email, "password": password })).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    session
}

async fn me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let (s, v, _) = call(app, reqwest::Method::GET, "/v1/me", Some(token), "198.51.100.1", None).await;
    (s, v)
}

async fn sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    // Sign-up refuses weak passwords and fields nobody may set.
    let cases = [
        (json!({ "email": "ana@example.com", "password": "short" }), "password"),
        (json!({ "email": "ana@example.com", "password": "password1234" }), "password"),
        (json!({ "email": "not an email", "password": "a fine passphrase" }), "email"),
        (json!({ "email": "ana@example.com", "password": "a fine passphrase", "kind": "staff" }), "kind"),
    ];
    for (body, field) in cases {
        let (status, problem) = post(&app, "/v1/sign-up", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, problem) = post(
        &app,
        "/v1/sign-up",
        json!({ "email": "ana@example.com", "password": "a fine passphrase", "role": "admin" }),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));

    let (status, user) =
        post(&app, "/v1/sign-up", json!({ "email": "Ana@Example.com", "password": "a fine passphrase" })).await;
    assert_eq!((status, user["kind"].as_str()), (StatusCode::CREATED, Some("customer")), "{user}");
    assert!(user.get("password_hash").is_none());
    let (status, problem) =
        post(&app, "/v1/sign-up", json!({ "email": "ana@example.com", "password": "another passphrase" })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("email_taken")));

    // Wrong password and unknown e-mail answer alike.
    let (s1, p1) =
        post(&app, "/v1/sign-in", json!({ "email": "ana@example.com", "password": "a fine passphrasE" })).await;
    let (s2, p2) =
        post(&app, "/v1/sign-in", json!({ "email": "nobody@example.com", "password": "a fine passphrase" })).await;
    assert_eq!((s1, p1["code"].as_str(), p1["detail"].as_str()), (s2, p2["code"].as_str(), p2["detail"].as_str()));
    assert_eq!(s1, StatusCode::UNAUTHORIZED);

    let session = sign_in(&app, "ana@example.com", "a fine passphrase").await;
    let access = session["access_token"].as_str().unwrap();
    let (status, who) = me(&app, access).await;
    assert_eq!(
        (status, who["subject"].as_str(), who["kind"].as_str()),
        (StatusCode::OK, user["id"].as_str(), Some("customer"))
    );

    // Refresh rotates; a used refresh token is refused and ends the session.
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = post(&app, "/v1/refresh", json!({ "refresh_token": first })).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first);
    let (status, problem) = post(&app, "/v1/refresh", json!({ "refresh_token": first })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token")));
    let (status, _) = post(&app, "/v1/refresh", json!({ "refresh_token": second_refresh })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reuse of the first token revoked the whole family");
    let (status, _) = post(&app, "/v1/refresh", json!({ "refresh_token": "rt_made-up" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Sign-out ends that session only.
    let a = sign_in(&app, "ana@example.com", "a fine passphrase").await;
    let b = sign_in(&app, "ana@example.com", "a fine passphrase").await;
    let (status, _) = post(&app, "/v1/sign-out", json!({ "refresh_token": a["refresh_token"] })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post(&app, "/v1/refresh", json!({ "refresh_token": a["refresh_token"] })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");
    let (status, _) = post(&app, "/v1/refresh", json!({ "refresh_token": b["refresh_token"] })).await;
    assert_eq!(status, StatusCode::OK, "the other session goes on");

    // Stored: an argon2id hash, SHA-256 of refresh tokens, never the secrets.
    let db = app.db("identity").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ana@example.com'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = ?")
        .bind(b["refresh_token"].as_str().unwrap())
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(found, 0, "refresh tokens are stored hashed");
    let sliding: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT family_id FROM refresh_tokens GROUP BY family_id \
         HAVING COUNT(DISTINCT expires_at) > 1) AS f",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(sliding, 0, "a refreshed session keeps the end of its sign-in");
}

async fn staff_keys_and_services(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let (status, who) = me(&app, &admin).await;
    assert_eq!((status, who["roles"].clone()), (StatusCode::OK, json!(["admin"])));

    // Admins add staff; staff without admin cannot.
    let body = json!({ "email": "sam@fintech.test", "password": "support passphrase 1", "roles": ["support"] });
    let (status, sam, _) =
        call(&app, reqwest::Method::POST, "/v1/staff", Some(&admin), "198.51.100.1", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{sam}");
    let sam = sign_in(&app, "sam@fintech.test", "support passphrase 1").await;
    let sam = sam["access_token"].as_str().unwrap().to_owned();
    let body = json!({ "email": "eve@fintech.test", "password": "support passphrase 2", "roles": ["admin"] });
    let (status, _, _) = call(&app, reqwest::Method::POST, "/v1/staff", Some(&sam), "198.51.100.1", Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = json!({ "email": "eve@fintech.test", "password": "support passphrase 2", "roles": ["root"] });
    let (status, _, _) = call(&app, reqwest::Method::POST, "/v1/staff", Some(&admin), "198.51.100.1", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Merchants create API keys (shown once), trade them for scoped tokens, revoke them.
    post(
        &app,
        "/v1/sign-up",
        json!({ "email": "shop@example.com", "password": "merchant passphrase", "kind": "merchant" }),
    )
    .await;
    let shop = sign_in(&app, "shop@example.com", "merchant passphrase").await;
    let shop_token = shop["access_token"].as_str().unwrap().to_owned();
    let body = json!({ "name": "checkout", "scopes": ["payments:write"] });
    let (status, key, _) =
        call(&app, reqwest::Method::POST, "/v1/api-keys", Some(&shop_token), "198.51.100.1", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("fk_{}_", key["prefix"].as_str().unwrap())));
    let (status, listed, _) =
        call(&app, reqwest::Method::GET, "/v1/api-keys", Some(&shop_token), "198.51.100.1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!listed.to_string().contains(&secret), "the key is never shown again");
    let (status, api) = post(&app, "/v1/api-key-tokens", json!({ "api_key": secret })).await;
    assert_eq!(status, StatusCode::OK, "{api}");
    let (_, who) = me(&app, api["access_token"].as_str().unwrap()).await;
    assert_eq!((who["kind"].as_str(), who["scopes"].clone()), (Some("merchant"), json!(["payments:write"])));
    // An API-key token cannot make more API keys; a customer cannot either.
    let (status, _, _) = call(
        &app,
        reqwest::Method::POST,
        "/v1/api-keys",
        api["access_token"].as_str(),
        "198.51.100.1",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) =
        call(&app, reqwest::Method::POST, "/v1/api-keys", Some(&sam), "198.51.100.1", Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another merchant's key answers 404; the owner revokes it and it stops working.
    post(
        &app,
        "/v1/sign-up",
        json!({ "email": "other@example.com", "password": "merchant passphrase", "kind": "merchant" }),
    )
    .await;
    let other = sign_in(&app, "other@example.com", "merchant passphrase").await;
    let revoke = format!("/v1/api-keys/{}/revoke", key["id"].as_str().unwrap());
    let (status, _, _) =
        call(&app, reqwest::Method::POST, &revoke, other["access_token"].as_str(), "198.51.100.1", Some(json!({})))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, revoked, _) =
        call(&app, reqwest::Method::POST, &revoke, Some(&shop_token), "198.51.100.1", Some(json!({}))).await;
    assert!(status == StatusCode::OK && revoked["revoked_at"].is_string(), "{revoked}");
    let (status, problem) = post(&app, "/v1/api-key-tokens", json!({ "api_key": secret })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_api_key")));

    // Service tokens: right secret and an allowed audience only.
    let ask = |secret: &str, audience: &str| json!({ "service": "payments", "secret": secret, "audience": audience });
    let (status, t) = post(&app, "/v1/service-tokens", ask(PAYMENTS_SECRET, "ledger")).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let (status, _) = me(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a token bound to the ledger is refused by identity");
    let (status, _) = post(&app, "/v1/service-tokens", ask("wrong-secret-0123456789abcdef0123456789", "ledger")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&app, "/v1/service-tokens", ask(PAYMENTS_SECRET, "identity")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "payments may not call identity");
    let unknown = json!({ "service": "ledger", "secret": PAYMENTS_SECRET, "audience": "accounts" });
    assert_eq!(post(&app, "/v1/service-tokens", unknown).await.0, StatusCode::UNAUTHORIZED);

    // Key rotation: a new key signs from now on, and tokens of the old one stay valid.
    let (_, jwks, headers) = call(&app, reqwest::Method::GET, "/v1/jwks.json", None, "198.51.100.1", None).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(headers["cache-control"].to_str().unwrap().contains("max-age"));
    let (status, _, _) =
        call(&app, reqwest::Method::POST, "/v1/signing-keys", Some(&sam), "198.51.100.1", Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, rotated, _) =
        call(&app, reqwest::Method::POST, "/v1/signing-keys", Some(&admin), "198.51.100.1", Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let (_, jwks, _) = call(&app, reqwest::Method::GET, "/v1/jwks.json", None, "198.51.100.1", None).await;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&rotated["kid"].as_str().unwrap()));
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part is published");
    let fresh = sign_in(&app, "sam@fintech.test", "support passphrase 1").await;
    let header = fresh["access_token"].as_str().unwrap().split('.').next().unwrap().to_owned();
    use base64::Engine as _;
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(
        (header["kid"].as_str(), header["alg"].as_str(), header["typ"].as_str()),
        (rotated["kid"].as_str(), Some("EdDSA"), Some("at+jwt"))
    );
    assert_eq!(me(&app, &sam).await.0, StatusCode::OK, "a token of the previous key still verifies");
}

/// Credential stuffing and guessing from one address are slowed down with 429; the owner
/// signing in from another address is not.
async fn brute_force(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, _) =
        post(&app, "/v1/sign-up", json!({ "email": "victim@example.com", "password": "a strong staple 99 horse" }))
            .await;
    assert_eq!(status, StatusCode::CREATED);
    let attempt = async |ip: &str, email: &str, password: &str| {
        let body = json!({ "email": email, "password": password });
        call(&app, reqwest::Method::POST, "/v1/sign-in", None, ip, Some(body)).await
    };
    // Guessing one account: 5 failures per address, then 429 with Retry-After.
    for i in 0..5 {
        let (status, _, _) = attempt("192.0.2.66", "victim@example.com", &format!("guess number {i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, problem, headers) = attempt("192.0.2.66", "victim@example.com", "a strong staple 99 horse").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // The owner, elsewhere, signs in.
    let (status, _, _) = attempt("198.51.100.7", "victim@example.com", "a strong staple 99 horse").await;
    assert_eq!(status, StatusCode::OK);
    // Stuffing many accounts from one address: 20 attempts, then 429 for any account.
    let mut refused = 0;
    for i in 0..25 {
        let (status, _, _) = attempt("192.0.2.99", &format!("user{i}@example.com"), "some leaked passphrase").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 5, "the 21st attempt from one address onwards is refused");
    let (status, _, _) = attempt("198.51.100.8", "victim@example.com", "a strong staple 99 horse").await;
    assert_eq!(status, StatusCode::OK, "other addresses are unaffected");
}

/// TOTP: enrolment confirmed by a first code; then sign-in needs a code; a code works once;
/// guessing is answered 429 after 5 wrong codes.
async fn second_factor(backend: Backend) {
    use fintech_identity::mfa;
    let app = spawn_app(backend).await;
    post(&app, "/v1/sign-up", json!({ "email": "mfa@example.com", "password": "two factors are better" })).await;
    let session = sign_in(&app, "mfa@example.com", "two factors are better").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let post_as = async |path: &str, body: Value| {
        let (s, v, h) = call(&app, reqwest::Method::POST, path, Some(&token), "198.51.100.1", Some(body)).await;
        (s, v, h)
    };
    let (status, enrolment, _) = post_as("/v1/mfa/totp", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{enrolment}");
    assert!(enrolment["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/FINTECH:mfa%40example.com?secret="));
    let secret = mfa::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let now = || fintech_telemetry::now_unix_ms() / 1000;
    let (status, problem, _) = post_as("/v1/mfa/totp/confirm", json!({ "code": "000000" })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")));
    let (status, enabled, _) = post_as("/v1/mfa/totp/confirm", json!({ "code": mfa::totp(&secret, now()) })).await;
    assert_eq!((status, enabled["enabled"].as_bool()), (StatusCode::OK, Some(true)), "{enabled}");
    assert_eq!(post_as("/v1/mfa/totp", json!({})).await.0, StatusCode::CONFLICT, "enabled already");

    // Sign-in now answers a challenge, not tokens.
    let challenge = sign_in(&app, "mfa@example.com", "two factors are better").await;
    assert_eq!(challenge["mfa_required"], true);
    assert!(challenge.get("access_token").is_none());
    let answer = |code: String, token: &Value| json!({ "mfa_token": token, "code": code });
    // The code used to confirm is spent; the next step's code works, once.
    let (status, _) = post(&app, "/v1/sign-in/mfa", answer(mfa::totp(&secret, now()), &challenge["mfa_token"])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code of a step used already");
    let next = mfa::totp(&secret, now() + 30);
    let (status, full) = post(&app, "/v1/sign-in/mfa", answer(next.clone(), &challenge["mfa_token"])).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    let (_, who) = me(&app, full["access_token"].as_str().unwrap()).await;
    assert_eq!(who["subject"], session["user"]["id"]);
    let (status, problem) = post(&app, "/v1/sign-in/mfa", answer(next.clone(), &challenge["mfa_token"])).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_token")), "spent");
    let again = sign_in(&app, "mfa@example.com", "two factors are better").await;
    let (status, _) = post(&app, "/v1/sign-in/mfa", answer(next, &again["mfa_token"])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once");

    // Guessing: 5 wrong codes, then 429 with Retry-After, even for the right code.
    let guess = sign_in(&app, "mfa@example.com", "two factors are better").await;
    for i in 0..4 {
        let (status, _) = post(&app, "/v1/sign-in/mfa", answer(format!("{i:06}"), &guess["mfa_token"])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let (status, _, headers) = call(
        &app,
        reqwest::Method::POST,
        "/v1/sign-in/mfa",
        None,
        "198.51.100.1",
        Some(answer(mfa::totp(&secret, now() + 60), &guess["mfa_token"])),
    )
    .await;
    assert!(status == StatusCode::TOO_MANY_REQUESTS && headers.contains_key("retry-after"), "{status}");
}

fintech_testkit::on_both_engines!(sessions, staff_keys_and_services, brute_force, second_factor);

/// Two identity replicas with their rate limits in one real Redis: failures counted by either
/// add up, so spreading guesses over replicas gains nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_in_redis() {
    let redis = fintech_testkit::RedisServer::shared().url();
    let prefix = format!("t-{}:", uuid::Uuid::new_v4().simple());
    let replica = async || {
        let spawn = Spawn::new(Backend::Sqlite)
            .with("identity.trust_forwarded_for", true)
            .with("redis.url", redis.as_str())
            .with("redis.key_prefix", prefix.as_str());
        TestApp::spawn(&[&IdentityService], spawn).await
    };
    let (a, b) = (replica().await, replica().await);
    let account = json!({ "email": "victim@example.com", "password": "a strong staple 99 horse" });
    for app in [&a, &b] {
        assert_eq!(post(app, "/v1/sign-up", account.clone()).await.0, StatusCode::CREATED);
    }
    let guess = async |app: &TestApp, i: usize| {
        let body = json!({ "email": "victim@example.com", "password": format!("guess number {i}") });
        call(app, reqwest::Method::POST, "/v1/sign-in", None, "192.0.2.66", Some(body)).await.0
    };
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(guess(app, i).await, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    assert_eq!(guess(&a, 5).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(guess(&b, 6).await, StatusCode::TOO_MANY_REQUESTS);
}
