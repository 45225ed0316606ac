//! `notifications.*` configuration (`FINTECH_NOTIFICATIONS__...`).

use fintech_config::{ConfigError, Validate, check_range};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Messages to one recipient (a customer, or an e-mail address for contact requests) per
    /// hour, all kinds and channels together, 1 to 1000. Beyond it messages are recorded as
    /// `limited` and not sent: a flood of events never becomes a flood of paid SMS or mail.
    pub per_recipient_per_hour: u32,
    /// Send an alert for every successful sign-in (`security.sign_in_succeeded`).
    pub sign_in_alerts: bool,
    /// Where an alert about each new contact request goes (support's shared inbox); none when
    /// unset.
    pub support_email: Option<String>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig { per_recipient_per_hour: 30, sign_in_alerts: true, support_email: None }
    }
}

impl Validate for NotificationsConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "per_recipient_per_hour", self.per_recipient_per_hour, 1, 1000)?;
        if let Some(address) = &self.support_email
            && !(address.contains('@') && !address.contains(char::is_whitespace) && address.len() <= 254)
        {
            return Err(ConfigError::invalid(format!("{prefix}.support_email"), "is not an e-mail address"));
        }
        Ok(())
    }
}
