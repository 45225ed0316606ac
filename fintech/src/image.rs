//! `fintech image build | push | check`: one container image per service from
//! `ci/jenkins/images/Containerfile`, built with buildah (no daemon), pushed by tag and verified
//! by digest, and checked by running it.
//!
//! - `build` copies the static binary and the build host's CA certificates into a small build
//!   context and runs `buildah build --isolation chroot`. The tag is the artifact number of
//!   `ci/jenkins/vars/initWorkspace.groovy`, `<service version>-<build number>`. The build is
//!   reproducible: the image's times are the commit's (`--timestamp`, `SOURCE_DATE_EPOCH`), so
//!   the same binary gives the same digest and the release plan sees no change.
//! - `push` (or `build --push`) runs `buildah push --digestfile`, writes `<dir>/<service>.digest`,
//!   then reads the manifest back from the registry and fails unless its digest is the recorded
//!   one.
//! - `check` pulls a pushed image (skopeo), checks its configuration (non-root user, labels,
//!   size), unpacks it (umoci) and runs its own binary from the root filesystem the way the
//!   chart runs it: as uid 65532 with no new privileges, the root filesystem read-only, a
//!   writable `/data` and `/tmp`, in a private mount namespace; `/healthz` must answer 200 and a
//!   SIGTERM must stop it cleanly.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::{ArgAction, Args, Subcommand};
use fintech_kit::Service;
use serde::Deserialize;

use crate::registry::{Digest, FetchedManifest, Registry, RegistryPath};
use crate::services;
use crate::tools::{self, BUILDAH, GIT, KILL, SKOPEO, UMOCI, UNSHARE, step};

/// The musl target every image binary is built for, with the cargo profile `image` (Cargo.toml).
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
pub const IMAGE_PROFILE: &str = "image";
/// Where the build host keeps its CA bundle (Debian's `ca-certificates`).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The Containerfile, relative to the repository root.
pub const CONTAINERFILE: &str = "ci/jenkins/images/Containerfile";
/// The user the Containerfile and the chart run as.
pub const IMAGE_UID: u32 = 65532;
/// Labels every service image carries (`created` only when the build is reproducible).
pub const REQUIRED_LABELS: [&str; 5] = [
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "org.opencontainers.image.title",
    "io.fintech.service",
];
/// How long a service may take to answer `/healthz`, and to stop after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build service images with buildah from ci/jenkins/images/Containerfile; --push pushes
    /// them and verifies the registry serves the recorded digest.
    Build(BuildArgs),
    /// Push images built by `image build` and verify the registry serves the recorded digest.
    Push(PushArgs),
    /// Check pushed images: non-root user, labels, size, and the service answering /healthz
    /// when its binary runs from the unpacked image as uid 65532 on a read-only root.
    Check(CheckArgs),
}

/// Which images: services, registry path, tag.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Service name (see `fintech services`), or `all`.
    pub service: String,
    /// Registry path holding one repository per service (`<registry>/<service>`), e.g.
    /// 127.0.0.1:5000/fintech or europe-west1-docker.pkg.dev/fintech-shared/fintech-images.
    #[arg(long)]
    pub registry: String,
    /// Tag of every image; default: the artifact number `<service version>-<build number>`.
    #[arg(long)]
    pub tag: Option<String>,
    /// The build number of the artifact number (Jenkins sets BUILD_NUMBER).
    #[arg(long, env = "BUILD_NUMBER")]
    pub build_number: Option<u64>,
    /// `false`: the registry speaks plain HTTP (a local test registry on 127.0.0.1).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub target: Target,
    /// The static (musl) fintech binary the image runs.
    #[arg(long, env = "FINTECH_BINARY", default_value = "target/x86_64-unknown-linux-musl/image/fintech")]
    pub binary: PathBuf,
    /// The Containerfile; default ci/jenkins/images/Containerfile of this repository.
    #[arg(long)]
    pub containerfile: Option<PathBuf>,
    /// Commit the image is built from (label org.opencontainers.image.revision); default:
    /// GIT_COMMIT, else `git rev-parse HEAD`.
    #[arg(long, env = "GIT_COMMIT")]
    pub revision: Option<String>,
    /// Where the source lives (label org.opencontainers.image.source); default: the git remote
    /// `origin` without credentials.
    #[arg(long)]
    pub source: Option<String>,
    /// Seconds since the epoch used for every time in the image (reproducible builds); default:
    /// the commit's time.
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// Push each image after building it, and verify its digest in the registry.
    #[arg(long)]
    pub push: bool,
    /// Folder for the pushed digests, one `<service>.digest` file each.
    #[arg(long, default_value = "images")]
    pub digest_out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub target: Target,
    /// Folder for the pushed digests, one `<service>.digest` file each.
    #[arg(long, default_value = "images")]
    pub digest_out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: Target,
    /// Folder of recorded digests (`<service>.digest`); when given, the registry must serve them.
    #[arg(long)]
    pub digests: Option<PathBuf>,
    /// Largest accepted image, compressed (what a node pulls), in decimal megabytes.
    #[arg(long, default_value_t = 25)]
    pub max_size_mb: u64,
}

/// One image built (and maybe pushed).
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub service: String,
    /// `<registry>/<service>:<tag>`.
    pub image: String,
    pub build_time: Duration,
    pub digest: Option<Digest>,
    pub push_time: Option<Duration>,
}

/// What `check` found for one image.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub service: String,
    pub image: String,
    pub digest: Digest,
    pub user: String,
    pub compressed_bytes: u64,
    pub unpacked_bytes: u64,
    pub startup: Duration,
    pub stop: Duration,
}

pub async fn run(args: ImageArgs) -> anyhow::Result<()> {
    match args.command {
        ImageCommand::Build(args) => {
            let built = build(&args).await?;
            eprintln!();
            for b in &built {
                match &b.digest {
                    Some(d) => eprintln!("built and pushed {}@{d} in {}", b.image, tools::seconds(b.build_time)),
                    None => eprintln!("built {} in {}", b.image, tools::seconds(b.build_time)),
                }
            }
            Ok(())
        }
        ImageCommand::Push(args) => {
            let registry = Registry::new(&RegistryPath::parse(&args.target.registry)?.host, args.target.tls_verify)?;
            for svc in selected(&args.target.service)? {
                push(&args.target, &registry, svc, &args.digest_out).await?;
            }
            Ok(())
        }
        ImageCommand::Check(args) => {
            let reports = check(&args).await?;
            eprintln!();
            print_reports(&reports);
            Ok(())
        }
    }
}

/// The services `name` selects: one, or every one for `all`.
pub fn selected(name: &str) -> anyhow::Result<Vec<&'static dyn Service>> {
    if name == "all" { Ok(services::SERVICES.to_vec()) } else { Ok(vec![services::find(name)?]) }
}

/// The tag of `service`'s image: `--tag`, or `<version>-<build number>` (initWorkspace.groovy's
/// artifact number).
pub fn tag_for(target: &Target, service: &dyn Service) -> anyhow::Result<String> {
    let tag = match (&target.tag, target.build_number) {
        (Some(tag), _) => tag.clone(),
        (None, Some(n)) => artifact_number(service.version(), n),
        (None, None) => bail!(
            "no tag: give --build-number N (tag <version>-N, as Jenkins' artifact number; BUILD_NUMBER works too) or --tag"
        ),
    };
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ensure!(valid, "tag {tag:?} is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-], at most 128 characters)");
    Ok(tag)
}

/// `<version>-<build number>`: the artifact number of ci/jenkins/vars/initWorkspace.groovy.
pub fn artifact_number(version: &str, build_number: u64) -> String {
    format!("{version}-{build_number}")
}

/// The build number of `tag` if it is an artifact number of `version`.
pub fn build_number_of(tag: &str, version: &str) -> Option<u64> {
    let rest = tag.strip_prefix(version)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

// --- build --------------------------------------------------------------------------------------

/// Builds the selected images, and pushes and verifies them with `--push`.
pub async fn build(args: &BuildArgs) -> anyhow::Result<Vec<BuiltImage>> {
    let targets = selected(&args.target.service)?;
    let registry_path = RegistryPath::parse(&args.target.registry)?;
    let tags: Vec<String> = targets.iter().map(|s| tag_for(&args.target, *s)).collect::<anyhow::Result<_>>()?;
    let containerfile = match &args.containerfile {
        Some(path) => path.clone(),
        None => tools::repository_root()?.join(CONTAINERFILE),
    };
    ensure!(containerfile.is_file(), "no Containerfile at {}", containerfile.display());

    let (context, _) = step("build context: static binary and CA certificates", prepare_context(&args.binary)).await?;
    let (meta, _) = step("image metadata: revision, source, time", metadata(args)).await?;
    let registry = if args.push { Some(Registry::new(&registry_path.host, args.target.tls_verify)?) } else { None };

    let mut built = Vec::new();
    for (svc, tag) in targets.into_iter().zip(tags) {
        let image = format!("{}:{tag}", registry_path.image(svc.name()));
        let ((), build_time) =
            step(format!("buildah build {image}"), buildah_build(&containerfile, context.path(), svc, &image, &meta))
                .await?;
        step(format!("image configuration of {image}: non-root user, labels"), async {
            let config = buildah_config(&image).await?;
            check_config(svc, &config.user, &config.labels)
        })
        .await?;
        let mut result =
            BuiltImage { service: svc.name().to_owned(), image, build_time, digest: None, push_time: None };
        if let Some(registry) = &registry {
            let started = Instant::now();
            let digest = push(&args.target, registry, svc, &args.digest_out).await?;
            result.digest = Some(digest);
            result.push_time = Some(started.elapsed());
        }
        built.push(result);
    }
    Ok(built)
}

/// Labels and times derived from the checkout.
#[derive(Debug)]
struct Metadata {
    revision: String,
    source: String,
    epoch: Option<i64>,
}

async fn metadata(args: &BuildArgs) -> anyhow::Result<Metadata> {
    let revision = match &args.revision {
        Some(r) if !r.trim().is_empty() => r.trim().to_owned(),
        _ => GIT
            .run(["rev-parse", "HEAD"])
            .await
            .context("no revision: pass --revision (or GIT_COMMIT), or build inside the git checkout")?
            .trim()
            .to_owned(),
    };
    if args.revision.is_none() {
        let dirty = GIT.run(["status", "--porcelain", "--untracked-files=no"]).await.unwrap_or_default();
        if !dirty.trim().is_empty() {
            eprintln!("    note: the working tree has uncommitted changes; the revision label names HEAD ({revision})");
        }
    }
    let source = match &args.source {
        Some(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => match GIT.run(["remote", "get-url", "origin"]).await {
            Ok(url) if !url.trim().is_empty() => without_credentials(url.trim()),
            _ => {
                eprintln!("    note: no git remote `origin` and no --source: the source label says \"unknown\"");
                "unknown".to_owned()
            }
        },
    };
    let epoch = match args.source_date_epoch {
        Some(e) => Some(e),
        None => match GIT.run(["log", "-1", "--format=%ct"]).await {
            Ok(t) => t.trim().parse().ok(),
            Err(_) => None,
        },
    };
    if epoch.is_none() {
        eprintln!(
            "    note: no commit time and no SOURCE_DATE_EPOCH: the image is not reproducible and has no created label"
        );
    }
    eprintln!("    revision {revision}, source {source}, time {}", epoch.map(rfc3339).unwrap_or_else(|| "now".into()));
    Ok(Metadata { revision, source, epoch })
}

/// `https://user:secret@host/x` → `https://host/x`; other forms unchanged.
pub fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://{host}");
    }
    url.to_owned()
}

fn rfc3339(epoch: i64) -> String {
    let time = if epoch >= 0 {
        std::time::UNIX_EPOCH + Duration::from_secs(epoch.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH
    };
    fintech_telemetry::rfc3339(time)
}

/// A temporary build context: `fintech`, `ca-certificates.crt`, and `skel/` (the writable
/// mount points `/data` and `/tmp`, created here with their modes because a scratch image has
/// no shell to create them).
async fn prepare_context(binary: &Path) -> anyhow::Result<tempfile::TempDir> {
    check_static_binary(binary)?;
    let dir = tempfile::Builder::new().prefix("fintech-image.").tempdir().context("creating the build context")?;
    let target = dir.path().join("fintech");
    if std::fs::hard_link(binary, &target).is_err() {
        std::fs::copy(binary, &target).with_context(|| format!("copying {}", binary.display()))?;
    }
    std::fs::copy(HOST_CA_BUNDLE, dir.path().join("ca-certificates.crt")).with_context(|| {
        format!("copying the build host's CA certificates {HOST_CA_BUNDLE} (apt-get install -y ca-certificates)")
    })?;
    use std::os::unix::fs::PermissionsExt as _;
    for (name, mode) in [("skel/data", 0o700), ("skel/tmp", 0o1777)] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    let size = std::fs::metadata(&target)?.len();
    eprintln!("    {} ({}, static)", binary.display(), tools::megabytes(size));
    Ok(dir)
}

/// Fails unless `path` is an x86-64 ELF executable without a program interpreter (static or
/// static-pie): a scratch image has no dynamic loader.
pub fn check_static_binary(path: &Path) -> anyhow::Result<()> {
    let hint = "build it with `cargo build --profile image --locked --target x86_64-unknown-linux-musl -p fintech`";
    let mut file = std::fs::File::open(path).with_context(|| format!("no binary at {}: {hint}", path.display()))?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).with_context(|| format!("{} is not an ELF executable", path.display()))?;
    ensure!(&header[..4] == b"\x7fELF", "{} is not an ELF executable", path.display());
    ensure!(header[4] == 2 && header[5] == 1, "{} is not a 64-bit little-endian ELF file", path.display());
    let machine = u16::from_le_bytes([header[0x12], header[0x13]]);
    ensure!(machine == 62, "{} is not an x86-64 binary (ELF machine {machine})", path.display());
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into()?);
    let phentsize = u64::from(u16::from_le_bytes([header[0x36], header[0x37]]));
    let phnum = u64::from(u16::from_le_bytes([header[0x38], header[0x39]]));
    ensure!(phentsize >= 4 && phnum <= 4096, "{}: malformed ELF program headers", path.display());
    file.seek(SeekFrom::Start(phoff))?;
    let mut headers = vec![0u8; usize::try_from(phentsize * phnum)?];
    file.read_exact(&mut headers).with_context(|| format!("{}: truncated ELF program headers", path.display()))?;
    const PT_INTERP: u32 = 3;
    let dynamic = headers
        .chunks(usize::try_from(phentsize)?)
        .any(|ph| u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == PT_INTERP);
    ensure!(!dynamic, "{} is dynamically linked (it names a loader); {hint}", path.display());
    Ok(())
}

async fn buildah_build(
    containerfile: &Path,
    context: &Path,
    svc: &dyn Service,
    image: &str,
    meta: &Metadata,
) -> anyhow::Result<()> {
    let mut cmd = BUILDAH.command();
    cmd.args(["build", "--isolation", "chroot", "--layers=false", "--pull=never", "--quiet"]);
    if let Some(epoch) = meta.epoch {
        cmd.arg("--timestamp").arg(epoch.to_string());
        cmd.arg("--label").arg(format!("org.opencontainers.image.created={}", rfc3339(epoch)));
    }
    cmd.arg("-f").arg(containerfile);
    for (key, value) in [
        ("SERVICE", svc.name()),
        ("VERSION", svc.version()),
        ("REVISION", meta.revision.as_str()),
        ("SOURCE", meta.source.as_str()),
    ] {
        cmd.arg("--build-arg").arg(format!("{key}={value}"));
    }
    cmd.arg("-t").arg(image).arg(context);
    let id = tools::run_captured(&BUILDAH, cmd).await?;
    eprintln!("    image id {}", id.trim().lines().last().unwrap_or_default());
    Ok(())
}

/// The user and labels of a locally built image.
#[derive(Debug, Default, Deserialize)]
struct LocalConfig {
    #[serde(default, rename = "User")]
    user: String,
    #[serde(default, rename = "Labels")]
    labels: BTreeMap<String, String>,
}

async fn buildah_config(image: &str) -> anyhow::Result<LocalConfig> {
    #[derive(Deserialize)]
    struct Inspect {
        #[serde(rename = "OCIv1")]
        oci: Oci,
    }
    #[derive(Deserialize)]
    struct Oci {
        #[serde(default)]
        config: LocalConfig,
    }
    let out = BUILDAH.run(["inspect", "--type", "image", image]).await?;
    let inspect: Inspect = serde_json::from_str(&out).context("reading `buildah inspect`")?;
    Ok(inspect.oci.config)
}

/// The user must be a non-root uid, and the labels complete and matching the service.
fn check_config<'a, L>(svc: &dyn Service, user: &str, labels: &'a L) -> anyhow::Result<()>
where
    &'a L: IntoIterator<Item = (&'a String, &'a String)>,
{
    let labels: BTreeMap<&str, &str> = labels.into_iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let uid = user.split(':').next().unwrap_or_default();
    ensure!(
        !uid.is_empty() && uid != "0" && uid != "root",
        "image user is {user:?}: images run as a non-root uid (USER 65532:65532 in the Containerfile)"
    );
    for key in REQUIRED_LABELS {
        ensure!(labels.get(key).is_some_and(|v| !v.is_empty()), "image label {key} is missing or empty");
    }
    ensure!(
        labels.get("org.opencontainers.image.version") == Some(&svc.version()),
        "label org.opencontainers.image.version is {:?}, the service's version is {}",
        labels.get("org.opencontainers.image.version"),
        svc.version()
    );
    ensure!(
        labels.get("io.fintech.service") == Some(&svc.name()),
        "label io.fintech.service is {:?}, expected {}",
        labels.get("io.fintech.service"),
        svc.name()
    );
    Ok(())
}

// --- push ---------------------------------------------------------------------------------------

/// Pushes `<registry>/<service>:<tag>`, records its digest in `<digest_out>/<service>.digest`,
/// and verifies the registry serves that digest for the tag.
pub async fn push(
    target: &Target,
    registry: &Registry,
    svc: &dyn Service,
    digest_out: &Path,
) -> anyhow::Result<Digest> {
    let path = RegistryPath::parse(&target.registry)?;
    let tag = tag_for(target, svc)?;
    let image = format!("{}:{tag}", path.image(svc.name()));
    std::fs::create_dir_all(digest_out).with_context(|| format!("creating {}", digest_out.display()))?;
    let digest_file = digest_out.join(format!("{}.digest", svc.name()));
    let (recorded, _) = step(format!("buildah push {image}"), async {
        let mut cmd = BUILDAH.command();
        cmd.args(["push", "--quiet", "--digestfile"]).arg(&digest_file);
        cmd.arg(format!("--tls-verify={}", target.tls_verify));
        cmd.arg(&image).arg(format!("docker://{image}"));
        tools::run_captured(&BUILDAH, cmd).await?;
        let text = std::fs::read_to_string(&digest_file)
            .with_context(|| format!("buildah wrote no digest file {}", digest_file.display()))?;
        let digest = Digest::parse(&text).context("the digest buildah recorded")?;
        eprintln!("    recorded {digest} in {}", digest_file.display());
        Ok(digest)
    })
    .await?;
    step(format!("verify {image} in the registry is {}", recorded.short()), async {
        let served = registry.manifest(&path.repository(svc.name()), &tag).await?;
        ensure!(
            served.digest == recorded,
            "DIGEST MISMATCH for {image}: buildah recorded {recorded}, the registry serves {}",
            served.digest
        );
        Ok(())
    })
    .await?;
    println!("{image}@{recorded}");
    Ok(recorded)
}

// --- check --------------------------------------------------------------------------------------

/// Checks each selected pushed image; see the module documentation.
pub async fn check(args: &CheckArgs) -> anyhow::Result<Vec<CheckReport>> {
    ensure!(
        running_as_root()?,
        "image check runs the image's binary with chroot in a private mount namespace: run it as root"
    );
    let path = RegistryPath::parse(&args.target.registry)?;
    let registry = Registry::new(&path.host, args.target.tls_verify)?;
    let mut reports = Vec::new();
    for svc in selected(&args.target.service)? {
        let tag = tag_for(&args.target, svc)?;
        reports.push(check_one(args, &path, &registry, svc, &tag).await?);
    }
    Ok(reports)
}

async fn check_one(
    args: &CheckArgs,
    path: &RegistryPath,
    registry: &Registry,
    svc: &'static dyn Service,
    tag: &str,
) -> anyhow::Result<CheckReport> {
    let repository = path.repository(svc.name());
    let image = format!("{}:{tag}", path.image(svc.name()));
    let (manifest, _) = step(format!("{image}: manifest and digest"), async {
        let manifest = registry.manifest(&repository, tag).await?;
        if let Some(dir) = &args.digests {
            let file = dir.join(format!("{}.digest", svc.name()));
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let recorded = Digest::parse(&text)?;
            ensure!(
                recorded == manifest.digest,
                "DIGEST MISMATCH for {image}: recorded {recorded} in {}, the registry serves {}",
                file.display(),
                manifest.digest
            );
        }
        eprintln!("    {}", manifest.digest);
        Ok(manifest)
    })
    .await?;
    let (user, _) = step(format!("{image}: non-root user, labels, linux/amd64"), async {
        let config = registry.config(&repository, &manifest).await?;
        ensure!(
            config.os == "linux" && config.architecture == "amd64",
            "image is {}/{}, expected linux/amd64",
            config.os,
            config.architecture
        );
        check_config(svc, &config.config.user, &config.config.labels)?;
        Ok(config.config.user)
    })
    .await?;
    let compressed = manifest.compressed_size();
    step(format!("{image}: compressed size under {} MB", args.max_size_mb), async {
        eprintln!("    {} compressed ({} layers)", tools::megabytes(compressed), manifest.manifest.layers.len());
        ensure!(
            compressed < args.max_size_mb * 1_000_000,
            "image is {} compressed, over the {} MB limit",
            tools::megabytes(compressed),
            args.max_size_mb
        );
        Ok(())
    })
    .await?;

    let work = tempfile::Builder::new().prefix("fintech-image-check.").tempdir().context("creating a work folder")?;
    let (bundle, _) =
        step(format!("{image}: pull (skopeo) and unpack (umoci)"), unpack(args, path, svc, &manifest, work.path()))
            .await?;
    let unpacked = tree_size(&bundle.rootfs)?;
    eprintln!("    {} unpacked", tools::megabytes(unpacked));

    let ((startup, stop), _) =
        step(format!("{image}: run as uid {} on a read-only root, /healthz", bundle.uid), async {
            run_and_probe(svc, &bundle, work.path()).await
        })
        .await?;
    Ok(CheckReport {
        service: svc.name().to_owned(),
        image,
        digest: manifest.digest,
        user,
        compressed_bytes: compressed,
        unpacked_bytes: unpacked,
        startup,
        stop,
    })
}

fn running_as_root() -> anyhow::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .ok_or_else(|| anyhow::anyhow!("no Uid line in /proc/self/status"))?;
    Ok(euid == "0")
}

/// An unpacked image: its root filesystem and what its runtime configuration says to run.
#[derive(Debug)]
struct Bundle {
    rootfs: PathBuf,
    uid: u32,
    gid: u32,
    args: Vec<String>,
    env: Vec<String>,
}

async fn unpack(
    args: &CheckArgs,
    path: &RegistryPath,
    svc: &dyn Service,
    manifest: &FetchedManifest,
    work: &Path,
) -> anyhow::Result<Bundle> {
    let layout = work.join("layout");
    let source = format!("docker://{}@{}", path.image(svc.name()), manifest.digest);
    let mut cmd = SKOPEO.command();
    cmd.args(["copy", "--quiet"]).arg(format!("--src-tls-verify={}", args.target.tls_verify));
    let auth = registry_auth_file(&path.host, work)?;
    if let Some(auth) = &auth {
        cmd.arg("--src-authfile").arg(auth);
    }
    cmd.arg(&source).arg(format!("oci:{}:{}", layout.display(), svc.name()));
    tools::run_captured(&SKOPEO, cmd).await?;
    let bundle = work.join("bundle");
    UMOCI
        .run([
            "unpack".as_ref(),
            "--image".as_ref(),
            format!("{}:{}", layout.display(), svc.name()).as_ref(),
            bundle.as_os_str(),
        ])
        .await?;

    #[derive(Deserialize)]
    struct Spec {
        process: Process,
    }
    #[derive(Deserialize)]
    struct Process {
        user: User,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: Vec<String>,
    }
    #[derive(Deserialize)]
    struct User {
        uid: u32,
        gid: u32,
    }
    let spec: Spec =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).context("umoci wrote no config.json")?)
            .context("reading the bundle's config.json")?;
    ensure!(spec.process.user.uid != 0, "the image runs as root (uid 0)");
    ensure!(!spec.process.args.is_empty(), "the image has no entry point");
    Ok(Bundle {
        rootfs: bundle.join("rootfs"),
        uid: spec.process.user.uid,
        gid: spec.process.user.gid,
        args: spec.process.args,
        env: spec.process.env,
    })
}

/// A containers auth file for skopeo when registry credentials are set (never on the command
/// line, where `ps` would show them).
fn registry_auth_file(host: &str, work: &Path) -> anyhow::Result<Option<PathBuf>> {
    let (Ok(user), Ok(password)) =
        (std::env::var("FINTECH_REGISTRY_USERNAME"), std::env::var("FINTECH_REGISTRY_PASSWORD"))
    else {
        return Ok(None);
    };
    let encoded = crate::registry::base64(format!("{user}:{password}").as_bytes());
    let file = work.join("auth.json");
    let body = serde_json::json!({ "auths": { host: { "auth": encoded } } });
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&file)?;
    f.write_all(body.to_string().as_bytes())?;
    Ok(Some(file))
}

/// Total size of the regular files under `root`.
fn tree_size(root: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// The environment variable `key` of an image's environment list.
fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().find_map(|e| e.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// How the chart wires a service that runs alone (deploy/helm/fintech/values.yaml `auth`,
/// `serviceUrls`, `secretEnv`): every service but identity verifies tokens with identity's keys;
/// the services of identity's `SERVICE_CALLS` call others with service tokens from identity. Here one
/// companion process (`fintech up` from the same image) stands for all of them.
fn companion_env(service: &str, companion: &str, secret: &str) -> Vec<String> {
    if service == "identity" {
        return Vec::new();
    }
    let key = fintech_kit::config_key(service).to_uppercase();
    let mut env = vec![format!("FINTECH_AUTH__IDENTITY_URL={companion}")];
    let calls = crate::services::calls_of(service);
    if !calls.is_empty() {
        env.push(format!("FINTECH_AUTH__SERVICE_SECRET={secret}"));
        env.extend(calls.iter().map(|c| {
            let callee = fintech_kit::config_key(c).to_uppercase();
            format!("FINTECH_{key}__{callee}_URL={companion}")
        }));
    }
    env
}

/// Runs the service from the unpacked image (with a companion `fintech up` beside it when it
/// needs other services), waits for `/healthz`, stops it with SIGTERM. Returns the startup and
/// stop durations.
async fn run_and_probe(svc: &dyn Service, bundle: &Bundle, work: &Path) -> anyhow::Result<(Duration, Duration)> {
    let data_dir = env_value(&bundle.env, "FINTECH_DATA_DIR").unwrap_or("/data").to_owned();
    let client = fintech_http::http_client().build().expect("an HTTP client");
    let mut extra: Vec<String> = Vec::new();
    let mut companion = None;
    if svc.name() != "identity" {
        let secret = random_token();
        let port = tools::free_port()?;
        let key = fintech_kit::config_key(svc.name()).to_uppercase();
        let others = Sandboxed::start(
            bundle,
            &work.join("companion-data"),
            &data_dir,
            &["up".into(), "--port".into(), port.to_string()],
            &[format!("FINTECH_IDENTITY__SERVICE_SECRETS__{key}={secret}")],
        )
        .await?;
        tools::wait_for_200(&client, &format!("http://127.0.0.1:{port}/healthz"), START_TIMEOUT)
            .await
            .context("the other services (`fintech up`, run beside the service) did not start")?;
        extra = companion_env(svc.name(), &format!("http://127.0.0.1:{port}"), &secret);
        eprintln!("    identity and the other services beside it on 127.0.0.1:{port}");
        companion = Some(others);
    }

    let port = tools::free_port()?;
    let started = Instant::now();
    let service_data = work.join("data");
    let mut process = Sandboxed::start(
        bundle,
        &service_data,
        &data_dir,
        &["serve".into(), svc.name().into(), "--port".into(), port.to_string()],
        &extra,
    )
    .await?;
    let probe = tools::wait_for_200(&client, &format!("http://127.0.0.1:{port}/healthz"), START_TIMEOUT).await;
    let startup = started.elapsed();
    let result = match probe {
        Ok(()) => {
            eprintln!("    /healthz 200 after {}", tools::seconds(startup));
            let confined =
                process.service_pid().ok_or_else(|| anyhow::anyhow!("the service process is gone")).and_then(|pid| {
                    let found = confinement(pid, bundle.uid)?;
                    eprintln!("    pid {pid}: {found}");
                    Ok(())
                });
            let ready = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.map(|r| r.status());
            eprintln!("    /readyz {}", ready.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()));
            let written = std::fs::read_dir(&service_data).map(|d| d.count()).unwrap_or(0);
            if let Err(e) = confined {
                Err(e)
            } else if written == 0 {
                Err(anyhow::anyhow!("the service wrote nothing to its data dir {data_dir}: is FINTECH_DATA_DIR set?"))
            } else {
                eprintln!("    wrote {written} entries to {data_dir} (the only writable place besides /tmp)");
                Ok(())
            }
        }
        Err(e) => Err(e.context(format!("output:\n{}", process.output_tail()))),
    };
    let stop = process.stop().await;
    if let Some(mut ledger) = companion {
        let _ = ledger.stop().await;
    }
    result?;
    let stop = stop.with_context(|| format!("output:\n{}", process.output_tail()))?;
    eprintln!("    stopped by SIGTERM in {}, exit status 0", tools::seconds(stop));
    Ok((startup, stop))
}

fn random_token() -> String {
    (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// The image's binary running from its root filesystem: a private mount namespace in which the
/// root filesystem is bind-mounted read-only, `data` (a host folder owned by the image's uid) is
/// mounted on the data dir and a tmpfs on `/tmp`; then `chroot --userspec` drops to the image's
/// uid and gid, with no new privileges. Only the image's environment is passed on (plus the
/// bind address 127.0.0.1 and `extra_env`).
#[derive(Debug)]
struct Sandboxed {
    child: tokio::process::Child,
    log: PathBuf,
}

/// The script `unshare` runs: $1 rootfs, $2 host data folder, $3 data dir in the image,
/// $4 uid:gid, then the command.
const SANDBOX_SCRIPT: &str = r#"set -eu
rootfs=$1 data=$2 data_dir=$3 user=$4
shift 4
mount --make-rprivate /
mount --bind "$rootfs" "$rootfs"
mount -o remount,bind,ro "$rootfs"
mount --bind "$data" "$rootfs$data_dir"
mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev tmpfs "$rootfs/tmp"
exec setpriv --no-new-privs chroot --userspec="$user" --groups="${user#*:}" "$rootfs" "$@"
"#;

impl Sandboxed {
    async fn start(
        bundle: &Bundle,
        data: &Path,
        data_dir: &str,
        args: &[String],
        extra_env: &[String],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        std::os::unix::fs::chown(data, Some(bundle.uid), Some(bundle.gid))
            .with_context(|| format!("giving {} to uid {}", data.display(), bundle.uid))?;
        ensure!(
            bundle.rootfs.join(data_dir.trim_start_matches('/')).is_dir() && bundle.rootfs.join("tmp").is_dir(),
            "the image has no {data_dir} or /tmp folder to mount a writable volume on"
        );
        let log = data.with_extension("log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = UNSHARE.command();
        cmd.env_clear();
        for pair in bundle.env.iter().chain(extra_env) {
            if let Some((k, v)) = pair.split_once('=') {
                cmd.env(k, v);
            }
        }
        // Loopback only here; in a pod the chart binds 0.0.0.0.
        cmd.env("FINTECH_HTTP__BIND", "127.0.0.1");
        if env_value(&bundle.env, "PATH").is_none() {
            // For the host tools that set the sandbox up (sh, mount, setpriv, chroot).
            cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        }
        cmd.args(["--mount", "--fork", "--", "sh", "-c", SANDBOX_SCRIPT, "sandbox"]);
        cmd.arg(&bundle.rootfs).arg(data).arg(data_dir).arg(format!("{}:{}", bundle.uid, bundle.gid));
        cmd.args(&bundle.args).args(args);
        cmd.stdin(std::process::Stdio::null()).stdout(out.try_clone()?).stderr(out);
        let child = cmd.spawn().map_err(|e| UNSHARE.spawn_error(e))?;
        Ok(Sandboxed { child, log })
    }

    /// The service's process id: the child of `unshare`.
    fn service_pid(&self) -> Option<u32> {
        child_of(self.child.id()?)
    }

    fn output_tail(&self) -> String {
        tools::tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 30)
    }

    /// SIGTERM to the service (the child of `unshare`), then waits for `unshare`, which exits
    /// with the service's status. Fails on a non-zero status or a stop slower than the limit.
    async fn stop(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let Some(pid) = self.child.id() else {
            let status = self.child.wait().await?;
            bail!("the service had already exited ({status})");
        };
        let service_pid = child_of(pid);
        match service_pid {
            Some(service_pid) => {
                KILL.run(["-TERM".to_owned(), service_pid.to_string()]).await?;
            }
            None => {
                let _ = self.child.start_kill();
                let status = self.child.wait().await?;
                bail!("the service had already exited ({status})");
            }
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(status.success(), "the service exited with {status} after SIGTERM");
                Ok(started.elapsed())
            }
            Err(_) => {
                if let Some(service_pid) = service_pid {
                    let _ = KILL.run(["-KILL".to_owned(), service_pid.to_string()]).await;
                }
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                bail!("the service did not stop within {} of SIGTERM", tools::seconds(STOP_TIMEOUT))
            }
        }
    }
}

/// Checks, from /proc, that process `pid` runs as `uid` (real, effective, saved, filesystem),
/// with no capabilities, no new privileges, and its root filesystem mounted read-only.
fn confinement(pid: u32, uid: u32) -> anyhow::Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the process status")?;
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_owned();
    let uids: Vec<String> = field("Uid:").split_whitespace().map(str::to_owned).collect();
    ensure!(
        uids.len() == 4 && uids.iter().all(|u| *u == uid.to_string()),
        "the service runs as uids {uids:?}, not {uid}"
    );
    ensure!(field("NoNewPrivs:") == "1", "the service may gain privileges (NoNewPrivs {})", field("NoNewPrivs:"));
    ensure!(field("CapEff:").trim_start_matches('0').is_empty(), "the service has capabilities {}", field("CapEff:"));
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).context("reading the process mounts")?;
    // mountinfo: id parent major:minor root mount-point options ...; paths are seen from the process's root.
    let root_options = mounts
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&"/")).then(|| f.get(5).copied().unwrap_or_default().to_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("no root mount in the service's mount table"))?;
    ensure!(root_options.split(',').any(|o| o == "ro"), "the root filesystem is mounted {root_options}, not read-only");
    Ok(format!("uid {uid}, no capabilities, no new privileges, root filesystem {root_options}"))
}

/// The first child process of `pid` (from /proc).
fn child_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok();
    if let Some(first) = children.as_deref().and_then(|c| c.split_whitespace().next()) {
        return first.parse().ok();
    }
    // Kernels without /proc/<pid>/task/<tid>/children: scan every process's parent.
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let candidate: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let after_name = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = after_name.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == pid).then_some(candidate)
    })
}

/// The table `check` prints.
pub fn print_reports(reports: &[CheckReport]) {
    println!(
        "{:<12} {:<48} {:<12} {:>11} {:>10} {:>9} {:>7}",
        "service", "image", "digest", "compressed", "unpacked", "startup", "stop"
    );
    for r in reports {
        println!(
            "{:<12} {:<48} {:<12} {:>11} {:>10} {:>9} {:>7}",
            r.service,
            r.image,
            &r.digest.as_str()[7..19],
            tools::megabytes(r.compressed_bytes),
            tools::megabytes(r.unpacked_bytes),
            tools::seconds(r.startup),
            tools::seconds(r.stop)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_alone_is_wired_as_the_chart_wires_it() {
        assert!(companion_env("identity", "http://c", "s").is_empty());
        assert_eq!(companion_env("ledger", "http://c", "s"), vec!["FINTECH_AUTH__IDENTITY_URL=http://c"]);
        let payments = companion_env("payments", "http://c", "s");
        for wanted in [
            "FINTECH_AUTH__IDENTITY_URL=http://c",
            "FINTECH_AUTH__SERVICE_SECRET=s",
            "FINTECH_PAYMENTS__LEDGER_URL=http://c",
            "FINTECH_PAYMENTS__ACCOUNTS_URL=http://c",
            "FINTECH_PAYMENTS__VAULT_URL=http://c",
            "FINTECH_PAYMENTS__RISK_URL=http://c",
        ] {
            assert!(payments.iter().any(|e| e == wanted), "{wanted}: {payments:?}");
        }
        assert!(
            companion_env("accounts", "http://c", "s").contains(&"FINTECH_ACCOUNTS__LEDGER_URL=http://c".to_owned())
        );
        let statements = companion_env("statements", "http://c", "s");
        assert!(statements.contains(&"FINTECH_STATEMENTS__LEDGER_URL=http://c".to_owned()), "{statements:?}");
        assert!(statements.contains(&"FINTECH_AUTH__SERVICE_SECRET=s".to_owned()), "{statements:?}");
    }

    fn target(tag: Option<&str>, build_number: Option<u64>) -> Target {
        Target {
            service: "contact-us".into(),
            registry: "127.0.0.1:5000/fintech".into(),
            tag: tag.map(str::to_owned),
            build_number,
            tls_verify: false,
        }
    }

    #[test]
    fn tags_are_artifact_numbers() {
        let svc = services::find("contact-us").expect("service");
        assert_eq!(tag_for(&target(None, Some(42)), svc).expect("tag"), format!("{}-42", svc.version()));
        assert_eq!(tag_for(&target(Some("x.1"), Some(42)), svc).expect("tag"), "x.1");
        assert!(tag_for(&target(None, None), svc).is_err());
        assert!(tag_for(&target(Some("-bad"), None), svc).is_err());
        assert!(tag_for(&target(Some("a/b"), None), svc).is_err());
    }

    #[test]
    fn build_numbers_are_read_back_from_tags() {
        assert_eq!(build_number_of("0.1.0-42", "0.1.0"), Some(42));
        assert_eq!(build_number_of(&artifact_number("1.2.3", 7), "1.2.3"), Some(7));
        assert_eq!(build_number_of("0.1.0-rc1", "0.1.0"), None);
        assert_eq!(build_number_of("0.1.0", "0.1.0"), None);
        assert_eq!(build_number_of("0.1.0-", "0.1.0"), None);
        assert_eq!(build_number_of("0.1.1-4", "0.1.0"), None);
        assert_eq!(build_number_of("0.1.0-99999999999999999999999", "0.1.0"), None);
    }

    #[test]
    fn credentials_are_cut_from_source_urls() {
        assert_eq!(without_credentials("https://user:secret@bitbucket.org/f/f.git"), "https://bitbucket.org/f/f.git");
        assert_eq!(without_credentials("https://bitbucket.org/f/f.git"), "https://bitbucket.org/f/f.git");
        assert_eq!(without_credentials("git@bitbucket.org:f/f.git"), "git@bitbucket.org:f/f.git");
    }

    #[test]
    fn only_static_binaries_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let not_elf = dir.path().join("script");
        std::fs::write(&not_elf, "#!/bin/sh\n").expect("write");
        assert!(check_static_binary(&not_elf).is_err());
        assert!(check_static_binary(&dir.path().join("missing")).is_err());
        // /bin/sh on the build host is dynamically linked.
        let err = check_static_binary(Path::new("/bin/sh")).expect_err("dynamic").to_string();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn image_configs_are_checked() {
        let svc = services::find("ledger").expect("service");
        let mut labels: BTreeMap<String, String> =
            REQUIRED_LABELS.iter().map(|k| ((*k).to_owned(), "x".to_owned())).collect();
        labels.insert("org.opencontainers.image.version".into(), svc.version().into());
        labels.insert("io.fintech.service".into(), "ledger".into());
        assert!(check_config(svc, "65532:65532", &labels).is_ok());
        assert!(check_config(svc, "0:0", &labels).is_err());
        assert!(check_config(svc, "root", &labels).is_err());
        assert!(check_config(svc, "", &labels).is_err());
        labels.insert("io.fintech.service".into(), "payments".into());
        assert!(check_config(svc, "65532", &labels).is_err());
        labels.remove("org.opencontainers.image.revision");
        assert!(check_config(svc, "65532", &labels).is_err());
    }

    #[test]
    fn image_env_values_are_found() {
        let env = vec!["PATH=/bin".to_owned(), "FINTECH_DATA_DIR=/data".to_owned()];
        assert_eq!(env_value(&env, "FINTECH_DATA_DIR"), Some("/data"));
        assert_eq!(env_value(&env, "FINTECH_DATA"), None);
    }
}
