//! `payments.*` configuration (`FINTECH_PAYMENTS__...`).

use fintech_config::{ConfigError, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The ledger's root URL when it does not run in this process; calls carry service tokens
    /// from identity (`auth.identity_url`, `auth.service_secret`).
    pub ledger_url: Option<String>,
    /// accounts' root URL when it does not run in this process (who owns an account).
    pub accounts_url: Option<String>,
    /// vault's root URL when it does not run in this process (card payments).
    pub vault_url: Option<String>,
    /// risk's root URL when it does not run in this process (card payments are judged first).
    pub risk_url: Option<String>,
    /// Take the client's address (for risk's velocity rules) from the last `X-Forwarded-For`
    /// entry: only behind our own proxy, which appends it.
    pub trust_forwarded_for: bool,
    /// How long idempotent answers are kept (hours, at least 24).
    pub idempotency_retention_hours: Option<u64>,
}

impl Validate for PaymentsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if let Some(h) = self.idempotency_retention_hours {
            fintech_config::check_range(prefix, "idempotency_retention_hours", h, 24, 24 * 90)?;
        }
        Ok(())
    }
}
