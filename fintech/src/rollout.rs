//! `fintech verify-rollout`: the pipelines' pod-health gate (ci/jenkins/vars/podHealthGate.groovy).
//!
//! It lists the pods matching a label selector in a namespace, every `--interval`, until every pod
//! is Ready (pass) or `--timeout` has passed (fail). It fails at once, naming the pod, the
//! container and the reason, when a pod
//!
//! - restarted a container more than `--max-restarts` times (default 0: any restart);
//! - waits in `CrashLoopBackOff`;
//! - cannot pull its image (`ImagePullBackOff`, `ErrImagePull`, `InvalidImageName`, ...);
//! - was `OOMKilled` (a container's current or last termination);
//! - cannot create its container (`CreateContainerConfigError`: a missing Secret or ConfigMap key;
//!   `CreateContainerError`, `RunContainerError`);
//! - is `Failed` (evicted, for example).
//!
//! A pod still Pending, or running but not Ready, when the deadline passes fails the gate with what
//! it waits for (unschedulable, `ContainerCreating`, a readiness probe). No pod matching the
//! selector fails at once: the gate runs after `helm upgrade --wait`, so there must be pods.
//! Pods being deleted (an old ReplicaSet's) are shown and not judged; so are pods of Jobs (the
//! migration hooks, which Helm itself checks).
//!
//! Each poll that changes something prints a table (pod, phase, ready containers, restarts,
//! verdict, reason) on stdout; `--report FILE` writes the last one as JSON, whatever the outcome.
//! The cluster comes from the kubeconfig (`KUBECONFIG`, `~/.kube/config`), else the in-cluster
//! service account; `--api-server URL` talks to that URL without credentials instead (a `kubectl
//! proxy`, or a test's mock).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::tools::{seconds, write_atomically};

/// One list call at most this long (the whole poll loop is bounded by `--timeout`).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A pod's reason text is cut to this many characters in the table (the report keeps it whole).
const REASON_WIDTH: usize = 160;
/// The longest `--timeout` accepted: a gate longer than a pipeline stage makes no sense.
const MAX_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// Waiting reasons that will not go away by waiting.
const IMAGE_PULL_REASONS: &[&str] = &["ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"];
const CONFIG_ERROR_REASONS: &[&str] = &["CreateContainerConfigError", "CreateContainerError", "RunContainerError"];

#[derive(Debug, Clone, Args)]
pub struct VerifyRolloutArgs {
    /// Namespace of the pods.
    #[arg(long, default_value = "fintech")]
    pub namespace: String,
    /// Label selector of the pods, e.g. `app.kubernetes.io/instance=fintech`.
    #[arg(long)]
    pub selector: String,
    /// How long pods may take to become Ready: `90s`, `10m`, `1h`, `1m30s`, `500ms`; a bare number
    /// is seconds.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time between two looks at the pods.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Container restarts allowed per container; more fails the gate.
    #[arg(long, default_value_t = 0)]
    pub max_restarts: u32,
    /// Write the outcome and the last table as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Talk to this Kubernetes API URL, without credentials (`kubectl proxy`, a test's mock),
    /// instead of the kubeconfig or the in-cluster service account.
    #[arg(long)]
    pub api_server: Option<String>,
}

/// A pod's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ready,
    /// Ran to completion (phase Succeeded).
    Completed,
    /// Not ready yet; fails only at the deadline.
    Waiting,
    Failed,
    /// Being deleted: not judged.
    Terminating,
    /// A Job's pod: not judged.
    Skipped,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::Completed => "completed",
            Verdict::Waiting => "waiting",
            Verdict::Failed => "FAILED",
            Verdict::Terminating => "terminating",
            Verdict::Skipped => "skipped",
        }
    }

    fn judged(self) -> bool {
        !matches!(self, Verdict::Terminating | Verdict::Skipped)
    }
}

/// One pod, as judged at one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRow {
    pub name: String,
    pub phase: String,
    pub ready_containers: usize,
    pub containers: usize,
    /// Restarts of every container, init containers (sidecars) included.
    pub restarts: u32,
    pub verdict: Verdict,
    /// Why it failed or what it waits for; empty when ready.
    pub reason: String,
}

/// The report written to `--report`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub namespace: String,
    pub selector: String,
    pub passed: bool,
    /// One line: why the gate passed or failed.
    pub summary: String,
    pub elapsed_ms: i64,
    pub timeout_ms: i64,
    pub max_restarts: u32,
    pub polls: u32,
    pub pods: Vec<PodRow>,
}

pub async fn run(args: VerifyRolloutArgs) -> anyhow::Result<()> {
    if args.timeout > MAX_TIMEOUT {
        bail!("--timeout {}: at most {}", seconds(args.timeout), seconds(MAX_TIMEOUT));
    }
    if args.interval.is_zero() {
        bail!("--interval must be more than 0");
    }
    let started = Instant::now();
    let mut polls = 0u32;
    let outcome = match pods_api(&args).await {
        Ok(pods) => gate(&args, &pods, started, &mut polls).await,
        Err(e) => Err(e),
    };
    // The report says what happened in every case, an API error included.
    let (passed, summary, rows) = match &outcome {
        Ok((passed, summary, rows)) => (*passed, summary.clone(), rows.clone()),
        Err(e) => (false, format!("{e:#}"), Vec::new()),
    };
    if let Some(path) = &args.report {
        let report = Report {
            namespace: args.namespace.clone(),
            selector: args.selector.clone(),
            passed,
            summary: summary.clone(),
            elapsed_ms: fintech_telemetry::duration_ms(started.elapsed()),
            timeout_ms: fintech_telemetry::duration_ms(args.timeout),
            max_restarts: args.max_restarts,
            polls,
            pods: rows,
        };
        write_atomically(path, format!("{}\n", serde_json::to_string_pretty(&report)?).as_bytes())
            .context("writing the rollout report")?;
    }
    outcome?;
    if passed {
        println!("rollout: {summary}");
        Ok(())
    } else {
        bail!("rollout failed: {summary}")
    }
}

/// The pods API of the namespace, on the kubeconfig, the in-cluster account, or `--api-server`.
async fn pods_api(args: &VerifyRolloutArgs) -> anyhow::Result<Api<Pod>> {
    // kube's TLS builds rustls configurations from the process's default provider; install the
    // ring one the rest of the binary uses (a no-op when one is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = match &args.api_server {
        Some(url) => kube::Config::new(url.parse().with_context(|| format!("--api-server {url:?} is not a URL"))?),
        None => kube::Config::infer().await.context(
            "no Kubernetes configuration: neither a kubeconfig (KUBECONFIG, ~/.kube/config; \
             `gcloud container clusters get-credentials` writes one) nor an in-cluster service account",
        )?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(CALL_TIMEOUT);
    // The poll loop retries, within the gate's deadline; kube's own retries could outlast it.
    config.default_retry = false;
    let client = kube::Client::try_from(config).context("creating the Kubernetes client")?;
    Ok(Api::namespaced(client, &args.namespace))
}

/// Polls until a verdict: (passed, summary, last rows). An API error that waiting cannot fix
/// (credentials, permissions) is returned as an error at once; other API errors are retried at the
/// next poll, until the deadline.
async fn gate(
    args: &VerifyRolloutArgs,
    pods: &Api<Pod>,
    started: Instant,
    polls: &mut u32,
) -> anyhow::Result<(bool, String, Vec<PodRow>)> {
    let deadline = started + args.timeout;
    let params = ListParams::default().labels(&args.selector);
    let mut shown: Option<Vec<PodRow>> = None;
    let mut last_error: Option<String> = None;
    loop {
        *polls += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let limit = remaining.clamp(Duration::from_secs(2), CALL_TIMEOUT);
        let listed = match tokio::time::timeout(limit, pods.list(&params)).await {
            Ok(Ok(list)) => Some(list.items),
            Ok(Err(e)) => {
                if let Some(fatal) = fatal_api_error(&e, &args.namespace) {
                    return Err(fatal);
                }
                last_error = Some(format!("{:#}", anyhow::Error::new(e)));
                None
            }
            Err(_) => {
                last_error = Some(format!("no answer within {}", seconds(limit)));
                None
            }
        };
        if let Some(items) = listed {
            last_error = None;
            let mut rows: Vec<PodRow> = items.iter().map(|p| assess(p, args.max_restarts)).collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            if rows.is_empty() {
                let summary = format!("no pods match {:?} in namespace {}", args.selector, args.namespace);
                return Ok((false, summary, rows));
            }
            if shown.as_ref() != Some(&rows) {
                print!("{}", table(&rows, started.elapsed(), *polls));
                shown = Some(rows.clone());
            }
            let failed: Vec<&PodRow> = rows.iter().filter(|r| r.verdict == Verdict::Failed).collect();
            if !failed.is_empty() {
                let summary = failures(&failed);
                return Ok((false, summary, rows));
            }
            let judged: Vec<&PodRow> = rows.iter().filter(|r| r.verdict.judged()).collect();
            if !judged.is_empty() && judged.iter().all(|r| matches!(r.verdict, Verdict::Ready | Verdict::Completed)) {
                let ready = judged.iter().filter(|r| r.verdict == Verdict::Ready).count();
                let summary = format!("{ready} pod(s) ready after {}", seconds(started.elapsed()));
                return Ok((true, summary, rows));
            }
            if Instant::now() >= deadline {
                return Ok(timed_out(args, rows, started, *polls));
            }
        } else if let Some(error) = &last_error {
            eprintln!("    listing pods: {error} (trying again)");
        }
        if Instant::now() >= deadline {
            let why = last_error.unwrap_or_else(|| "no answer".to_owned());
            bail!("the pods could not be listed within {}: {why}", seconds(args.timeout));
        }
        tokio::time::sleep(args.interval.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// The verdict at the deadline: every pod still waiting fails, with what it waits for.
fn timed_out(
    args: &VerifyRolloutArgs,
    mut rows: Vec<PodRow>,
    started: Instant,
    poll: u32,
) -> (bool, String, Vec<PodRow>) {
    for row in rows.iter_mut().filter(|r| r.verdict == Verdict::Waiting) {
        row.verdict = Verdict::Failed;
        row.reason = format!("not ready within {}: {}", seconds(args.timeout), row.reason);
    }
    print!("{}", table(&rows, started.elapsed(), poll));
    let failed: Vec<&PodRow> = rows.iter().filter(|r| r.verdict == Verdict::Failed).collect();
    let summary = if failed.is_empty() {
        format!(
            "no pod to judge within {}: every pod matching {:?} is being deleted or a Job's",
            seconds(args.timeout),
            args.selector
        )
    } else {
        failures(&failed)
    };
    (false, summary, rows)
}

/// `pod: reason; pod: reason`.
fn failures(failed: &[&PodRow]) -> String {
    let list: Vec<String> = failed.iter().map(|r| format!("{}: {}", r.name, r.reason)).collect();
    format!("{} pod(s) failed: {}", failed.len(), list.join("; "))
}

/// An error that another poll will not fix: refused credentials, missing permissions, an answer
/// that is not a pod list.
fn fatal_api_error(e: &kube::Error, namespace: &str) -> Option<anyhow::Error> {
    match e {
        kube::Error::Api(status) if status.code == 401 => Some(anyhow::anyhow!(
            "the Kubernetes API rejected the credentials (401 {}): refresh the kubeconfig \
             (`gcloud container clusters get-credentials`)",
            status.message
        )),
        kube::Error::Api(status) if status.code == 403 => Some(anyhow::anyhow!(
            "not allowed to list pods in namespace {namespace} (403 {}): the account needs `list` on pods",
            status.message
        )),
        kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 429 => Some(anyhow::anyhow!(
            "the Kubernetes API refused to list pods in namespace {namespace}: {} {} {}",
            status.code,
            status.reason,
            status.message
        )),
        kube::Error::SerdeError(err) => {
            Some(anyhow::anyhow!("the answer to listing pods is not a pod list (is this a Kubernetes API?): {err}"))
        }
        _ => None,
    }
}

/// Judges one pod.
pub fn assess(pod: &Pod, max_restarts: u32) -> PodRow {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Unknown".to_owned());
    let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let regular = status.container_statuses.clone().unwrap_or_default();
    let init = status.init_container_statuses.clone().unwrap_or_default();
    let ready_containers = regular.iter().filter(|c| c.ready).count();
    let restarts: u32 = init.iter().chain(&regular).map(|c| u32::try_from(c.restart_count).unwrap_or(0)).sum();
    let row = |verdict, reason: String| PodRow {
        name: name.clone(),
        phase: phase.clone(),
        ready_containers,
        containers,
        restarts,
        verdict,
        reason,
    };

    if pod.metadata.deletion_timestamp.is_some() {
        return row(Verdict::Terminating, "being deleted (not judged)".to_owned());
    }
    let owned_by_job =
        pod.metadata.owner_references.iter().flatten().any(|o| o.kind == "Job" && o.controller.unwrap_or(false));
    if owned_by_job {
        return row(Verdict::Skipped, format!("a Job's pod, {phase} (Helm checks the hooks)"));
    }

    let mut problems = Vec::new();
    for c in init.iter().chain(&regular) {
        problems.extend(container_problem(c, max_restarts));
    }
    if phase == "Failed" {
        let why = [status.reason.as_deref(), status.message.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        problems.insert(
            0,
            format!("pod Failed{}", if why.is_empty() { String::new() } else { format!(": {}", why.join(": ")) }),
        );
    }
    if !problems.is_empty() {
        return row(Verdict::Failed, problems.join("; "));
    }
    if phase == "Succeeded" {
        return row(Verdict::Completed, String::new());
    }
    let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    if ready && phase == "Running" {
        return row(Verdict::Ready, String::new());
    }
    row(Verdict::Waiting, waiting_for(&status, &phase, &init, &regular))
}

/// Why a container fails the gate, if it does.
fn container_problem(c: &ContainerStatus, max_restarts: u32) -> Option<String> {
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let waiting_reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or_default();
    let waiting_message = waiting.and_then(|w| w.message.as_deref()).unwrap_or_default();
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let current = c.state.as_ref().and_then(|s| s.terminated.as_ref());
    let last_exit = last
        .map(|t| format!("last exit {}{}", t.reason.as_deref().unwrap_or("code"), format_args!(" ({})", t.exit_code)));
    let with = |text: &str, extra: &str| if extra.is_empty() { text.to_owned() } else { format!("{text}: {extra}") };

    if waiting_reason == "CrashLoopBackOff" {
        let mut text = format!("container {}: CrashLoopBackOff, {} restart(s)", c.name, c.restart_count);
        if let Some(exit) = &last_exit {
            text.push_str(&format!(", {exit}"));
        }
        return Some(text);
    }
    if IMAGE_PULL_REASONS.contains(&waiting_reason) {
        return Some(with(&format!("container {}: {waiting_reason} (image {})", c.name, c.image), waiting_message));
    }
    if CONFIG_ERROR_REASONS.contains(&waiting_reason) {
        return Some(with(&format!("container {}: {waiting_reason} (configuration error)", c.name), waiting_message));
    }
    let oom = [current, last].into_iter().flatten().any(|t| t.reason.as_deref() == Some("OOMKilled"));
    if oom {
        return Some(format!(
            "container {}: OOMKilled (over its memory limit), {} restart(s)",
            c.name, c.restart_count
        ));
    }
    let restarts = u32::try_from(c.restart_count).unwrap_or(0);
    if restarts > max_restarts {
        let mut text = format!("container {} restarted {restarts} time(s) (limit {max_restarts})", c.name);
        if let Some(exit) = &last_exit {
            text.push_str(&format!(", {exit}"));
        }
        return Some(text);
    }
    None
}

/// What a pod that is not ready waits for.
fn waiting_for(
    status: &k8s_openapi::api::core::v1::PodStatus,
    phase: &str,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
) -> String {
    for condition in status.conditions.iter().flatten() {
        if condition.type_ == "PodScheduled" && condition.status == "False" {
            let reason = condition.reason.as_deref().unwrap_or("not scheduled");
            return match condition.message.as_deref() {
                Some(message) => format!("{phase}: {reason}: {message}"),
                None => format!("{phase}: {reason}"),
            };
        }
    }
    let mut reasons = Vec::new();
    for c in init.iter().chain(regular) {
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            reasons.push(format!("container {}: {}", c.name, w.reason.as_deref().unwrap_or("waiting")));
        } else if !c.ready && c.state.as_ref().is_some_and(|s| s.running.is_some()) {
            reasons.push(format!("container {} running, not ready (readiness probe)", c.name));
        }
    }
    if reasons.is_empty() {
        match &status.reason {
            Some(reason) => format!("{phase}: {reason}"),
            None => format!("{phase}: not ready"),
        }
    } else {
        format!("{phase}: {}", reasons.join(", "))
    }
}

/// The table printed at a poll.
pub fn table(rows: &[PodRow], elapsed: Duration, poll: u32) -> String {
    let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    let mut out = format!(
        "\n[{}] poll {poll}: {} pod(s): {} ready, {} waiting, {} failed\n",
        seconds(elapsed),
        rows.len(),
        count(Verdict::Ready) + count(Verdict::Completed),
        count(Verdict::Waiting),
        count(Verdict::Failed)
    );
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(3);
    let _ = writeln!(
        out,
        "{:<width$}  {:<9}  {:<5}  {:>8}  {:<11}  REASON",
        "POD", "PHASE", "READY", "RESTARTS", "VERDICT"
    );
    for r in rows {
        let mut reason: String = r.reason.chars().take(REASON_WIDTH).collect();
        if r.reason.chars().count() > REASON_WIDTH {
            reason.push('…');
        }
        let line = format!(
            "{:<width$}  {:<9}  {:<5}  {:>8}  {:<11}  {reason}",
            r.name,
            r.phase,
            format!("{}/{}", r.ready_containers, r.containers),
            r.restarts,
            r.verdict.label()
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// `90s`, `10m`, `1h`, `1m30s`, `500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration (e.g. 90s, 10m, 1h, 1m30s, 500ms)");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(value.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipelines_command_line_parses() {
        use clap::Parser as _;
        // As ci/jenkins/vars/podHealthGate.groovy runs it.
        let cli = crate::cli::Cli::try_parse_from([
            "fintech",
            "verify-rollout",
            "--namespace",
            "fintech-ci",
            "--selector",
            "app.kubernetes.io/instance=fintech",
            "--timeout",
            "10m",
            "--max-restarts",
            "0",
            "--report",
            "rollout-ci.json",
        ])
        .expect("podHealthGate's flags");
        let crate::cli::Command::VerifyRollout(args) = cli.command else { panic!("not verify-rollout") };
        assert_eq!(
            (args.timeout, args.interval, args.max_restarts),
            (Duration::from_secs(600), Duration::from_secs(5), 0)
        );
    }

    #[test]
    fn durations_parse_like_kubectl_and_helm() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "10x", "1.5m", "-1s", "10 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
