//! How other services use the ledger: [`LedgerClient`], served in-process by [`Ledger`] itself
//! (the embedded mode, no network hop) or over HTTP by [`HttpLedger`] (a service running alone).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_auth::ServiceTokens;
use serde_json::json;

use crate::domain::{Account, AccountStatus, NewAccount, NewTransfer, Resolve, Transfer, TransferKind};
use crate::engine::{Ledger, Posting};
use crate::error::LedgerError;
use crate::error::Side;

/// What other services may ask of the ledger.
#[async_trait]
pub trait LedgerClient: Send + Sync + fmt::Debug {
    /// Opens an account (idempotent on the same settings).
    async fn open_account(&self, account: &NewAccount) -> Result<Account, LedgerError>;
    async fn set_status(&self, id: &str, status: AccountStatus) -> Result<Account, LedgerError>;
    async fn account(&self, id: &str) -> Result<Account, LedgerError>;
    /// Records a transfer or a hold (idempotent on its id).
    async fn transfer(&self, t: NewTransfer) -> Result<Transfer, LedgerError>;
    /// Posts or voids a hold (idempotent on its id).
    async fn resolve(&self, r: Resolve) -> Result<Transfer, LedgerError>;
    /// The account's postings, newest first: at most `limit` (1 to 200) of those before the
    /// sequence number `before` (all when `None`).
    async fn postings(&self, account_id: &str, before: Option<i64>, limit: u32) -> Result<Vec<Posting>, LedgerError>;
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
    async fn transfer(&self, t: NewTransfer) -> Result<Transfer, LedgerError> {
        Ok(Ledger::transfer(self, t).await?.transfer)
    }
    async fn resolve(&self, r: Resolve) -> Result<Transfer, LedgerError> {
        Ok(Ledger::resolve(self, r).await?.transfer)
    }
    async fn postings(&self, account_id: &str, before: Option<i64>, limit: u32) -> Result<Vec<Posting>, LedgerError> {
        Ledger::account(self, account_id).await?;
        Ledger::postings(self, account_id, before, limit).await
    }
}

/// Every call to the ledger over HTTP gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The ledger over HTTP, with a service token from identity bound to the ledger.
pub struct HttpLedger {
    base: String,
    tokens: Arc<ServiceTokens>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLedger").field("base", &self.base).finish_non_exhaustive()
    }
}

impl HttpLedger {
    /// `base` is the ledger's root URL (`http://ledger:8080`).
    pub fn new(base: &str, tokens: Arc<ServiceTokens>) -> Result<Self, LedgerError> {
        let http = fintech_http::http_client().timeout(HTTP_TIMEOUT).build().map_err(|_| LedgerError::Unavailable)?;
        Ok(HttpLedger { base: base.trim_end_matches('/').to_owned(), tokens, http })
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, LedgerError> {
        let token = self.tokens.token(crate::SERVICE).await.map_err(|e| {
            tracing::warn!(error = %e, "no service token for the ledger");
            LedgerError::Unavailable
        })?;
        let response = request.bearer_auth(token.expose()).send().await.map_err(|e| {
            tracing::warn!(error = &e as &dyn std::error::Error, "ledger call failed");
            LedgerError::Unavailable
        })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|_| LedgerError::Unavailable)?;
        if status.is_success() {
            return serde_json::from_value(body).map_err(|_| LedgerError::Invariant("unreadable ledger answer"));
        }
        // The side of an account error is named by the field of its first error.
        let side = if body["errors"][0]["field"] == "credit_account_id" { Side::Credit } else { Side::Debit };
        Err(match body["code"].as_str().unwrap_or_default() {
            "not_found" => LedgerError::NotFound,
            "account_id_reused" => LedgerError::AccountIdReused,
            "account_not_empty" => LedgerError::AccountNotEmpty,
            "account_closed" if body["errors"].is_array() => LedgerError::AccountClosed(side),
            "account_closed" => LedgerError::AccountClosedForGood,
            "account_frozen" => LedgerError::AccountFrozen(side),
            "account_not_found" => LedgerError::AccountNotFound(side),
            "currency_mismatch" => LedgerError::CurrencyMismatch(side),
            "amount_overflow" => LedgerError::Overflow(side),
            "insufficient_funds" => LedgerError::InsufficientFunds,
            "transfer_id_reused" => LedgerError::TransferIdReused,
            "pending_not_found" => LedgerError::PendingNotFound,
            "not_pending" => LedgerError::NotPending,
            "pending_already_resolved" => LedgerError::PendingAlreadyResolved("earlier".into()),
            "pending_expired" => LedgerError::PendingExpired,
            "amount_exceeds_pending" => LedgerError::AmountExceedsPending,
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
    async fn transfer(&self, t: NewTransfer) -> Result<Transfer, LedgerError> {
        let mut body = json!({ "id": t.id, "debit_account_id": t.debit_account_id, "credit_account_id": t.credit_account_id,
            "amount_minor": t.amount_minor, "currency": t.currency.code(), "code": t.code, "reference": t.reference,
            "pending": t.pending });
        if let Some(ms) = t.timeout_ms {
            body["timeout_ms"] = json!(ms);
        }
        self.call(self.http.post(format!("{}/api/ledger/v1/transfers", self.base)).json(&body)).await
    }
    async fn resolve(&self, r: Resolve) -> Result<Transfer, LedgerError> {
        let action = if r.kind == TransferKind::Post { "post" } else { "void" };
        let mut body = json!({ "id": r.id });
        if let Some(a) = r.amount_minor {
            body["amount_minor"] = json!(a);
        }
        let url = format!("{}/api/ledger/v1/transfers/{}/{action}", self.base, r.pending_id);
        self.call(self.http.post(url).json(&body)).await
    }
    async fn postings(&self, account_id: &str, before: Option<i64>, limit: u32) -> Result<Vec<Posting>, LedgerError> {
        #[derive(serde::Deserialize)]
        struct Page {
            items: Vec<Posting>,
        }
        let mut url = format!("{}/api/ledger/v1/accounts/{account_id}/postings?limit={limit}", self.base);
        if let Some(cursor) = before {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Page = self.call(self.http.get(url)).await?;
        Ok(page.items)
    }
}

/// The ledger for a service: the engine of this process when the ledger runs here, else the
/// HTTP client at `<service>.ledger_url`, with service tokens from identity (`auth.*`).
pub fn for_service(
    ctx: &fintech_kit::ServiceContext,
    service: &str,
    url: Option<&String>,
) -> anyhow::Result<SharedLedger> {
    if let Some(in_process) = ctx.registry.get::<SharedLedger>() {
        return Ok(in_process);
    }
    let key = fintech_kit::config_key(service).to_uppercase();
    match (url, &ctx.service_tokens) {
        (Some(url), Some(tokens)) => {
            Ok(Arc::new(HttpLedger::new(url, Arc::clone(tokens)).map_err(|e| anyhow::anyhow!("ledger client: {e}"))?))
        }
        (Some(_), None) => anyhow::bail!(
            "{service} calls the ledger over HTTP with a service token: set auth.identity_url and \
             auth.service_secret (FINTECH_AUTH__IDENTITY_URL, FINTECH_AUTH__SERVICE_SECRET)"
        ),
        (None, _) => anyhow::bail!(
            "{service} needs the ledger: run both in one process (`fintech up`) or set {service}.ledger_url \
             (FINTECH_{key}__LEDGER_URL) with auth.identity_url and auth.service_secret"
        ),
    }
}
