//! How a service plugs into the platform.
//!
//! A service crate implements [`Service`]: its name, its migrations, and `start`, which gets a
//! [`ServiceContext`] (its own database, the bus, the bucket, its outbox waker, the message
//! sender) and returns its routes and readiness checks. [`Host`] runs one service (`fintech
//! serve`) or all of them (`fintech up`) the same way: same edge, same routes under
//! `/api/<service>/`, same health endpoints. Invariant: crates/ hold no business rules; services
//! never share a database.

pub mod cache;
pub mod email;
pub mod idempotency;
pub mod messages;
pub mod ratelimit;
pub mod registry;
pub mod secret_file;
pub mod security;
pub mod settings;
pub mod sms;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use fintech_config::ConfigSource;
use fintech_db::sqlx::migrate::Migrator;
use fintech_db::{Db, Engine, PoolLimits};
use fintech_events::EventBus;
use fintech_events::outbox::{OutboxRelay, RelayConfig};
use fintech_http::health::{ReadinessCheck, health_router};
use fintech_http::middleware::{EdgeSettings, apply_edge};
use fintech_storage::ObjectStore;
use fintech_telemetry::Metrics;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use settings::{
    AuthSettings, DatabaseSettings, EventBackend, EventSettings, HttpSettings, PlatformSettings, StorageBackend,
    StorageSettings,
};

/// What a service gets from the platform.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    pub db: Db,
    pub bus: Arc<dyn EventBus>,
    pub store: Arc<dyn ObjectStore>,
    pub config: ConfigSource,
    /// Private folder for this service's local files (keys, tokens) in the data dir.
    pub data_dir: PathBuf,
    /// Wake the outbox relay after committing staged events.
    pub outbox_waker: Arc<Notify>,
    /// Handles offered by services started earlier in this process.
    pub registry: registry::Registry,
    pub shutdown: CancellationToken,
    /// This service's tokens for calling other services over HTTP (`auth.identity_url` and
    /// `auth.service_secret`); `None` when not configured (services in one process call each
    /// other directly).
    pub service_tokens: Option<Arc<fintech_auth::ServiceTokens>>,
    /// Where rate limits keep their buckets: Redis when `redis.url` is set, else memory.
    pub rate_limits: ratelimit::Store,
    /// How messages reach people (identity's one-time codes by SMS). One per process, shared by
    /// its services: the SMS gateways ([`sms::GatewaySender`]) when `sms.providers` names them,
    /// else the embedded mode's stand-in, a [`messages::FileOutbox`] rooted at `<data>/outbox`,
    /// where the developer reads the messages and nothing is delivered to a phone.
    pub messages: Arc<dyn messages::MessageSender>,
    /// How e-mail reaches people (notifications): SMTP ([`email::SmtpSender`]) when
    /// `email.smtp_url` is set, else the same [`messages::FileOutbox`] (`<data>/outbox/email`).
    pub email: Arc<dyn email::EmailSender>,
}

impl ServiceContext {
    /// The process's Redis (`redis.url`), when there is one: shared by every replica.
    pub fn redis(&self) -> Option<&ratelimit::RedisStore> {
        match &self.rate_limits {
            ratelimit::Store::Memory => None,
            ratelimit::Store::Redis(r) => Some(r),
        }
    }

    /// Call after a commit that staged events, so they leave without waiting for the next poll.
    pub fn events_committed(&self) {
        self.outbox_waker.notify_one();
    }

    /// Subscribes `service` to each of `topics`, one subscription each named `<service>.<topic>`
    /// (the names Terraform makes), with the bus's default retry policy, delivering to the
    /// handler `handler_for(topic)` gives.
    pub async fn subscribe_each(
        &self,
        service: &str,
        topics: &[&'static str],
        handler_for: impl Fn(&'static str) -> Arc<dyn fintech_events::EventHandler>,
    ) -> anyhow::Result<()> {
        for &topic in topics {
            let subscription = fintech_events::Subscription {
                name: format!("{service}.{topic}"),
                topic: topic.to_owned(),
                retry: fintech_events::RetryPolicy::default(),
            };
            self.bus
                .subscribe(subscription, handler_for(topic))
                .await
                .with_context(|| format!("subscribing to {topic}"))?;
        }
        Ok(())
    }
}

/// What a started service hands back.
#[derive(Default)]
pub struct Started {
    /// Routes relative to `/api/<service>` (e.g. `/v1/requests`).
    pub router: Router,
    /// Extra readiness checks; the database check is added by the host.
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").field("checks", &self.checks.len()).finish_non_exhaustive()
    }
}

/// A service of the platform.
#[async_trait]
pub trait Service: Send + Sync {
    /// The service's name as in URLs and images: `contact-us`.
    fn name(&self) -> &'static str;
    /// The service's own version: `env!("CARGO_PKG_VERSION")` of its crate, so the version in
    /// `services/<name>/Cargo.toml` is the one its image is tagged with (`<version>-<build>`).
    /// Required on purpose: a default would tag every image with the same made-up version.
    fn version(&self) -> &'static str;
    /// Its migrations for `engine` (the platform's tables are added by the host).
    fn migrations(&self, engine: Engine) -> &'static Migrator;
    /// Its OpenAPI document, with full paths (`/api/contact-us/v1/...`).
    fn openapi(&self) -> utoipa::openapi::OpenApi;
    /// Builds the routes; may spawn background work that stops on `ctx.shutdown`.
    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started>;
    /// The sources of the events it stages by reference
    /// ([`fintech_events::outbox::stage_derived`]); its outbox relay builds them when publishing.
    fn event_sources(&self) -> Vec<Arc<dyn fintech_events::outbox::EventSource>> {
        Vec::new()
    }
}

/// The four [`Service`] methods every service writes the same way, inside its `impl Service`:
/// `name` (`$name`), `version` (its own crate's `CARGO_PKG_VERSION`: `env!` is read where the
/// macro is used), `migrations` (`$sqlite` or `$mysql`, the two `Migrator` statics) and `openapi`
/// (`$api`, a `utoipa::OpenApi` type).
#[macro_export]
macro_rules! service_basics {
    ($name:expr, $sqlite:ident, $mysql:ident, $api:ty) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn version(&self) -> &'static str {
            env!("CARGO_PKG_VERSION")
        }

        fn migrations(&self, engine: $crate::__macro::Engine) -> &'static $crate::__macro::Migrator {
            $crate::pick_migrations(engine, &$sqlite, &$mysql)
        }

        fn openapi(&self) -> $crate::__macro::utoipa::openapi::OpenApi {
            <$api as $crate::__macro::utoipa::OpenApi>::openapi()
        }
    };
}

/// What [`service_basics!`] names, reachable from any crate.
#[doc(hidden)]
pub mod __macro {
    pub use fintech_db::Engine;
    pub use fintech_db::sqlx::migrate::Migrator;
    pub use utoipa;
}

/// The configuration key of a service: `contact-us` → `contact_us`.
pub fn config_key(service: &str) -> String {
    service.replace('-', "_")
}

/// The full migrator of a service on `engine`: the platform's tables, then the service's.
pub fn migrator_for(service: &dyn Service, engine: Engine) -> Migrator {
    let platform = match engine {
        Engine::Sqlite => &fintech_events::SQLITE_MIGRATIONS,
        Engine::MySql => &fintech_events::MYSQL_MIGRATIONS,
    };
    fintech_db::combine_migrations(&[platform, service.migrations(engine)])
}

/// Creates the database if absent and applies every migration: the "SQL table setup" stage.
pub async fn migrate(service: &dyn Service, url: &str) -> anyhow::Result<()> {
    fintech_db::create_database_if_absent(url)
        .await
        .with_context(|| format!("creating the database of {}", service.name()))?;
    let db = Db::connect(url, PoolLimits { max_connections: 2, ..PoolLimits::default() })
        .await
        .with_context(|| format!("connecting to the database of {}", service.name()))?;
    let result = db.migrate(&migrator_for(service, db.engine())).await;
    db.close().await;
    result.with_context(|| format!("migrating {}", service.name()))
}

struct DbCheck {
    name: String,
    db: Db,
}

#[async_trait]
impl ReadinessCheck for DbCheck {
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}

struct StoreCheck(Arc<dyn ObjectStore>);

#[async_trait]
impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &str {
        "bucket"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.check().await.map_err(|e| e.to_string())
    }
}

/// Shared resources of one process.
#[derive(Debug, Clone)]
pub struct Host {
    pub settings: PlatformSettings,
    pub config: ConfigSource,
    pub bus: Arc<dyn EventBus>,
    pub store: Arc<dyn ObjectStore>,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    pub data_dir: PathBuf,
    pub registry: registry::Registry,
    /// Publish outboxes to `bus`. Off when the bus could not deliver to the consumers (one
    /// service alone with the in-process bus): events then wait in the outbox, nothing is lost.
    pub publish_events: bool,
}

/// A running set of services: the router to serve and what to close at the end.
#[derive(Debug)]
pub struct RunningApp {
    pub router: Router,
    dbs: Vec<Db>,
    relays: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningApp {
    /// Waits for the relays (they stop on the shutdown token) and closes the pools.
    pub async fn close(self) {
        for relay in self.relays {
            let _ = relay.await;
        }
        for db in self.dbs {
            db.close().await;
        }
    }
}

/// The Pub/Sub bus when `events.backend` is `pubsub` (against `events.pubsub_emulator` when set),
/// else `None`: the host's in-process bus stays. Its subscriptions stop when `shutdown` fires;
/// await [`fintech_events::pubsub::PubSubBus::closed`] after the services have stopped.
pub async fn pubsub_bus(
    settings: &PlatformSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<Arc<fintech_events::pubsub::PubSubBus>>> {
    use fintech_events::pubsub::{PubSubBus, PubSubConfig};
    if settings.events.backend != settings::EventBackend::Pubsub {
        return Ok(None);
    }
    let project = settings.gcp.project_id.clone().context("events.backend=pubsub needs gcp.project_id")?;
    let mut config = match &settings.events.pubsub_emulator {
        Some(endpoint) => PubSubConfig::emulator(project, endpoint.clone()),
        None => PubSubConfig::google(project),
    };
    config.prefix.clone_from(&settings.events.pubsub_prefix);
    let bus = PubSubBus::connect(config, shutdown).await.context("connecting to Pub/Sub (events.backend=pubsub)")?;
    Ok(Some(Arc::new(bus)))
}

/// The Cloud Storage bucket when `storage.backend` is `gcs`, else `None` (the host's folder stays).
pub fn gcs_store(settings: &PlatformSettings) -> anyhow::Result<Option<Arc<dyn fintech_storage::ObjectStore>>> {
    use fintech_storage::gcs::{GcsConfig, GcsStore, LinkSigner};
    let s = &settings.storage;
    if s.backend != settings::StorageBackend::Gcs {
        return Ok(None);
    }
    let signer = match (&s.signer_service_account, &s.signing_key_file) {
        (None, _) => None,
        (Some(account), None) => Some(LinkSigner::Iam { service_account: account.clone() }),
        (Some(account), Some(file)) => Some(LinkSigner::PrivateKey {
            service_account: account.clone(),
            pem: std::fs::read(file).with_context(|| format!("reading storage.signing_key_file {file}"))?,
        }),
    };
    let config = GcsConfig {
        bucket: s.bucket.clone().context("storage.backend=gcs needs storage.bucket")?,
        emulator: s.emulator.clone(),
        signer,
    };
    Ok(Some(Arc::new(GcsStore::new(config).context("building the Cloud Storage client")?)))
}

/// The SMTP sender of `email.smtp_url`, or `None` when it is not set (the file outbox).
pub fn smtp_sender(settings: &PlatformSettings) -> anyhow::Result<Option<email::SmtpSender>> {
    let s = &settings.email;
    let Some(url) = &s.smtp_url else { return Ok(None) };
    let server = email::SmtpServer::from_url(url.expose(), None, "email.smtp_url")?;
    Ok(Some(email::SmtpSender::new(server, &s.from, std::time::Duration::from_millis(s.timeout_ms))?))
}

/// The SMS gateways of `sms.providers`, in order, or `None` when none is named (the file outbox).
/// Undeliverable messages are recorded in `<data>/outbox/sms/dead-letters.jsonl`.
pub fn sms_gateways(
    settings: &PlatformSettings,
    store: &ratelimit::Store,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<sms::GatewaySender>> {
    let s = &settings.sms;
    let names = s.provider_names();
    if names.is_empty() {
        return Ok(None);
    }
    let http = fintech_http::http_client()
        .timeout(std::time::Duration::from_millis(s.timeout_ms))
        .connect_timeout(std::time::Duration::from_millis(s.timeout_ms.min(3_000)))
        .build()
        .context("building the SMS gateways' HTTP client")?;
    let required = |v: &Option<String>, key: &str| v.clone().with_context(|| format!("sms.{key} is required"));
    let mut providers: Vec<Arc<dyn sms::SmsProvider>> = Vec::new();
    for name in names {
        match name {
            "twilio" => {
                let t = &s.twilio;
                providers.push(Arc::new(sms::TwilioProvider {
                    base_url: required(&t.base_url, "twilio.base_url")?,
                    account_sid: required(&t.account_sid, "twilio.account_sid")?,
                    auth_token: t.auth_token.as_ref().context("sms.twilio.auth_token is required")?.expose().clone(),
                    from: required(&t.from, "twilio.from")?,
                    status_callback: t.status_callback.clone(),
                    http: http.clone(),
                }));
            }
            "vonage" => {
                let v = &s.vonage;
                providers.push(Arc::new(sms::VonageProvider {
                    base_url: required(&v.base_url, "vonage.base_url")?,
                    api_key: required(&v.api_key, "vonage.api_key")?,
                    api_secret: v.api_secret.as_ref().context("sms.vonage.api_secret is required")?.expose().clone(),
                    from: required(&v.from, "vonage.from")?,
                    status_callback: v.status_callback.clone(),
                    http: http.clone(),
                }));
            }
            other => anyhow::bail!("sms.providers names an unknown provider {other:?}"),
        }
    }
    let per_number = ratelimit::Limiter::new(
        "sms-gateway-per-number",
        ratelimit::Rule {
            capacity: s.per_number_per_hour,
            refill_every: std::time::Duration::from_secs(3600 / u64::from(s.per_number_per_hour.max(1))),
        },
        store,
    );
    let breaker = sms::BreakerPolicy {
        failures_to_open: s.breaker_failures,
        cool_down: std::time::Duration::from_millis(s.breaker_cool_down_ms),
    };
    Ok(Some(sms::GatewaySender::new(
        providers,
        breaker,
        sms::RetryPolicy::default(),
        per_number,
        data_dir.join("outbox").join(messages::SMS_FOLDER).join("dead-letters.jsonl"),
    )))
}

impl Host {
    /// The embedded mode's resources: in-process bus (dead letters in `<data>/dead-letters`),
    /// the bucket as `<data>/bucket`.
    pub fn embedded(
        config: ConfigSource,
        settings: PlatformSettings,
        data_dir: PathBuf,
        shutdown: CancellationToken,
    ) -> Host {
        let dead_letters = fintech_events::memory::FileDeadLetters::new(data_dir.join("dead-letters"));
        Host {
            settings,
            config,
            bus: Arc::new(fintech_events::memory::InProcessBus::new(Arc::new(dead_letters))),
            store: Arc::new(fintech_storage::LocalFolderStore::new(data_dir.join("bucket"))),
            metrics: Metrics::new(),
            shutdown,
            data_dir,
            registry: registry::Registry::default(),
            publish_events: true,
        }
    }

    /// The database URL of `service`: `database.<service>.url`, else a SQLite file in the data dir.
    pub fn database_url(&self, service: &str) -> String {
        self.settings
            .databases
            .get(&config_key(service))
            .and_then(|d| d.url.as_ref())
            .map(|u| u.expose().clone())
            .unwrap_or_else(|| format!("sqlite://{}/{service}.db", self.data_dir.display()))
    }

    /// The token verifier of `service`: identity's keys when identity runs in this process
    /// (started before), else its JWKS over HTTP (`auth.identity_url` or `auth.jwks_url`).
    pub fn verifier(&self, service: &str) -> anyhow::Result<fintech_auth::Verifier> {
        let keys: fintech_auth::SharedKeys = match self.registry.get::<fintech_auth::SharedKeys>() {
            Some(in_process) => in_process,
            None => match self.settings.auth.jwks_url() {
                Some(url) => Arc::new(fintech_auth::JwksClient::new(&url).context("building the JWKS client")?),
                None => anyhow::bail!(
                    "{service} verifies access tokens with identity's keys: run identity in the same process \
                     (`fintech up`) or set auth.identity_url (FINTECH_AUTH__IDENTITY_URL)"
                ),
            },
        };
        Ok(fintech_auth::Verifier::new(service, fintech_auth::ISSUER, keys))
    }

    /// Connects, migrates and starts `services`, and builds the router serving them all.
    pub async fn start(&self, services: &[&dyn Service]) -> anyhow::Result<RunningApp> {
        let mut api = Router::new();
        let mut checks: Vec<Arc<dyn ReadinessCheck>> = vec![Arc::new(StoreCheck(Arc::clone(&self.store)))];
        let mut dbs = Vec::new();
        let mut relays = Vec::new();
        let rate_limits = match &self.settings.redis.url {
            None => ratelimit::Store::Memory,
            Some(url) => {
                let ca = match &self.settings.redis.ca_file {
                    None => None,
                    Some(path) => Some(std::fs::read(path).with_context(|| format!("reading redis.ca_file {path}"))?),
                };
                ratelimit::Store::redis(url.expose(), &self.settings.redis.key_prefix, ca.as_deref())
                    .await
                    .context("connecting to Redis (redis.url, FINTECH_REDIS__URL) for the rate limits, one-time codes and shared caches")?
            }
        };
        // One outbox for the whole process (not per service): `<data>/outbox`.
        let outbox = Arc::new(messages::FileOutbox::new(self.data_dir.join("outbox")));
        let messages: Arc<dyn messages::MessageSender> =
            match sms_gateways(&self.settings, &rate_limits, &self.data_dir)? {
                Some(gateways) => Arc::new(gateways),
                None => outbox.clone(),
            };
        let email: Arc<dyn email::EmailSender> = match smtp_sender(&self.settings)? {
            Some(smtp) => Arc::new(smtp),
            None => outbox,
        };
        // Relays publish only once every service has started: a consumer (audit) subscribes in
        // its start, and the in-process bus drops what is published to a topic nobody reads yet.
        let mut pending_relays = Vec::new();
        let mut seen = HashMap::new();
        for service in services {
            let name = service.name();
            if seen.insert(name, ()).is_some() {
                anyhow::bail!("service {name} is listed twice");
            }
            let url = self.database_url(name);
            let limits = self.settings.databases.get(&config_key(name)).map_or_else(PoolLimits::default, |d| {
                PoolLimits { max_connections: d.max_connections, ..PoolLimits::default() }
            });
            let db =
                Db::connect(&url, limits).await.with_context(|| format!("connecting to the database of {name}"))?;
            if self.settings.migrations.on_start {
                db.migrate(&migrator_for(*service, db.engine())).await.with_context(|| format!("migrating {name}"))?;
            }
            let relay = OutboxRelay::new(db.clone(), Arc::clone(&self.bus), RelayConfig::default())
                .with_sources(service.event_sources());
            let service_tokens = match (&self.settings.auth.identity_url, &self.settings.auth.service_secret) {
                (Some(url), Some(secret)) => Some(Arc::new(
                    fintech_auth::ServiceTokens::new(url, name, secret.clone())
                        .context("building the service-token client")?,
                )),
                _ => None,
            };
            let ctx = ServiceContext {
                db: db.clone(),
                bus: Arc::clone(&self.bus),
                store: Arc::clone(&self.store),
                config: self.config.clone(),
                data_dir: self.data_dir.join(name),
                outbox_waker: relay.waker(),
                registry: self.registry.clone(),
                shutdown: self.shutdown.clone(),
                service_tokens,
                rate_limits: rate_limits.clone(),
                messages: Arc::clone(&messages),
                email: Arc::clone(&email),
            };
            if self.publish_events {
                pending_relays.push(relay);
            }
            let started = service.start(ctx).await.with_context(|| format!("starting {name}"))?;
            let verifier = Arc::new(self.verifier(name)?);
            let doc = Arc::new(service.openapi());
            let service_router = started.router.layer(axum::Extension(verifier)).route(
                "/openapi.json",
                get(move || {
                    let doc = Arc::clone(&doc);
                    async move { axum::Json(doc.as_ref().clone()) }
                }),
            );
            api = api.nest(&format!("/api/{name}"), service_router);
            checks.push(Arc::new(DbCheck { name: format!("{name}.database"), db: db.clone() }));
            checks.extend(started.checks);
            dbs.push(db);
        }
        relays.extend(pending_relays.into_iter().map(|r| tokio::spawn(r.run(self.shutdown.clone()))));
        let router = api.merge(health_router(checks, self.metrics.clone()));
        let router = apply_edge(
            router,
            EdgeSettings {
                request_timeout: Duration::from_millis(self.settings.http.request_timeout_ms),
                body_limit_bytes: self.settings.http.body_limit_bytes,
                project_id: self.settings.gcp.project_id.clone(),
                metrics: self.metrics.clone(),
            },
        );
        Ok(RunningApp { router, dbs, relays })
    }
}

/// An OpenAPI modifier that declares a bearer-token security scheme named `.0`, for services'
/// `#[openapi(modifiers(&BearerScheme("...")))]`.
#[derive(Debug, Clone, Copy)]
pub struct BearerScheme(pub &'static str);

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi.components.get_or_insert_with(Default::default).add_security_scheme(
            self.0,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The migrator of `engine` out of a service's two folders.
pub fn pick_migrations(engine: Engine, sqlite: &'static Migrator, mysql: &'static Migrator) -> &'static Migrator {
    match engine {
        Engine::Sqlite => sqlite,
        Engine::MySql => mysql,
    }
}
