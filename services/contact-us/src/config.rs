//! `contact_us.*` configuration (`FINTECH_CONTACT_US__...`).

use fintech_config::{ConfigError, Secret, Validate, check_range};
use serde::Deserialize;

/// Attachments may never be larger than this, whatever the configuration says.
pub const MAX_ATTACHMENT_BYTES_CEILING: usize = 25 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactUsConfig {
    pub attachments: AttachmentConfig,
    pub support: SupportConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentConfig {
    /// Largest accepted attachment (`FINTECH_CONTACT_US__ATTACHMENTS__MAX_BYTES`).
    pub max_bytes: usize,
}

impl Default for AttachmentConfig {
    fn default() -> Self {
        AttachmentConfig { max_bytes: 5 * 1024 * 1024 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// PLACEHOLDER until the identity service issues staff tokens: the one bearer token that
    /// lets support staff list and read requests. When unset, a random one is generated and
    /// written to `<data dir>/contact-us/placeholder-staff-token` (mode 0600).
    pub placeholder_staff_token: Option<Secret<String>>,
}

impl Validate for ContactUsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            &format!("{prefix}.attachments"),
            "max_bytes",
            self.attachments.max_bytes,
            1,
            MAX_ATTACHMENT_BYTES_CEILING,
        )?;
        if let Some(token) = &self.support.placeholder_staff_token
            && token.expose().len() < 32
        {
            return Err(ConfigError::invalid(
                format!("{prefix}.support.placeholder_staff_token"),
                "must be at least 32 characters",
            ));
        }
        Ok(())
    }
}
