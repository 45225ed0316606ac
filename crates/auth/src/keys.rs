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

struct Cached {
    keys: HashMap<String, DecodingKey>,
    /// Last successful fetch.
    fetched: Option<Instant>,
    /// Last attempt, successful or not.
    attempted: Option<Instant>,
}

/// identity's JWKS over HTTP, cached; fetched again when a token names a key not seen yet
/// (a rotation), at most every 10 s, and every 5 minutes in any case. When identity does not
/// answer, the keys fetched before stay in use.
pub struct JwksClient {
    url: String,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cached>,
}

impl fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl JwksClient {
    pub fn new(url: &str) -> Result<JwksClient, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(JWKS_TIMEOUT).build()?;
        Ok(JwksClient {
            url: url.to_owned(),
            http,
            cache: tokio::sync::Mutex::new(Cached { keys: HashMap::new(), fetched: None, attempted: None }),
        })
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
        let mut cache = self.cache.lock().await;
        let known = cache.keys.get(kid).cloned();
        let fresh = cache.fetched.is_some_and(|t| t.elapsed() <= JWKS_MAX_AGE);
        let may_fetch = cache.attempted.is_none_or(|t| t.elapsed() > JWKS_MIN_REFETCH);
        if (known.is_some() && fresh) || !may_fetch {
            return known;
        }
        cache.attempted = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                cache.keys = set.decoding_keys();
                cache.fetched = cache.attempted;
            }
            // Keep what we had; try again after the refetch interval.
            Err(e) => tracing::warn!(url = %self.url, error = %e, "could not fetch identity's signing keys"),
        }
        cache.keys.get(kid).cloned()
    }
}
