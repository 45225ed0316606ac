//! Service tokens for calls over HTTP to another service: a service proves who it is to identity
//! with its secret and gets a short-lived token bound to the one service it calls (the
//! audience). Tokens are cached until a minute before they expire.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use fintech_config::Secret;
use serde::Deserialize;

/// Each token request gives up after this long.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(5);
/// A cached token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// Why no service token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// identity did not answer, or answered 5xx: retry later.
    Unavailable(String),
    /// identity refused the credentials or the audience: a configuration error.
    Refused(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Unavailable(why) => write!(f, "identity unavailable: {why}"),
            TokenError::Refused(why) => write!(f, "identity refused the service credentials: {why}"),
        }
    }
}

impl std::error::Error for TokenError {}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// A service's credentials at identity, and its cached tokens per audience.
pub struct ServiceTokens {
    endpoint: String,
    service: String,
    secret: Secret<String>,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<HashMap<String, (Secret<String>, Instant)>>,
}

impl fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokens").field("endpoint", &self.endpoint).field("service", &self.service).finish()
    }
}

impl ServiceTokens {
    /// `identity_url` is identity's root URL (`http://identity:8080`).
    pub fn new(identity_url: &str, service: &str, secret: Secret<String>) -> Result<ServiceTokens, reqwest::Error> {
        let http = fintech_http::http_client().timeout(TOKEN_TIMEOUT).build()?;
        Ok(ServiceTokens {
            endpoint: format!("{}/api/identity/v1/service-tokens", identity_url.trim_end_matches('/')),
            service: service.to_owned(),
            secret,
            http,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A token for calling `audience`.
    pub async fn token(&self, audience: &str) -> Result<Secret<String>, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, renew_at)) = cache.get(audience)
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let body = serde_json::json!({ "service": self.service, "secret": self.secret.expose(), "audience": audience });
        let response = self
            .http
            .post(&self.endpoint)
            .json(&body)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(TokenError::Unavailable(format!("status {status}")));
        }
        if !status.is_success() {
            return Err(TokenError::Refused(format!("status {status} for audience {audience}")));
        }
        let answer: TokenAnswer =
            response.json().await.map_err(|e| TokenError::Unavailable(format!("unreadable answer: {e}")))?;
        let lifetime = Duration::from_secs(answer.expires_in).saturating_sub(RENEW_BEFORE);
        let token = Secret::new(answer.access_token);
        cache.insert(audience.to_owned(), (token.clone(), Instant::now() + lifetime));
        Ok(token)
    }
}
