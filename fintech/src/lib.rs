//! The `fintech` binary's commands.

pub mod audit;
pub mod bench;
pub mod cli;
pub mod image;
pub mod notify;
pub mod registry;
pub mod rehearse;
pub mod release_plan;
pub mod rollout;
pub mod services;
pub mod tools;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fintech_config::ConfigSource;
use fintech_kit::{Host, PlatformSettings, Service, config_key};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, RunArgs};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => run_services(services::SERVICES, args, "fintech", true).await,
        Command::Serve { service, run } => {
            let service = services::find(&service)?;
            run_services(&[service], run, service.name(), false).await
        }
        Command::Migrate { service, database_url, data_dir, config } => {
            let (source, settings) = load_settings(config.as_deref())?;
            fintech_telemetry::init("fintech-migrate", &settings.log.level);
            let targets: Vec<&dyn Service> =
                if service == "all" { services::SERVICES.to_vec() } else { vec![services::find(&service)?] };
            for target in targets {
                let url = match &database_url {
                    Some(u) => u.replace("{service}", &config_key(target.name())),
                    None => {
                        let host = Host::embedded(
                            source.clone(),
                            settings.clone(),
                            data_dir.clone(),
                            CancellationToken::new(),
                        );
                        host.database_url(target.name())
                    }
                };
                let started = Instant::now();
                fintech_kit::migrate(target, &url).await?;
                tracing::info!(
                    service = target.name(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "database migrated"
                );
            }
            Ok(())
        }
        Command::Bench { target: cli::BenchTarget::Ledger { database_url, concurrency, seconds } } => {
            fintech_telemetry::init("fintech-bench", "warn");
            let tmp = std::env::temp_dir().join(format!("fintech-bench-{}", std::process::id()));
            let url = database_url.unwrap_or_else(|| format!("sqlite://{}/ledger.db", tmp.display()));
            let concurrency: Vec<usize> = concurrency.into_iter().map(|c| c.clamp(1, 1024)).take(8).collect();
            let result = bench::ledger(&url, &concurrency, seconds.clamp(1, 600)).await;
            let _ = std::fs::remove_dir_all(&tmp);
            result
        }
        Command::Bench { target: cli::BenchTarget::Payments { concurrency, seconds } } => {
            fintech_telemetry::init("fintech-bench", "error");
            bench::payments::run(concurrency.clamp(1, 1024), seconds.clamp(1, 600)).await
        }
        Command::Image(args) => image::run(args).await,
        Command::ReleasePlan(args) => release_plan::run(args).await,
        Command::Rehearse(args) => rehearse::run(args).await,
        Command::VerifyRollout(args) => rollout::run(args).await,
        Command::Notify(args) => notify::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Services => {
            // Name, version (the image tag is `<version>-<build number>`) and the services it
            // calls over HTTP (identity's SERVICE_CALLS; `-`: none), tab-separated.
            for s in services::SERVICES {
                let calls = services::calls_of(s.name());
                let calls = if calls.is_empty() { "-".to_owned() } else { calls.join(",") };
                println!("{}\t{}\t{calls}", s.name(), s.version());
            }
            Ok(())
        }
    }
}

/// Loads configuration, refusing sections and database entries that name nothing we know.
pub(crate) fn load_settings(config: Option<&std::path::Path>) -> anyhow::Result<(ConfigSource, PlatformSettings)> {
    let source = ConfigSource::load(config)?;
    let service_keys: Vec<String> = services::SERVICES.iter().map(|s| config_key(s.name())).collect();
    let settings = PlatformSettings::load_checked(&source, &service_keys)?;
    Ok((source, settings))
}

/// `publish_events`: whether the in-process bus can reach the consumers, i.e. every service runs
/// here. A service alone keeps its events in its outbox unless `events.backend` is `pubsub`.
async fn run_services(
    services: &[&dyn Service],
    args: RunArgs,
    log_name: &str,
    publish_events: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (source, mut settings) = load_settings(args.config.as_deref())?;
    if let Some(port) = args.port {
        settings.http.port = port;
    }
    fintech_telemetry::init(log_name, &settings.log.level);

    let shutdown = CancellationToken::new();
    fintech_http::server::cancel_on_signals(shutdown.clone());
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data folder {}", args.data_dir.display()))?;
    let mut host = Host::embedded(source, settings.clone(), args.data_dir.clone(), shutdown.clone());
    host.publish_events = publish_events;
    let pubsub = fintech_kit::pubsub_bus(&settings, shutdown.clone()).await?;
    if let Some(bus) = &pubsub {
        host.bus = bus.clone();
        host.publish_events = true;
    } else if !publish_events {
        tracing::warn!(
            "the in-process bus reaches no other service from a single service: events stay in the outbox \
             (nothing is lost) until events.backend=pubsub is configured"
        );
    }
    if let Some(store) = fintech_kit::gcs_store(&settings)? {
        host.store = store;
    }
    let app = host.start(services).await?;

    let addr = std::net::SocketAddr::new(settings.http.bind.parse().context("http.bind")?, settings.http.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (is another process using the port? pick one with --port)"))?;
    let local = listener.local_addr()?;
    let names: Vec<_> = services.iter().map(|s| s.name()).collect();
    tracing::info!(
        address = %format!("http://{local}"),
        services = %names.join(","),
        data_dir = %args.data_dir.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    fintech_http::server::serve(
        listener,
        app.router.clone(),
        shutdown.clone(),
        Duration::from_millis(settings.http.shutdown_grace_ms),
    )
    .await
    .context("serving HTTP")?;
    shutdown.cancel();
    app.close().await;
    if let Some(bus) = pubsub {
        bus.closed().await;
    }
    tracing::info!("stopped");
    Ok(())
}
