//! Typed, layered configuration.
//!
//! Layers, later wins: each section's `Default` → an optional TOML file → environment variables
//! `FINTECH_<SECTION>__<KEY>` (double underscore separates levels; `contact-us` is written
//! `CONTACT_US`). Every section is a plain struct with `#[serde(default, deny_unknown_fields)]`,
//! validated at boot; an error always names the key and where its value came from.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Provider};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Prefix of every environment variable this platform reads.
pub const ENV_PREFIX: &str = "FINTECH_";

/// `FINTECH_*` variables read by the command line (`--config`, `--data-dir`,
/// `--database-url` of `migrate`, `--binary` of `image build`, the registry credentials of
/// `image` and `release-plan`, the Bitbucket and SMTP settings of `notify`), lower-cased as
/// figment sees them: they are not keys.
pub const COMMAND_LINE_VARIABLES: &[&str] = &[
    "config",
    "data_dir",
    "migrate_database_url",
    "audit_database_url",
    "binary",
    "registry_username",
    "registry_password",
    "bitbucket_token",
    "bitbucket_username",
    "bitbucket_app_password",
    "bitbucket_repository",
    "bitbucket_server_url",
    "smtp_url",
    "smtp_from",
    "smtp_username",
    "smtp_password",
];

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {key} {reason}")]
    Invalid { key: String, reason: String },
    #[error("configuration file {path} does not exist")]
    MissingFile { path: PathBuf },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), reason: reason.into() }
    }
}

/// A section validates itself after loading. `prefix` is the section's dotted key, so errors
/// can name the full key (`contact_us.attachments.max_bytes`).
pub trait Validate {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError>;
}

/// Checks `min <= value <= max`, naming `prefix.key` otherwise.
pub fn check_range<T: PartialOrd + fmt::Display>(
    prefix: &str,
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(
            format!("{prefix}.{key}"),
            format!("is {value}; it must be between {min} and {max}"),
        ));
    }
    Ok(())
}

/// The loaded layers, from which each section is extracted.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    figment: Figment,
}

impl ConfigSource {
    /// Loads the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile { path: path.to_path_buf() });
            }
            figment = figment.merge(Toml::file(path));
        }
        // Variables that are command-line options, not configuration keys.
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(COMMAND_LINE_VARIABLES).split("__"));
        Ok(ConfigSource { figment })
    }

    /// Built from an existing figment (tests, or a caller's own layering).
    pub fn from_figment(figment: Figment) -> Self {
        ConfigSource { figment }
    }

    /// The top-level keys present in any layer (sections, and stray keys).
    pub fn top_level_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Provider::data(&self.figment)
            .map(|profiles| profiles.values().flat_map(|dict| dict.keys().cloned()).collect())
            .unwrap_or_default();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Extracts and validates one section; an absent section is its `Default`.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Default + Validate,
    {
        let value: T = if self.figment.find_value(name).is_ok() {
            self.figment.extract_inner(name).map_err(|e| explain(name, e))?
        } else {
            T::default()
        };
        value.validate(name)?;
        Ok(value)
    }
}

/// Turns figment's error into one naming the full key, the environment variable that sets it,
/// and where the bad value came from.
fn explain(section: &str, error: figment::Error) -> ConfigError {
    let mut path: Vec<String> = error.path.iter().map(|p| p.to_ascii_lowercase()).collect();
    if path.first().map(String::as_str) != Some(section) {
        path.insert(0, section.to_owned());
    }
    let key = path.join(".");
    let env = format!("{ENV_PREFIX}{}", key.replace('.', "__").to_ascii_uppercase());
    let source = error.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_else(|| "defaults".to_owned());
    ConfigError::invalid(key, format!("is invalid: {} (set by {source}; environment variable {env})", error.kind))
}

/// A secret value: deserializes like `T`, but `Debug` and `Display` never show it.
/// Read it with [`Secret::expose`], only where it is used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Section {
        port: u16,
        timeout_ms: u64,
        token: Option<Secret<String>>,
    }

    impl Validate for Section {
        fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
            check_range(prefix, "timeout_ms", self.timeout_ms, 0, 60_000)
        }
    }

    #[test]
    fn layers_apply_in_order_and_env_wins() {
        Jail::expect_with(|jail| {
            jail.create_file("f.toml", "[svc]\nport = 1\ntimeout_ms = 5\n")?;
            jail.set_env("FINTECH_SVC__PORT", "2");
            let src = ConfigSource::load(Some(Path::new("f.toml"))).expect("loads");
            let s: Section = src.section("svc").expect("valid");
            assert_eq!((s.port, s.timeout_ms), (2, 5));
            let absent: Section = src.section("other").expect("defaults");
            assert_eq!(absent, Section::default());
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("FINTECH_SVC__TIMEOUT_MS", "999999");
            let src = ConfigSource::load(None).expect("loads");
            let err = src.section::<Section>("svc").expect_err("out of range").to_string();
            assert!(err.contains("svc.timeout_ms"), "{err}");

            jail.set_env("FINTECH_SVC__TIMEOUT_MS", "soon");
            let err = ConfigSource::load(None).expect("loads").section::<Section>("svc");
            let err = err.expect_err("not a number").to_string();
            assert!(err.contains("timeout_ms") && err.contains("FINTECH_SVC__TIMEOUT_MS"), "{err}");

            jail.set_env("FINTECH_SVC__TIMEOUT_MS", "1");
            jail.set_env("FINTECH_SVC__PROT", "1");
            let err = ConfigSource::load(None).expect("loads").section::<Section>("svc");
            assert!(err.expect_err("typo").to_string().contains("prot"));
            Ok(())
        });
        let missing = ConfigSource::load(Some(Path::new("/nonexistent/fintech.toml")));
        assert!(matches!(missing, Err(ConfigError::MissingFile { .. })));
    }

    #[test]
    fn secrets_never_print() {
        Jail::expect_with(|jail| {
            jail.set_env("FINTECH_SVC__TOKEN", "hunter2-very-secret");
            let s: Section = ConfigSource::load(None).expect("loads").section("svc").expect("valid");
            let token = s.token.as_ref().expect("set");
            assert_eq!(token.expose(), "hunter2-very-secret");
            assert!(!format!("{s:?}").contains("hunter2"));
            assert!(!format!("{token}").contains("hunter2"));
            Ok(())
        });
    }
}
