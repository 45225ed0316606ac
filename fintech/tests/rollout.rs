//! `fintech verify-rollout` against a mock Kubernetes API (wiremock on a free 127.0.0.1 port)
//! serving recorded pod lists: `tests/fixtures/pods/*.json`, in the shape `kubectl get pods -o
//! json` gives for the fintech chart on GKE (a service container and the Cloud SQL Auth Proxy as a
//! native sidecar per pod). No Kubernetes API server can run here (see TOOLING.md).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NAMESPACE: &str = "fintech-ci-42";
const SELECTOR: &str = "app.kubernetes.io/instance=fintech";
const PODS_PATH: &str = "/api/v1/namespaces/fintech-ci-42/pods";

fn fixture(name: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pods").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// A Kubernetes API answering the pod list of the namespace and selector with `answers` in turn:
/// each once, the last one for every later poll.
async fn kubernetes(answers: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    let last = answers.len() - 1;
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = Mock::given(method("GET"))
            .and(path(PODS_PATH))
            .and(query_param("labelSelector", SELECTOR))
            .respond_with(answer)
            .with_priority(u8::try_from(i + 1).unwrap());
        let mock = if i < last { mock.up_to_n_times(1) } else { mock };
        server.register(mock).await;
    }
    server
}

async fn serving(fixtures: &[&str]) -> MockServer {
    kubernetes(fixtures.iter().map(|f| ResponseTemplate::new(200).set_body_json(fixture(f))).collect()).await
}

#[derive(Debug)]
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    report: Value,
    elapsed: Duration,
}

impl Run {
    /// The report's row of `pod`.
    fn pod(&self, pod: &str) -> &Value {
        self.report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == pod)
            .unwrap_or_else(|| panic!("{pod} is not in the report: {}", self.report))
    }

    /// The table line of `pod` printed last.
    fn line(&self, pod: &str) -> &str {
        self.stdout.lines().rev().find(|l| l.starts_with(pod)).unwrap_or_else(|| panic!("no line for {pod}:\n{self:?}"))
    }
}

async fn verify(server: &MockServer, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("rollout.json");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fintech"));
    cmd.env_clear()
        .args(["verify-rollout", "--namespace", NAMESPACE, "--selector", SELECTOR, "--api-server", &server.uri()])
        .arg("--report")
        .arg(&report)
        .args(extra)
        .stdin(std::process::Stdio::null());
    // A generous deadline and a short interval unless the test sets them.
    if !extra.contains(&"--timeout") {
        cmd.args(["--timeout", "10s"]);
    }
    if !extra.contains(&"--interval") {
        cmd.args(["--interval", "100ms"]);
    }
    let started = Instant::now();
    let output = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{stderr}"));
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
        report: serde_json::from_str(&report).unwrap(),
        elapsed: started.elapsed(),
    }
}

async fn polls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn every_pod_ready_passes_at_the_first_look() {
    let server = serving(&["healthy"]).await;
    let run = verify(&server, &[]).await;
    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("rollout: 4 pod(s) ready"), "{run:?}");
    for pod in [
        "fintech-accounts-5c8f7b9d6-q7wzn",
        "fintech-contact-us-6f7c9d8b5-x2kqp",
        "fintech-ledger-7d9c6b5f4-b8m4t",
        "fintech-payments-84b6d9c7f-lr9sd",
    ] {
        let line = run.line(pod);
        assert!(line.contains("Running") && line.contains("1/1") && line.contains("ready"), "{line}");
        assert_eq!(run.pod(pod)["verdict"], "ready");
    }
    assert_eq!(run.report["passed"], true);
    assert_eq!(run.report["polls"], 1);
    assert_eq!(polls(&server).await, 1);
}

#[tokio::test]
async fn pods_that_become_ready_on_the_second_look_pass() {
    let server = serving(&["starting", "healthy"]).await;
    let run = verify(&server, &[]).await;
    assert!(run.success, "{run:?}");
    // The first table shows what the pods waited for; the old pod being deleted is not judged.
    assert!(run.stdout.contains("poll 1: 5 pod(s): 2 ready, 2 waiting, 0 failed"), "{}", run.stdout);
    assert!(run.stdout.contains("Pending: container accounts: ContainerCreating"), "{}", run.stdout);
    assert!(run.stdout.contains("container payments running, not ready (readiness probe)"), "{}", run.stdout);
    let old = run.stdout.lines().find(|l| l.starts_with("fintech-payments-59f8c7d6b-hj2vc")).unwrap();
    assert!(old.contains("terminating"), "{old}");
    assert!(run.stdout.contains("poll 2: 4 pod(s): 4 ready, 0 waiting, 0 failed"), "{}", run.stdout);
    assert_eq!(run.report["polls"], 2);
    assert_eq!(polls(&server).await, 2);
}

/// `fixture` fails the gate at the first look, naming `pod` and every one of `reasons`, on stderr
/// (the error), in the table and in the report.
async fn fails_at_once(fixture: &str, pod: &str, reasons: &[&str]) -> Run {
    let server = serving(&[fixture]).await;
    let run = verify(&server, &[]).await;
    assert!(!run.success, "{fixture} must fail the gate: {run:?}");
    assert!(run.stderr.contains("rollout failed: 1 pod(s) failed:"), "{}", run.stderr);
    let reason = run.pod(pod)["reason"].as_str().unwrap().to_owned();
    for expected in reasons {
        assert!(
            run.stderr.contains(&format!("{pod}: ")) && run.stderr.contains(expected),
            "{expected}: {}",
            run.stderr
        );
        assert!(reason.contains(expected), "{expected}: {reason}");
    }
    assert!(run.line(pod).contains("FAILED"), "{}", run.stdout);
    assert_eq!(run.pod(pod)["verdict"], "failed");
    assert_eq!(run.report["passed"], false);
    // At once: one look, not a wait for the deadline.
    assert_eq!(polls(&server).await, 1, "{fixture}");
    assert!(run.elapsed < Duration::from_secs(5), "{fixture} took {:?}", run.elapsed);
    run
}

#[tokio::test]
async fn a_restarted_container_fails_unless_the_limit_allows_it() {
    let run = fails_at_once(
        "restarted",
        "fintech-ledger-7d9c6b5f4-b8m4t",
        &["container ledger restarted 1 time(s) (limit 0)", "last exit Error (1)"],
    )
    .await;
    assert_eq!(run.pod("fintech-ledger-7d9c6b5f4-b8m4t")["restarts"], 1);

    let server = serving(&["restarted"]).await;
    let run = verify(&server, &["--max-restarts", "1"]).await;
    assert!(run.success, "one restart is within --max-restarts 1: {run:?}");
}

#[tokio::test]
async fn crash_loop_back_off_fails() {
    fails_at_once(
        "crashloop",
        "fintech-payments-84b6d9c7f-lr9sd",
        &["container payments: CrashLoopBackOff, 4 restart(s), last exit Error (1)"],
    )
    .await;
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails() {
    fails_at_once(
        "imagepull",
        "fintech-accounts-5c8f7b9d6-q7wzn",
        &[
            "container accounts: ImagePullBackOff",
            "europe-west1-docker.pkg.dev/fintech-shared/fintech-images/accounts:0.1.0-43",
            "not found",
        ],
    )
    .await;
}

#[tokio::test]
async fn an_oom_kill_fails() {
    fails_at_once(
        "oomkilled",
        "fintech-contact-us-6f7c9d8b5-x2kqp",
        &["container contact-us: OOMKilled (over its memory limit)"],
    )
    .await;
}

#[tokio::test]
async fn a_container_configuration_error_fails() {
    fails_at_once(
        "config-error",
        "fintech-ledger-7d9c6b5f4-b8m4t",
        &[
            "container ledger: CreateContainerConfigError (configuration error)",
            "couldn't find key FINTECH_DATABASE__LEDGER__URL in Secret fintech-ci-42/fintech-ledger",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_pod_pending_past_the_deadline_fails_with_what_it_waits_for() {
    let server = serving(&["pending"]).await;
    let run = verify(&server, &["--timeout", "1s", "--interval", "200ms"]).await;
    assert!(!run.success, "{run:?}");
    let pod = "fintech-payments-84b6d9c7f-lr9sd";
    let expected = "not ready within 1.0 s: Pending: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu";
    assert!(run.stderr.contains(pod) && run.stderr.contains(expected), "{}", run.stderr);
    assert!(run.line(pod).contains("Pending") && run.line(pod).contains("FAILED"), "{}", run.stdout);
    assert!(run.pod(pod)["reason"].as_str().unwrap().contains(expected), "{}", run.report);
    // The other pods were ready all along.
    assert_eq!(run.pod("fintech-ledger-7d9c6b5f4-b8m4t")["verdict"], "ready");
    // It waited for the deadline, looking again every interval.
    assert!(run.elapsed >= Duration::from_secs(1), "{:?}", run.elapsed);
    assert!(polls(&server).await >= 3, "{}", polls(&server).await);
}

#[tokio::test]
async fn no_pod_matching_the_selector_fails() {
    let server = kubernetes(vec![ResponseTemplate::new(200).set_body_json(
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "418277"}, "items": []}),
    )])
    .await;
    let run = verify(&server, &[]).await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains(&format!("no pods match \"{SELECTOR}\" in namespace {NAMESPACE}")), "{}", run.stderr);
    assert_eq!(polls(&server).await, 1);
}

#[tokio::test]
async fn a_forbidden_list_fails_at_once_with_the_permission_it_needs() {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "pods is forbidden: User \"system:serviceaccount:jenkins:jenkins-agent\" cannot list resource \"pods\" in API group \"\" in the namespace \"fintech-ci-42\"",
        "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403
    });
    let server = kubernetes(vec![ResponseTemplate::new(403).set_body_json(status)]).await;
    let run = verify(&server, &[]).await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("not allowed to list pods in namespace fintech-ci-42 (403"), "{}", run.stderr);
    assert!(run.stderr.contains("cannot list resource"), "{}", run.stderr);
    assert_eq!(run.report["passed"], false);
    assert_eq!(polls(&server).await, 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_server_error_is_retried_at_the_next_look() {
    let server = kubernetes(vec![
        ResponseTemplate::new(503).set_body_string("upstream connect error"),
        ResponseTemplate::new(200).set_body_json(fixture("healthy")),
    ])
    .await;
    let run = verify(&server, &[]).await;
    assert!(run.success, "{run:?}");
    assert!(run.stderr.contains("(trying again)"), "{}", run.stderr);
    assert_eq!(polls(&server).await, 2);
}
