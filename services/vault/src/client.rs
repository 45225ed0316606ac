//! How payments has a card charged: [`VaultClient`], served in-process by [`Vault`] (the
//! embedded mode) or over HTTP with a service token bound to vault ([`HttpVault`]). Either way
//! the card number stays in vault.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_auth::ServiceTokens;

use crate::cards::{CardView, ChargeRequest, ChargeResult, Vault};
use crate::error::VaultError;

/// Why a charge has no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    /// No such card of that customer.
    #[error("no such card")]
    NotFound,
    #[error("invalid CVV")]
    InvalidCvv,
    #[error("charge id reused")]
    ChargeIdReused,
    /// The outcome is unknown: retry with the same charge id.
    #[error("no answer from the card network")]
    Unknown,
}

#[async_trait]
pub trait VaultClient: Send + Sync + fmt::Debug {
    /// The card `token` of `customer_id`, masked (what risk judges: fingerprint and BIN).
    async fn card(&self, token: &str, customer_id: &str) -> Result<CardView, ChargeError>;
    async fn charge(&self, req: &ChargeRequest, cvv: Option<&str>) -> Result<ChargeResult, ChargeError>;
}

/// The handle payments finds in the registry when vault runs in its process.
pub type SharedVault = Arc<dyn VaultClient>;

/// vault in this process, called as `caller`.
#[derive(Debug, Clone)]
pub struct InProcess {
    pub vault: Vault,
    pub caller: &'static str,
}

fn from_vault(e: VaultError) -> ChargeError {
    match e {
        VaultError::NotFound => ChargeError::NotFound,
        VaultError::Validation(_) => ChargeError::InvalidCvv,
        VaultError::ChargeIdReused => ChargeError::ChargeIdReused,
        other => {
            if !matches!(other, VaultError::AcquirerTimeout | VaultError::AcquirerUnavailable) {
                tracing::error!(error = &other as &dyn std::error::Error, "a charge failed in vault");
            }
            ChargeError::Unknown
        }
    }
}

#[async_trait]
impl VaultClient for InProcess {
    async fn card(&self, token: &str, customer_id: &str) -> Result<CardView, ChargeError> {
        let card = self.vault.card(token).await.map_err(from_vault)?;
        card.filter(|c| c.customer_id == customer_id).ok_or(ChargeError::NotFound)
    }

    async fn charge(&self, req: &ChargeRequest, cvv: Option<&str>) -> Result<ChargeResult, ChargeError> {
        self.vault.charge(self.caller, req, cvv).await.map_err(from_vault)
    }
}

/// Each charge over HTTP gives up after this long (the acquirer's own limit is 15 s).
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// vault over HTTP.
pub struct HttpVault {
    base: String,
    tokens: Arc<ServiceTokens>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpVault").field("base", &self.base).finish_non_exhaustive()
    }
}

#[async_trait]
impl VaultClient for HttpVault {
    async fn card(&self, token: &str, customer_id: &str) -> Result<CardView, ChargeError> {
        if !crate::cards::valid_token(token) {
            return Err(ChargeError::NotFound);
        }
        let bearer = self.tokens.token(crate::SERVICE).await.map_err(|e| {
            tracing::warn!(error = %e, "no service token for vault");
            ChargeError::Unknown
        })?;
        let response = self
            .http
            .get(format!("{}/api/vault/v1/cards/{token}", self.base))
            .bearer_auth(bearer.expose())
            .send()
            .await
            .map_err(|_| ChargeError::Unknown)?;
        match response.status() {
            s if s.is_success() => {
                let card: CardView = response.json().await.map_err(|_| ChargeError::Unknown)?;
                if card.customer_id == customer_id { Ok(card) } else { Err(ChargeError::NotFound) }
            }
            reqwest::StatusCode::NOT_FOUND => Err(ChargeError::NotFound),
            _ => Err(ChargeError::Unknown),
        }
    }

    async fn charge(&self, req: &ChargeRequest, cvv: Option<&str>) -> Result<ChargeResult, ChargeError> {
        let token = self.tokens.token(crate::SERVICE).await.map_err(|e| {
            tracing::warn!(error = %e, "no service token for vault");
            ChargeError::Unknown
        })?;
        let mut body = serde_json::to_value(req).map_err(|_| ChargeError::Unknown)?;
        if let Some(c) = cvv {
            body["cvv"] = serde_json::Value::from(c);
        }
        let response = self
            .http
            .post(format!("{}/api/vault/v1/charges", self.base))
            .bearer_auth(token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|_| ChargeError::Unknown)?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.map_err(|_| ChargeError::Unknown)?;
        if status.is_success() {
            return serde_json::from_value(answer).map_err(|_| ChargeError::Unknown);
        }
        Err(match answer["code"].as_str().unwrap_or_default() {
            "not_found" => ChargeError::NotFound,
            "validation_failed" => ChargeError::InvalidCvv,
            "charge_id_reused" => ChargeError::ChargeIdReused,
            _ => ChargeError::Unknown,
        })
    }
}

/// vault for `service`: in this process when it runs here, else over HTTP at `url`.
pub fn for_service(
    ctx: &fintech_kit::ServiceContext,
    service: &str,
    url: Option<&String>,
) -> anyhow::Result<SharedVault> {
    if let Some(in_process) = ctx.registry.get::<SharedVault>() {
        return Ok(in_process);
    }
    let key = fintech_kit::config_key(service).to_uppercase();
    match (url, &ctx.service_tokens) {
        (Some(url), Some(tokens)) => Ok(Arc::new(HttpVault {
            base: url.trim_end_matches('/').to_owned(),
            tokens: Arc::clone(tokens),
            http: fintech_http::http_client().timeout(HTTP_TIMEOUT).build()?,
        })),
        _ => anyhow::bail!(
            "{service} needs vault: run both in one process (`fintech up`) or set {service}.vault_url \
             (FINTECH_{key}__VAULT_URL) with auth.identity_url and auth.service_secret"
        ),
    }
}
