//! E-mail to people over SMTP (lettre), and the SMTP server settings `fintech notify email`
//! shares.
//!
//! A service sends through the [`EmailSender`] of its [`ServiceContext`](crate::ServiceContext):
//! [`SmtpSender`] when `email.smtp_url` is set, else the embedded mode's
//! [`FileOutbox`](crate::messages::FileOutbox), which writes each message as a JSON file under
//! `<data>/outbox/email/` and delivers nothing.
//!
//! The server is a URL: `smtp://[user:password@]host[:port][?tls=required|opportunistic|none]`,
//! or `smtps://…` for TLS from the first byte. `required` (the default: STARTTLS, and the server
//! must offer it), `wrapper` (implicit TLS, smtps), `opportunistic` (STARTTLS when offered),
//! `none` (plain text: a relay on the same host only). Credentials are only ever sent over TLS.
//! Note the default differs from lettre's own URLs, where `smtp://` without `tls` is plain text.
//! Certificates are checked against the system's CA certificates (`SSL_CERT_FILE` overrides).
//!
//! What an SMTP answer means for the caller ([`MessageError`]):
//! - a permanent refusal (5xx: no such mailbox, message refused): [`MessageError::Undelivered`],
//!   sending again will not help;
//! - a transient one (4xx), a connection that could not be made or a TLS failure before the
//!   message: [`MessageError::Unavailable`], the message was not sent and may go again later;
//! - no answer after the message was sent (a timeout): [`MessageError::Ambiguous`], it may have
//!   been delivered and is not sent again.
//!
//! Nothing here logs an address, a subject or a text: the message's id and kind only.

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use fintech_config::Secret;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncTransport as _, Tokio1Executor};

use crate::messages::MessageError;

/// Longest subject accepted, on one line.
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Largest text or HTML part accepted.
pub const MAX_PART_BYTES: usize = 256 * 1024;
/// The folder of e-mail messages under the outbox's root.
pub const EMAIL_FOLDER: &str = "email";

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS, which the server must offer (the default).
    Required,
    /// STARTTLS when the server offers it, plain text otherwise (no credentials).
    Opportunistic,
    /// TLS from the first byte (smtps, port 465).
    Wrapper,
    /// Plain text: a relay on the same host or network only (no credentials).
    None,
}

impl TlsMode {
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Required | TlsMode::Opportunistic => 587,
            TlsMode::Wrapper => 465,
            TlsMode::None => 25,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TlsMode::Required => "STARTTLS required",
            TlsMode::Opportunistic => "STARTTLS if offered",
            TlsMode::Wrapper => "TLS",
            TlsMode::None => "plain text",
        }
    }
}

/// An SMTP server to send through.
#[derive(PartialEq, Eq, Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub credentials: Option<(String, Secret<String>)>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ({})", self.host, self.port, self.tls.describe())
    }
}

impl SmtpServer {
    /// `smtp://[user[:password]@]host[:port][?tls=required|opportunistic|none]` or `smtps://…`;
    /// `tls` overrides the URL's. `what` names the setting in errors (`FINTECH_SMTP_URL`,
    /// `email.smtp_url`); errors never quote the URL, which may hold a password.
    pub fn from_url(text: &str, tls: Option<TlsMode>, what: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(text.trim()).map_err(|e| anyhow::anyhow!("{what} is not a URL ({e})"))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| anyhow::anyhow!("{what} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let asked = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let from_url = match (url.scheme(), asked.as_deref()) {
            ("smtps", None) => TlsMode::Wrapper,
            ("smtp", None | Some("required")) => TlsMode::Required,
            ("smtp", Some("opportunistic")) => TlsMode::Opportunistic,
            ("smtp", Some("none")) => TlsMode::None,
            (scheme, tls) => bail!(
                "{what}: scheme {scheme:?} with tls={tls:?}: use smtp:// (tls=required, the default; \
                 opportunistic; none) or smtps://"
            ),
        };
        let tls = tls.unwrap_or(from_url);
        let credentials = if url.username().is_empty() {
            None
        } else {
            let user = percent_decode(url.username()).with_context(|| format!("{what}'s user name"))?;
            let password =
                percent_decode(url.password().unwrap_or_default()).with_context(|| format!("{what}'s password"))?;
            Some((user, Secret::new(password)))
        };
        let server = SmtpServer { host, port: url.port().unwrap_or(tls.default_port()), tls, credentials };
        server.check_credentials()?;
        Ok(server)
    }

    /// Refuses credentials over a connection that may be plain text.
    pub fn check_credentials(&self) -> anyhow::Result<()> {
        if self.credentials.is_some() && matches!(self.tls, TlsMode::None | TlsMode::Opportunistic) {
            bail!(
                "SMTP credentials are only sent over TLS: use tls required or wrapper (not {:?}) with a user name",
                self.tls
            );
        }
        Ok(())
    }

    /// lettre's transport for this server: each SMTP command waits at most `command_timeout`.
    pub fn transport(&self, command_timeout: Duration) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let parameters = || TlsParameters::new(self.host.clone()).context("TLS parameters");
        let tls = match self.tls {
            TlsMode::Required => Tls::Required(parameters()?),
            TlsMode::Opportunistic => Tls::Opportunistic(parameters()?),
            TlsMode::Wrapper => Tls::Wrapper(parameters()?),
            TlsMode::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(command_timeout))
            .hello_name(hello_name());
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
        }
        Ok(builder.build())
    }
}

/// EHLO with this host's name (a pod's name in the cluster), not `localhost`, which some servers
/// refuse.
fn hello_name() -> ClientId {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)))
        .map_or_else(ClientId::default, ClientId::Domain)
}

/// `%XX` decoding of URL user info.
fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let value =
                hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| anyhow::anyhow!("a bad %-escape"))?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow::anyhow!("not UTF-8 once %-decoded"))
}

/// One e-mail to one person: a text part and, optionally, an HTML alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The checks every sender makes before anything leaves.
pub(crate) fn check(email: &Email, kind: &str) -> Result<Mailbox, MessageError> {
    let to: Mailbox = email.to.trim().parse().map_err(|_| MessageError::Invalid("the recipient is not an address"))?;
    if email.subject.trim().is_empty()
        || email.subject.chars().count() > MAX_SUBJECT_CHARS
        || email.subject.chars().any(char::is_control)
    {
        return Err(MessageError::Invalid("the subject must be 1 to 255 characters on one line"));
    }
    if email.text.is_empty() || email.text.len() > MAX_PART_BYTES {
        return Err(MessageError::Invalid("the text must be 1 byte to 256 KiB"));
    }
    if email.html.as_ref().is_some_and(|h| h.is_empty() || h.len() > MAX_PART_BYTES) {
        return Err(MessageError::Invalid("the HTML must be 1 byte to 256 KiB"));
    }
    crate::messages::check_kind(kind)?;
    Ok(to)
}

/// How a service sends e-mail to people.
#[async_trait]
pub trait EmailSender: Send + Sync + fmt::Debug {
    /// Sends `email`; `kind` says what it is (`payment_receipt`), for the records only. Returns
    /// the message's id. Implementations never log the address, the subject or the text.
    async fn send_email(&self, email: &Email, kind: &str) -> Result<String, MessageError>;
}

/// E-mail through an SMTP server (`email.smtp_url`), from `email.from`.
#[derive(Clone)]
pub struct SmtpSender {
    server: SmtpServer,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    attempt_timeout: Duration,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender").field("server", &self.server).finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender through `server`, from `from` (`FINTECH <no-reply@fintech.example>`); one message
    /// may take `timeout` in all.
    pub fn new(server: SmtpServer, from: &str, timeout: Duration) -> anyhow::Result<SmtpSender> {
        let from: Mailbox = from.trim().parse().with_context(|| format!("email.from {from:?} is not an address"))?;
        let transport = server.transport(timeout)?;
        Ok(SmtpSender { server, from, transport, attempt_timeout: timeout })
    }

    pub fn server(&self) -> &SmtpServer {
        &self.server
    }

    fn message(&self, email: &Email, to: Mailbox, id: &str) -> Result<Message, MessageError> {
        let domain = self.from.email.domain().to_owned();
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.trim())
            .message_id(Some(format!("<{id}@{domain}>")));
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone());
        let built = match &email.html {
            None => builder.singlepart(text),
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
        };
        built.map_err(|_| MessageError::Invalid("the message could not be built"))
    }
}

#[async_trait]
impl EmailSender for SmtpSender {
    async fn send_email(&self, email: &Email, kind: &str) -> Result<String, MessageError> {
        let to = check(email, kind)?;
        let id = uuid::Uuid::now_v7().to_string();
        let message = self.message(email, to, &id)?;
        match tokio::time::timeout(self.attempt_timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => {
                tracing::info!(message_id = %id, kind, server = %self.server, "e-mail accepted by the SMTP server");
                Ok(id)
            }
            Ok(Err(e)) if e.is_permanent() => {
                let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                tracing::warn!(message_id = %id, kind, code = %code, "e-mail refused by the SMTP server");
                Err(MessageError::Undelivered(format!("the SMTP server refused the message ({code})")))
            }
            Ok(Err(e)) if e.is_timeout() => {
                tracing::error!(message_id = %id, kind, "no answer from the SMTP server: not sent again");
                Err(MessageError::Ambiguous(format!("{}: no answer in time", self.server)))
            }
            Ok(Err(e)) => {
                tracing::warn!(message_id = %id, kind, server = %self.server, error = %e, "e-mail not sent");
                Err(MessageError::Unavailable(format!("{}: {e}", self.server)))
            }
            Err(_) => {
                tracing::error!(message_id = %id, kind, "no answer from the SMTP server: not sent again");
                Err(MessageError::Ambiguous(format!("{}: no answer in time", self.server)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_default_to_starttls_required() {
        let s = SmtpServer::from_url("smtp://jenkins%40fintech:p%2Fss@smtp.example.com", None, "FINTECH_SMTP_URL")
            .expect("valid");
        assert_eq!((s.host.as_str(), s.port, s.tls), ("smtp.example.com", 587, TlsMode::Required));
        let (user, password) = s.credentials.as_ref().expect("credentials");
        assert_eq!((user.as_str(), password.expose().as_str()), ("jenkins@fintech", "p/ss"));
        assert!(!format!("{s:?}").contains("p/ss"), "the password is never printed");

        let s = SmtpServer::from_url("smtps://smtp.example.com", None, "FINTECH_SMTP_URL").expect("valid");
        assert_eq!((s.port, s.tls), (465, TlsMode::Wrapper));
        let s = SmtpServer::from_url("smtp://127.0.0.1:2525?tls=none", None, "FINTECH_SMTP_URL").expect("valid");
        assert_eq!((s.port, s.tls), (2525, TlsMode::None));
        let s = SmtpServer::from_url("smtp://relay?tls=opportunistic", None, "FINTECH_SMTP_URL").expect("valid");
        assert_eq!(s.tls, TlsMode::Opportunistic);
        // --tls wins over the URL, and the default port follows it.
        let s = SmtpServer::from_url("smtp://relay", Some(TlsMode::Wrapper), "FINTECH_SMTP_URL").expect("valid");
        assert_eq!((s.port, s.tls), (465, TlsMode::Wrapper));

        for bad in ["http://smtp.example.com", "smtp://h?tls=maybe", "smtp:///", "not a url"] {
            let err = format!("{:#}", SmtpServer::from_url(bad, None, "FINTECH_SMTP_URL").expect_err(bad));
            assert!(err.contains("FINTECH_SMTP_URL"), "{bad}: {err}");
        }
        let err = format!(
            "{:#}",
            SmtpServer::from_url("smtp://u:secret-pw@h?tls=bad", None, "FINTECH_SMTP_URL").expect_err("bad tls")
        );
        assert!(!err.contains("secret-pw"), "{err}");
    }

    #[test]
    fn credentials_never_go_over_plain_text() {
        let err = SmtpServer::from_url("smtp://u:pw@relay?tls=none", None, "email.smtp_url").expect_err("plain");
        assert!(format!("{err:#}").contains("only sent over TLS"), "{err:#}");
    }
}
