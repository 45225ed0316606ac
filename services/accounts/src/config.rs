//! `accounts.*` configuration (`FINTECH_ACCOUNTS__...`).

use fintech_config::{ConfigError, Secret, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Currencies with system accounts (settlement, fees, funding), created at start.
    pub system_currencies: Vec<String>,
    /// The ledger's root URL when it does not run in this process (`http://ledger:8080`).
    pub ledger_url: Option<String>,
    /// The ledger's internal service token, with `ledger_url`.
    pub ledger_token: Option<Secret<String>>,
    /// PLACEHOLDER until identity issues staff tokens; generated into
    /// `<data dir>/accounts/placeholder-staff-token` when unset.
    pub placeholder_staff_token: Option<Secret<String>>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            system_currencies: vec!["USD".into(), "EUR".into(), "GBP".into()],
            ledger_url: None,
            ledger_token: None,
            placeholder_staff_token: None,
        }
    }
}

impl Validate for AccountsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for c in &self.system_currencies {
            c.parse::<fintech_money::Currency>()
                .map_err(|e| ConfigError::invalid(format!("{prefix}.system_currencies"), e.to_string()))?;
        }
        if self.ledger_url.is_some() != self.ledger_token.is_some() {
            return Err(ConfigError::invalid(format!("{prefix}.ledger_url"), "and ledger_token go together"));
        }
        if let Some(t) = &self.placeholder_staff_token
            && t.expose().len() < fintech_kit::placeholder::MIN_TOKEN_CHARS
        {
            return Err(ConfigError::invalid(
                format!("{prefix}.placeholder_staff_token"),
                "must be at least 32 characters",
            ));
        }
        Ok(())
    }
}
