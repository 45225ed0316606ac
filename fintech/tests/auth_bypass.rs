//! The auth-bypass suite: every secured route of every service (read from their OpenAPI
//! documents), with every kind of bad token: none, garbage, `alg: none`, HS256 signed with the
//! public key, a foreign key under identity's key id, an unknown key id, the wrong `typ`,
//! expired, not yet valid, the wrong audience or issuer, tampered claims. Each is refused with
//! 401 and a problem body that says nothing more, and each refusal is logged. Then a customer
//! who owns nothing calls every route with made-up ids: nothing succeeds but the self-service
//! routes, nothing fails with 5xx. Routes without security are an explicit list.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fintech_auth::{Claims, Kind};
use fintech_identity::mint::Minter;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::{Method, StatusCode};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};

/// Routes anyone may call: signing up and in (a second-factor challenge is proven by its
/// `mfa_token`, not a bearer token), trading refresh tokens, API keys and service secrets for
/// tokens, reading the public keys, sending a contact request; the SMS providers' delivery statuses,
/// proven by the providers' signatures (services/notifications/tests/api.rs refuses forged ones).
const OPEN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/identity/v1/sign-up"),
    ("POST", "/api/identity/v1/sign-in"),
    ("POST", "/api/identity/v1/sign-in/mfa"),
    ("POST", "/api/identity/v1/sign-in/mfa/sms"),
    ("POST", "/api/identity/v1/refresh"),
    ("POST", "/api/identity/v1/sign-out"),
    ("GET", "/api/identity/v1/jwks.json"),
    ("POST", "/api/identity/v1/api-key-tokens"),
    ("POST", "/api/identity/v1/service-tokens"),
    ("POST", "/api/contact-us/v1/requests"),
    ("POST", "/api/notifications/v1/sms/status/twilio"),
    ("POST", "/api/notifications/v1/sms/status/vonage"),
];

/// Routes a customer who owns nothing may still use: who am I, a second factor, register
/// myself, my cards, the messages sent to me.
const SELF_SERVICE: &[(&str, &str)] = &[
    ("GET", "/api/identity/v1/me"),
    ("POST", "/api/identity/v1/mfa/totp"),
    ("POST", "/api/identity/v1/mfa/sms"),
    ("POST", "/api/identity/v1/mfa/sms/confirm"),
    ("POST", "/api/accounts/v1/customers"),
    ("GET", "/api/vault/v1/cards"),
    ("GET", "/api/notifications/v1/me/deliveries"),
];

const MADE_UP_ID: &str = "0190a5e0-0000-7000-8000-000000000000";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn compact(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// Every kind of bad token, by name.
fn bad_tokens(minter: &Minter, jwks: &Value) -> Vec<(&'static str, Option<String>)> {
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let good = minter.customer_claims(MADE_UP_ID);
    let claims = serde_json::to_value(&good).unwrap();
    let with = |f: &dyn Fn(&mut Claims)| {
        let mut c = good.clone();
        f(&mut c);
        minter.sign_claims(&c)
    };
    let hs256 = |key: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        compact(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid }), &claims, |m| {
            ring::hmac::sign(&key, m).as_ref().to_vec()
        })
    };
    let foreign = {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        assert_ne!(b64(pair.public_key().as_ref()), x);
        compact(&json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid }), &claims, |m| pair.sign(m).as_ref().to_vec())
    };
    let valid = minter.sign_claims(&good);
    let mut parts: Vec<&str> = valid.split('.').collect();
    let mut admin = claims.clone();
    admin["kind"] = json!("staff");
    admin["roles"] = json!(["admin"]);
    let tampered_payload = b64(admin.to_string().as_bytes());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");
    let retyped = {
        let header = b64(json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid }).to_string().as_bytes());
        let v: Vec<&str> = valid.split('.').collect();
        format!("{header}.{}.{}", v[1], v[2])
    };
    let unknown_kid = {
        let header = b64(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "not-a-key" }).to_string().as_bytes());
        let v: Vec<&str> = valid.split('.').collect();
        format!("{header}.{}.{}", v[1], v[2])
    };
    let now = fintech_telemetry::now_unix_ms() / 1000;
    vec![
        ("no token", None),
        ("garbage", Some("not.a.token".to_owned())),
        ("alg none", Some(compact(&json!({ "alg": "none", "typ": "at+jwt" }), &claims, |_| Vec::new()))),
        ("HS256 with the public key (x)", Some(hs256(x.as_bytes()))),
        ("HS256 with the public key (raw)", Some(hs256(&URL_SAFE_NO_PAD.decode(&x).unwrap()))),
        ("foreign key under identity's kid", Some(foreign)),
        ("unknown kid", Some(unknown_kid)),
        ("typ JWT", Some(retyped)),
        ("tampered claims", Some(tampered)),
        ("expired", Some(with(&|c| c.exp = now - 120))),
        ("not yet valid", Some(with(&|c| c.nbf = now + 3600))),
        ("wrong audience", Some(with(&|c| c.aud = "another-api".into()))),
        ("service audience on a user token", Some(with(&|c| c.aud = "ledger".into()))),
        ("wrong issuer", Some(with(&|c| c.iss = "https://evil.example".into()))),
    ]
}

/// (method, path template) of every route in every service's OpenAPI document, and whether it
/// declares security.
fn routes() -> Vec<(Method, String, bool)> {
    let mut out = Vec::new();
    for service in fintech::services::SERVICES {
        let doc = service.openapi();
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, op) in ops {
                if let Some(op) = op {
                    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                    out.push((method, path.clone(), secured));
                }
            }
        }
    }
    out
}

fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(MADE_UP_ID);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

async fn send(app: &TestApp, method: &Method, path: &str, token: Option<&str>) -> (StatusCode, String, Value) {
    let mut req = app.http.request(method.clone(), format!("{}{}", app.base, concrete(path)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if *method == Method::POST {
        req = req.header("Idempotency-Key", uuid::Uuid::now_v7().to_string()).json(&json!({}));
    } else if matches!(*method, Method::PUT | Method::PATCH) {
        req = req.json(&json!({}));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_bad_token() {
    let logs: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    fintech_telemetry::init_to("auth-bypass", "info", logs.clone());
    let app = TestApp::spawn(fintech::services::SERVICES, Spawn::new(Backend::Sqlite)).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let jwks: Value = app.http.get(app.url("identity", "/v1/jwks.json")).send().await.unwrap().json().await.unwrap();
    let tokens = bad_tokens(&minter, &jwks);

    let routes = routes();
    let open: std::collections::BTreeSet<(String, String)> =
        routes.iter().filter(|r| !r.2).map(|(m, p, _)| (m.to_string(), p.clone())).collect();
    let expected: std::collections::BTreeSet<(String, String)> =
        OPEN_ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(open, expected, "routes without security in the OpenAPI documents");
    let secured: Vec<&(Method, String, bool)> = routes.iter().filter(|r| r.2).collect();
    assert!(secured.len() >= 30, "{} secured routes", secured.len());

    let mut refused = 0;
    for (method, path, _) in &secured {
        for (name, token) in &tokens {
            let (status, content_type, body) = send(&app, method, path, token.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {name}: {body}");
            assert_eq!(content_type, "application/problem+json", "{method} {path} with {name}");
            assert_eq!(body["code"], "unauthorized", "{method} {path} with {name}");
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert!(
                keys.iter().all(|k| ["type", "title", "status", "code", "detail", "request_id"].contains(&k.as_str())),
                "{method} {path} with {name}: nothing but the problem: {body}"
            );
            refused += 1;
        }
    }
    println!("{} secured routes x {} bad tokens: {refused} requests refused", secured.len(), tokens.len());
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let failures = logged.lines().filter(|l| l.contains("\"event\":\"authentication_failed\"")).count();
    assert!(failures >= refused, "{failures} refusals logged for {refused} refused requests");
    for (_, token) in &tokens {
        if let Some(t) = token {
            let signature = t.rsplit('.').next().unwrap();
            assert!(signature.len() < 8 || !logged.contains(signature), "a token reached the log");
        }
    }

    // A customer who owns nothing: made-up ids are missing, staff routes forbidden, nothing
    // succeeds but the self-service routes, nothing is a server error.
    let nobody = minter.user(Kind::Customer, &uuid::Uuid::now_v7().to_string());
    for (method, path, _) in &secured {
        let (status, _, body) = send(&app, method, path, Some(&nobody)).await;
        let self_service = SELF_SERVICE.iter().any(|(m, p)| *m == method.as_str() && p == path);
        assert!(!status.is_server_error(), "{method} {path}: {status} {body}");
        if !self_service {
            assert!(
                matches!(status.as_u16(), 400 | 403 | 404 | 409 | 422),
                "{method} {path} as a customer owning nothing: {status} {body}"
            );
        }
    }
}
