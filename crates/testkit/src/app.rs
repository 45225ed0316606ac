//! A platform host with chosen services, served on a free loopback port, for black-box tests.

use std::path::PathBuf;
use std::time::Duration;

use fintech_config::{ConfigSource, Secret};
use fintech_db::{Db, PoolLimits};
use fintech_kit::{DatabaseSettings, Host, PlatformSettings, Service, config_key};
use tokio_util::sync::CancellationToken;

use crate::MariaDb;

/// Which engine the services' databases run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MariaDb,
}

/// Running services; stopped when dropped.
#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    /// Database URL per service name.
    pub database_urls: Vec<(String, String)>,
    /// Handles the services offered each other (identity's token issuer among them).
    pub registry: fintech_kit::registry::Registry,
    shutdown: CancellationToken,
    stopped: Option<tokio::sync::oneshot::Receiver<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How to start: engine, configuration pairs (`"contact_us.attachments.max_bytes"` → value),
/// and optionally the databases and data folder of an earlier run (a restart).
#[derive(Debug, Clone)]
pub struct Spawn {
    pub backend: Backend,
    pub config: Vec<(String, serde_json::Value)>,
    pub reuse: Option<(Vec<(String, String)>, PathBuf)>,
}

impl Spawn {
    pub fn new(backend: Backend) -> Self {
        Spawn { backend, config: Vec::new(), reuse: None }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.config.push((key.to_owned(), value.into()));
        self
    }
}

impl TestApp {
    /// Migrates (as the pipeline's SQL setup stage does), starts `services` and serves them.
    pub async fn spawn(services: &[&dyn Service], spawn: Spawn) -> TestApp {
        let (database_urls, data_dir, tmp) = match spawn.reuse {
            Some((urls, dir)) => (urls, dir, None),
            None => {
                let tmp = tempfile::tempdir().expect("tempdir");
                let dir = tmp.path().to_path_buf();
                let urls = services
                    .iter()
                    .map(|s| {
                        let url = match spawn.backend {
                            Backend::Sqlite => format!("sqlite://{}/{}.db", dir.display(), s.name()),
                            Backend::MariaDb => MariaDb::shared().fresh_database_url(),
                        };
                        (s.name().to_owned(), url)
                    })
                    .collect();
                (urls, dir, Some(tmp))
            }
        };
        for (service, (_, url)) in services.iter().zip(&database_urls) {
            fintech_kit::migrate(*service, url).await.expect("migrate");
        }
        let mut figment = figment::Figment::new();
        for (key, value) in &spawn.config {
            figment = figment.merge(figment::providers::Serialized::default(key, value));
        }
        let config = ConfigSource::from_figment(figment);
        let mut settings = PlatformSettings::load(&config).expect("platform settings");
        for (name, url) in &database_urls {
            settings.databases.insert(
                config_key(name),
                DatabaseSettings { url: Some(Secret::new(url.clone())), ..DatabaseSettings::default() },
            );
        }
        let shutdown = CancellationToken::new();
        let mut host = Host::embedded(config, settings, data_dir.clone(), shutdown.clone());
        // `storage.backend=gcs` (against the storage emulator) as `fintech serve` does it.
        if let Some(bucket) = fintech_kit::gcs_store(&host.settings).expect("storage settings") {
            host.store = bucket;
        }
        let app = host.start(services).await.expect("services start");
        let registry = host.registry.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let serve_shutdown = shutdown.clone();
        let (done, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ =
                fintech_http::server::serve(listener, app.router.clone(), serve_shutdown, Duration::from_secs(2)).await;
            app.close().await;
            let _ = done.send(());
        });
        let http = fintech_http::http_client().timeout(Duration::from_secs(30)).build().expect("client");
        TestApp { base, http, data_dir, database_urls, registry, shutdown, stopped: Some(stopped), _tmp: tmp }
    }

    /// Stops serving (graceful), closes the pools, and returns what a restart needs. The
    /// temporary folder stays alive as long as the returned guard.
    pub async fn stop(mut self) -> (Vec<(String, String)>, PathBuf, Option<tempfile::TempDir>) {
        self.shutdown.cancel();
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
        (self.database_urls.clone(), self.data_dir.clone(), self._tmp.take())
    }

    /// A connection pool to a service's database, for assertions.
    pub async fn db(&self, service: &str) -> Db {
        let url = &self.database_urls.iter().find(|(s, _)| s == service).expect("service database").1;
        Db::connect(url, PoolLimits::default()).await.expect("connect")
    }

    /// The process's message outbox (`<data dir>/outbox`): SMS messages are JSON files in its
    /// `sms` folder (`fintech_kit::messages::FileOutbox`).
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// A JSON request to `service` as `token`: a GET without `body`, a POST with it (and a fresh
    /// `Idempotency-Key`, which services without idempotency ignore). The status and the JSON
    /// answer (`null` when there is none).
    pub async fn call(
        &self,
        service: &str,
        token: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let request = match body {
            Some(b) => self
                .http
                .post(self.url(service, path))
                .json(&b)
                .header("Idempotency-Key", uuid::Uuid::now_v7().to_string()),
            None => self.http.get(self.url(service, path)),
        };
        let response = request.bearer_auth(token).send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `base` + `/api/<service>` + `path`.
    pub fn url(&self, service: &str, path: &str) -> String {
        format!("{}/api/{service}{path}", self.base)
    }
}
