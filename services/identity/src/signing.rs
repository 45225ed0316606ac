//! identity's Ed25519 signing keys: creation, publication (JWKS), rotation without downtime.
//!
//! A new key is published at once and signs only from `active_from` (creation + the activation
//! delay): by then every replica has read it (they reload every `key_reload_ms`) and verifiers
//! find it in the JWKS. A key that stopped signing stays published for the longest token
//! lifetime plus the verifiers' leeway, then it is retired: tokens it signed are refused.
//!
//! PLACEHOLDER: private keys are stored unwrapped in identity's database until the KMS interface
//! (vault's envelope encryption) lands; then they are wrapped by the key-encryption key.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fintech_auth::{ACCESS_TOKEN_TYPE, ALGORITHM, Claims, Jwk, JwkSet, KeyRing};
use fintech_db::Db;
use fintech_db::sqlx::{self, Row};
use jsonwebtoken::{EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::error::IdentityError;

struct Active {
    kid: String,
    key: EncodingKey,
}

/// The keys of this replica.
pub struct SigningKeys {
    db: Db,
    ring: Arc<KeyRing>,
    active: RwLock<Option<Arc<Active>>>,
    published: RwLock<JwkSet>,
    activation_delay: Duration,
    retire_after: Duration,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").field("ring", &self.ring).finish_non_exhaustive()
    }
}

struct StoredKey {
    kid: String,
    pkcs8: String,
    x: String,
    active_from: i64,
}

fn now_ms() -> i64 {
    fintech_telemetry::now_unix_ms()
}

/// RFC 7638 thumbprint of an Ed25519 public key: the key id.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl SigningKeys {
    /// Loads the keys, creating the first one (active at once) when there is none.
    /// `retire_after` is the longest token lifetime plus the verifiers' leeway.
    pub async fn load(
        db: Db,
        activation_delay: Duration,
        retire_after: Duration,
    ) -> Result<Arc<SigningKeys>, IdentityError> {
        let keys = Arc::new(SigningKeys {
            db,
            ring: Arc::new(KeyRing::default()),
            active: RwLock::new(None),
            published: RwLock::new(JwkSet::default()),
            activation_delay,
            retire_after,
        });
        keys.reload().await?;
        if keys.active.read().map(|a| a.is_none()).unwrap_or(true) {
            keys.create(0).await?;
            keys.reload().await?;
        }
        Ok(keys)
    }

    /// The public keys, for verifiers in this process.
    pub fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring)
    }

    /// The published keys (the JWKS document).
    pub fn jwks(&self) -> JwkSet {
        self.published.read().map(|p| p.clone()).unwrap_or_default()
    }

    async fn create(&self, delay_ms: i64) -> Result<String, IdentityError> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| IdentityError::Internal("generating an Ed25519 key failed".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| IdentityError::Internal("reading a generated Ed25519 key failed".into()))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = thumbprint(&x);
        let private = STANDARD.encode(pkcs8.as_ref());
        let now = now_ms();
        let (k, p, xx) = (kid.clone(), private, x);
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO signing_keys (kid, private_pkcs8, public_x, created_at, active_from, retired_at) \
                         VALUES (?, ?, ?, ?, ?, NULL)",
                    )
                    .bind(k)
                    .bind(p)
                    .bind(xx)
                    .bind(now)
                    .bind(now + delay_ms)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        tracing::info!(target: "security", event = "signing_key_created", kid = %kid, active_from_ms = now + delay_ms, "created a signing key");
        Ok(kid)
    }

    /// Creates a new key: published now, signing after the activation delay (or at once when
    /// `immediate`, for a compromised key: tokens reach verifiers that have not fetched the new
    /// key yet only after their next JWKS fetch, at most 10 s).
    pub async fn rotate(&self, immediate: bool) -> Result<(String, i64), IdentityError> {
        let delay = if immediate { 0 } else { i64::try_from(self.activation_delay.as_millis()).unwrap_or(i64::MAX) };
        let kid = self.create(delay).await?;
        self.reload().await?;
        Ok((kid, now_ms() + delay))
    }

    /// Reads the keys again: the signing key is the newest active one; keys that stopped signing
    /// more than `retire_after` ago are retired.
    pub async fn reload(&self) -> Result<(), IdentityError> {
        let mut conn = self.db.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT kid, private_pkcs8, public_x, active_from FROM signing_keys WHERE retired_at IS NULL \
             ORDER BY active_from, kid",
        )
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        let stored = rows
            .iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    pkcs8: r.try_get("private_pkcs8")?,
                    x: r.try_get("public_x")?,
                    active_from: r.try_get("active_from")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let now = now_ms();
        let retire_ms = i64::try_from(self.retire_after.as_millis()).unwrap_or(i64::MAX);
        // A key is retired when a newer key has been signing for longer than `retire_after`.
        let mut retired = Vec::new();
        for (i, key) in stored.iter().enumerate() {
            let successor_since = stored[i + 1..].iter().map(|k| k.active_from).filter(|&t| t <= now).max();
            if successor_since.is_some_and(|t| now - t > retire_ms) {
                retired.push(key.kid.clone());
            }
        }
        let live: Vec<&StoredKey> = stored.iter().filter(|k| !retired.contains(&k.kid)).collect();
        let signing = live.iter().rev().find(|k| k.active_from <= now);
        let active = match signing {
            Some(k) => {
                let der = STANDARD
                    .decode(&k.pkcs8)
                    .map_err(|_| IdentityError::Internal(format!("signing key {} is unreadable", k.kid)))?;
                Some(Arc::new(Active { kid: k.kid.clone(), key: EncodingKey::from_ed_der(&der) }))
            }
            None => None,
        };
        let set = JwkSet { keys: live.iter().map(|k| Jwk::ed25519(&k.kid, &k.x)).collect() };
        self.ring.replace(&set);
        if let Ok(mut p) = self.published.write() {
            *p = set;
        }
        if let Ok(mut a) = self.active.write() {
            *a = active;
        }
        if !retired.is_empty() {
            let ids = retired.clone();
            self.db
                .write(move |conn| {
                    Box::pin(async move {
                        for kid in ids {
                            sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL")
                                .bind(now)
                                .bind(kid)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .await?;
            for kid in retired {
                tracing::info!(target: "security", event = "signing_key_retired", kid = %kid, "retired a signing key");
            }
        }
        Ok(())
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &Claims) -> Result<String, IdentityError> {
        let active = self
            .active
            .read()
            .ok()
            .and_then(|a| a.clone())
            .ok_or_else(|| IdentityError::Internal("no active signing key".into()))?;
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        header.kid = Some(active.kid.clone());
        jsonwebtoken::encode(&header, claims, &active.key)
            .map_err(|e| IdentityError::Internal(format!("signing a token: {e}")))
    }

    /// The id of the signing key.
    pub fn active_kid(&self) -> Option<String> {
        self.active.read().ok().and_then(|a| a.as_ref().map(|a| a.kid.clone()))
    }
}
