//! `webhooks.*` configuration (`FINTECH_WEBHOOKS__...`).

use fintech_config::{ConfigError, Validate, check_range};
use serde::Deserialize;

use crate::guard::Cidr;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Networks webhooks may reach although the SSRF guard refuses them otherwise: a
    /// comma-separated list of CIDRs (`127.0.0.0/8` in tests, a sidecar's network). Empty by
    /// default: only public addresses. `http://` is accepted only to these networks.
    pub allowed_networks: String,
    /// Attempts of one delivery before it is `failed` (1 to 50).
    pub max_attempts: u32,
    /// The wait after the first failed attempt, doubled after each one up to `backoff_max_ms`,
    /// with jitter (ms).
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Consecutive failed attempts, over all its deliveries, after which an endpoint is disabled
    /// (1 to 1000). Its deliveries wait until the merchant enables it again.
    pub disable_after_failures: u32,
    /// How often the dispatcher looks for due deliveries (ms); new events wake it at once.
    pub poll_ms: u64,
    /// How long one delivery may take (ms): connecting, sending and the answer's status.
    pub timeout_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allowed_networks: String::new(),
            max_attempts: 15,
            backoff_base_ms: 30_000,
            backoff_max_ms: 3_600_000,
            disable_after_failures: 45,
            poll_ms: 1_000,
            timeout_ms: 10_000,
        }
    }
}

impl WebhooksConfig {
    /// The networks of `allowed_networks`.
    pub fn networks(&self) -> Result<Vec<Cidr>, String> {
        self.allowed_networks.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Cidr::parse).collect()
    }
}

impl Validate for WebhooksConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "max_attempts", self.max_attempts, 1, 50)?;
        check_range(prefix, "backoff_base_ms", self.backoff_base_ms, 10, 3_600_000)?;
        check_range(prefix, "backoff_max_ms", self.backoff_max_ms, self.backoff_base_ms, 86_400_000)?;
        check_range(prefix, "disable_after_failures", self.disable_after_failures, 1, 1000)?;
        check_range(prefix, "poll_ms", self.poll_ms, 10, 60_000)?;
        check_range(prefix, "timeout_ms", self.timeout_ms, 100, 30_000)?;
        self.networks().map_err(|e| ConfigError::invalid(format!("{prefix}.allowed_networks"), e))?;
        Ok(())
    }
}
