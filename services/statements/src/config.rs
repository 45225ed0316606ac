//! `statements.*` configuration (`FINTECH_STATEMENTS__...`).

use fintech_config::{ConfigError, Validate, check_range};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatementsConfig {
    /// Make every known account's statement of the month just ended, on its own.
    pub monthly: bool,
    /// How often the monthly job looks for missing statements (ms, 1000 to 86400000).
    pub monthly_check_ms: u64,
    /// How long a download link works (seconds, 60 to 3600).
    pub link_ttl_s: u64,
    /// The ledger's root URL when it runs in another process (`http://ledger:8080`).
    pub ledger_url: Option<String>,
}

impl Default for StatementsConfig {
    fn default() -> Self {
        StatementsConfig { monthly: true, monthly_check_ms: 3_600_000, link_ttl_s: 300, ledger_url: None }
    }
}

impl Validate for StatementsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "monthly_check_ms", self.monthly_check_ms, 1_000, 86_400_000)?;
        check_range(prefix, "link_ttl_s", self.link_ttl_s, 60, 3_600)
    }
}
