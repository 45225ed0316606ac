//! `fintech notify bitbucket` against an HTTP mock of Bitbucket Cloud and Server (wiremock on a
//! free 127.0.0.1 port), and `fintech notify email` against a real SMTP server: aiosmtpd from the
//! shared tools virtualenv (.tools/venv; scripts/test.sh installs it from
//! scripts/requirements/test-servers.txt), started on a free 127.0.0.1 port with a temporary
//! maildir and stopped by its pid. A missing aiosmtpd fails these tests; it never skips them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fintech_testkit::SmtpSink;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const COMMIT: &str = "3f2a9c1d4e5b6a7980112233445566778899aabb";
const TOKEN: &str = "bbtok-7Hq2xZ9sLw";
const BUILD_URL: &str = "https://jenkins.fintech.example/job/fintech-services/job/master/42/";

#[derive(Debug)]
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn fintech(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fintech"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// --- Bitbucket ---------------------------------------------------------------------------------

fn status_args<'a>(state: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["notify", "bitbucket", "--state", state, "--commit", COMMIT, "--key", "fintech-service"];
    args.extend(["--name", "fintech-services/master #42", "--url", BUILD_URL]);
    args.extend(extra);
    args
}

fn cloud_path() -> String {
    format!("/2.0/repositories/fintech/fintech/commit/{COMMIT}/statuses/build")
}

/// The flags of a Cloud status sent to the mock (the repository as the pipeline gives it).
fn cloud<'a>(server: &'a str, state: &'a str) -> Vec<&'a str> {
    status_args(state, &["--api-url", server, "--repository", "fintech/fintech"])
}

fn cloud_env() -> Vec<(&'static str, String)> {
    vec![("FINTECH_BITBUCKET_TOKEN", TOKEN.to_owned())]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

#[tokio::test]
async fn bitbucket_cloud_gets_the_status_of_the_commit() {
    let server = MockServer::start().await;
    let expected = json!({
        "key": "fintech-service",
        "state": "INPROGRESS",
        "name": "fintech-services/master #42",
        "url": BUILD_URL,
        "description": "Build in progress",
    });
    Mock::given(method("POST"))
        .and(path(cloud_path()))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(&expected))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"key": "fintech-service", "state": "INPROGRESS"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let run = fintech(&cloud(&uri, "INPROGRESS"), &pairs(&cloud_env())).await;
    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("fintech-service INPROGRESS on fintech/fintech commit"), "{}", run.stdout);
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN), "the token is never printed: {run:?}");
    server.verify().await;
}

#[tokio::test]
async fn bitbucket_server_gets_the_status_with_basic_credentials() {
    let server = MockServer::start().await;
    let expected = json!({
        "state": "SUCCESSFUL",
        "key": "fintech-infrastructure",
        "name": "fintech-services/master #42",
        "url": BUILD_URL,
        "description": "Deployed to staging",
    });
    // `jenkins:app-pass` in base64.
    Mock::given(method("POST"))
        .and(path(format!("/bitbucket/rest/build-status/1.0/commits/{COMMIT}")))
        .and(header("authorization", "Basic amVua2luczphcHAtcGFzcw=="))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let base = format!("{}/bitbucket/", server.uri());
    let mut args = status_args("SUCCESSFUL", &["--server-url", &base, "--description", "Deployed to staging"]);
    args[7] = "fintech-infrastructure";
    let run =
        fintech(&args, &[("FINTECH_BITBUCKET_USERNAME", "jenkins"), ("FINTECH_BITBUCKET_APP_PASSWORD", "app-pass")])
            .await;
    assert!(run.success, "{run:?}");
    assert!(!run.stdout.contains("app-pass") && !run.stderr.contains("app-pass"), "{run:?}");
    server.verify().await;
}

#[tokio::test]
async fn a_server_error_is_retried_once_then_the_status_is_set() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(cloud_path()))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(cloud_path()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"state": "FAILED"})))
        .with_priority(2)
        .mount(&server)
        .await;
    let uri = server.uri();
    let run = fintech(&cloud(&uri, "FAILED"), &pairs(&cloud_env())).await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stderr.contains("Bitbucket answered 503 Service Unavailable: upstream unavailable; trying again"),
        "{}",
        run.stderr
    );
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2, "one retry");
    // Both attempts carried the same status and the credentials.
    for request in &seen {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["state"], "FAILED");
        assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}").as_str());
    }
}

#[tokio::test]
async fn rejected_credentials_fail_clearly_without_a_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(cloud_path()))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"type": "error", "error": {"message": "Access token expired."}})),
        )
        .mount(&server)
        .await;
    let uri = server.uri();
    let run = fintech(&cloud(&uri, "SUCCESSFUL"), &pairs(&cloud_env())).await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("Bitbucket rejected the credentials in FINTECH_BITBUCKET_TOKEN"), "{}", run.stderr);
    assert!(run.stderr.contains("401 Unauthorized") && run.stderr.contains("Access token expired."), "{}", run.stderr);
    assert!(!run.stderr.contains(TOKEN), "{}", run.stderr);
    assert_eq!(requests(&server).await.len(), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn an_unknown_commit_names_the_repository() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(cloud_path()))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"type": "error", "error": {"message": "Commit not found"}})),
        )
        .mount(&server)
        .await;
    let uri = server.uri();
    let run = fintech(&cloud(&uri, "SUCCESSFUL"), &pairs(&cloud_env())).await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains(&format!("fintech/fintech commit {COMMIT} not found")), "{}", run.stderr);
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn no_credentials_fail_before_any_call() {
    let server = MockServer::start().await;
    // The repository from the environment, as a pipeline may set it; no credentials at all.
    let uri = server.uri();
    let run = fintech(
        &status_args("SUCCESSFUL", &["--api-url", &uri]),
        &[("FINTECH_BITBUCKET_REPOSITORY", "fintech/fintech")],
    )
    .await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("no Bitbucket credentials: set FINTECH_BITBUCKET_TOKEN"), "{}", run.stderr);
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_bitbucket_is_tried_three_times() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = format!("http://127.0.0.1:{port}");
    let run = fintech(
        &status_args("SUCCESSFUL", &["--api-url", &api, "--repository", "fintech/fintech"]),
        &[("FINTECH_BITBUCKET_TOKEN", TOKEN)],
    )
    .await;
    assert!(!run.success, "{run:?}");
    assert_eq!(run.stderr.matches("cannot connect").count(), 3, "{}", run.stderr);
    assert!(run.stderr.contains("(after 3 attempts)"), "{}", run.stderr);
}

// --- E-mail ------------------------------------------------------------------------------------

/// aiosmtpd (`fintech_testkit::SmtpSink`); `tls` = (certificate, key) offers STARTTLS and requires it.
fn smtp_sink(tls: Option<(&Path, &Path)>) -> SmtpSink {
    SmtpSink::start(tls)
}

fn body_file(dir: &Path) -> PathBuf {
    let file = dir.join("notify-body.txt");
    std::fs::write(
        &file,
        "fintech-services #42 on master: FAILURE\nCommit: 3f2a9c1d\nServices: ledger,payments\nDetails: \
         https://jenkins.fintech.example/job/fintech-services/job/master/42/\n",
    )
    .unwrap();
    file
}

fn email_args<'a>(body: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["notify", "email", "--to", "ana@example.com, dev-team@example.com"];
    args.extend(["--subject", "FINTECH fintech-services #42: FAILURE", "--body-file", body.to_str().unwrap()]);
    args.extend(["--from", "FINTECH delivery <fintech-delivery@example.com>"]);
    args.extend(extra);
    args
}

fn assert_delivered(message: &str) {
    assert!(message.contains("X-MailFrom: fintech-delivery@example.com"), "{message}");
    assert!(message.contains("X-RcptTo: ana@example.com, dev-team@example.com"), "{message}");
    assert!(message.contains("Subject: FINTECH fintech-services #42: FAILURE"), "{message}");
    assert!(message.contains("To: ana@example.com, dev-team@example.com"), "{message}");
    assert!(message.contains("fintech-services #42 on master: FAILURE\nCommit: 3f2a9c1d\n"), "{message}");
    assert!(message.contains("Services: ledger,payments"), "{message}");
}

#[tokio::test]
async fn an_email_reaches_every_recipient_through_a_local_relay() {
    let sink = smtp_sink(None);
    let dir = tempfile::tempdir().unwrap();
    let body = body_file(dir.path());
    let port = sink.port().to_string();
    let run =
        fintech(&email_args(&body, &["--smtp-host", "127.0.0.1", "--smtp-port", &port, "--tls", "none"]), &[]).await;
    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("email: sent to ana@example.com, dev-team@example.com"), "{}", run.stdout);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_delivered(&messages[0]);
}

#[tokio::test]
async fn the_smtp_url_from_the_environment_names_the_server() {
    let sink = smtp_sink(None);
    let dir = tempfile::tempdir().unwrap();
    let body = body_file(dir.path());
    let url = format!("smtp://{}?tls=none", sink.address());
    let run = fintech(&email_args(&body, &[]), &[("FINTECH_SMTP_URL", &url)]).await;
    assert!(run.success, "{run:?}");
    assert_delivered(&sink.messages()[0]);
}

#[tokio::test]
async fn starttls_is_required_by_default_and_refused_credentials_stay_secret() {
    let sink = smtp_sink(None);
    let dir = tempfile::tempdir().unwrap();
    let body = body_file(dir.path());
    // smtp:// without tls= means STARTTLS required: this relay offers none, so nothing is sent.
    let url = format!("smtp://{}", sink.address());
    let run = fintech(&email_args(&body, &[]), &[("FINTECH_SMTP_URL", &url)]).await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("(STARTTLS required)"), "{}", run.stderr);
    // Credentials are never sent in plain text, and never printed.
    let url = format!("smtp://jenkins:s3cret-pw@{}?tls=none", sink.address());
    let run = fintech(&email_args(&body, &[]), &[("FINTECH_SMTP_URL", &url)]).await;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("SMTP credentials are only sent over TLS"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
    assert!(sink.messages().is_empty());
}

/// A CA and a certificate for 127.0.0.1 signed by it (openssl), in `dir`: (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output();
        let out = out.unwrap_or_else(|e| panic!("openssl is missing ({e}): apt-get install -y openssl"));
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=fintech test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
    (dir.join("ca.pem"), dir.join("leaf.pem"), dir.join("leaf.key"))
}

#[tokio::test]
async fn starttls_with_a_verified_certificate_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let sink = smtp_sink(Some((&cert, &key)));
    let body = body_file(dir.path());
    let url = format!("smtp://{}", sink.address());
    // The test CA is the only trusted one (rustls-native-certs reads SSL_CERT_FILE).
    let run =
        fintech(&email_args(&body, &[]), &[("FINTECH_SMTP_URL", &url), ("SSL_CERT_FILE", ca.to_str().unwrap())]).await;
    assert!(run.success, "{run:?}");
    assert_delivered(&sink.messages()[0]);

    // Without the CA, the server's certificate is not trusted and nothing is sent.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = certificates(other.path());
    let run =
        fintech(&email_args(&body, &[]), &[("FINTECH_SMTP_URL", &url), ("SSL_CERT_FILE", other_ca.to_str().unwrap())])
            .await;
    assert!(!run.success, "{run:?}");
    assert_eq!(sink.messages().len(), 1, "no second message");
}
