//! The [`Caller`] extractor and the errors of authentication and authorization.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use fintech_http::Problem;

use crate::verify::Verifier;
use crate::{Claims, Kind, Role};

/// Why a token was refused; logged (`reason`), never sent beyond "invalid" or "expired".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Missing,
    Malformed,
    Algorithm,
    TokenType,
    UnknownKey,
    Signature,
    Expired,
    NotYetValid,
    Audience,
    Issuer,
    MissingClaim,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Algorithm => "algorithm",
            Reason::TokenType => "token_type",
            Reason::UnknownKey => "unknown_key",
            Reason::Signature => "signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Audience => "audience",
            Reason::Issuer => "issuer",
            Reason::MissingClaim => "missing_claim",
        }
    }
}

/// Refusals of the auth layer.
#[derive(Debug, Clone)]
pub enum AuthError {
    /// No valid access token: 401.
    Unauthenticated(Reason),
    /// A valid token that may not do this: 403.
    Forbidden(&'static str),
    /// The service was started without a verifier: a bug, 500.
    NotConfigured,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Unauthenticated(r) => write!(f, "unauthenticated ({})", r.code()),
            AuthError::Forbidden(what) => write!(f, "forbidden: {what}"),
            AuthError::NotConfigured => f.write_str("no token verifier configured"),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The problem answered.
    pub fn problem(&self) -> Problem {
        match self {
            AuthError::Unauthenticated(Reason::Expired) => {
                Problem::unauthorized("The access token has expired; refresh it or sign in again.").with_bearer_error()
            }
            AuthError::Unauthenticated(Reason::Missing) => Problem::unauthorized("A bearer access token is required."),
            AuthError::Unauthenticated(_) => {
                Problem::unauthorized("The access token is not valid.").with_bearer_error()
            }
            AuthError::Forbidden(_) => Problem::forbidden("This caller may not do that."),
            AuthError::NotConfigured => Problem::internal(),
        }
    }
}

trait BearerError {
    fn with_bearer_error(self) -> Self;
}

impl BearerError for Problem {
    /// RFC 6750's `error="invalid_token"` on the challenge.
    fn with_bearer_error(mut self) -> Self {
        self.headers.retain(|(name, _)| name != header::WWW_AUTHENTICATE);
        self.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""))
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    claims: Arc<Claims>,
}

impl Caller {
    /// A caller with these claims (for code that authorizes on behalf of an in-process call).
    pub fn from_claims(claims: Claims) -> Caller {
        Caller { claims: Arc::new(claims) }
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    pub fn kind(&self) -> Kind {
        self.claims.kind
    }

    /// The accounts customer this caller acts as: customers and merchants act as themselves
    /// (their customer id is their user id); staff and services act as nobody.
    pub fn customer_id(&self) -> Option<&str> {
        match self.claims.kind {
            Kind::Customer | Kind::Merchant => Some(&self.claims.sub),
            Kind::Staff | Kind::Service => None,
        }
    }

    /// Whether this is staff holding `role` or a higher one: admin holds operator's and
    /// support's, operator holds support's (`Role` is ordered).
    pub fn has_role(&self, role: Role) -> bool {
        self.claims.kind == Kind::Staff && self.claims.roles.iter().any(|r| *r >= role)
    }

    /// Whether this is the service `name`.
    pub fn is_service(&self, name: &str) -> bool {
        self.claims.kind == Kind::Service && self.claims.sub == name
    }

    /// Whether a merchant caller may use `scope`: an API-key token needs the scope; a merchant
    /// signed in with a password holds all of them.
    pub fn has_scope(&self, scope: &str) -> bool {
        match self.claims.kind {
            Kind::Merchant => self.claims.api_key_id.is_none() || self.claims.scopes.iter().any(|s| s == scope),
            Kind::Customer => true,
            Kind::Staff | Kind::Service => false,
        }
    }

    /// `Ok` when `allowed`, else a logged 403 naming `what` was refused.
    pub fn require(&self, allowed: bool, what: &'static str) -> Result<(), AuthError> {
        if allowed {
            return Ok(());
        }
        tracing::warn!(
            target: "security",
            event = "authorization_refused",
            kind = self.claims.kind.as_str(),
            subject = %self.claims.sub,
            token_id = %self.claims.jti,
            action = what,
            "refused a request this caller may not make"
        );
        Err(AuthError::Forbidden(what))
    }

    /// Staff with `role`.
    pub fn require_role(&self, role: Role, what: &'static str) -> Result<(), AuthError> {
        self.require(self.has_role(role), what)
    }

    /// One of the services `names`.
    pub fn require_service(&self, names: &[&str], what: &'static str) -> Result<(), AuthError> {
        self.require(names.iter().any(|n| self.is_service(n)), what)
    }
}

/// The bearer token of `parts`, if any.
fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
}

fn refuse(parts: &Parts, reason: Reason) -> AuthError {
    tracing::warn!(
        target: "security",
        event = "authentication_failed",
        reason = reason.code(),
        method = %parts.method,
        path = %parts.uri.path(),
        "refused a request without a valid access token"
    );
    AuthError::Unauthenticated(reason)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Verified already by an outer layer (the idempotency layer) for this request.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let Some(verifier) = parts.extensions.get::<Arc<Verifier>>().cloned() else {
            tracing::error!(path = %parts.uri.path(), "a route needs a caller but the service has no token verifier");
            return Err(AuthError::NotConfigured);
        };
        let Some(token) = bearer(parts) else {
            return Err(refuse(parts, Reason::Missing));
        };
        match verifier.verify(token).await {
            Ok(claims) => Ok(Caller { claims: Arc::new(claims) }),
            Err(reason) => Err(refuse(parts, reason)),
        }
    }
}

/// A caller when the request carries a token, `None` when it carries none; an invalid token is
/// still refused (for routes open to everyone that do more for a signed-in caller).
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Ok(MaybeCaller(None));
        }
        Ok(MaybeCaller(Some(Caller::from_request_parts(parts, state).await?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes;

    fn caller(kind: Kind, roles: Vec<Role>, scopes: Vec<&str>, api_key: bool) -> Caller {
        Caller::from_claims(Claims {
            iss: crate::ISSUER.into(),
            sub: "u1".into(),
            aud: crate::PUBLIC_AUDIENCE.into(),
            exp: 0,
            nbf: 0,
            iat: 0,
            jti: "j".into(),
            kind,
            roles,
            scopes: scopes.into_iter().map(str::to_owned).collect(),
            mfa: false,
            api_key_id: api_key.then(|| "k1".to_owned()),
        })
    }

    #[test]
    fn roles_hold_the_ones_below() {
        let operator = caller(Kind::Staff, vec![Role::Operator], vec![], false);
        assert!(
            operator.has_role(Role::Support) && operator.has_role(Role::Operator) && !operator.has_role(Role::Admin)
        );
        let support = caller(Kind::Staff, vec![Role::Support], vec![], false);
        assert!(support.has_role(Role::Support) && !support.has_role(Role::Operator));
        let admin = caller(Kind::Staff, vec![Role::Admin], vec![], false);
        assert!(Role::ALL.iter().all(|r| admin.has_role(*r)));
        let customer_claiming = caller(Kind::Customer, vec![Role::Admin], vec![], false);
        assert!(!customer_claiming.has_role(Role::Support), "roles count for staff only");
        assert_eq!(customer_claiming.customer_id(), Some("u1"));
        assert_eq!(admin.customer_id(), None);
    }

    #[test]
    fn scopes_bind_api_keys_only() {
        let key = caller(Kind::Merchant, vec![], vec![scopes::PAYMENTS_READ], true);
        assert!(key.has_scope(scopes::PAYMENTS_READ) && !key.has_scope(scopes::PAYMENTS_WRITE));
        let signed_in = caller(Kind::Merchant, vec![], vec![], false);
        assert!(signed_in.has_scope(scopes::PAYMENTS_MANAGE));
        let staff = caller(Kind::Staff, vec![Role::Admin], vec![], false);
        assert!(!staff.has_scope(scopes::PAYMENTS_WRITE));
        assert!(key.require(false, "x").is_err() && key.require(true, "x").is_ok());
    }
}
