//! `risk.*` configuration (`FINTECH_RISK__...`).

use fintech_config::{ConfigError, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// How long a replica uses its copy of the rules before it reads the version in force
    /// (milliseconds, 100 to 300000): a change reaches every replica within this.
    pub rules_reload_ms: u64,
    /// With `redis.url`: how long Redis keeps the copy of the rules in force that the replicas
    /// share (milliseconds, 1000 to 3600000). It bounds how long a change can stay unseen when
    /// Redis failed just as it was made.
    pub rules_cache_ttl_ms: u64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig { rules_reload_ms: 5_000, rules_cache_ttl_ms: 60_000 }
    }
}

impl Validate for RiskConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        fintech_config::check_range(prefix, "rules_reload_ms", self.rules_reload_ms, 100, 300_000)?;
        fintech_config::check_range(prefix, "rules_cache_ttl_ms", self.rules_cache_ttl_ms, 1_000, 3_600_000)
    }
}
