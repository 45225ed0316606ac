//! `fintech notify bitbucket | email`: how the pipelines report a build
//! (ci/jenkins/vars/initWorkspace.groovy, notifyResult.groovy).
//!
//! `bitbucket` sets the build status of a commit:
//!
//! - Bitbucket Cloud (the default): `POST {api}/2.0/repositories/{workspace}/{repo_slug}/commit/
//!   {commit}/statuses/build` with `{key, state, name, url, description}`; `--repository
//!   workspace/repo_slug` (or `FINTECH_BITBUCKET_REPOSITORY`), `--api-url` (default
//!   `https://api.bitbucket.org`; a mock's in tests);
//! - Bitbucket Server / Data Center, when `--server-url` (or `FINTECH_BITBUCKET_SERVER_URL`) is
//!   given: `POST {server}/rest/build-status/1.0/commits/{commit}` with the same fields. Server has
//!   no `STOPPED`: it is sent as `FAILED`.
//!
//! Credentials come from the environment only, and are never printed: `FINTECH_BITBUCKET_TOKEN`
//! (sent as a Bearer token: a repository or workspace access token on Cloud, an HTTP access token
//! on Server), or `FINTECH_BITBUCKET_USERNAME` with `FINTECH_BITBUCKET_APP_PASSWORD` (Basic). A
//! status with the same key replaces the previous one, so the call may be repeated: a connection
//! error or a 5xx is tried again (3 attempts, backoff with jitter); a 4xx is not, and its error
//! says what to fix (401: the credentials were rejected; 403: they may not write statuses; 404:
//! the repository or commit is unknown).
//!
//! `email` sends a plain-text message over SMTP (lettre). The server is `FINTECH_SMTP_URL`
//! (`smtp://[user:password@]host[:port][?tls=required|opportunistic|none]`, or `smtps://…` for TLS
//! from the first byte), or `--smtp-host`/`--smtp-port` with `FINTECH_SMTP_USERNAME` and
//! `FINTECH_SMTP_PASSWORD`. `--tls` (or the URL's `tls`) chooses: `required` (the default:
//! STARTTLS, and the server must offer it), `wrapper` (implicit TLS, smtps), `opportunistic`
//! (STARTTLS when offered), `none` (plain text: a local relay only, and never with credentials).
//! Note the default differs from lettre's own URLs, where `smtp://` without `tls` is plain text.
//! Certificates are checked against the system's CA certificates (`SSL_CERT_FILE` overrides).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use fintech_config::Secret;
use fintech_kit::email::{SmtpServer, TlsMode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::StatusCode;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use lettre::AsyncTransport as _;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use serde::Serialize;

/// Attempts of one call (Bitbucket: connection errors and 5xx; SMTP: everything but a permanent
/// refusal), with backoff and jitter in between.
const ATTEMPTS: u32 = 3;
const BACKOFF_BASE_MS: u64 = 250;
/// One HTTP exchange at most this long; SMTP: each command, and a whole attempt.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const SMTP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Bitbucket answers are small JSON documents; only an excerpt is shown in errors.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const ANSWER_EXCERPT_CHARS: usize = 300;
/// Bitbucket Server's column sizes (key 255, name 255, description 255); Cloud takes as much.
const MAX_KEY_CHARS: usize = 255;
const MAX_TEXT_CHARS: usize = 255;
const MAX_URL_CHARS: usize = 2048;
/// A notification is a few lines; a body file this large is a mistake.
const MAX_BODY_BYTES: u64 = 1024 * 1024;
const MAX_RECIPIENTS: usize = 50;
const MAX_SUBJECT_CHARS: usize = 255;

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub target: NotifyTarget,
}

#[derive(Debug, Subcommand)]
pub enum NotifyTarget {
    /// Set a commit's build status on Bitbucket Cloud, or Server / Data Center with --server-url.
    Bitbucket(BitbucketArgs),
    /// Send a plain-text e-mail over SMTP.
    Email(EmailArgs),
}

pub async fn run(args: NotifyArgs) -> anyhow::Result<()> {
    match args.target {
        NotifyTarget::Bitbucket(args) => bitbucket(args).await,
        NotifyTarget::Email(args) => email(args).await,
    }
}

// --- Bitbucket ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BuildState {
    #[value(name = "INPROGRESS")]
    Inprogress,
    #[value(name = "SUCCESSFUL")]
    Successful,
    #[value(name = "FAILED")]
    Failed,
    #[value(name = "STOPPED")]
    Stopped,
}

impl BuildState {
    fn as_str(self) -> &'static str {
        match self {
            BuildState::Inprogress => "INPROGRESS",
            BuildState::Successful => "SUCCESSFUL",
            BuildState::Failed => "FAILED",
            BuildState::Stopped => "STOPPED",
        }
    }

    fn default_description(self) -> &'static str {
        match self {
            BuildState::Inprogress => "Build in progress",
            BuildState::Successful => "Build passed",
            BuildState::Failed => "Build failed",
            BuildState::Stopped => "Build stopped",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BitbucketArgs {
    /// The build's state.
    #[arg(long, value_enum, ignore_case = true)]
    pub state: BuildState,
    /// The commit's full hash.
    #[arg(long)]
    pub commit: String,
    /// Identifies the status among the commit's statuses: the same key replaces it.
    #[arg(long)]
    pub key: String,
    /// What Bitbucket shows, e.g. `fintech-services #42`.
    #[arg(long)]
    pub name: String,
    /// The build's page (Jenkins' BUILD_URL).
    #[arg(long)]
    pub url: String,
    /// Default: "Build in progress", "Build passed", "Build failed" or "Build stopped".
    #[arg(long)]
    pub description: Option<String>,
    /// Bitbucket Cloud repository, `workspace/repo_slug`.
    #[arg(long, env = "FINTECH_BITBUCKET_REPOSITORY")]
    pub repository: Option<String>,
    /// Bitbucket Cloud API base URL (a mock's, in tests).
    #[arg(long, default_value = "https://api.bitbucket.org")]
    pub api_url: String,
    /// Bitbucket Server / Data Center base URL (e.g. `https://bitbucket.example.com`); when
    /// given, the status goes there instead of to Bitbucket Cloud.
    #[arg(long, env = "FINTECH_BITBUCKET_SERVER_URL")]
    pub server_url: Option<String>,
}

/// How to authenticate to Bitbucket, from the environment.
#[derive(Debug)]
enum BitbucketAuth {
    Token(Secret<String>),
    AppPassword { user: String, password: Secret<String> },
}

impl BitbucketAuth {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("FINTECH_BITBUCKET_TOKEN") {
            return Ok(BitbucketAuth::Token(Secret::new(token)));
        }
        match (var("FINTECH_BITBUCKET_USERNAME"), var("FINTECH_BITBUCKET_APP_PASSWORD")) {
            (Some(user), Some(password)) => Ok(BitbucketAuth::AppPassword { user, password: Secret::new(password) }),
            _ => bail!(
                "no Bitbucket credentials: set FINTECH_BITBUCKET_TOKEN (an access token allowed to write \
                 repositories), or FINTECH_BITBUCKET_USERNAME and FINTECH_BITBUCKET_APP_PASSWORD"
            ),
        }
    }

    /// Where the credentials came from, for error messages (never their value).
    fn source(&self) -> &'static str {
        match self {
            BitbucketAuth::Token(_) => "FINTECH_BITBUCKET_TOKEN",
            BitbucketAuth::AppPassword { .. } => "FINTECH_BITBUCKET_USERNAME/FINTECH_BITBUCKET_APP_PASSWORD",
        }
    }

    fn header(&self) -> anyhow::Result<HeaderValue> {
        let text = match self {
            BitbucketAuth::Token(token) => format!("Bearer {}", token.expose()),
            BitbucketAuth::AppPassword { user, password } => {
                format!("Basic {}", crate::registry::base64(format!("{user}:{}", password.expose()).as_bytes()))
            }
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| anyhow::anyhow!("the Bitbucket credentials hold characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The body of a build status (both APIs take these fields).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StatusBody {
    pub key: String,
    pub state: &'static str,
    pub name: String,
    pub url: String,
    pub description: String,
}

/// Where a status goes: the URL to POST and a name for messages.
#[derive(Debug, PartialEq, Eq)]
pub struct StatusTarget {
    pub url: String,
    pub what: String,
    pub server: bool,
}

/// The request `fintech notify bitbucket` makes, checked: target and body.
pub fn status_request(args: &BitbucketArgs) -> anyhow::Result<(StatusTarget, StatusBody)> {
    let commit = args.commit.trim();
    ensure!(
        (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "--commit {commit:?} is not a commit hash (7 to 64 hex digits)"
    );
    let commit = commit.to_ascii_lowercase();
    let key = args.key.trim();
    ensure!(
        !key.is_empty() && key.chars().count() <= MAX_KEY_CHARS && !key.chars().any(char::is_control),
        "--key {key:?}: 1 to {MAX_KEY_CHARS} characters, no control characters"
    );
    let build_url = url::Url::parse(args.url.trim()).with_context(|| format!("--url {:?} is not a URL", args.url))?;
    ensure!(
        matches!(build_url.scheme(), "http" | "https") && args.url.len() <= MAX_URL_CHARS,
        "--url {:?}: an http(s) URL of at most {MAX_URL_CHARS} characters",
        args.url
    );
    let description = args.description.clone().unwrap_or_else(|| args.state.default_description().to_owned());
    let (target, state) = match &args.server_url {
        Some(server) => {
            let base = base_url(server, "--server-url")?;
            // Server's build-status API knows SUCCESSFUL, FAILED and INPROGRESS only.
            let state = if args.state == BuildState::Stopped { BuildState::Failed } else { args.state };
            let target = StatusTarget {
                url: format!("{base}/rest/build-status/1.0/commits/{commit}"),
                what: format!("{base} commit {commit}"),
                server: true,
            };
            (target, state)
        }
        None => {
            let Some(repository) = &args.repository else {
                bail!(
                    "which Bitbucket Cloud repository? give --repository workspace/repo_slug (or \
                     FINTECH_BITBUCKET_REPOSITORY), or --server-url for Bitbucket Server"
                );
            };
            let (workspace, slug) = repository_parts(repository)?;
            let base = base_url(&args.api_url, "--api-url")?;
            let target = StatusTarget {
                url: format!("{base}/2.0/repositories/{workspace}/{slug}/commit/{commit}/statuses/build"),
                what: format!("{workspace}/{slug} commit {commit}"),
                server: false,
            };
            (target, args.state)
        }
    };
    let body = StatusBody {
        key: key.to_owned(),
        state: state.as_str(),
        name: truncate(args.name.trim(), MAX_TEXT_CHARS),
        url: build_url.to_string(),
        description: truncate(description.trim(), MAX_TEXT_CHARS),
    };
    Ok((target, body))
}

/// `https://host[:port][/path]` without a trailing `/`.
fn base_url(text: &str, flag: &str) -> anyhow::Result<String> {
    let parsed = url::Url::parse(text.trim()).with_context(|| format!("{flag} {text:?} is not a URL"))?;
    ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() && parsed.query().is_none(),
        "{flag} {text:?}: give an http(s) base URL such as https://bitbucket.example.com"
    );
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// `workspace/repo_slug`, each part of letters, digits, `.`, `_` and `-`.
fn repository_parts(text: &str) -> anyhow::Result<(&str, &str)> {
    let valid = |part: &str| {
        !part.is_empty() && part.len() <= 128 && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    match text.trim().split_once('/') {
        Some((workspace, slug)) if valid(workspace) && valid(slug) => Ok((workspace, slug)),
        _ => bail!("--repository {text:?}: give workspace/repo_slug, e.g. fintech/fintech"),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

async fn bitbucket(args: BitbucketArgs) -> anyhow::Result<()> {
    let (target, body) = status_request(&args)?;
    let auth = BitbucketAuth::from_env()?;
    let client = crate::registry::https_client::<Full<Bytes>>(true)?;
    let json = Bytes::from(serde_json::to_vec(&body)?);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let request = hyper::Request::post(&target.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("fintech/", env!("CARGO_PKG_VERSION")))
            .header(AUTHORIZATION, auth.header()?)
            .body(Full::new(json.clone()))
            .context("building the Bitbucket request")?;
        let exchange = async {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_else(|_| Bytes::from_static(b"(an answer too large to read)"));
            Ok::<_, hyper_util::client::legacy::Error>((parts.status, body))
        };
        let outcome = tokio::time::timeout(HTTP_TIMEOUT, exchange).await;
        let retry = match outcome {
            Err(_) => bail!(
                "POST {}: no answer within {} s (not retried: the status may have been recorded)",
                target.url,
                HTTP_TIMEOUT.as_secs()
            ),
            Ok(Ok((status, _))) if status.is_success() => {
                println!("bitbucket: {} {} on {} ({})", body.key, body.state, target.what, status);
                return Ok(());
            }
            Ok(Ok((status, answer))) if status.is_server_error() => {
                format!("Bitbucket answered {status}: {}", excerpt(&answer))
            }
            Ok(Ok((status, answer))) => bail!(client_error(status, &answer, &target, auth.source())),
            Ok(Err(e)) if e.is_connect() => format!("cannot connect: {:#}", anyhow::Error::new(e)),
            Ok(Err(e)) => bail!("POST {}: {:#}", target.url, anyhow::Error::new(e)),
        };
        if attempt >= ATTEMPTS {
            bail!("POST {}: {retry} (after {ATTEMPTS} attempts)", target.url);
        }
        let wait = backoff(attempt);
        eprintln!("    {retry}; trying again in {} ms", wait.as_millis());
        tokio::time::sleep(wait).await;
    }
}

/// The error of a 4xx answer: what to fix.
fn client_error(status: StatusCode, answer: &[u8], target: &StatusTarget, credentials: &str) -> String {
    let hint = match status {
        StatusCode::UNAUTHORIZED => {
            format!("Bitbucket rejected the credentials in {credentials}: wrong, expired or revoked")
        }
        StatusCode::FORBIDDEN => format!(
            "the credentials in {credentials} may not set build statuses on {}: the token needs \
             repository write access",
            target.what
        ),
        StatusCode::NOT_FOUND => format!(
            "{} not found: is the {} right, and is the commit pushed?",
            target.what,
            if target.server { "--server-url" } else { "--repository" }
        ),
        StatusCode::TOO_MANY_REQUESTS => "Bitbucket's rate limit: too many requests".to_owned(),
        _ => "Bitbucket refused the status".to_owned(),
    };
    format!("{hint} ({status} to POST {}): {}", target.url, excerpt(answer))
}

fn excerpt(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let text = text.trim();
    if text.is_empty() {
        return "empty answer".to_owned();
    }
    truncate(&text.replace(['\n', '\r'], " "), ANSWER_EXCERPT_CHARS)
}

/// 250 ms, 500 ms, 1 s, ... plus up to half of it again at random.
fn backoff(attempt: u32) -> Duration {
    let base_ms = BACKOFF_BASE_MS << (attempt - 1).min(5);
    Duration::from_millis(base_ms + rand::random_range(0..=base_ms / 2))
}

// --- E-mail ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Args)]
pub struct EmailArgs {
    /// Recipients, comma-separated.
    #[arg(long, required = true, value_delimiter = ',')]
    pub to: Vec<String>,
    /// The subject line.
    #[arg(long)]
    pub subject: String,
    /// The message, plain UTF-8 text.
    #[arg(long)]
    pub body_file: PathBuf,
    /// The sender, e.g. `FINTECH delivery <fintech-delivery@example.com>`.
    #[arg(long, env = "FINTECH_SMTP_FROM")]
    pub from: String,
    /// SMTP server, instead of FINTECH_SMTP_URL (credentials: FINTECH_SMTP_USERNAME and
    /// FINTECH_SMTP_PASSWORD).
    #[arg(long)]
    pub smtp_host: Option<String>,
    /// Port; default 587 (STARTTLS), 465 (wrapper) or 25 (none).
    #[arg(long)]
    pub smtp_port: Option<u16>,
    /// Overrides the URL's `tls`; default required.
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,
}

/// How the SMTP connection is protected (`fintech_kit::email::TlsMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsArg {
    /// STARTTLS, which the server must offer (the default).
    Required,
    /// STARTTLS when the server offers it, plain text otherwise (no credentials).
    Opportunistic,
    /// TLS from the first byte (smtps, port 465).
    Wrapper,
    /// Plain text: a relay on the same host or network only (no credentials).
    None,
}

impl From<TlsArg> for TlsMode {
    fn from(arg: TlsArg) -> TlsMode {
        match arg {
            TlsArg::Required => TlsMode::Required,
            TlsArg::Opportunistic => TlsMode::Opportunistic,
            TlsArg::Wrapper => TlsMode::Wrapper,
            TlsArg::None => TlsMode::None,
        }
    }
}

/// The server from the flags and the environment.
fn smtp_server(args: &EmailArgs) -> anyhow::Result<SmtpServer> {
    let url = std::env::var("FINTECH_SMTP_URL").ok().filter(|u| !u.trim().is_empty());
    let mut server = match (&args.smtp_host, url) {
        (Some(_), Some(_)) => bail!("both --smtp-host and FINTECH_SMTP_URL are set: give one"),
        (None, None) => bail!("no SMTP server: set FINTECH_SMTP_URL (smtp://user:password@host:587) or --smtp-host"),
        (None, Some(url)) => SmtpServer::from_url(&url, args.tls.map(TlsMode::from), "FINTECH_SMTP_URL")?,
        (Some(host), None) => {
            ensure!(!host.trim().is_empty(), "--smtp-host is empty");
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let credentials = match (var("FINTECH_SMTP_USERNAME"), var("FINTECH_SMTP_PASSWORD")) {
                (Some(user), Some(password)) => Some((user, Secret::new(password))),
                (None, None) => None,
                _ => bail!("set both FINTECH_SMTP_USERNAME and FINTECH_SMTP_PASSWORD, or neither"),
            };
            let tls = args.tls.map_or(TlsMode::Required, TlsMode::from);
            SmtpServer { host: host.trim().to_owned(), port: tls.default_port(), tls, credentials }
        }
    };
    if let Some(port) = args.smtp_port {
        server.port = port;
    }
    server.check_credentials()?;
    Ok(server)
}

/// The message `fintech notify email` sends, checked.
pub fn message(args: &EmailArgs, body: String) -> anyhow::Result<Message> {
    let from: Mailbox =
        args.from.trim().parse().with_context(|| format!("--from {:?} is not an address", args.from))?;
    let to: Vec<&str> = args.to.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
    ensure!(!to.is_empty(), "--to names no recipient");
    ensure!(to.len() <= MAX_RECIPIENTS, "--to names {} recipients; at most {MAX_RECIPIENTS}", to.len());
    let subject = args.subject.trim();
    ensure!(
        !subject.chars().any(char::is_control) && subject.chars().count() <= MAX_SUBJECT_CHARS,
        "--subject: at most {MAX_SUBJECT_CHARS} characters on one line"
    );
    let domain = from.email.domain().to_owned();
    let id = format!("<{}.{:016x}@{domain}>", fintech_telemetry::now_unix_ms(), rand::random::<u64>());
    let mut builder =
        Message::builder().from(from).subject(subject).message_id(Some(id)).header(ContentType::TEXT_PLAIN);
    for address in to {
        let mailbox: Mailbox = address.parse().with_context(|| format!("--to {address:?} is not an address"))?;
        builder = builder.to(mailbox);
    }
    builder.body(body).context("building the message")
}

async fn email(args: EmailArgs) -> anyhow::Result<()> {
    let size = std::fs::metadata(&args.body_file)
        .with_context(|| format!("reading --body-file {}", args.body_file.display()))?
        .len();
    ensure!(
        size <= MAX_BODY_BYTES,
        "--body-file {} is {size} bytes; at most {MAX_BODY_BYTES}",
        args.body_file.display()
    );
    let body = std::fs::read_to_string(&args.body_file)
        .with_context(|| format!("reading --body-file {} (UTF-8 text)", args.body_file.display()))?;
    let message = message(&args, body)?;
    let server = smtp_server(&args)?;
    let transport = server.transport(SMTP_COMMAND_TIMEOUT)?;
    let recipients = args.to.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(", ");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match tokio::time::timeout(SMTP_ATTEMPT_TIMEOUT, transport.send(message.clone())).await {
            Ok(Ok(response)) => {
                println!(
                    "email: sent to {recipients} through {}:{} ({})",
                    server.host,
                    server.port,
                    response.message().next().unwrap_or("accepted")
                );
                return Ok(());
            }
            Ok(Err(e)) if e.is_permanent() || e.is_tls() || e.is_client() => {
                return Err(anyhow::Error::new(e).context(format!("sending through {server}")));
            }
            Ok(Err(e)) => anyhow::Error::new(e),
            Err(_) => anyhow::anyhow!("no answer within {} s", SMTP_ATTEMPT_TIMEOUT.as_secs()),
        };
        if attempt >= ATTEMPTS {
            return Err(error.context(format!("sending through {server} (after {ATTEMPTS} attempts)")));
        }
        let wait = backoff(attempt);
        eprintln!("    sending through {server}: {error:#}; trying again in {} ms", wait.as_millis());
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipelines_command_lines_parse() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(args).expect("the pipeline's flags");
            let crate::cli::Command::Notify(notify) = cli.command else { panic!("not notify") };
            notify.target
        };
        // As ci/jenkins/vars/initWorkspace.groovy and notifyResult.groovy run them.
        let target = parse(&[
            "fintech",
            "notify",
            "bitbucket",
            "--state",
            "INPROGRESS",
            "--commit",
            "3f2a9c1d",
            "--repository",
            "fintech/fintech",
            "--key",
            "fintech-service",
            "--name",
            "fintech-services/master #42",
            "--url",
            "https://jenkins.fintech.example/job/fintech-services/job/master/42/",
        ]);
        let NotifyTarget::Bitbucket(args) = target else { panic!("not bitbucket") };
        assert_eq!(args.state, BuildState::Inprogress);
        let target = parse(&[
            "fintech",
            "notify",
            "email",
            "--to",
            "dev@example.com",
            "--from",
            "FINTECH delivery <fintech-delivery@example.com>",
            "--subject",
            "FINTECH fintech-services #42: SUCCESS",
            "--body-file",
            "notify-body.txt",
        ]);
        let NotifyTarget::Email(args) = target else { panic!("not email") };
        assert_eq!(args.to, vec!["dev@example.com".to_owned()]);
    }

    fn bitbucket_args() -> BitbucketArgs {
        BitbucketArgs {
            state: BuildState::Stopped,
            commit: "3F2A9C1D4E5B6A7980112233445566778899AABB".into(),
            key: "fintech-service".into(),
            name: "fintech-services/master #42".into(),
            url: "https://jenkins.fintech.example/job/fintech-services/job/master/42/".into(),
            description: None,
            repository: Some("fintech/fintech".into()),
            api_url: "https://api.bitbucket.org/".into(),
            server_url: None,
        }
    }

    #[test]
    fn cloud_and_server_statuses_go_to_their_paths() {
        let (target, body) = status_request(&bitbucket_args()).expect("valid");
        assert_eq!(
            target.url,
            "https://api.bitbucket.org/2.0/repositories/fintech/fintech/commit/\
             3f2a9c1d4e5b6a7980112233445566778899aabb/statuses/build"
        );
        assert_eq!(body.state, "STOPPED");
        assert_eq!(body.description, "Build stopped");

        let server =
            BitbucketArgs { server_url: Some("https://git.example.com/bitbucket/".into()), ..bitbucket_args() };
        let (target, body) = status_request(&server).expect("valid");
        assert_eq!(
            target.url,
            "https://git.example.com/bitbucket/rest/build-status/1.0/commits/3f2a9c1d4e5b6a7980112233445566778899aabb"
        );
        assert_eq!(body.state, "FAILED", "Server has no STOPPED");
    }

    #[test]
    fn bad_inputs_are_refused_before_any_call() {
        for (args, expected) in [
            (BitbucketArgs { commit: "HEAD".into(), ..bitbucket_args() }, "not a commit hash"),
            (BitbucketArgs { commit: "../../x".into(), ..bitbucket_args() }, "not a commit hash"),
            (BitbucketArgs { key: String::new(), ..bitbucket_args() }, "--key"),
            (BitbucketArgs { url: "jenkins/42".into(), ..bitbucket_args() }, "--url"),
            (BitbucketArgs { repository: None, ..bitbucket_args() }, "which Bitbucket Cloud repository"),
            (BitbucketArgs { repository: Some("fintech".into()), ..bitbucket_args() }, "workspace/repo_slug"),
            (BitbucketArgs { repository: Some("a/b/c".into()), ..bitbucket_args() }, "workspace/repo_slug"),
            (BitbucketArgs { server_url: Some("bitbucket.example.com".into()), ..bitbucket_args() }, "--server-url"),
        ] {
            let err = format!("{:#}", status_request(&args).expect_err(expected));
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn long_names_are_cut_to_what_server_stores() {
        let args = BitbucketArgs { name: "n".repeat(300), description: Some("d".repeat(300)), ..bitbucket_args() };
        let (_, body) = status_request(&args).expect("valid");
        assert_eq!(body.name.chars().count(), MAX_TEXT_CHARS);
        assert!(body.description.ends_with('…'));
    }

    #[test]
    fn messages_name_every_recipient() {
        let args = EmailArgs {
            to: vec!["a@example.com".into(), " b@example.com ".into()],
            subject: "FINTECH fintech-services #42: FAILURE".into(),
            body_file: PathBuf::new(),
            from: "FINTECH delivery <fintech-delivery@example.com>".into(),
            smtp_host: None,
            smtp_port: None,
            tls: None,
        };
        let text = String::from_utf8(message(&args, "Details: x\n".into()).expect("valid").formatted()).expect("utf-8");
        assert!(text.contains("To: a@example.com, b@example.com"), "{text}");
        assert!(text.contains("Subject: FINTECH fintech-services #42: FAILURE"), "{text}");
        assert!(text.contains("@example.com>\r\n"), "Message-ID in the sender's domain: {text}");

        let bad = EmailArgs { to: vec!["not an address".into()], ..args.clone() };
        assert!(format!("{:#}", message(&bad, String::new()).expect_err("bad")).contains("--to"));
        let bad = EmailArgs { subject: "two\nlines".into(), ..args };
        assert!(format!("{:#}", message(&bad, String::new()).expect_err("bad")).contains("--subject"));
    }
}
