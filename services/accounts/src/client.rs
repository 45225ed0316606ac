//! What other services ask of accounts: who owns an account. Served in-process ([`InProcess`],
//! the embedded mode) or over HTTP with a service token bound to accounts ([`HttpAccounts`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_auth::ServiceTokens;
use fintech_db::Db;

use crate::store;

/// Why an owner could not be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("no such account")]
    NotFound,
    #[error("accounts did not answer")]
    Unavailable,
}

/// An account's owner and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owning customer; `None` for the platform's system accounts.
    pub customer_id: Option<String>,
    /// `customer`, `merchant` or `system`.
    pub kind: String,
}

#[async_trait]
pub trait AccountsDirectory: Send + Sync + fmt::Debug {
    async fn owner(&self, account_id: &str) -> Result<Owner, DirectoryError>;
}

/// The handle payments finds in the registry when accounts runs in its process.
pub type SharedAccounts = Arc<dyn AccountsDirectory>;

/// accounts' own database.
#[derive(Debug, Clone)]
pub struct InProcess {
    db: Db,
}

impl InProcess {
    pub fn new(db: Db) -> InProcess {
        InProcess { db }
    }
}

#[async_trait]
impl AccountsDirectory for InProcess {
    async fn owner(&self, account_id: &str) -> Result<Owner, DirectoryError> {
        if account_id.len() > 64 {
            return Err(DirectoryError::NotFound);
        }
        let account = store::account(&self.db, account_id).await.map_err(|e| {
            tracing::error!(error = &e as &dyn std::error::Error, "reading an account's owner failed");
            DirectoryError::Unavailable
        })?;
        let account = account.ok_or(DirectoryError::NotFound)?;
        Ok(Owner { customer_id: account.customer_id, kind: account.kind })
    }
}

/// Every call to accounts over HTTP gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// accounts over HTTP.
pub struct HttpAccounts {
    base: String,
    tokens: Arc<ServiceTokens>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAccounts").field("base", &self.base).finish_non_exhaustive()
    }
}

#[async_trait]
impl AccountsDirectory for HttpAccounts {
    async fn owner(&self, account_id: &str) -> Result<Owner, DirectoryError> {
        if account_id.len() > 64 || !account_id.chars().all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c)) {
            return Err(DirectoryError::NotFound);
        }
        let token = self.tokens.token(crate::SERVICE).await.map_err(|e| {
            tracing::warn!(error = %e, "no service token for accounts");
            DirectoryError::Unavailable
        })?;
        let url = format!("{}/api/accounts/v1/accounts/{account_id}", self.base);
        let response = self.http.get(url).bearer_auth(token.expose()).send().await.map_err(|e| {
            tracing::warn!(error = &e as &dyn std::error::Error, "accounts call failed");
            DirectoryError::Unavailable
        })?;
        match response.status().as_u16() {
            200 => {
                let body: serde_json::Value = response.json().await.map_err(|_| DirectoryError::Unavailable)?;
                Ok(Owner {
                    customer_id: body["customer_id"].as_str().map(str::to_owned),
                    kind: body["kind"].as_str().unwrap_or_default().to_owned(),
                })
            }
            404 => Err(DirectoryError::NotFound),
            status => {
                tracing::warn!(status, "accounts refused an owner lookup");
                Err(DirectoryError::Unavailable)
            }
        }
    }
}

/// accounts for `service`: in this process when it runs here, else over HTTP at `url`.
pub fn for_service(
    ctx: &fintech_kit::ServiceContext,
    service: &str,
    url: Option<&String>,
) -> anyhow::Result<SharedAccounts> {
    if let Some(in_process) = ctx.registry.get::<SharedAccounts>() {
        return Ok(in_process);
    }
    let key = fintech_kit::config_key(service).to_uppercase();
    match (url, &ctx.service_tokens) {
        (Some(url), Some(tokens)) => {
            let http = fintech_http::http_client().timeout(HTTP_TIMEOUT).build()?;
            Ok(Arc::new(HttpAccounts { base: url.trim_end_matches('/').to_owned(), tokens: Arc::clone(tokens), http }))
        }
        _ => anyhow::bail!(
            "{service} needs accounts: run both in one process (`fintech up`) or set {service}.accounts_url \
             (FINTECH_{key}__ACCOUNTS_URL) with auth.identity_url and auth.service_secret"
        ),
    }
}
