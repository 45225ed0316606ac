//! `ledger.*` configuration (`FINTECH_LEDGER__...`).

use fintech_config::{ConfigError, Validate, check_range};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// How often lapsed holds are looked for.
    pub expiry_sweep_ms: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig { expiry_sweep_ms: 1_000 }
    }
}

impl Validate for LedgerConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "expiry_sweep_ms", self.expiry_sweep_ms, 10, 3_600_000)
    }
}
