//! The platform's own configuration sections (see docs/reference/configuration.md).

use std::collections::HashMap;

use fintech_config::{ConfigError, ConfigSource, Secret, Validate, check_range};
use serde::Deserialize;

/// `http.*` — `FINTECH_HTTP__PORT`, `FINTECH_HTTP__BIND`, ...
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to bind. `127.0.0.1` on a workstation; containers set `0.0.0.0`.
    pub bind: String,
    pub port: u16,
    /// Whole-request deadline.
    pub request_timeout_ms: u64,
    /// Body limit of routes that set none of their own.
    pub body_limit_bytes: usize,
    /// How long in-flight requests may run after SIGTERM (Kubernetes waits 30 s by default).
    pub shutdown_grace_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            bind: "127.0.0.1".into(),
            port: 8080,
            request_timeout_ms: 10_000,
            body_limit_bytes: 64 * 1024,
            shutdown_grace_ms: 20_000,
        }
    }
}

impl Validate for HttpSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            return Err(ConfigError::invalid(format!("{prefix}.bind"), "must be an IP address such as 127.0.0.1"));
        }
        check_range(prefix, "request_timeout_ms", self.request_timeout_ms, 100, 300_000)?;
        check_range(prefix, "body_limit_bytes", self.body_limit_bytes, 1024, 64 * 1024 * 1024)?;
        check_range(prefix, "shutdown_grace_ms", self.shutdown_grace_ms, 0, 120_000)
    }
}

/// `log.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `RUST_LOG` syntax: `info`, `info,sqlx=warn`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: "info,sqlx=warn".into() }
    }
}

impl Validate for LogSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !fintech_telemetry::is_valid_filter(&self.level) {
            return Err(ConfigError::invalid(
                format!("{prefix}.level"),
                "is not a valid filter such as `info` or `info,sqlx=warn`",
            ));
        }
        Ok(())
    }
}

/// `gcp.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcpSettings {
    /// Project id: trace ids in the form Cloud Logging links, and the project of the Pub/Sub
    /// topics and subscriptions (`events.backend=pubsub`).
    pub project_id: Option<String>,
}

impl Validate for GcpSettings {
    fn validate(&self, _prefix: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// `database.<service>.*` — e.g. `FINTECH_DATABASE__CONTACT_US__URL=mysql://...`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Holds the password, so it is a secret.
    pub url: Option<Secret<String>>,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings { url: None, max_connections: 8 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
struct Databases(HashMap<String, DatabaseSettings>);

impl Validate for Databases {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for (service, db) in &self.0 {
            let p = format!("{prefix}.{service}");
            check_range(&p, "max_connections", db.max_connections, 1, 256)?;
            if let Some(url) = &db.url {
                fintech_db::Engine::from_url(url.expose())
                    .map_err(|e| ConfigError::invalid(format!("{p}.url"), e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// `auth.*` — how this process's services reach identity when it does not run here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// identity's root URL (`http://identity:8080`): its JWKS for verifying tokens and its
    /// service-token endpoint.
    pub identity_url: Option<String>,
    /// identity's JWKS URL, when it is not `<identity_url>/api/identity/v1/jwks.json`.
    pub jwks_url: Option<String>,
    /// This service's secret at identity (`identity.service_secrets.<service>` there), for
    /// calling other services over HTTP.
    pub service_secret: Option<Secret<String>>,
}

impl AuthSettings {
    /// Where identity's public keys are, if identity does not run in this process.
    pub fn jwks_url(&self) -> Option<String> {
        self.jwks_url.clone().or_else(|| {
            self.identity_url.as_ref().map(|u| format!("{}/api/identity/v1/jwks.json", u.trim_end_matches('/')))
        })
    }
}

impl Validate for AuthSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for (key, url) in [("identity_url", &self.identity_url), ("jwks_url", &self.jwks_url)] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(ConfigError::invalid(format!("{prefix}.{key}"), "must be an http:// or https:// URL"));
            }
        }
        if self.service_secret.is_some() && self.identity_url.is_none() {
            return Err(ConfigError::invalid(format!("{prefix}.service_secret"), "needs auth.identity_url"));
        }
        Ok(())
    }
}

/// `redis.*` — Memorystore in production: rate limits shared by every replica.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:6379/0` (may hold a password, so it is a secret). Unset: each process
    /// keeps its own limits in memory (the embedded mode).
    pub url: Option<Secret<String>>,
    /// Prefix of every key this platform writes, so that environments can share a Redis.
    pub key_prefix: String,
    /// With a `rediss://` URL: the PEM file of the certificate authority that signed the
    /// server's certificate (Memorystore's server CA). Unset: the system's trusted roots.
    pub ca_file: Option<String>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings { url: None, key_prefix: "fintech:".into(), ca_file: None }
    }
}

impl Validate for RedisSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !(url.expose().starts_with("redis://") || url.expose().starts_with("rediss://"))
        {
            return Err(ConfigError::invalid(format!("{prefix}.url"), "must be a redis:// or rediss:// URL"));
        }
        if self.ca_file.is_some() && !self.url.as_ref().is_some_and(|u| u.expose().starts_with("rediss://")) {
            return Err(ConfigError::invalid(format!("{prefix}.ca_file"), "needs a rediss:// (TLS) redis.url"));
        }
        if self.key_prefix.len() > 64 {
            return Err(ConfigError::invalid(format!("{prefix}.key_prefix"), "must be at most 64 characters"));
        }
        Ok(())
    }
}

/// Which transport carries events between services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBackend {
    /// The in-process bus: only services in the same process receive each other's events.
    #[default]
    InProcess,
    /// Google Cloud Pub/Sub (or its emulator, `events.pubsub_emulator`).
    Pubsub,
}

/// `events.*` — the event bus.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// `in_process` (the default) or `pubsub` (needs `gcp.project_id`).
    pub backend: EventBackend,
    /// `http://host:port` of the Pub/Sub emulator: no credentials, and the bus creates the topics
    /// and subscriptions it uses. Unset: Google's endpoint with the workload's credentials, and
    /// Terraform's topics and subscriptions.
    pub pubsub_emulator: Option<String>,
    /// Prefix of every topic and subscription name: the environment's (`fintech-prod-`, as
    /// Terraform names them). Letters, digits, `-`, `_` and `.`, at most 64.
    pub pubsub_prefix: String,
}

impl Validate for EventSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.pubsub_prefix.len() > 64
            || !self.pubsub_prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::invalid(
                format!("{prefix}.pubsub_prefix"),
                "must be at most 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if let Some(e) = &self.pubsub_emulator {
            if self.backend != EventBackend::Pubsub {
                return Err(ConfigError::invalid(format!("{prefix}.pubsub_emulator"), "needs events.backend=pubsub"));
            }
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    format!("{prefix}.pubsub_emulator"),
                    "must be an http:// URL such as http://127.0.0.1:8085",
                ));
            }
        }
        Ok(())
    }
}

/// Where objects (attachments, statements) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// A folder: `<data>/bucket`.
    #[default]
    Local,
    /// A Cloud Storage bucket (`storage.bucket`).
    Gcs,
}

/// `storage.*` — the bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// `local` (the default) or `gcs`.
    pub backend: StorageBackend,
    /// The Cloud Storage bucket's name (required with `gcs`).
    pub bucket: Option<String>,
    /// `http://host:port` of a storage emulator (no credentials). Unset: Google's endpoint.
    pub emulator: Option<String>,
    /// The service account whose key signs download links through IAM `signBlob` (GCP: the
    /// workload's own). Unset, and no `signing_key_file`: no signed links.
    pub signer_service_account: Option<String>,
    /// A PEM private key of `signer_service_account` that signs links here instead of IAM.
    pub signing_key_file: Option<String>,
}

impl Validate for StorageSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let gcs = self.backend == StorageBackend::Gcs;
        if gcs && self.bucket.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::invalid(format!("{prefix}.bucket"), "is required with storage.backend=gcs"));
        }
        for (key, set) in [
            ("bucket", self.bucket.is_some()),
            ("emulator", self.emulator.is_some()),
            ("signer_service_account", self.signer_service_account.is_some()),
        ] {
            if set && !gcs {
                return Err(ConfigError::invalid(format!("{prefix}.{key}"), "needs storage.backend=gcs"));
            }
        }
        if self.signing_key_file.is_some() && self.signer_service_account.is_none() {
            return Err(ConfigError::invalid(
                format!("{prefix}.signing_key_file"),
                "needs storage.signer_service_account (the key's account)",
            ));
        }
        Ok(())
    }
}

/// `sms.twilio.*` — a Twilio-style message API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    pub base_url: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret<String>>,
    pub from: Option<String>,
    /// Where the provider posts delivery statuses (signed with the auth token).
    pub status_callback: Option<String>,
}

/// `sms.vonage.*` — a Vonage-style SMS API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VonageSettings {
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<Secret<String>>,
    pub from: Option<String>,
    /// Where the provider posts delivery receipts (sent as each message's `callback`).
    pub status_callback: Option<String>,
    /// The account's signature secret: delivery receipts carry `sig`, an HMAC-SHA256 of their
    /// parameters keyed by it, which notifications checks. Without it receipts are refused.
    pub signature_secret: Option<Secret<String>>,
}

/// `sms.*` — the SMS gateways. Without providers, messages go to the file outbox `<data>/outbox`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// Providers in the order they are tried: a comma-separated list of `twilio` and `vonage`.
    pub providers: String,
    pub twilio: TwilioSettings,
    pub vonage: VonageSettings,
    /// Messages to one number per hour (SMS pumping), 1 to 100.
    pub per_number_per_hour: u32,
    /// How long one provider call may take, in ms (500 to 30000).
    pub timeout_ms: u64,
    /// Consecutive failures that open a provider's breaker (1 to 100), and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cool_down_ms: u64,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            providers: String::new(),
            twilio: TwilioSettings::default(),
            vonage: VonageSettings::default(),
            per_number_per_hour: 5,
            timeout_ms: 10_000,
            breaker_failures: 5,
            breaker_cool_down_ms: 30_000,
        }
    }
}

impl SmsSettings {
    /// The providers named in `providers`, in order.
    pub fn provider_names(&self) -> Vec<&str> {
        self.providers.split(',').map(str::trim).filter(|p| !p.is_empty()).collect()
    }
}

impl Validate for SmsSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "per_number_per_hour", self.per_number_per_hour, 1, 100)?;
        check_range(prefix, "timeout_ms", self.timeout_ms, 500, 30_000)?;
        check_range(prefix, "breaker_failures", self.breaker_failures, 1, 100)?;
        check_range(prefix, "breaker_cool_down_ms", self.breaker_cool_down_ms, 1_000, 3_600_000)?;
        for name in self.provider_names() {
            let missing = match name {
                "twilio" => {
                    let t = &self.twilio;
                    [
                        ("base_url", t.base_url.is_none()),
                        ("account_sid", t.account_sid.is_none()),
                        ("auth_token", t.auth_token.is_none()),
                        ("from", t.from.is_none()),
                    ]
                    .into_iter()
                    .find(|(_, m)| *m)
                }
                "vonage" => {
                    let v = &self.vonage;
                    [
                        ("base_url", v.base_url.is_none()),
                        ("api_key", v.api_key.is_none()),
                        ("api_secret", v.api_secret.is_none()),
                        ("from", v.from.is_none()),
                    ]
                    .into_iter()
                    .find(|(_, m)| *m)
                }
                other => {
                    return Err(ConfigError::invalid(
                        format!("{prefix}.providers"),
                        format!("names an unknown provider {other:?}; known: twilio, vonage"),
                    ));
                }
            };
            if let Some((key, _)) = missing {
                return Err(ConfigError::invalid(
                    format!("{prefix}.{name}.{key}"),
                    format!("is required: {name} is in sms.providers"),
                ));
            }
        }
        Ok(())
    }
}

/// `email.*` — e-mail to people (notifications). Without `smtp_url`, messages go to the file
/// outbox `<data>/outbox/email`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// `smtp://[user:password@]host[:port][?tls=required|opportunistic|none]` or `smtps://…`
    /// (`crate::email`); a secret, as it may hold the password.
    pub smtp_url: Option<Secret<String>>,
    /// The sender: `FINTECH <no-reply@fintech.example>`.
    pub from: String,
    /// How long one message may take, in ms (1000 to 120000).
    pub timeout_ms: u64,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings { smtp_url: None, from: "FINTECH <no-reply@fintech.localhost>".into(), timeout_ms: 30_000 }
    }
}

impl Validate for EmailSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "timeout_ms", self.timeout_ms, 1_000, 120_000)?;
        if self.from.trim().parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::invalid(
                format!("{prefix}.from"),
                "is not an address (`FINTECH <no-reply@fintech.example>`)",
            ));
        }
        if let Some(url) = &self.smtp_url
            && let Err(e) = crate::email::SmtpServer::from_url(url.expose(), None, "the URL")
        {
            return Err(ConfigError::invalid(format!("{prefix}.smtp_url"), format!("{e:#}")));
        }
        Ok(())
    }
}

/// Everything the host reads.
#[derive(Debug, Clone, Default)]
pub struct PlatformSettings {
    pub http: HttpSettings,
    pub log: LogSettings,
    pub gcp: GcpSettings,
    pub databases: HashMap<String, DatabaseSettings>,
    pub migrations: MigrationSettings,
    pub auth: AuthSettings,
    pub redis: RedisSettings,
    pub events: EventSettings,
    pub storage: StorageSettings,
    pub sms: SmsSettings,
    pub email: EmailSettings,
}

/// `migrations.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MigrationSettings {
    /// Apply migrations at start (the embedded default). Distributed deployments run
    /// `fintech migrate` as a Job instead and set `FINTECH_MIGRATIONS__ON_START=false`.
    pub on_start: bool,
}

impl Default for MigrationSettings {
    fn default() -> Self {
        MigrationSettings { on_start: true }
    }
}

impl Validate for MigrationSettings {
    fn validate(&self, _prefix: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The platform's own top-level sections.
pub const PLATFORM_SECTIONS: &[&str] =
    &["http", "log", "gcp", "database", "migrations", "auth", "redis", "events", "storage", "sms", "email"];

impl PlatformSettings {
    /// Loads the platform's sections and refuses names it does not know: a top-level section
    /// that is neither the platform's nor a service's, or a `database.<name>` that is no
    /// service, is a typo that would otherwise be ignored silently.
    pub fn load_checked(source: &ConfigSource, service_keys: &[String]) -> Result<Self, ConfigError> {
        let mut known: Vec<&str> = PLATFORM_SECTIONS.to_vec();
        known.extend(service_keys.iter().map(String::as_str));
        if let Some(unknown) = source.top_level_keys().into_iter().find(|k| !known.contains(&k.as_str())) {
            return Err(ConfigError::invalid(
                unknown,
                format!("is not a configuration section; known: {}", known.join(", ")),
            ));
        }
        let settings = Self::load(source)?;
        if settings.events.backend == EventBackend::Pubsub && settings.gcp.project_id.is_none() {
            return Err(ConfigError::invalid(
                "gcp.project_id",
                "is required with events.backend=pubsub (the project of the topics and subscriptions)",
            ));
        }
        if let Some(unknown) = settings.databases.keys().find(|k| !service_keys.contains(k)) {
            return Err(ConfigError::invalid(
                format!("database.{unknown}"),
                format!("names no service; known: {}", service_keys.join(", ")),
            ));
        }
        Ok(settings)
    }

    /// Loads the platform's sections (without checking for unknown ones).
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        Ok(PlatformSettings {
            http: source.section("http")?,
            log: source.section("log")?,
            gcp: source.section("gcp")?,
            databases: source.section::<Databases>("database")?.0,
            migrations: source.section("migrations")?,
            auth: source.section("auth")?,
            redis: source.section("redis")?,
            events: source.section("events")?,
            storage: source.section("storage")?,
            sms: source.section("sms")?,
            email: source.section("email")?,
        })
    }
}
