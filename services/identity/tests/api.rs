//! Black-box tests of identity over real HTTP: sign-up and sign-in, refresh rotation with reuse
//! detection, sign-out, JWKS and key rotation, staff, API keys, service tokens, second factors
//! (TOTP, and SMS codes read from the embedded outbox), and the brute-force and SMS limits. On
//! SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use fintech_identity::IdentityService;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN_EMAIL: &str = "root@fintech.test";
const ADMIN_PASSWORD: &str = "a long admin passphrase 42";
const PAYMENTS_SECRET: &str = "payments-service-secret-0123456789abcdef";

async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, None).await
}

/// With `redis`: the Redis URL and a key prefix of this test's own.
async fn spawn_app_with(backend: Backend, redis: Option<&(String, String)>) -> TestApp {
    let mut spawn = Spawn::new(backend)
        .with("identity.bootstrap_admin_email", ADMIN_EMAIL)
        .with("identity.bootstrap_admin_password", ADMIN_PASSWORD)
        .with("identity.service_secrets.payments", PAYMENTS_SECRET)
        .with("identity.key_activation_delay_ms", 0)
        .with("identity.trust_forwarded_for", true);
    if let Some((url, prefix)) = redis {
        spawn = spawn.with("redis.url", url.as_str()).with("redis.key_prefix", prefix.as_str());
    }
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
    assert_eq!(challenge["methods"], json!(["totp"]), "{challenge}");
    assert!(challenge.get("sms").is_none(), "no SMS for a user with the app only");
    let (status, problem) = post(&app, "/v1/sign-in/mfa/sms", json!({ "mfa_token": challenge["mfa_token"] })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("sms_not_enabled")), "{problem}");
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

/// Everything logged by this test process (the first call installs the capturing subscriber).
fn captured_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: std::sync::Arc<std::sync::Mutex<Vec<u8>>> = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        fintech_telemetry::init_to("identity-tests", "debug,sqlx=warn", logs.clone());
        logs
    })
    .clone()
}

/// The SMS messages of the app's embedded outbox, in sending order (file names are UUIDv7s).
fn outbox(app: &TestApp) -> Vec<(std::path::PathBuf, Value)> {
    let Ok(entries) = std::fs::read_dir(app.outbox_dir().join("sms")) else {
        return Vec::new();
    };
    let mut paths: Vec<std::path::PathBuf> =
        entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let message = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, message)
        })
        .collect()
}

/// How many SMS went to `to`.
fn sent_to(app: &TestApp, to: &str) -> usize {
    outbox(app).iter().filter(|(_, m)| m["to"] == to).count()
}

/// The code of the latest SMS to `to`, and that message.
fn last_code(app: &TestApp, to: &str) -> (String, Value) {
    let (_, message) = outbox(app).into_iter().rev().find(|(_, m)| m["to"] == to).expect("an SMS to the number");
    let body = message["body"].as_str().unwrap();
    let code = body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_owned();
    (code, message)
}

/// Another 6-digit code than `code`, `n` steps away.
fn not_code(code: &str, n: u32) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + n) % 1_000_000)
}

/// Whether `number` appears in `text` as a number of its own (not inside a longer run of letters
/// or digits).
fn contains_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// SMS codes: enrolment confirmed by the code from the outbox; sign-in then sends one and needs
/// it; codes work once, expire, are replaced by a newer one; wrong codes are answered 429 after
/// 5; the SMS limits per number and per user; a user with an app as well asks for the SMS.
/// The codes reach the outbox only: not the database, the logs or the answers.
async fn sms_second_factor(backend: Backend) {
    sms_second_factor_on(backend, None).await;
}

/// The same story with the one-time codes (and the limits) in a real Redis, as in the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_second_factor_with_codes_in_redis() {
    let redis = (fintech_testkit::RedisServer::shared().url(), format!("t-{}:", uuid::Uuid::new_v4().simple()));
    sms_second_factor_on(Backend::Sqlite, Some(redis)).await;
}

/// Every one-time code kept in Redis under `prefix`, field by field.
async fn codes_in_redis(url: &str, prefix: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}otp:*")).query_async(&mut conn).await.unwrap();
    let mut codes = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.unwrap();
        assert!((1..=300 + 600).contains(&ttl), "{key} kept {ttl} s");
        let mut fields: std::collections::HashMap<String, String> =
            redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await.unwrap();
        fields.insert("key".into(), key);
        codes.push(fields);
    }
    codes
}

/// Makes `user`'s live sign-in codes 400 s older than they are.
async fn age_sign_in_codes(db: &fintech_db::Db, redis: Option<&(String, String)>, user: &str) {
    let Some((url, prefix)) = redis else {
        sqlx::query(
            "UPDATE sms_codes SET expires_at = expires_at - 400 WHERE user_id = ? AND purpose = 'sign_in' AND used_at IS NULL",
        )
        .bind(user)
        .execute(db.pool())
        .await
        .unwrap();
        return;
    };
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut aged = 0;
    for code in codes_in_redis(url, prefix).await {
        if code["user_id"] == user && code["purpose"] == "sign_in" && code["used"] == "0" {
            let _: i64 = redis::cmd("HINCRBY")
                .arg(&code["key"])
                .arg("expires_at")
                .arg(-400)
                .query_async(&mut conn)
                .await
                .unwrap();
            aged += 1;
        }
    }
    assert_eq!(aged, 1, "one live sign-in code");
}

async fn sms_second_factor_on(backend: Backend, redis: Option<(String, String)>) {
    use base64::Engine as _;
    let logs = captured_logs();
    let app = spawn_app_with(backend, redis.as_ref()).await;
    let db = app.db("identity").await;
    let mut codes: Vec<String> = Vec::new();
    let post_from = async |ip: &str, path: &str, token: Option<&str>, body: Value| {
        call(&app, reqwest::Method::POST, path, token, ip, Some(body)).await
    };
    let sign_in_from = async |ip: &str, email: &str| {
        let body = json!({ "email": email, "password": "codes by text message" });
        call(&app, reqwest::Method::POST, "/v1/sign-in", None, ip, Some(body)).await
    };
    let signed_up = async |email: &str, ip: &str| {
        let body = json!({ "email": email, "password": "codes by text message" });
        assert_eq!(post(&app, "/v1/sign-up", body).await.0, StatusCode::CREATED);
        let (status, session, _) = sign_in_from(ip, email).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        (session["user"]["id"].as_str().unwrap().to_owned(), session["access_token"].as_str().unwrap().to_owned())
    };

    // Ana enrols her number.
    let ana_ip = "198.51.100.21";
    let ana_phone = "+15551234567";
    let (ana_id, ana) = signed_up("ana.sms@example.com", ana_ip).await;
    let (status, problem, _) = post_from(ana_ip, "/v1/mfa/sms", Some(&ana), json!({ "phone": "5551234567" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        (problem["errors"][0]["field"].as_str(), problem["errors"][0]["code"].as_str()),
        (Some("phone"), Some("invalid_phone"))
    );
    let (status, problem, _) = post_from(ana_ip, "/v1/mfa/sms/confirm", Some(&ana), json!({ "code": "123456" })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("mfa_not_started")), "{problem}");
    let (status, sent, _) = post_from(ana_ip, "/v1/mfa/sms", Some(&ana), json!({ "phone": "+1 555 123 4567" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent, json!({ "phone": "+1555*****67", "expires_in": 300 }));
    let (code, message) = last_code(&app, ana_phone);
    codes.push(code.clone());
    assert_eq!((message["channel"].as_str(), message["kind"].as_str()), (Some("sms"), Some("otp_enrolment")));
    assert!(message["body"].as_str().unwrap().contains("expires in 5 minutes"), "{message}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, _) in outbox(&app) {
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        }
    }
    let wrong = not_code(&code, 1);
    let (status, problem, _) = post_from(ana_ip, "/v1/mfa/sms/confirm", Some(&ana), json!({ "code": wrong })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")), "{problem}");
    assert!(!problem.to_string().contains(&code) && !problem.to_string().contains(&wrong));
    let (status, enabled, _) = post_from(ana_ip, "/v1/mfa/sms/confirm", Some(&ana), json!({ "code": code })).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled, json!({ "enabled": true, "phone": "+1555*****67" }));
    let (status, _, _) = post_from(ana_ip, "/v1/mfa/sms/confirm", Some(&ana), json!({ "code": code })).await;
    assert_eq!(status, StatusCode::CONFLICT, "enabled already");
    let (status, _, _) = post_from(ana_ip, "/v1/mfa/sms", Some(&ana), json!({ "phone": ana_phone })).await;
    assert_eq!(status, StatusCode::CONFLICT, "enabled already");

    // Her sign-in now answers a challenge and sends a code.
    let (status, challenge, _) = sign_in_from(ana_ip, "ana.sms@example.com").await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    assert!(challenge.get("access_token").is_none());
    assert_eq!((challenge["mfa_required"].clone(), challenge["methods"].clone()), (json!(true), json!(["sms"])));
    assert_eq!(challenge["sms"]["phone"], "+1555*****67");
    let token = challenge["mfa_token"].clone();
    let (code, message) = last_code(&app, ana_phone);
    codes.push(code.clone());
    assert_eq!(message["kind"], "otp_sign_in");
    assert!(!challenge.to_string().contains(&code));
    let answer = |code: &str| json!({ "mfa_token": token, "code": code });
    let (status, problem) = post(&app, "/v1/sign-in/mfa", answer(&not_code(&code, 7))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")));
    // An expired code is refused, right as it is.
    age_sign_in_codes(&db, redis.as_ref(), &ana_id).await;
    let (status, problem) = post(&app, "/v1/sign-in/mfa", answer(&code)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")), "expired");
    // A new code for the same challenge replaces it, and works until the challenge ends.
    let (status, resent, _) = post_from(ana_ip, "/v1/sign-in/mfa/sms", None, json!({ "mfa_token": token })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resent}");
    assert_eq!(resent["phone"], "+1555*****67");
    assert!((1..=300).contains(&resent["expires_in"].as_i64().unwrap()), "{resent}");
    let (old, (code, _)) = (code, last_code(&app, ana_phone));
    codes.push(code.clone());
    if old != code {
        assert_eq!(post(&app, "/v1/sign-in/mfa", answer(&old)).await.0, StatusCode::UNAUTHORIZED, "replaced");
    }
    let (status, session) = post(&app, "/v1/sign-in/mfa", answer(&code)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(me(&app, access).await.1["subject"].as_str(), Some(ana_id.as_str()));
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["mfa"], true);
    let (status, problem) = post(&app, "/v1/sign-in/mfa", answer(&code)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_token")), "spent");
    let (status, problem) = post(&app, "/v1/sign-in/mfa/sms", json!({ "mfa_token": "mfa_made-up" })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_mfa_token")));

    // Three SMS went to Ana's number: the fourth within 10 minutes is refused, whoever asks.
    assert_eq!(sent_to(&app, ana_phone), 3);
    let (status, problem, headers) = sign_in_from(ana_ip, "ana.sms@example.com").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    let wait = headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    let pumper_ip = "198.51.100.22";
    let (_, pumper) = signed_up("pump@example.com", pumper_ip).await;
    let (status, problem, headers) =
        post_from(pumper_ip, "/v1/mfa/sms", Some(&pumper), json!({ "phone": ana_phone })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    assert!(headers.contains_key("retry-after"));
    assert_eq!(sent_to(&app, ana_phone), 3, "nothing more sent");
    let (status, _, _) = post_from(pumper_ip, "/v1/mfa/sms", Some(&pumper), json!({ "phone": "+15557654321" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the limit is the number's, not the user's");
    codes.push(last_code(&app, "+15557654321").0);

    // A code works once; 5 wrong codes, then 429 with Retry-After, even for the right code.
    let cy_ip = "198.51.100.23";
    let cy_phone = "+447700900123";
    let (_, cy) = signed_up("cy.sms@example.com", cy_ip).await;
    assert_eq!(post_from(cy_ip, "/v1/mfa/sms", Some(&cy), json!({ "phone": cy_phone })).await.0, StatusCode::ACCEPTED);
    let (code, _) = last_code(&app, cy_phone);
    codes.push(code.clone());
    assert_eq!(post_from(cy_ip, "/v1/mfa/sms/confirm", Some(&cy), json!({ "code": code })).await.0, StatusCode::OK);
    let (_, first, _) = sign_in_from(cy_ip, "cy.sms@example.com").await;
    let (used, _) = last_code(&app, cy_phone);
    codes.push(used.clone());
    let (status, _) = post(&app, "/v1/sign-in/mfa", json!({ "mfa_token": first["mfa_token"], "code": used })).await;
    assert_eq!(status, StatusCode::OK);
    let (_, second, _) = sign_in_from(cy_ip, "cy.sms@example.com").await;
    let (code, _) = last_code(&app, cy_phone);
    codes.push(code.clone());
    let answer = |code: &str| json!({ "mfa_token": second["mfa_token"], "code": code });
    let mut wrong_codes = 0;
    if used != code {
        assert_eq!(post(&app, "/v1/sign-in/mfa", answer(&used)).await.0, StatusCode::UNAUTHORIZED, "a code works once");
        wrong_codes += 1;
    }
    for n in 1..=(5 - wrong_codes) {
        let (status, _) = post(&app, "/v1/sign-in/mfa", answer(&not_code(&code, n))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong code {n}");
    }
    let (status, problem, headers) =
        call(&app, reqwest::Method::POST, "/v1/sign-in/mfa", None, cy_ip, Some(answer(&code))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);

    // Per user: 5 SMS to any numbers, then 429; a newer enrolment code replaces the earlier one.
    let dee_ip = "198.51.100.24";
    let (_, dee) = signed_up("dee.sms@example.com", dee_ip).await;
    for n in 70..75 {
        let phone = format!("+336123456{n}");
        let (status, sent, _) = post_from(dee_ip, "/v1/mfa/sms", Some(&dee), json!({ "phone": phone })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        codes.push(last_code(&app, &phone).0);
    }
    let (status, problem, headers) =
        post_from(dee_ip, "/v1/mfa/sms", Some(&dee), json!({ "phone": "+33612345675" })).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    assert!(headers.contains_key("retry-after"));
    let (first_code, latest) = (last_code(&app, "+33612345670").0, last_code(&app, "+33612345674").0);
    if first_code != latest {
        let (status, _, _) = post_from(dee_ip, "/v1/mfa/sms/confirm", Some(&dee), json!({ "code": first_code })).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "replaced by the newer code");
    }
    let (status, enabled, _) = post_from(dee_ip, "/v1/mfa/sms/confirm", Some(&dee), json!({ "code": latest })).await;
    assert_eq!((status, enabled["phone"].as_str()), (StatusCode::OK, Some("+3361*****74")), "{enabled}");

    // With an authenticator app as well, sign-in sends no SMS; the client asks for one.
    let eve_ip = "198.51.100.25";
    let eve_phone = "+4915112345678";
    let (_, eve) = signed_up("eve.sms@example.com", eve_ip).await;
    let (status, enrolment, _) = post_from(eve_ip, "/v1/mfa/totp", Some(&eve), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{enrolment}");
    let secret = fintech_identity::mfa::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let totp = fintech_identity::mfa::totp(&secret, fintech_telemetry::now_unix_ms() / 1000);
    assert_eq!(post_from(eve_ip, "/v1/mfa/totp/confirm", Some(&eve), json!({ "code": totp })).await.0, StatusCode::OK);
    assert_eq!(
        post_from(eve_ip, "/v1/mfa/sms", Some(&eve), json!({ "phone": eve_phone })).await.0,
        StatusCode::ACCEPTED
    );
    let (code, _) = last_code(&app, eve_phone);
    codes.push(code.clone());
    assert_eq!(post_from(eve_ip, "/v1/mfa/sms/confirm", Some(&eve), json!({ "code": code })).await.0, StatusCode::OK);
    let (status, challenge, _) = sign_in_from(eve_ip, "eve.sms@example.com").await;
    assert_eq!((status, challenge["methods"].clone()), (StatusCode::OK, json!(["totp", "sms"])), "{challenge}");
    assert!(challenge.get("sms").is_none());
    assert_eq!(sent_to(&app, eve_phone), 1, "no SMS unless asked");
    let (status, sent, _) =
        post_from(eve_ip, "/v1/sign-in/mfa/sms", None, json!({ "mfa_token": challenge["mfa_token"] })).await;
    assert_eq!((status, sent["phone"].as_str()), (StatusCode::ACCEPTED, Some("+4915*******78")), "{sent}");
    let (code, _) = last_code(&app, eve_phone);
    codes.push(code.clone());
    let (status, session) =
        post(&app, "/v1/sign-in/mfa", json!({ "mfa_token": challenge["mfa_token"], "code": code })).await;
    assert_eq!(status, StatusCode::OK, "{session}");

    // The codes are in the outbox only: not in the database (a salted hash of each is)...
    let users: Vec<(String, String, String, String, String)> =
        sqlx::query_as("SELECT id, email, password_hash, COALESCE(totp_secret, ''), COALESCE(phone, '') FROM users")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let rows: Vec<(String, String, String, String, String, String)> =
        sqlx::query_as("SELECT id, purpose, COALESCE(challenge_hash, ''), phone, code_salt, code_hash FROM sms_codes")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let mut stored: Vec<String> = users
        .iter()
        .map(|u| format!("{}|{}|{}|{}|{}", u.0, u.1, u.2, u.3, u.4))
        .chain(rows.iter().map(|r| format!("{}|{}|{}|{}|{}|{}", r.0, r.1, r.2, r.3, r.4, r.5)))
        .collect();
    match &redis {
        None => assert!(rows.len() >= codes.len(), "{} rows", rows.len()),
        Some((url, prefix)) => {
            // ...nor in Redis, where each slot keeps its latest code's salted hash.
            assert!(rows.is_empty(), "codes in the database as well as in Redis: {}", rows.len());
            let in_redis = codes_in_redis(url, prefix).await;
            assert!(in_redis.len() >= 6, "{} codes in Redis", in_redis.len());
            stored.extend(in_redis.iter().map(|fields| {
                let mut pairs: Vec<_> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                pairs.sort();
                pairs.join("|")
            }));
        }
    }
    for code in &codes {
        let unsalted = fintech_identity::tokens::sha256_hex(code);
        for row in &stored {
            assert!(!contains_number(row, code) && !row.contains(&unsalted), "a code in the database: {row}");
        }
    }
    // ...nor in the logs, where numbers are masked.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("sms_code_sent"), "the logs are captured");
    assert!(logged.contains("+1555*****67"), "the number masked in the security records");
    assert!(!logged.contains("5551234567"), "a phone number in clear in the logs");
    assert!(!logged.contains("verification code"), "an SMS text in the logs");
    for code in &codes {
        assert!(!contains_number(&logged, code), "a code in the logs: {code}");
    }
}

fintech_testkit::on_both_engines!(sessions, staff_keys_and_services, brute_force, second_factor, sms_second_factor);

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
