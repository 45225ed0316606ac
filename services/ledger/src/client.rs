//! How other services use the ledger: [`LedgerClient`], served in-process by [`Ledger`] itself
//! (the embedded mode, no network hop) or over HTTP by [`HttpLedger`] (a service running alone).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_config::Secret;
use serde_json::json;

use crate::domain::{Account, AccountStatus, NewAccount};
use crate::engine::Ledger;
use crate::error::LedgerError;

/// What other services may ask of the ledger.
#[async_trait]
pub trait LedgerClient: Send + Sync + fmt::Debug {
    /// Opens an account (idempotent on the same settings).
    async fn open_account(&self, account: &NewAccount) -> Result<Account, LedgerError>;
    async fn set_status(&self, id: &str, status: AccountStatus) -> Result<Account, LedgerError>;
    async fn account(&self, id: &str) -> Result<Account, LedgerError>;
}

/// The handle services find in the registry when the ledger runs in their process.
pub type SharedLedger = Arc<dyn LedgerClient>;

#[async_trait]
impl LedgerClient for Ledger {
    async fn open_account(&self, account: &NewAccount) -> Result<Account, LedgerError> {
        Ok(self.create_account(account).await?.0)
    }
    async fn set_status(&self, id: &str, status: AccountStatus) -> Result<Account, LedgerError> {
        Ledger::set_status(self, id, status).await
    }
    async fn account(&self, id: &str) -> Result<Account, LedgerError> {
        Ledger::account(self, id).await
    }
}

/// Every call to the ledger over HTTP gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The ledger over HTTP, with the internal service token.
pub struct HttpLedger {
    base: String,
    token: Secret<String>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLedger").field("base", &self.base).finish_non_exhaustive()
    }
}

impl HttpLedger {
    /// `base` is the ledger's root URL (`http://ledger:8080`).
    pub fn new(base: &str, token: Secret<String>) -> Result<Self, LedgerError> {
        let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build().map_err(|_| LedgerError::Unavailable)?;
        Ok(HttpLedger { base: base.trim_end_matches('/').to_owned(), token, http })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Account, LedgerError> {
        let response = request.bearer_auth(self.token.expose()).send().await.map_err(|e| {
            tracing::warn!(error = &e as &dyn std::error::Error, "ledger call failed");
            LedgerError::Unavailable
        })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|_| LedgerError::Unavailable)?;
        if status.is_success() {
            return serde_json::from_value(body).map_err(|_| LedgerError::Invariant("unreadable ledger answer"));
        }
        Err(match body["code"].as_str().unwrap_or_default() {
            "not_found" => LedgerError::NotFound,
            "account_id_reused" => LedgerError::AccountIdReused,
            "account_not_empty" => LedgerError::AccountNotEmpty,
            "account_closed" => LedgerError::AccountClosedForGood,
            _ if status.is_server_error() => LedgerError::Unavailable,
            _ => LedgerError::Invariant("the ledger refused a request this service should not send"),
        })
    }
}

#[async_trait]
impl LedgerClient for HttpLedger {
    async fn open_account(&self, a: &NewAccount) -> Result<Account, LedgerError> {
        let body = json!({ "id": a.id, "currency": a.currency.code(), "allow_overdraft": a.allow_overdraft });
        self.call(self.http.post(format!("{}/api/ledger/v1/accounts", self.base)).json(&body)).await
    }
    async fn set_status(&self, id: &str, status: AccountStatus) -> Result<Account, LedgerError> {
        let url = format!("{}/api/ledger/v1/accounts/{id}/status", self.base);
        self.call(self.http.post(url).json(&json!({ "status": status.as_str() }))).await
    }
    async fn account(&self, id: &str) -> Result<Account, LedgerError> {
        self.call(self.http.get(format!("{}/api/ledger/v1/accounts/{id}", self.base))).await
    }
}
