//! Checking an access token.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};

use crate::extract::Reason;
use crate::keys::SharedKeys;
use crate::{ACCESS_TOKEN_TYPE, ALGORITHM, Claims, Kind, MAX_TOKEN_BYTES, PUBLIC_AUDIENCE};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Verifies the access tokens presented to one service.
pub struct Verifier {
    /// The service's own name: the audience of service tokens meant for it.
    service: String,
    keys: SharedKeys,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("service", &self.service).field("keys", &self.keys).finish()
    }
}

impl Verifier {
    /// A verifier for `service`, trusting the keys of `keys` and tokens of `issuer`.
    pub fn new(service: &str, issuer: &str, keys: SharedKeys) -> Verifier {
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[PUBLIC_AUDIENCE, service]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Verifier { service: service.to_owned(), keys, validation }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The claims of `token`, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Claims, Reason> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Reason::Malformed);
        }
        // `decode_header` refuses unknown algorithms, `none` among them.
        let header = decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName => Reason::Algorithm,
            _ => Reason::Malformed,
        })?;
        if header.alg != ALGORITHM {
            return Err(Reason::Algorithm);
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(Reason::TokenType);
        }
        let kid = header.kid.ok_or(Reason::UnknownKey)?;
        let key = self.keys.key(&kid).await.ok_or(Reason::UnknownKey)?;
        let data = decode::<Claims>(token, &key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => Reason::Expired,
            ErrorKind::ImmatureSignature => Reason::NotYetValid,
            ErrorKind::InvalidAudience => Reason::Audience,
            ErrorKind::InvalidIssuer => Reason::Issuer,
            ErrorKind::InvalidSignature => Reason::Signature,
            ErrorKind::InvalidAlgorithm => Reason::Algorithm,
            ErrorKind::MissingRequiredClaim(_) => Reason::MissingClaim,
            _ => Reason::Malformed,
        })?;
        let claims = data.claims;
        // Service tokens are bound to one service; user tokens to the public API.
        let audience_fits = match claims.kind {
            Kind::Service => claims.aud == self.service,
            _ => claims.aud == PUBLIC_AUDIENCE,
        };
        if !audience_fits {
            return Err(Reason::Audience);
        }
        Ok(claims)
    }
}
