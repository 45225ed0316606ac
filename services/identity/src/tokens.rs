//! Issuing tokens: access tokens (signed), refresh tokens (opaque, rotating, in families),
//! service tokens. [`Issuer`] is also offered to other code in the process (the `fintech bench`
//! command and tests mint tokens with it).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fintech_auth::{Claims, ISSUER, Kind, PUBLIC_AUDIENCE, Role};
use fintech_db::Db;
use ring::rand::SecureRandom;
use sha2::{Digest, Sha256};

use crate::error::IdentityError;
use crate::signing::SigningKeys;
use crate::store;

/// `N` bytes from the system's CSPRNG (ring's, already used for keys).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut buf = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| IdentityError::Internal("the system random generator failed".into()))?;
    Ok(buf)
}

/// `N` random bytes, base64url: refresh tokens, API keys, challenges.
pub fn random_token<const N: usize>() -> Result<String, IdentityError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

/// SHA-256 hex: how refresh tokens and API keys (high-entropy secrets) are stored.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn now_secs() -> i64 {
    fintech_telemetry::now_unix_ms() / 1000
}

/// An access token and its lifetime.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// What a token is issued for.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: String,
    pub kind: Kind,
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
    pub api_key_id: Option<String>,
    pub mfa: bool,
}

/// Signs tokens with identity's active key.
#[derive(Debug, Clone)]
pub struct Issuer {
    keys: Arc<SigningKeys>,
    access_ttl: Duration,
    service_ttl: Duration,
}

impl Issuer {
    pub fn new(keys: Arc<SigningKeys>, access_ttl: Duration, service_ttl: Duration) -> Issuer {
        Issuer { keys, access_ttl, service_ttl }
    }

    /// Signs `claims` as they are (the minter's forged tokens for the auth-bypass tests).
    pub(crate) fn sign_raw(&self, claims: &Claims) -> Result<String, IdentityError> {
        self.keys.sign(claims)
    }

    fn sign(&self, claims: &Claims, ttl: Duration) -> Result<AccessToken, IdentityError> {
        Ok(AccessToken { access_token: self.keys.sign(claims)?, token_type: "Bearer", expires_in: ttl.as_secs() })
    }

    fn claims(&self, sub: &str, kind: Kind, aud: &str, ttl: Duration) -> Claims {
        let now = now_secs();
        Claims {
            iss: ISSUER.into(),
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(3600),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::now_v7().to_string(),
            kind,
            roles: Vec::new(),
            scopes: Vec::new(),
            mfa: false,
            api_key_id: None,
        }
    }

    /// An access token for a customer, merchant or staff member.
    pub fn access(&self, subject: &Subject) -> Result<AccessToken, IdentityError> {
        let mut claims = self.claims(&subject.id, subject.kind, PUBLIC_AUDIENCE, self.access_ttl);
        claims.roles.clone_from(&subject.roles);
        claims.scopes.clone_from(&subject.scopes);
        claims.api_key_id.clone_from(&subject.api_key_id);
        claims.mfa = subject.mfa;
        self.sign(&claims, self.access_ttl)
    }

    /// A token for `service` to call `audience`.
    pub fn service(&self, service: &str, audience: &str) -> Result<AccessToken, IdentityError> {
        let claims = self.claims(service, Kind::Service, audience, self.service_ttl);
        self.sign(&claims, self.service_ttl)
    }
}

/// Where a new refresh token goes: a new session (a sign-in), or the session of a token just
/// spent, which keeps its end: refreshing never makes a session outlive its sign-in by more
/// than the refresh token lifetime.
#[derive(Debug, Clone)]
pub enum Family {
    New,
    Continue { id: String, expires_at: i64 },
}

/// A new refresh token; returns the token (only its hash is stored).
pub async fn new_refresh(db: &Db, family: Family, user_id: &str, ttl: Duration) -> Result<String, IdentityError> {
    let token = format!("rt_{}", random_token::<32>()?);
    let hash = sha256_hex(&token);
    let now = now_secs();
    let expires = match &family {
        Family::New => now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        Family::Continue { expires_at, .. } => *expires_at,
    };
    let user = user_id.to_owned();
    db.write(move |conn| {
        Box::pin(async move {
            let family_id = match family {
                Family::Continue { id, .. } => id,
                Family::New => {
                    let id = uuid::Uuid::now_v7().to_string();
                    store::insert_family(&mut *conn, &id, &user, now).await?;
                    id
                }
            };
            store::insert_refresh(&mut *conn, &hash, &family_id, now, expires).await
        })
    })
    .await?;
    Ok(token)
}

/// Why a refresh was refused (logged; the caller only hears "invalid").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    Unknown,
    Expired,
    Revoked,
    /// A token used a second time: the family is revoked.
    Reused,
}

/// Spends `token`: returns its user and the family to continue, or why not. A second use
/// revokes the family.
pub async fn spend_refresh(db: &Db, token: &str) -> Result<Result<(String, Family), RefreshRefusal>, IdentityError> {
    let hash = sha256_hex(token);
    let now = now_secs();
    let outcome = db
        .write(move |conn| {
            Box::pin(async move {
                let Some(row) = store::refresh_token(&mut *conn, &hash).await? else {
                    return Ok(Err(RefreshRefusal::Unknown));
                };
                if row.family_revoked {
                    return Ok(Err(RefreshRefusal::Revoked));
                }
                if row.used_at.is_some() || !store::use_refresh(&mut *conn, &hash, now).await? {
                    store::revoke_family(&mut *conn, &row.family_id, now, "reuse").await?;
                    return Ok(Err(RefreshRefusal::Reused));
                }
                if row.expires_at <= now {
                    return Ok(Err(RefreshRefusal::Expired));
                }
                Ok(Ok((row.user_id, Family::Continue { id: row.family_id, expires_at: row.expires_at })))
            })
        })
        .await?;
    Ok(outcome)
}

/// Revokes the family of `token` (sign-out); unknown tokens are ignored.
pub async fn revoke_refresh(db: &Db, token: &str) -> Result<bool, IdentityError> {
    let hash = sha256_hex(token);
    let now = now_secs();
    Ok(db
        .write(move |conn| {
            Box::pin(async move {
                let Some(row) = store::refresh_token(&mut *conn, &hash).await? else {
                    return Ok(false);
                };
                store::revoke_family(&mut *conn, &row.family_id, now, "sign_out").await?;
                Ok(true)
            })
        })
        .await?)
}
