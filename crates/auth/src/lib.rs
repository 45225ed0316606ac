//! Access tokens, as every service sees them.
//!
//! identity signs short-lived access tokens (JWS compact, `EdDSA` over Ed25519, header
//! `typ: at+jwt`, `kid` naming the key). Every service verifies them with [`Verifier`] against
//! identity's public keys: the key ring of an identity running in the same process, or its JWKS
//! document over HTTP ([`JwksClient`]). Handlers take a [`Caller`] and check what it may do:
//! roles for staff, scopes for merchants' API keys, the calling service for internal routes, and
//! per-object ownership in the service itself (another customer's object answers 404).
//!
//! Invariants: only `EdDSA` is accepted (no `none`, no HMAC, so no key confusion); `iss`, `aud`,
//! `exp`, `nbf`, `sub` are required; a service token is accepted only by the service it names in
//! `aud`, and a user token only with the public audience. Tokens are never logged.

pub mod client;
pub mod extract;
pub mod keys;
pub mod verify;

use serde::{Deserialize, Serialize};

pub use client::ServiceTokens;
pub use extract::{AuthError, Caller, Reason};
pub use keys::{Jwk, JwkSet, JwksClient, KeyRing, KeySource, SharedKeys};
pub use verify::Verifier;

/// `iss` of every token identity signs.
pub const ISSUER: &str = "fintech-identity";
/// `aud` of tokens issued to people and merchants: the public API of every service.
pub const PUBLIC_AUDIENCE: &str = "fintech-api";
/// The JOSE `typ` of access tokens (RFC 9068), so that no other JWT passes as one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The only signature algorithm accepted.
pub const ALGORITHM: jsonwebtoken::Algorithm = jsonwebtoken::Algorithm::EdDSA;
/// Longest token accepted; ours are about 500 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A person banking with us; acts as the accounts customer with the same id.
    Customer,
    /// A business using an API key (or its owner signed in); acts as its accounts customer.
    Merchant,
    /// Our own staff, with roles.
    Staff,
    /// One of the platform's services; `sub` is its name, `aud` the one service it may call.
    Service,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Merchant => "merchant",
            Kind::Staff => "staff",
            Kind::Service => "service",
        }
    }
}

/// Staff roles, each holding the ones before it: `operator` holds `support`, `admin` both.
/// The order of the variants is that hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads customers, accounts, payments and contact requests to help people.
    Support,
    /// Also records KYC decisions, freezes or closes accounts and tops accounts up.
    Operator,
    /// Also manages staff and signing keys.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Support, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Merchant API-key scopes.
pub mod scopes {
    /// Create payments and read them.
    pub const PAYMENTS_WRITE: &str = "payments:write";
    /// Read payments only.
    pub const PAYMENTS_READ: &str = "payments:read";
    /// Capture, cancel and refund the merchant's payments.
    pub const PAYMENTS_MANAGE: &str = "payments:manage";
    /// Register, change and read the merchant's webhook endpoints, and replay deliveries.
    pub const WEBHOOKS_MANAGE: &str = "webhooks:manage";
    pub const ALL: [&str; 4] = [PAYMENTS_WRITE, PAYMENTS_READ, PAYMENTS_MANAGE, WEBHOOKS_MANAGE];
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// User id (customers, merchants, staff) or service name.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// Token id, for the audit trail.
    pub jti: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    /// Scopes of a merchant's API key; empty for a merchant signed in with a password (all scopes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Whether the sign-in passed a second factor.
    #[serde(default)]
    pub mfa: bool,
    /// The API key this token was exchanged for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
}
