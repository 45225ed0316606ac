//! `payments.*` configuration (`FINTECH_PAYMENTS__...`).

use fintech_config::{ConfigError, Secret, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The ledger's root URL when it does not run in this process.
    pub ledger_url: Option<String>,
    /// The ledger's internal service token, with `ledger_url`.
    pub ledger_token: Option<Secret<String>>,
    /// PLACEHOLDER until identity issues tokens: one bearer token for every caller; generated into
    /// `<data dir>/payments/placeholder-api-token` when unset.
    pub placeholder_api_token: Option<Secret<String>>,
    /// How long idempotent answers are kept (hours, at least 24).
    pub idempotency_retention_hours: Option<u64>,
}

impl Validate for PaymentsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.ledger_url.is_some() != self.ledger_token.is_some() {
            return Err(ConfigError::invalid(format!("{prefix}.ledger_url"), "and ledger_token go together"));
        }
        if let Some(h) = self.idempotency_retention_hours {
            fintech_config::check_range(prefix, "idempotency_retention_hours", h, 24, 24 * 90)?;
        }
        if let Some(t) = &self.placeholder_api_token
            && t.expose().len() < fintech_kit::placeholder::MIN_TOKEN_CHARS
        {
            return Err(ConfigError::invalid(
                format!("{prefix}.placeholder_api_token"),
                "must be at least 32 characters",
            ));
        }
        Ok(())
    }
}
