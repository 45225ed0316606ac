//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "fintech", version, about = "FINTECH platform: run services and the delivery pipeline's stages")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Port to listen on (overrides `http.port`); 0 picks a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// Folder for SQLite files, the bucket, dead letters and local keys.
    #[arg(long, env = "FINTECH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Optional TOML configuration file; environment variables `FINTECH_*` override it.
    #[arg(long, env = "FINTECH_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process on one port (the embedded mode).
    Up(RunArgs),
    /// Run one service (what a container runs).
    Serve {
        /// Service name, e.g. contact-us.
        service: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Create a service's database if absent and apply its migrations (idempotent).
    Migrate {
        /// Service name, or `all`.
        service: String,
        /// Database URL. With `all`, `{service}` in it is replaced by each service's key
        /// (`mysql://u:p@host/{service}` → database `contact_us`). Defaults to the configured
        /// `database.<service>.url`, else the SQLite file in the data dir.
        #[arg(long, env = "FINTECH_MIGRATE_DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long, env = "FINTECH_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        #[arg(long, env = "FINTECH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the services this binary contains: name, version and the services each calls over
    /// HTTP (`-`: none), tab-separated.
    Services,
    /// The audit log: `verify` checks its hash chain for altered, removed or re-linked records.
    Audit(crate::audit::AuditArgs),
    /// Container images: build (buildah), push with the digest verified, check by running them.
    Image(crate::image::ImageArgs),
    /// Which services' image digests changed for an environment; writes the images values file.
    ReleasePlan(crate::release_plan::ReleasePlanArgs),
    /// The service pipeline's stages for one service on this machine, with a private registry.
    Rehearse(crate::rehearse::RehearseArgs),
    /// The pod-health gate: wait until the pods of a release are Ready; fail on restarts,
    /// CrashLoopBackOff, image pull and configuration errors, OOM kills, or the deadline.
    VerifyRollout(crate::rollout::VerifyRolloutArgs),
    /// Report a build: its status on a Bitbucket commit, or an e-mail over SMTP.
    Notify(crate::notify::NotifyArgs),
    /// Measure throughput against the raw limit of the database engine, in one run.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Payments end to end over HTTP (Idempotency-Key, payments, ledger), embedded SQLite.
    Payments {
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds of measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The ledger engine: single transfers (group commit) and batches.
    Ledger {
        /// Database to use; default: a fresh SQLite file in a temporary folder. A MySQL URL
        /// names a database that will be created.
        #[arg(long)]
        database_url: Option<String>,
        /// Concurrent callers of the single-transfer phases, comma-separated: one phase (and one
        /// raw measurement) per value.
        #[arg(long, value_delimiter = ',', default_values_t = [16, 32])]
        concurrency: Vec<usize>,
        /// Seconds per phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}
