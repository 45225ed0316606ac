//! vault: the only place a full card number (PAN) exists. Customers store cards and get opaque
//! tokens; numbers are sealed with envelope encryption (a fresh AES-256-GCM data key per card,
//! wrapped by a key-encryption key of the key store) and recognised again by a keyed HMAC
//! fingerprint; displays show at most BIN and last 4. Payments has a card charged through
//! vault, which decrypts the number in memory and sends it, with the CVV, to the acquirer only;
//! every such use is recorded (`card_uses`) and logged. The CVV is never stored.
//!
//! NOT YET: deleting cards, refunds at the acquirer.

pub mod acquirer;
pub mod cards;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod keys;
pub mod kms;
pub mod routes;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use fintech_kit::{Service, ServiceContext, Started, config_key};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

pub use cards::Vault;

pub const SERVICE: &str = "vault";
/// Security records (cards stored, card numbers used, keys rotated) for the audit log.
pub const TOPIC: &str = "vault.events";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "vault", description = "Card tokens; card numbers never leave."),
    paths(routes::tokenize, routes::list_cards, routes::get_card, routes::charge, routes::rotate_kek),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The key file of a vault: `vault.key_file`, else `<data dir>/vault/keys.json`.
pub fn key_file(config: &config::VaultConfig, data_dir: &std::path::Path) -> PathBuf {
    config.key_file.as_ref().map_or_else(|| data_dir.join("keys.json"), PathBuf::from)
}

/// The acquirer chosen by configuration. The simulator is also offered in the process's
/// registry, so that tests can see what it charged.
fn acquirer(ctx: &ServiceContext, config: &config::VaultConfig) -> anyhow::Result<Arc<dyn acquirer::Acquirer>> {
    Ok(match (config.acquirer.as_deref(), &config.acquirer_url, &config.acquirer_api_key) {
        (Some("http"), Some(url), Some(key)) => Arc::new(acquirer::HttpAcquirer::new(url, key.clone())?),
        _ => {
            let simulator = Arc::new(acquirer::Simulator::default());
            ctx.registry.provide(Arc::clone(&simulator));
            simulator
        }
    })
}

/// The vault service.
#[derive(Debug, Default, Clone, Copy)]
pub struct VaultService;

#[async_trait]
impl Service for VaultService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::VaultConfig = ctx.config.section(&config_key(SERVICE))?;
        let keys: Arc<dyn keys::KeyStore> = match config.key_store.as_deref() {
            Some("cloud_kms") => {
                let (Some(key), Some(fingerprint_key)) = (&config.kms_key, &config.kms_fingerprint_key) else {
                    anyhow::bail!("vault.key_store = cloud_kms needs vault.kms_key and vault.kms_fingerprint_key");
                };
                let anonymous = config.kms_credentials.as_deref() == Some("none");
                let refresh = std::time::Duration::from_millis(config.kms_primary_refresh_ms.unwrap_or(5_000));
                let kms =
                    kms::CloudKms::connect(key, fingerprint_key, config.kms_endpoint.as_deref(), anonymous, refresh)
                        .await
                        .map_err(|e| anyhow::anyhow!("vault cannot reach its Cloud KMS key {key}: {e}"))?;
                Arc::new(kms)
            }
            _ => Arc::new(keys::LocalKeyFile::open_or_create(&key_file(&config, &ctx.data_dir))?),
        };
        let acquirer = acquirer(&ctx, &config)?;
        let security = fintech_kit::security::SecurityLog::new(&ctx, SERVICE, TOPIC);
        let vault = Vault::new(ctx.db.clone(), keys, Arc::clone(&acquirer), security);
        // Payments in this process has cards charged without a network hop.
        ctx.registry
            .provide::<client::SharedVault>(Arc::new(client::InProcess { vault: vault.clone(), caller: "payments" }));
        Ok(Started { router: routes::router(routes::AppState { vault }), checks: Vec::new() })
    }
}
