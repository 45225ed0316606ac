//! `fintech rehearse <service>`: the service pipeline's stages for one service, on this machine,
//! against a private registry: the service crate's tests, clippy, the static (musl) release
//! build, the image build, a docker-registry on a free 127.0.0.1 port, the push with its digest
//! verified, and the image run from its unpacked root filesystem as uid 65532 on a read-only
//! root until `/healthz` answers. It ends with a summary: each stage's time, the image's
//! compressed and unpacked size, its build time and digest.
//!
//! Needs root (the run uses chroot and a mount namespace) and the tools
//! scripts/check-images.sh installs (buildah, skopeo, umoci, docker-registry, musl target).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use crate::image::{self, BuildArgs, CheckArgs, IMAGE_PROFILE, MUSL_TARGET, Target};
use crate::services;
use crate::tools::{self, CARGO, LocalRegistry, step};

#[derive(Debug, Clone, Args)]
pub struct RehearseArgs {
    /// Service name (see `fintech services`).
    pub service: String,
    /// Build number of the image's tag (`<version>-<build number>`).
    #[arg(long, default_value_t = 1)]
    pub build_number: u64,
    /// Largest accepted image, compressed, in decimal megabytes.
    #[arg(long, default_value_t = 25)]
    pub max_size_mb: u64,
}

pub async fn run(args: RehearseArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let svc = services::find(&args.service)?;
    let root = tools::repository_root()?;
    let package = format!("fintech-{}", svc.name());
    let mut stages: Vec<(String, Duration)> = Vec::new();

    let cargo = |args: &[&str]| {
        let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = tokio::process::Command::new(program);
        cmd.kill_on_drop(true).current_dir(&root).args(args);
        cmd
    };

    let name = format!("Test: cargo test -p {package}");
    let ((), took) = step(&name, tools::run_streaming(&CARGO, cargo(&["test", "--locked", "-p", &package]))).await?;
    stages.push((name, took));

    let name = format!("Lint: cargo clippy -p {package} -- -D warnings");
    let ((), took) = step(
        &name,
        tools::run_streaming(
            &CARGO,
            cargo(&["clippy", "--locked", "-p", &package, "--all-targets", "--", "-D", "warnings"]),
        ),
    )
    .await?;
    stages.push((name, took));

    let name = format!("Build: cargo build --profile {IMAGE_PROFILE} --target {MUSL_TARGET} -p fintech");
    let ((), took) = step(
        &name,
        tools::run_streaming(
            &CARGO,
            cargo(&["build", "--profile", IMAGE_PROFILE, "--locked", "--target", MUSL_TARGET, "-p", "fintech"]),
        ),
    )
    .await?;
    stages.push((name, took));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let binary = target_dir.join(MUSL_TARGET).join(IMAGE_PROFILE).join("fintech");

    let name = "Registry: docker-registry on a free 127.0.0.1 port".to_owned();
    let (mut registry, took) = step(&name, LocalRegistry::start()).await?;
    eprintln!("    pid {} on {}", registry.pid().unwrap_or_default(), registry.address);
    stages.push((name, took));

    let result = async {
        let target = Target {
            service: svc.name().to_owned(),
            registry: format!("{}/fintech", registry.address),
            tag: None,
            build_number: Some(args.build_number),
            tls_verify: false,
        };
        let digests =
            tempfile::Builder::new().prefix("fintech-digests.").tempdir().context("creating a temporary folder")?;
        let build = BuildArgs {
            target: target.clone(),
            binary: binary.clone(),
            containerfile: Some(root.join(image::CONTAINERFILE)),
            revision: None,
            source: None,
            source_date_epoch: None,
            push: true,
            digest_out: digests.path().to_path_buf(),
        };
        let name = "Image build and push (digest verified)".to_owned();
        let (built, took) = step(&name, image::build(&build)).await?;
        stages.push((name, took));
        let check = CheckArgs { target, digests: Some(digests.path().to_path_buf()), max_size_mb: args.max_size_mb };
        let name = "Image run: unpacked, uid 65532, read-only root, /healthz".to_owned();
        let (reports, took) = step(&name, image::check(&check)).await?;
        stages.push((name, took));
        anyhow::Ok((built, reports))
    }
    .await;
    registry.stop().await;
    let (built, reports) = result?;

    println!("\nrehearsal of {} {} ({})", svc.name(), svc.version(), tools::seconds(started.elapsed()));
    for (name, took) in &stages {
        println!("  {:<72} {:>8}", name, tools::seconds(*took));
    }
    println!();
    for (b, r) in built.iter().zip(&reports) {
        println!("  image       {}@{}", b.image, r.digest);
        println!("  user        {}", r.user);
        println!(
            "  build time  {} (buildah build), push {}",
            tools::seconds(b.build_time),
            b.push_time.map(tools::seconds).unwrap_or_default()
        );
        println!(
            "  size        {} compressed (manifest layers + config), {} unpacked",
            tools::megabytes(r.compressed_bytes),
            tools::megabytes(r.unpacked_bytes)
        );
        println!(
            "  run         /healthz 200 after {}, stopped by SIGTERM in {}",
            tools::seconds(r.startup),
            tools::seconds(r.stop)
        );
    }
    Ok(())
}
