//! What the delivery commands (`image`, `release-plan`, `rehearse`, `verify-rollout`) share:
//! progress lines with durations, external tools run with errors that say how to install them, free
//! ports, a private docker-registry, and files written atomically.

use std::ffi::OsStr;
use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How many lines of a failed tool's output are shown.
const FAILURE_TAIL_LINES: usize = 40;

/// An external program and how to install it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    /// What a person runs to get it, e.g. `apt-get install -y buildah`.
    pub install: &'static str,
}

pub const BUILDAH: Tool = Tool { program: "buildah", install: "apt-get install -y buildah" };
pub const SKOPEO: Tool = Tool { program: "skopeo", install: "apt-get install -y skopeo" };
pub const UMOCI: Tool = Tool { program: "umoci", install: "apt-get install -y umoci" };
pub const DOCKER_REGISTRY: Tool = Tool { program: "docker-registry", install: "apt-get install -y docker-registry" };
pub const UNSHARE: Tool = Tool { program: "unshare", install: "apt-get install -y util-linux" };
pub const GIT: Tool = Tool { program: "git", install: "apt-get install -y git" };
pub const KILL: Tool = Tool { program: "kill", install: "apt-get install -y procps" };
pub const CARGO: Tool = Tool {
    program: "cargo",
    install: "rustup (https://rustup.rs), then `rustup target add x86_64-unknown-linux-musl`",
};

impl Tool {
    /// A command for this tool; `PATH` is searched, plus `/usr/sbin` and `/sbin` (Debian keeps
    /// some tools there and a non-login root shell may not have them on its `PATH`).
    pub fn command(&self) -> tokio::process::Command {
        let program = find_program(self.program).unwrap_or_else(|| PathBuf::from(self.program));
        let mut cmd = tokio::process::Command::new(program);
        cmd.kill_on_drop(true);
        cmd
    }

    /// The error for a program that could not be started.
    pub fn spawn_error(&self, e: std::io::Error) -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "`{}` is not installed: install it with {} (scripts/check-images.sh installs every tool it needs)",
                self.program,
                self.install
            )
        } else {
            anyhow::anyhow!("cannot start `{}`: {e}", self.program)
        }
    }

    /// Runs the tool to completion and returns its standard output. On failure the error holds
    /// the command line and the last lines of its output.
    pub async fn run<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        run_captured(self, cmd).await
    }
}

/// Runs `cmd` (of `tool`), capturing stdout and stderr; the error quotes the command and the
/// tail of both.
pub async fn run_captured(tool: &Tool, mut cmd: tokio::process::Command) -> anyhow::Result<String> {
    let line = command_line(&cmd);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = cmd.output().await.map_err(|e| tool.spawn_error(e))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("`{line}` failed ({}):\n{}", output.status, tail(&format!("{stdout}{stderr}"), FAILURE_TAIL_LINES));
    }
    Ok(stdout)
}

/// Runs `cmd` with its output going straight to ours (long builds whose progress a person
/// watches). Fails with the command line when it exits non-zero.
pub async fn run_streaming(tool: &Tool, mut cmd: tokio::process::Command) -> anyhow::Result<()> {
    let line = command_line(&cmd);
    cmd.stdin(Stdio::null());
    let status = cmd.status().await.map_err(|e| tool.spawn_error(e))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// The command as a person would type it (for error messages; no secrets are passed as arguments).
pub fn command_line(cmd: &tokio::process::Command) -> String {
    let std = cmd.as_std();
    let mut parts = vec![std.get_program().to_string_lossy().into_owned()];
    parts.extend(std.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// The last `n` lines of `text`, each indented, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| format!("    | {l}")).collect::<Vec<_>>().join("\n")
}

/// `program` on `PATH`, or in `/usr/sbin` or `/sbin`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Runs one named step: prints `==> name`, then `ok` or `FAIL` with its duration (on stderr, so
/// standard output keeps only results such as digests). Returns the value and the duration.
pub async fn step<T, F>(name: impl Display, work: F) -> anyhow::Result<(T, Duration)>
where
    F: Future<Output = anyhow::Result<T>>,
{
    eprintln!("==> {name}");
    let started = Instant::now();
    let result = work.await;
    let elapsed = started.elapsed();
    match result {
        Ok(value) => {
            eprintln!("    ok    {name} ({})", seconds(elapsed));
            Ok((value, elapsed))
        }
        Err(e) => {
            eprintln!("    FAIL  {name} ({})", seconds(elapsed));
            Err(e.context(format!("step \"{name}\" failed")))
        }
    }
}

/// `1.2 s`.
pub fn seconds(d: Duration) -> String {
    format!("{}.{} s", d.as_secs(), d.subsec_millis() / 100)
}

/// `12.3 MB` (decimal megabytes, as registries and `du --si` show them).
pub fn megabytes(bytes: u64) -> String {
    format!("{}.{} MB", bytes / 1_000_000, (bytes % 1_000_000) / 100_000)
}

/// A free TCP port on 127.0.0.1 (the OS picks it; there is a small window before it is used).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `url` answers 200, or fails after `timeout` with the last answer or error.
pub async fn wait_for_200(client: &reqwest::Client, url: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer 200 within {} ({last})", seconds(timeout))
}

/// A private docker-registry on a free 127.0.0.1 port, its configuration and storage in a
/// temporary folder; stopped by its process id when dropped.
#[derive(Debug)]
pub struct LocalRegistry {
    /// `127.0.0.1:<port>`.
    pub address: String,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    pub async fn start() -> anyhow::Result<Self> {
        let dir =
            tempfile::Builder::new().prefix("fintech-registry.").tempdir().context("creating a temporary folder")?;
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
                dir.path().join("data").display()
            ),
        )
        .context("writing the registry configuration")?;
        let log = std::fs::File::create(dir.path().join("log")).context("creating the registry log")?;
        let mut cmd = DOCKER_REGISTRY.command();
        cmd.arg("serve").arg(&config).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = cmd.spawn().map_err(|e| DOCKER_REGISTRY.spawn_error(e))?;
        let mut registry = LocalRegistry { address, child, _dir: dir };
        let client = fintech_http::http_client().build().expect("an HTTP client");
        if let Err(e) =
            wait_for_200(&client, &format!("http://{}/v2/", registry.address), Duration::from_secs(10)).await
        {
            let log = std::fs::read_to_string(registry._dir.path().join("log")).unwrap_or_default();
            registry.stop().await;
            bail!("docker-registry did not start: {e}\n{}", tail(&log, FAILURE_TAIL_LINES));
        }
        Ok(registry)
    }

    /// The registry's process id (stopped by it).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Writes through a temporary file in the same folder, then renames: no half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The repository root: the nearest ancestor of the current folder holding `Cargo.toml` and
/// `ci/jenkins/images/Containerfile`.
pub fn repository_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    cwd.ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("ci/jenkins/images/Containerfile").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "run this from the repository (no Cargo.toml with ci/jenkins/images/ above {})",
                cwd.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(megabytes(12_345_678), "12.3 MB");
        assert_eq!(megabytes(999), "0.0 MB");
        assert_eq!(seconds(Duration::from_millis(1_250)), "1.2 s");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "    | b\n    | c");
    }

    #[tokio::test]
    async fn a_missing_tool_names_its_package() {
        let tool = Tool { program: "fintech-no-such-tool", install: "apt-get install -y no-such-package" };
        let err = tool.run(["--version"]).await.expect_err("missing tool").to_string();
        assert!(err.contains("apt-get install -y no-such-package"), "{err}");
    }
}
