//! `accounts.*` configuration (`FINTECH_ACCOUNTS__...`).

use fintech_config::{ConfigError, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Currencies with system accounts (settlement, fees, funding), created at start.
    pub system_currencies: Vec<String>,
    /// The ledger's root URL when it does not run in this process (`http://ledger:8080`);
    /// calls carry service tokens from identity (`auth.identity_url`, `auth.service_secret`).
    pub ledger_url: Option<String>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig { system_currencies: vec!["USD".into(), "EUR".into(), "GBP".into()], ledger_url: None }
    }
}

impl Validate for AccountsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for c in &self.system_currencies {
            c.parse::<fintech_money::Currency>()
                .map_err(|e| ConfigError::invalid(format!("{prefix}.system_currencies"), e.to_string()))?;
        }
        Ok(())
    }
}
