//! `vault.*` configuration (`FINTECH_VAULT__...`).

use fintech_config::{ConfigError, Secret, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    /// The key file (key-encryption keys and the fingerprint key). Default
    /// `<data dir>/vault/keys.json`, created on first start with mode 0600.
    pub key_file: Option<String>,
    /// `local` (the default: the key file) or `cloud_kms`.
    pub key_store: Option<String>,
    /// The Cloud KMS symmetric key wrapping data keys, with `key_store = "cloud_kms"`:
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/K`.
    pub kms_key: Option<String>,
    /// The Cloud KMS HMAC-SHA256 key version of the fingerprints, with `key_store = "cloud_kms"`:
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/F/cryptoKeyVersions/1`.
    pub kms_fingerprint_key: Option<String>,
    /// Another Cloud KMS root (a test server); default Google's.
    pub kms_endpoint: Option<String>,
    /// `default` (the workload's credentials: Workload Identity on GKE) or `none` (a test
    /// server that wants none).
    pub kms_credentials: Option<String>,
    /// How often a replica reads the KMS key's primary version again (milliseconds, 100 to
    /// 60000; default 5000). A rotation waits this long (plus 0.5 s) before it retires the old
    /// versions, so that no replica still wraps with them.
    pub kms_primary_refresh_ms: Option<u64>,
    /// `simulator` (the default: the documented test cards) or `http` (a real acquirer).
    pub acquirer: Option<String>,
    /// The acquirer's root URL, with `acquirer = "http"`.
    pub acquirer_url: Option<String>,
    /// The acquirer's API key, with `acquirer = "http"`.
    pub acquirer_api_key: Option<Secret<String>>,
}

fn kms_name_ok(name: Option<&str>, version: bool) -> bool {
    let Some(parts) = name.map(|n| n.split('/').collect::<Vec<_>>()) else { return false };
    let shape: &[&str] = if version {
        &["projects", "locations", "keyRings", "cryptoKeys", "cryptoKeyVersions"]
    } else {
        &["projects", "locations", "keyRings", "cryptoKeys"]
    };
    parts.len() == shape.len() * 2
        && parts.chunks(2).zip(shape).all(|(pair, label)| pair[0] == *label && !pair[1].is_empty())
}

impl VaultConfig {
    fn validate_key_store(&self, prefix: &str) -> Result<(), ConfigError> {
        match self.key_store.as_deref().unwrap_or("local") {
            "local" => Ok(()),
            "cloud_kms" => {
                if !kms_name_ok(self.kms_key.as_deref(), false) {
                    return Err(ConfigError::invalid(
                        format!("{prefix}.kms_key"),
                        "with key_store = cloud_kms, must be projects/P/locations/L/keyRings/R/cryptoKeys/K",
                    ));
                }
                if !kms_name_ok(self.kms_fingerprint_key.as_deref(), true) {
                    return Err(ConfigError::invalid(
                        format!("{prefix}.kms_fingerprint_key"),
                        "with key_store = cloud_kms, must be \
                         projects/P/locations/L/keyRings/R/cryptoKeys/F/cryptoKeyVersions/N (an HMAC-SHA256 key)",
                    ));
                }
                if let Some(ms) = self.kms_primary_refresh_ms {
                    fintech_config::check_range(prefix, "kms_primary_refresh_ms", ms, 100, 60_000)?;
                }
                if !matches!(self.kms_credentials.as_deref().unwrap_or("default"), "default" | "none") {
                    return Err(ConfigError::invalid(format!("{prefix}.kms_credentials"), "must be default or none"));
                }
                Ok(())
            }
            _ => Err(ConfigError::invalid(format!("{prefix}.key_store"), "must be local or cloud_kms")),
        }
    }
}

impl Validate for VaultConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.validate_key_store(prefix)?;
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
