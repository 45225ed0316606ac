//! `vault.*` configuration (`FINTECH_VAULT__...`).

use fintech_config::{ConfigError, Secret, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    /// The key file (key-encryption keys and the fingerprint key). Default
    /// `<data dir>/vault/keys.json`, created on first start with mode 0600.
    pub key_file: Option<String>,
    /// `simulator` (the default: the documented test cards) or `http` (a real acquirer).
    pub acquirer: Option<String>,
    /// The acquirer's root URL, with `acquirer = "http"`.
    pub acquirer_url: Option<String>,
    /// The acquirer's API key, with `acquirer = "http"`.
    pub acquirer_api_key: Option<Secret<String>>,
}

impl Validate for VaultConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        match self.acquirer.as_deref().unwrap_or("simulator") {
            "simulator" => Ok(()),
            "http" => {
                let url_ok =
                    self.acquirer_url.as_deref().is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
                if !url_ok {
                    return Err(ConfigError::invalid(
                        format!("{prefix}.acquirer_url"),
                        "an http(s) URL is required with acquirer = http",
                    ));
                }
                if self.acquirer_api_key.is_none() {
                    return Err(ConfigError::invalid(
                        format!("{prefix}.acquirer_api_key"),
                        "is required with acquirer = http",
                    ));
                }
                Ok(())
            }
            _ => Err(ConfigError::invalid(format!("{prefix}.acquirer"), "must be simulator or http")),
        }
    }
}
