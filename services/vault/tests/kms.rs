//! vault with its keys in Cloud KMS, through Google's official client, against a fake KMS
//! server speaking the REST API (no emulator exists): cards are wrapped by the primary key
//! version, fingerprinted by the HMAC key, charged (unwrapped); a rotation makes a new version
//! primary, re-wraps every card and disables the old version, which then unwraps nothing.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fintech_auth::{Kind, Role};
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use fintech_vault::VaultService;
use fintech_vault::acquirer::test_cards;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "projects/p/locations/europe-west1/keyRings/fintech/cryptoKeys/vault-kek";
const FP: &str = "projects/p/locations/europe-west1/keyRings/fintech/cryptoKeys/vault-fp/cryptoKeyVersions/1";

/// The fake's state: the versions of KEY (index → AES key, enabled) and the primary.
#[derive(Default)]
struct State {
    versions: Vec<([u8; 32], bool)>,
    primary: usize,
    fingerprint_key: [u8; 32],
    calls: Vec<String>,
}

#[derive(Clone)]
struct FakeKms(Arc<Mutex<State>>);

fn version_name(i: usize) -> String {
    format!("{KEY}/cryptoKeyVersions/{}", i + 1)
}

fn version_json(i: usize, enabled: bool) -> Value {
    json!({ "name": version_name(i), "state": if enabled { "ENABLED" } else { "DISABLED" } })
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({ "error": { "code": status, "message": message, "status": code } }))
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap_or_default()).unwrap_or_default()
}

impl Respond for FakeKms {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let path = req.url.path().trim_start_matches("/v1/").to_owned();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        s.calls.push(format!("{} {path}", req.method));
        let key_json = |s: &State| json!({ "name": KEY, "purpose": "ENCRYPT_DECRYPT", "primary": version_json(s.primary, s.versions[s.primary].1) });
        match (req.method.as_str(), path.as_str()) {
            ("GET", p) if p == KEY => ResponseTemplate::new(200).set_body_json(key_json(&s)),
            ("POST", p) if p.ends_with(":encrypt") => {
                let name = p.trim_end_matches(":encrypt");
                let Some(i) = (0..s.versions.len()).find(|i| version_name(*i) == name) else {
                    return error(404, "NOT_FOUND", "no such version");
                };
                let (k, enabled) = s.versions[i];
                if !enabled {
                    return error(400, "FAILED_PRECONDITION", "version disabled");
                }
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).unwrap());
                let mut nonce = [0u8; NONCE_LEN];
                SystemRandom::new().fill(&mut nonce).unwrap();
                let mut buf = b64(&body["plaintext"]);
                let aad = b64(&body["additionalAuthenticatedData"]);
                key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf).unwrap();
                let mut out = vec![u8::try_from(i).unwrap()];
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&buf);
                ResponseTemplate::new(200).set_body_json(json!({ "name": name, "ciphertext": STANDARD.encode(out) }))
            }
            ("POST", p) if p == format!("{KEY}:decrypt") => {
                let sealed = b64(&body["ciphertext"]);
                let aad = b64(&body["additionalAuthenticatedData"]);
                let Some((&i, rest)) = sealed.split_first() else { return error(400, "INVALID_ARGUMENT", "empty") };
                let Some(&(k, enabled)) = s.versions.get(usize::from(i)) else {
                    return error(400, "INVALID_ARGUMENT", "bad ciphertext");
                };
                if !enabled {
                    return error(400, "FAILED_PRECONDITION", "the version is not enabled");
                }
                if rest.len() < NONCE_LEN {
                    return error(400, "INVALID_ARGUMENT", "bad ciphertext");
                }
                let (nonce, body) = rest.split_at(NONCE_LEN);
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).unwrap());
                let mut buf = body.to_vec();
                match key.open_in_place(Nonce::try_assume_unique_for_key(nonce).unwrap(), Aad::from(aad), &mut buf) {
                    Ok(plain) => {
                        ResponseTemplate::new(200).set_body_json(json!({ "plaintext": STANDARD.encode(plain) }))
                    }
                    Err(_) => error(400, "INVALID_ARGUMENT", "decryption failed"),
                }
            }
            ("POST", p) if p == format!("{FP}:macSign") => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &s.fingerprint_key);
                let mac = ring::hmac::sign(&key, &b64(&body["data"]));
                ResponseTemplate::new(200).set_body_json(json!({ "name": FP, "mac": STANDARD.encode(mac.as_ref()) }))
            }
            ("POST", p) if p == format!("{KEY}/cryptoKeyVersions") => {
                let mut k = [0u8; 32];
                SystemRandom::new().fill(&mut k).unwrap();
                s.versions.push((k, true));
                ResponseTemplate::new(200).set_body_json(version_json(s.versions.len() - 1, true))
            }
            ("POST", p) if p == format!("{KEY}:updatePrimaryVersion") => {
                let id: usize = body["cryptoKeyVersionId"].as_str().unwrap_or("0").parse().unwrap_or(0);
                if id == 0 || id > s.versions.len() {
                    return error(400, "INVALID_ARGUMENT", "no such version");
                }
                s.primary = id - 1;
                ResponseTemplate::new(200).set_body_json(key_json(&s))
            }
            ("GET", p) if p == format!("{KEY}/cryptoKeyVersions") => {
                let enabled: Vec<Value> =
                    s.versions.iter().enumerate().filter(|(_, v)| v.1).map(|(i, _)| version_json(i, true)).collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "cryptoKeyVersions": enabled, "totalSize": enabled.len() }))
            }
            ("PATCH", p) => {
                let Some(i) = (0..s.versions.len()).find(|i| version_name(*i) == p) else {
                    return error(404, "NOT_FOUND", "no such version");
                };
                // The client sends the state as its number (enum-encoding=int): 2 is DISABLED.
                let disable = body["state"] == json!(2) || body["state"] == json!("DISABLED");
                if disable {
                    s.versions[i].1 = false;
                }
                ResponseTemplate::new(200).set_body_json(version_json(i, s.versions[i].1))
            }
            _ => error(404, "NOT_FOUND", "unknown route in the fake KMS"),
        }
    }
}

async fn call(app: &TestApp, token: &str, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
    let mut req = app.http.post(app.url("vault", path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn cards_in_cloud_kms(backend: Backend) {
    let mut first = [0u8; 32];
    SystemRandom::new().fill(&mut first).unwrap();
    let mut fingerprint_key = [0u8; 32];
    SystemRandom::new().fill(&mut fingerprint_key).unwrap();
    let state = Arc::new(Mutex::new(State { versions: vec![(first, true)], fingerprint_key, ..State::default() }));
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(FakeKms(Arc::clone(&state))).mount(&server).await;

    let spawn = Spawn::new(backend)
        .with("vault.key_store", "cloud_kms")
        .with("vault.kms_key", KEY)
        .with("vault.kms_fingerprint_key", FP)
        .with("vault.kms_endpoint", server.uri())
        .with("vault.kms_credentials", "none")
        .with("vault.kms_primary_refresh_ms", 200);
    let app = TestApp::spawn(&[&IdentityService, &VaultService], spawn.clone()).await;
    // Another replica of vault on the same key (its own test database: only the keys matter).
    let other = TestApp::spawn(&[&IdentityService, &VaultService], spawn).await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    let ana_id = uuid::Uuid::now_v7().to_string();
    let ana = minter.user(Kind::Customer, &ana_id);
    let payments = minter.service("payments", "vault");
    let card = json!({ "number": test_cards::APPROVED, "exp_month": 12, "exp_year": 2031 });

    let (status, stored) = call(&app, &ana, "/v1/cards", Some(card.clone())).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{stored}");
    let token = stored["token"].as_str().unwrap().to_owned();
    let (status, again) = call(&app, &ana, "/v1/cards", Some(card.clone())).await;
    assert_eq!((status, &again["token"]), (reqwest::StatusCode::OK, &stored["token"]), "the same fingerprint from KMS");
    let db = app.db("vault").await;
    let (kek, wrapped): (String, String) =
        fintech_db::sqlx::query_as("SELECT kek_id, dek_wrapped FROM cards").fetch_one(db.pool()).await.unwrap();
    assert_eq!(kek, version_name(0));
    assert_eq!(STANDARD.decode(&wrapped).unwrap()[0], 0, "wrapped by the fake's first version");

    let charge = |id: &str| json!({ "charge_id": id, "token": token, "customer_id": ana_id, "amount_minor": 500, "currency": "USD" });
    let (status, ok) = call(&app, &payments, "/v1/charges", Some(charge("ch_1"))).await;
    assert_eq!((status, ok["outcome"].as_str()), (reqwest::StatusCode::OK, Some("approved")), "{ok}");

    // Rotation: a new primary version in KMS, every card re-wrapped, the old version disabled.
    let (status, rotation) = call(&app, &minter.staff(&[Role::Admin]), "/v1/keys/rotate", None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{rotation}");
    assert_eq!(rotation["kek_id"], version_name(1));
    assert_eq!(rotation["rewrapped"], 1);
    assert_eq!(rotation["retired"], json!([version_name(0)]));
    {
        let s = state.lock().unwrap();
        assert_eq!((s.primary, s.versions[0].1, s.versions[1].1), (1, false, true));
    }
    let keks: Vec<String> =
        fintech_db::sqlx::query_scalar("SELECT kek_id FROM cards").fetch_all(db.pool()).await.unwrap();
    assert_eq!(keks, vec![version_name(1)]);
    // The other replica wraps new cards with the new primary: it read it again.
    let other_minter = Minter::from_registry(&other.registry).unwrap();
    let bob = other_minter.user(Kind::Customer, &uuid::Uuid::now_v7().to_string());
    let (status, _) = call(&other, &bob, "/v1/cards", Some(card.clone())).await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let other_db = other.db("vault").await;
    let keks: Vec<String> =
        fintech_db::sqlx::query_scalar("SELECT kek_id FROM cards").fetch_all(other_db.pool()).await.unwrap();
    assert_eq!(keks, vec![version_name(1)], "the other replica follows the rotation");
    let (status, ok) = call(&app, &payments, "/v1/charges", Some(charge("ch_2"))).await;
    assert_eq!((status, ok["outcome"].as_str()), (reqwest::StatusCode::OK, Some("approved")), "{ok}");

    // The old wrapping is refused now: put it back and the charge cannot open the card.
    fintech_db::sqlx::query("UPDATE cards SET kek_id = ?, dek_wrapped = ?")
        .bind(&kek)
        .bind(&wrapped)
        .execute(db.pool())
        .await
        .unwrap();
    let (status, _) = call(&app, &payments, "/v1/charges", Some(charge("ch_3"))).await;
    assert!(status.is_server_error(), "a card wrapped by a disabled version cannot be charged: {status}");

    // No key material or card number ever left the fake for the database or the calls.
    let calls = state.lock().unwrap().calls.join("\n");
    assert!(calls.contains(":macSign") && calls.contains(":encrypt") && calls.contains(":decrypt"), "{calls}");
    let rows: Vec<String> =
        fintech_db::sqlx::query_scalar("SELECT pan_ciphertext FROM cards").fetch_all(db.pool()).await.unwrap();
    assert!(rows.iter().all(|r| !r.contains(test_cards::APPROVED)));
}

/// vault refuses to start when its KMS key cannot be read, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_kms_stops_the_start() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(error(403, "PERMISSION_DENIED", "no")).mount(&server).await;
    let err =
        fintech_vault::kms::CloudKms::connect(KEY, FP, Some(&server.uri()), true, std::time::Duration::from_secs(5))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("GetCryptoKey"), "{err}");
}

fintech_testkit::on_both_engines!(cards_in_cloud_kms);
