//! `ledger.*` configuration (`FINTECH_LEDGER__...`).

use fintech_config::{ConfigError, Secret, Validate, check_range};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// How often lapsed holds are looked for.
    pub expiry_sweep_ms: u64,
    /// PLACEHOLDER until identity issues service identities: the bearer token other services
    /// present. When unset, one is generated into `<data dir>/ledger/placeholder-service-token`.
    pub placeholder_service_token: Option<Secret<String>>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig { expiry_sweep_ms: 1_000, placeholder_service_token: None }
    }
}

impl Validate for LedgerConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "expiry_sweep_ms", self.expiry_sweep_ms, 10, 3_600_000)?;
        if let Some(t) = &self.placeholder_service_token
            && t.expose().len() < fintech_kit::placeholder::MIN_TOKEN_CHARS
        {
            return Err(ConfigError::invalid(
                format!("{prefix}.placeholder_service_token"),
                "must be at least 32 characters",
            ));
        }
        Ok(())
    }
}
