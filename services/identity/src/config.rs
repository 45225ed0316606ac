//! `identity.*` configuration (`FINTECH_IDENTITY__...`).

use std::collections::BTreeMap;

use fintech_config::{ConfigError, Secret, Validate, check_range};
use serde::Deserialize;

/// Shortest service secret accepted.
pub const MIN_SERVICE_SECRET_CHARS: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Lifetime of the access tokens of customers, merchants and staff.
    pub access_token_ttl_secs: u64,
    /// Lifetime of service tokens.
    pub service_token_ttl_secs: u64,
    /// Lifetime of a refresh token (each use gives a new one).
    pub refresh_token_ttl_secs: u64,
    /// Time between publishing a new signing key (JWKS) and signing with it, so that every
    /// replica and verifier knows the key before its first token arrives.
    pub key_activation_delay_ms: u64,
    /// How often replicas read the signing keys again (to pick up a rotation).
    pub key_reload_ms: u64,
    /// The first administrator, created when there is none.
    pub bootstrap_admin_email: String,
    /// Its password; when unset, one is generated into
    /// `<data dir>/identity/bootstrap-admin-password` (mode 0600) on first start.
    pub bootstrap_admin_password: Option<Secret<String>>,
    /// The secret of each service that may ask for service tokens (name → secret, 32+ chars),
    /// for services that call others over HTTP. Services in one process need none.
    pub service_secrets: BTreeMap<String, Secret<String>>,
    /// Take the client address from the last `X-Forwarded-For` entry (set by our own proxy)
    /// instead of the connection. Only behind a proxy that overwrites the header.
    pub trust_forwarded_for: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            access_token_ttl_secs: 600,
            service_token_ttl_secs: 300,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            key_activation_delay_ms: 120_000,
            key_reload_ms: 30_000,
            bootstrap_admin_email: "admin@fintech.local".into(),
            bootstrap_admin_password: None,
            service_secrets: BTreeMap::new(),
            trust_forwarded_for: false,
        }
    }
}

impl Validate for IdentityConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "access_token_ttl_secs", self.access_token_ttl_secs, 60, 3600)?;
        check_range(prefix, "service_token_ttl_secs", self.service_token_ttl_secs, 60, 3600)?;
        check_range(prefix, "refresh_token_ttl_secs", self.refresh_token_ttl_secs, 600, 90 * 24 * 3600)?;
        check_range(prefix, "key_activation_delay_ms", self.key_activation_delay_ms, 0, 3_600_000)?;
        check_range(prefix, "key_reload_ms", self.key_reload_ms, 100, 3_600_000)?;
        // Every replica must read a new key before it signs; 0 (sign at once) is for one replica.
        if self.key_activation_delay_ms != 0 && self.key_activation_delay_ms < self.key_reload_ms {
            return Err(ConfigError::invalid(
                format!("{prefix}.key_activation_delay_ms"),
                "must be 0 or at least key_reload_ms, so that every replica knows a new key before it signs",
            ));
        }
        fintech_types::Email::parse(&self.bootstrap_admin_email)
            .map_err(|e| ConfigError::invalid(format!("{prefix}.bootstrap_admin_email"), e))?;
        if let Some(p) = &self.bootstrap_admin_password
            && let Err(e) = crate::password::check_policy(p.expose(), &self.bootstrap_admin_email)
        {
            return Err(ConfigError::invalid(format!("{prefix}.bootstrap_admin_password"), e.message));
        }
        for (service, secret) in &self.service_secrets {
            if secret.expose().chars().count() < MIN_SERVICE_SECRET_CHARS {
                return Err(ConfigError::invalid(
                    format!("{prefix}.service_secrets.{service}"),
                    "must be at least 32 characters",
                ));
            }
        }
        Ok(())
    }
}
