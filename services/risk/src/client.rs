//! How payments asks for a verdict: [`RiskClient`], served in-process by [`Risk`] (the
//! embedded mode) or over HTTP with a service token bound to risk ([`HttpRisk`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_auth::ServiceTokens;

use crate::domain::{Assessment, AssessmentRequest, Risk};
use crate::error::RiskError;

/// No verdict: the caller must not go on (risk fails closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessError {
    /// The request was refused (a bug of the caller's: the details are logged).
    #[error("risk refused the request: {0}")]
    Refused(String),
    #[error("risk is unavailable")]
    Unavailable,
}

#[async_trait]
pub trait RiskClient: Send + Sync + fmt::Debug {
    async fn assess(&self, req: &AssessmentRequest) -> Result<Assessment, AssessError>;
}

/// The handle payments finds in the registry when risk runs in its process.
pub type SharedRisk = Arc<dyn RiskClient>;

#[async_trait]
impl RiskClient for Risk {
    async fn assess(&self, req: &AssessmentRequest) -> Result<Assessment, AssessError> {
        Risk::assess(self, req).await.map_err(|e| match e {
            RiskError::Validation(_) | RiskError::IdReused => AssessError::Refused(e.problem().code),
            other => {
                tracing::error!(error = &other as &dyn std::error::Error, "a risk assessment failed");
                AssessError::Unavailable
            }
        })
    }
}

/// Each verdict over HTTP gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// risk over HTTP.
pub struct HttpRisk {
    base: String,
    tokens: Arc<ServiceTokens>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRisk").field("base", &self.base).finish_non_exhaustive()
    }
}

#[async_trait]
impl RiskClient for HttpRisk {
    async fn assess(&self, req: &AssessmentRequest) -> Result<Assessment, AssessError> {
        let token = self.tokens.token(crate::SERVICE).await.map_err(|e| {
            tracing::warn!(error = %e, "no service token for risk");
            AssessError::Unavailable
        })?;
        let response = self
            .http
            .post(format!("{}/api/risk/v1/assessments", self.base))
            .bearer_auth(token.expose())
            .json(req)
            .send()
            .await
            .map_err(|_| AssessError::Unavailable)?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.map_err(|_| AssessError::Unavailable)?;
        if status.is_success() {
            return serde_json::from_value(answer).map_err(|_| AssessError::Unavailable);
        }
        if status.is_client_error() {
            return Err(AssessError::Refused(answer["code"].as_str().unwrap_or("unknown").to_owned()));
        }
        Err(AssessError::Unavailable)
    }
}

/// risk for `service`: in this process when it runs here, else over HTTP at `url`.
pub fn for_service(
    ctx: &fintech_kit::ServiceContext,
    service: &str,
    url: Option<&String>,
) -> anyhow::Result<SharedRisk> {
    if let Some(in_process) = ctx.registry.get::<SharedRisk>() {
        return Ok(in_process);
    }
    let key = fintech_kit::config_key(service).to_uppercase();
    match (url, &ctx.service_tokens) {
        (Some(url), Some(tokens)) => Ok(Arc::new(HttpRisk {
            base: url.trim_end_matches('/').to_owned(),
            tokens: Arc::clone(tokens),
            http: fintech_http::http_client().timeout(HTTP_TIMEOUT).build()?,
        })),
        _ => anyhow::bail!(
            "{service} needs risk: run both in one process (`fintech up`) or set {service}.risk_url \
             (FINTECH_{key}__RISK_URL) with auth.identity_url and auth.service_secret"
        ),
    }
}
