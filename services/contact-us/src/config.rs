//! `contact_us.*` configuration (`FINTECH_CONTACT_US__...`).

use fintech_config::{ConfigError, Validate, check_range};
use serde::Deserialize;

/// Attachments may never be larger than this, whatever the configuration says.
pub const MAX_ATTACHMENT_BYTES_CEILING: usize = 25 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactUsConfig {
    pub attachments: AttachmentConfig,
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

impl Validate for ContactUsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            &format!("{prefix}.attachments"),
            "max_bytes",
            self.attachments.max_bytes,
            1,
            MAX_ATTACHMENT_BYTES_CEILING,
        )
    }
}
