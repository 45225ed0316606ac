//! identity's public keys: the JWK shape, the in-process key ring, and the JWKS client.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};

/// One public key (RFC 8037 OKP key, Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: &str, x_base64url: &str) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x_base64url.to_owned(),
            kid: kid.to_owned(),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
        }
    }

    /// The verification key, if this is an Ed25519 signing key (anything else is ignored).
    pub fn decoding_key(&self) -> Option<DecodingKey> {
        if self.kty != "OKP" || self.crv != "Ed25519" || self.alg != "EdDSA" || self.key_use != "sig" {
            return None;
        }
        DecodingKey::from_ed_components(&self.x).ok()
    }
}

/// A JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    fn decoding_keys(&self) -> HashMap<String, DecodingKey> {
        self.keys.iter().filter_map(|k| Some((k.kid.clone(), k.decoding_key()?))).collect()
    }
}

/// Where a verifier finds the key a token names.
#[async_trait]
pub trait KeySource: Send + Sync + fmt::Debug {
    async fn key(&self, kid: &str) -> Option<DecodingKey>;
}

/// The handle identity offers to services in its process.
pub type SharedKeys = Arc<dyn KeySource>;

/// Public keys held in memory: identity's own, replaced when it rotates.
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, DecodingKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.keys.read().map(|k| k.len()).unwrap_or_default();
        f.debug_struct("KeyRing").field("keys", &n).finish()
    }
}

impl KeyRing {
    pub fn new(set: &JwkSet) -> KeyRing {
        KeyRing { keys: RwLock::new(set.decoding_keys()) }
    }

    /// Replaces the published keys.
    pub fn replace(&self, set: &JwkSet) {
        if let Ok(mut keys) = self.keys.write() {
            *keys = set.decoding_keys();
        }
    }
}

#[async_trait]
impl KeySource for KeyRing {
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }
}

/// Keys are fetched again after this long, so retired keys stop being accepted.
const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// An unknown `kid` triggers a fetch at most this often: a flood of made-up key ids must not
/// become a flood of requests to identity.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
/// Each JWKS fetch gives up after this long.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const JWKS_MAX_BYTES: usize = 64 * 1024;

/// The keys fetched last, and when.
struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// identity's JWKS over HTTP, cached; fetched again when a token names a key not seen yet
/// (a rotation), at most every 10 s, and every 5 minutes in any case. When identity does not
/// answer, the keys fetched before stay in use. A known, fresh key is read under a shared lock:
/// requests do not queue behind each other, only fetches do.
pub struct JwksClient {
    url: String,
    http: reqwest::Client,
    cache: RwLock<Cached>,
    /// Held while fetching; holds the last attempt, successful or not.
    attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl JwksClient {
    pub fn new(url: &str) -> Result<JwksClient, reqwest::Error> {
        let http = fintech_http::http_client().timeout(JWKS_TIMEOUT).build()?;
        Ok(JwksClient {
            url: url.to_owned(),
            http,
            cache: RwLock::new(Cached { keys: HashMap::new(), fetched: None }),
            attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached key `kid`, and whether the cache is fresh.
    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        match self.cache.read() {
            Ok(c) => (c.keys.get(kid).cloned(), c.fetched.is_some_and(|t| t.elapsed() <= JWKS_MAX_AGE)),
            Err(_) => (None, false),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let response = self.http.get(&self.url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > JWKS_MAX_BYTES {
            return Err(format!("document larger than {JWKS_MAX_BYTES} bytes"));
        }
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }
}

#[async_trait]
impl KeySource for JwksClient {
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let (Some(key), true) = self.cached(kid) {
            return Some(key);
        }
        let mut attempt = self.attempt.lock().await;
        // Another request may have fetched while this one waited.
        let (known, fresh) = self.cached(kid);
        if (known.is_some() && fresh) || attempt.is_some_and(|t| t.elapsed() <= JWKS_MIN_REFETCH) {
            return known;
        }
        *attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                if let Ok(mut cache) = self.cache.write() {
                    *cache = Cached { keys: set.decoding_keys(), fetched: *attempt };
                }
            }
            // Keep what we had; try again after the refetch interval.
            Err(e) => tracing::warn!(url = %self.url, error = %e, "could not fetch identity's signing keys"),
        }
        self.cached(kid).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use ring::signature::KeyPair as _;

    fn jwk(kid: &str) -> Jwk {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        Jwk::ed25519(kid, &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
    }

    #[tokio::test]
    async fn jwks_is_cached_and_unknown_kids_do_not_flood_identity() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let set = JwkSet { keys: vec![jwk("a")] };
        Mock::given(method("GET"))
            .and(path("/jwks.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&set))
            .mount(&server)
            .await;
        let client = JwksClient::new(&format!("{}/jwks.json", server.uri())).expect("client");
        assert!(client.key("a").await.is_some());
        assert!(client.key("a").await.is_some(), "from the cache");
        for _ in 0..20 {
            assert!(client.key("made-up").await.is_none());
        }
        let fetches = server.received_requests().await.expect("recorded").len();
        assert_eq!(fetches, 1, "one fetch: the cache, then unknown kids within the refetch interval");
        assert!(Jwk { alg: "HS256".into(), ..jwk("h") }.decoding_key().is_none(), "only Ed25519 signing keys");
    }
}
