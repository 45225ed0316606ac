//! Messages to people: one-time codes by SMS (identity's second factor).
//!
//! A service sends through the [`MessageSender`] of its [`ServiceContext`](crate::ServiceContext)
//! and never learns how the message travels. There are two senders: the SMS gateways
//! ([`crate::sms::GatewaySender`]) when `sms.providers` names them, and otherwise
//! [`FileOutbox`], the embedded mode's stand-in, which writes each message as a JSON file under
//! `<data>/outbox/sms/`, where the developer reads it; nothing it holds reaches a phone.
//!
//! A message may hold a secret (a one-time code): the outbox file is the only place this platform
//! writes such a code in clear (the gateways hand it to the provider, and their dead letters
//! leave the text out). Files are private to the process's user (mode 0600, folders 0700), and
//! the log names a message by its id and kind, never its recipient or its text.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// The folder of SMS messages under the outbox's root.
pub const SMS_FOLDER: &str = "sms";
/// Longest message text accepted: ten concatenated SMS segments of 160 characters.
pub const MAX_BODY_CHARS: usize = 1600;
/// Longest recipient accepted: `+` and at most 15 digits (E.164), with room to spare.
pub const MAX_TO_CHARS: usize = 32;
/// Longest `kind` accepted (`otp_enrolment`, `otp_sign_in`): lower-case letters, digits, `_`.
pub const MAX_KIND_CHARS: usize = 64;

/// Why a message was not sent.
#[derive(Debug)]
pub enum MessageError {
    /// The message was refused before sending: what is wrong with it (never its content).
    Invalid(&'static str),
    /// The outbox could not be written.
    Io(std::io::Error),
    /// Too many messages to this number lately (SMS pumping): try again after this long.
    Limited(crate::ratelimit::RetryAfter),
    /// No gateway took the message (they refused it, or none could be reached).
    Undelivered(String),
    /// A gateway may have taken the message but did not say: it is not sent again, so the
    /// recipient gets no duplicate.
    Ambiguous(String),
    /// Not sent, for a reason that may pass (a server unreachable, a transient refusal): the same
    /// message may be sent again later.
    Unavailable(String),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Invalid(why) => write!(f, "message refused: {why}"),
            MessageError::Io(e) => write!(f, "writing the message to the outbox failed: {e}"),
            MessageError::Limited(wait) => {
                write!(f, "too many messages to this number; try again in {} s", wait.secs())
            }
            MessageError::Undelivered(why) => write!(f, "the message was not delivered: {why}"),
            MessageError::Ambiguous(why) => {
                write!(f, "the gateway did not confirm the message ({why}); it is not sent again")
            }
            MessageError::Unavailable(why) => write!(f, "the message was not sent, try again later: {why}"),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for MessageError {
    fn from(e: std::io::Error) -> Self {
        MessageError::Io(e)
    }
}

/// How a service sends messages to people.
#[async_trait]
pub trait MessageSender: Send + Sync + std::fmt::Debug {
    /// Sends `body` by SMS to `to`, an E.164 number (`+15551234567`) the caller has validated
    /// (`fintech_types::Phone`). `kind` says what the message is (`otp_enrolment`,
    /// `otp_sign_in`), for the sender's records; it is never shown to the recipient. Returns the
    /// message's id. Implementations never log `body` (it may hold a one-time code) nor `to`.
    async fn send_sms(&self, to: &str, body: &str, kind: &str) -> Result<String, MessageError>;
}

/// The embedded mode's outbox: every message is a JSON file under `<root>/<channel>/`, named by
/// a time-ordered id (`<UUIDv7>.json`, so a listing sorted by name is in sending order):
///
/// ```json
/// {"id": "0192…", "channel": "sms", "to": "+15551234567", "kind": "otp_sign_in",
///  "body": "Your FINTECH verification code is 123456. …", "created_at": "2026-11-26T08:00:00.000Z"}
/// ```
///
/// A file is written whole or not at all: a temporary file in the same folder (`.<id>.json.tmp`),
/// synced, then renamed, and the folder synced. Files have mode 0600 and folders 0700: a
/// message may hold a one-time code, and this is the only place one is written in clear.
///
/// The stand-in for the SMS gateways when `sms.providers` names none; nothing here is delivered to
/// a phone. One per process, shared by its services, rooted at `<data>/outbox` (`Host::start`).
#[derive(Debug, Clone)]
pub struct FileOutbox {
    root: PathBuf,
}

impl FileOutbox {
    /// An outbox under `root` (created, with its folders, on the first message).
    pub fn new(root: impl Into<PathBuf>) -> FileOutbox {
        FileOutbox { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where SMS messages are written: `<root>/sms`.
    pub fn sms_dir(&self) -> PathBuf {
        self.root.join(SMS_FOLDER)
    }

    /// Where e-mail messages are written: `<root>/email`.
    pub fn email_dir(&self) -> PathBuf {
        self.root.join(crate::email::EMAIL_FOLDER)
    }

    /// Writes `message` (with its `id`) as `<id>.json` in `dir`, off the async runtime.
    async fn write(&self, dir: PathBuf, id: &str, message: serde_json::Value) -> Result<PathBuf, MessageError> {
        let mut bytes = serde_json::to_vec_pretty(&message).map_err(|e| MessageError::Io(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        let file_id = id.to_owned();
        tokio::task::spawn_blocking(move || write_message(&dir, &file_id, &bytes))
            .await
            .map_err(|e| MessageError::Io(std::io::Error::other(e)))?
            .map_err(MessageError::Io)
    }
}

/// The checks every sender makes before anything leaves.
pub(crate) fn check(to: &str, body: &str, kind: &str) -> Result<(), MessageError> {
    let number = to.strip_prefix('+').unwrap_or("");
    if number.is_empty() || to.len() > MAX_TO_CHARS || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MessageError::Invalid("the recipient must be `+` and digits (E.164)"));
    }
    if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(MessageError::Invalid("the text must be 1 to 1600 characters"));
    }
    check_kind(kind)
}

/// `kind` is 1 to 64 characters of a-z, 0-9 and `_`.
pub(crate) fn check_kind(kind: &str) -> Result<(), MessageError> {
    if kind.is_empty()
        || kind.len() > MAX_KIND_CHARS
        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(MessageError::Invalid("the kind must be 1 to 64 characters of a-z, 0-9 and _"));
    }
    Ok(())
}

/// Creates `dir` and its missing parents, private to this user (0700).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `bytes` to `tmp` (a new file, mode 0600), syncs it, renames it to `path` and syncs
/// the folder, so that `path` appears whole, and stays after a crash.
fn write_then_rename(dir: &Path, tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes one message file atomically into `dir`; returns its path.
fn write_message(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    create_private_dir(dir)?;
    let path = dir.join(format!("{id}.json"));
    let tmp = dir.join(format!(".{id}.json.tmp"));
    match write_then_rename(dir, &tmp, &path, bytes) {
        Ok(()) => Ok(path),
        Err(e) => {
            // Leave no partial file behind; the message was not sent.
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[async_trait]
impl MessageSender for FileOutbox {
    async fn send_sms(&self, to: &str, body: &str, kind: &str) -> Result<String, MessageError> {
        check(to, body, kind)?;
        let id = uuid::Uuid::now_v7().to_string();
        let message = serde_json::json!({
            "id": id,
            "channel": "sms",
            "to": to,
            "kind": kind,
            "body": body,
            "created_at": fintech_telemetry::now_rfc3339(),
        });
        let path = self.write(self.sms_dir(), &id, message).await?;
        // The id and the file, so the developer finds it; never the recipient or the text.
        tracing::info!(message_id = %id, channel = "sms", kind, path = %path.display(),
            "message written to the embedded outbox (no SMS gateway yet)");
        Ok(id)
    }
}

/// The embedded mode's e-mail: `<root>/email/<id>.json` with `to`, `subject`, `text` and `html`.
#[async_trait]
impl crate::email::EmailSender for FileOutbox {
    async fn send_email(&self, email: &crate::email::Email, kind: &str) -> Result<String, MessageError> {
        crate::email::check(email, kind)?;
        let id = uuid::Uuid::now_v7().to_string();
        let message = serde_json::json!({
            "id": id,
            "channel": "email",
            "to": email.to.trim(),
            "kind": kind,
            "subject": email.subject,
            "text": email.text,
            "html": email.html,
            "created_at": fintech_telemetry::now_rfc3339(),
        });
        let path = self.write(self.email_dir(), &id, message).await?;
        tracing::info!(message_id = %id, channel = "email", kind, path = %path.display(),
            "message written to the embedded outbox (no SMTP server configured)");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(dir: &Path) -> Vec<(String, serde_json::Value)> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("outbox folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let text = std::fs::read(dir.join(&name)).expect("message file");
                (name, serde_json::from_slice(&text).expect("one JSON object"))
            })
            .collect()
    }

    #[tokio::test]
    async fn each_message_is_one_private_json_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outbox = FileOutbox::new(tmp.path().join("outbox"));
        let body = "Your FINTECH verification code is 123456. It expires in 5 minutes. Never share it.";
        let first = outbox.send_sms("+15551234567", body, "otp_enrolment").await.expect("sent");
        let second = outbox.send_sms("+447700900123", "second", "otp_sign_in").await.expect("sent");
        assert_ne!(first, second);

        let found = messages(&outbox.sms_dir());
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [format!("{first}.json"), format!("{second}.json")], "time-ordered names, no temp file");
        let (_, message) = &found[0];
        assert_eq!(message["id"], first.as_str());
        assert_eq!(message["channel"], "sms");
        assert_eq!(message["to"], "+15551234567");
        assert_eq!(message["kind"], "otp_enrolment");
        assert_eq!(message["body"], body);
        assert!(message["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{message}");
        assert_eq!(message.as_object().map(serde_json::Map::len), Some(6), "{message}");
        assert_eq!(found[1].1["to"], "+447700900123");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for (name, _) in &found {
                let mode = std::fs::metadata(outbox.sms_dir().join(name)).expect("file").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{name}");
            }
            let mode = std::fs::metadata(outbox.sms_dir()).expect("folder").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may list the codes");
        }
    }

    #[tokio::test]
    async fn names_are_unique_under_concurrency() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outbox = std::sync::Arc::new(FileOutbox::new(tmp.path()));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let outbox = std::sync::Arc::clone(&outbox);
            tasks.push(tokio::spawn(async move {
                outbox.send_sms("+15551234567", &format!("message {i}"), "otp_sign_in").await.expect("sent")
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for task in tasks {
            ids.insert(task.await.expect("task"));
        }
        assert_eq!(ids.len(), 50);
        let found = messages(&outbox.sms_dir());
        assert_eq!(found.len(), 50, "one file per message, no temp file left");
        let bodies: std::collections::BTreeSet<String> =
            found.iter().map(|(_, m)| m["body"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(bodies.len(), 50, "no message overwrote another");
    }

    #[tokio::test]
    async fn malformed_messages_are_refused_and_not_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outbox = FileOutbox::new(tmp.path());
        let too_long = "x".repeat(MAX_BODY_CHARS + 1);
        for (to, body, kind) in [
            ("15551234567", "text", "otp_sign_in"),
            ("+1555 123", "text", "otp_sign_in"),
            ("+../../etc", "text", "otp_sign_in"),
            ("+15551234567", "", "otp_sign_in"),
            ("+15551234567", too_long.as_str(), "otp_sign_in"),
            ("+15551234567", "text", "OTP/../x"),
        ] {
            let refused = outbox.send_sms(to, body, kind).await;
            assert!(matches!(refused, Err(MessageError::Invalid(_))), "{to:?} {kind:?}");
        }
        assert!(!outbox.sms_dir().exists(), "nothing written");
    }
}
