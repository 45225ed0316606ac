//! SMS through third-party gateways: two provider shapes behind one [`SmsProvider`] trait, failover
//! between them, a circuit breaker per provider, bounded retries only when a provider definitely
//! did not take the message, a per-number limit against SMS pumping, and a dead letter for what
//! no provider took.
//!
//! - [`TwilioProvider`]: a Twilio-style message API (form POST to
//!   `/2010-04-01/Accounts/<sid>/Messages.json`, HTTP Basic with the account sid and token,
//!   `201` with the message's `sid`), with delivery-status callbacks signed by
//!   `X-Twilio-Signature` ([`twilio_signature`]).
//! - [`VonageProvider`]: a Vonage-style SMS API (form POST to `/sms/json` with `api_key` and
//!   `api_secret`; `200` with `messages[0].status` `"0"` and a `message-id`).
//!
//! What an answer means ([`Submission`]):
//! - accepted: done, the provider's message id is kept;
//! - refused for good (a 4xx other than 408/429, or the provider's own "invalid number"): the
//!   message itself is wrong; no other provider is tried;
//! - not accepted (connection refused, 5xx, 429, throttled): retried with backoff and full jitter
//!   on the same provider, then the next provider;
//! - unknown (the request went out and no answer came: a timeout, a reset): the provider may have
//!   sent it. It is NOT sent again anywhere (no duplicate SMS); the sender answers
//!   [`MessageError::Ambiguous`] and records the message for an operator.
//!
//! A provider whose breaker is open is skipped; after its cool-down one trial message goes
//! through (half-open): success closes it, failure opens it again.
//!
//! Nothing here logs a recipient or a text: the message's id, its kind, the provider and the
//! outcome only. The dead letter (`dead-letters.jsonl`) keeps the id, kind, the number's last two
//! digits and the reasons, not the text (it may hold a one-time code).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;

use crate::messages::{MessageError, MessageSender};
use crate::ratelimit::Limiter;

/// One SMS for a provider.
#[derive(Debug, Clone)]
pub struct Sms<'a> {
    pub id: &'a str,
    pub to: &'a str,
    pub body: &'a str,
}

/// What a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Taken, with the provider's message id.
    Accepted(String),
    /// Definitely not taken, and the same message may go again (here or elsewhere).
    NotAccepted(String),
    /// Refused because of the message itself (an invalid number): no provider will take it.
    Refused(String),
    /// No answer after the request left: the provider may have taken it.
    Unknown(String),
}

/// A third-party SMS gateway.
#[async_trait]
pub trait SmsProvider: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;
    async fn submit(&self, sms: &Sms<'_>) -> Submission;
}

/// Maps a transport error: one that happened before the request was sent is "not accepted",
/// anything later (a timeout, a reset while waiting) is "unknown".
fn transport_outcome(e: &reqwest::Error) -> Submission {
    if e.is_connect() || e.is_builder() {
        Submission::NotAccepted(format!("cannot connect: {e}"))
    } else {
        Submission::Unknown(if e.is_timeout() { "no answer in time".into() } else { format!("no answer: {e}") })
    }
}

/// The outcome of an HTTP status that is not a success.
fn status_outcome(status: reqwest::StatusCode, what: &str) -> Submission {
    let reason = format!("{what} answered {status}");
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Submission::NotAccepted(reason)
    } else {
        Submission::Refused(reason)
    }
}

/// Sends `request` and reads a successful answer's JSON; anything else as the [`Submission`] it
/// means.
async fn json_answer(request: reqwest::RequestBuilder, what: &str) -> Result<serde_json::Value, Submission> {
    let response = request.send().await.map_err(|e| transport_outcome(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_outcome(status, what));
    }
    response.json::<serde_json::Value>().await.map_err(|e| transport_outcome(&e))
}

/// A Twilio-style message API.
#[derive(Debug, Clone)]
pub struct TwilioProvider {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The sender number or messaging service.
    pub from: String,
    /// Where the provider posts delivery statuses (signed with the auth token).
    pub status_callback: Option<String>,
    pub http: reqwest::Client,
}

#[async_trait]
impl SmsProvider for TwilioProvider {
    fn name(&self) -> &str {
        "twilio"
    }

    async fn submit(&self, sms: &Sms<'_>) -> Submission {
        let url =
            format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url.trim_end_matches('/'), self.account_sid);
        let callback = self.status_callback.as_deref().map(|c| status_callback_url(c, sms.id));
        let mut form = vec![("To", sms.to), ("From", self.from.as_str()), ("Body", sms.body)];
        if let Some(callback) = &callback {
            form.push(("StatusCallback", callback.as_str()));
        }
        let request = self.http.post(url).basic_auth(&self.account_sid, Some(&self.auth_token)).form(&form);
        let v = match json_answer(request, "twilio").await {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        match v["sid"].as_str() {
            Some(sid) => Submission::Accepted(sid.to_string()),
            None => Submission::Unknown("twilio accepted without a message sid".into()),
        }
    }
}

/// A Vonage-style SMS API.
#[derive(Debug, Clone)]
pub struct VonageProvider {
    pub base_url: String,
    pub api_key: String,
    pub api_secret: String,
    pub from: String,
    /// Where the provider posts delivery receipts (signed with the account's signature secret);
    /// each carries the message's id as `client-ref`.
    pub status_callback: Option<String>,
    pub http: reqwest::Client,
}

#[async_trait]
impl SmsProvider for VonageProvider {
    fn name(&self) -> &str {
        "vonage"
    }

    async fn submit(&self, sms: &Sms<'_>) -> Submission {
        let url = format!("{}/sms/json", self.base_url.trim_end_matches('/'));
        // Vonage wants the number without its `+`.
        let to = sms.to.trim_start_matches('+');
        let mut form = vec![
            ("api_key", self.api_key.as_str()),
            ("api_secret", self.api_secret.as_str()),
            ("from", self.from.as_str()),
            ("to", to),
            ("text", sms.body),
            ("client-ref", sms.id),
        ];
        if let Some(callback) = &self.status_callback {
            form.push(("status-report-req", "1"));
            form.push(("callback", callback.as_str()));
        }
        let v = match json_answer(self.http.post(url).form(&form), "vonage").await {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        let first = &v["messages"][0];
        match (first["status"].as_str(), first["message-id"].as_str()) {
            (Some("0"), Some(id)) => Submission::Accepted(id.to_string()),
            // 1 throttled, 5 internal error: not taken, may go again.
            (Some(code @ ("1" | "5")), _) => Submission::NotAccepted(format!("vonage status {code}")),
            (Some(code), _) => Submission::Refused(format!("vonage status {code}")),
            (None, _) => Submission::Unknown("vonage answered without a status".into()),
        }
    }
}

/// The status callback of one message: `callback` with `message_id=<id>` added to its query, so
/// the provider's callback names our message (Twilio signs the whole URL, query included).
pub fn status_callback_url(callback: &str, id: &str) -> String {
    let separator = if callback.contains('?') { '&' } else { '?' };
    format!("{callback}{separator}message_id={id}")
}

/// What Twilio signs for a callback: the URL followed by each form parameter's name and value,
/// sorted by name.
fn twilio_signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

fn twilio_key(auth_token: &str) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

/// The value of `X-Twilio-Signature` for a callback to `url` with form `params`: base64 of
/// HMAC-SHA1 over [`twilio_signed_data`], keyed by the auth token.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = ring::hmac::sign(&twilio_key(auth_token), twilio_signed_data(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `signature` (the `X-Twilio-Signature` header) is the provider's for this callback,
/// compared in constant time.
pub fn verify_twilio_signature(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    ring::hmac::verify(&twilio_key(auth_token), twilio_signed_data(url, params).as_bytes(), &given).is_ok()
}

/// The string a Vonage-style signature covers: every parameter but `sig`, sorted by name, each as
/// `&name=value` with `&` and `=` in values replaced by `_`.
fn vonage_signed_data(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort();
    let mut data = String::new();
    for (k, v) in sorted {
        data.push('&');
        data.push_str(k);
        data.push('=');
        data.push_str(&v.replace(['&', '='], "_"));
    }
    data
}

/// The `sig` of a Vonage-style request or delivery receipt signed with HMAC-SHA256: upper-case
/// hex of the HMAC of [`vonage_signed_data`] keyed by the signature secret.
pub fn vonage_signature(signature_secret: &str, params: &[(String, String)]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signature_secret.as_bytes());
    let tag = ring::hmac::sign(&key, vonage_signed_data(params).as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// Whether `params` carry a valid `sig` (HMAC-SHA256, compared in constant time) and a
/// `timestamp` within `max_age` of `now_unix` (a replayed receipt is refused).
pub fn verify_vonage_signature(
    signature_secret: &str,
    params: &[(String, String)],
    now_unix: i64,
    max_age: Duration,
) -> bool {
    let find = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(sig), Some(timestamp)) = (find("sig"), find("timestamp")) else { return false };
    let Ok(timestamp) = timestamp.parse::<i64>() else { return false };
    if now_unix.abs_diff(timestamp) > max_age.as_secs() {
        return false;
    }
    let sig = sig.trim();
    if sig.len() != 64 || !sig.is_ascii() {
        return false;
    }
    let given: Option<Vec<u8>> =
        (0..sig.len()).step_by(2).map(|i| u8::from_str_radix(&sig[i..i + 2], 16).ok()).collect();
    let Some(given) = given else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signature_secret.as_bytes());
    ring::hmac::verify(&key, vonage_signed_data(params).as_bytes(), &given).is_ok()
}

/// A provider's circuit breaker.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long it stays open before one trial message.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy { failures_to_open: 3, cool_down: Duration::from_secs(30) }
    }
}

/// The state of a breaker, as reported by [`GatewaySender::breaker_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    /// Cool-down over: the next message is a trial.
    HalfOpen,
}

#[derive(Debug)]
struct Breaker {
    policy: BreakerPolicy,
    failures: u32,
    opened_at: Option<Instant>,
    trial_running: bool,
}

impl Breaker {
    fn state(&self) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if at.elapsed() >= self.policy.cool_down => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// Whether a message may go to this provider now (taking the half-open trial if it is one).
    fn admit(&mut self) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.trial_running => false,
            BreakerState::HalfOpen => {
                self.trial_running = true;
                true
            }
        }
    }

    fn success(&mut self) {
        self.failures = 0;
        self.opened_at = None;
        self.trial_running = false;
    }

    fn failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
        if self.trial_running || self.failures >= self.policy.failures_to_open {
            self.opened_at = Some(Instant::now());
        }
        self.trial_running = false;
    }
}

/// Retries on one provider.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per provider (1 = no retry).
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 3, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = u64::try_from(exp.min(self.max_backoff).as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::random_range(0..=cap))
    }
}

/// Sends through the providers in order, with the rules of the module's documentation.
#[derive(Debug)]
pub struct GatewaySender {
    providers: Vec<(Arc<dyn SmsProvider>, Mutex<Breaker>)>,
    retry: RetryPolicy,
    per_number: Limiter,
    dead_letters: std::path::PathBuf,
}

impl GatewaySender {
    /// `per_number`: the limit per recipient number (SMS pumping); `dead_letters`: the file where
    /// messages no provider took are recorded (JSON lines, no text).
    pub fn new(
        providers: Vec<Arc<dyn SmsProvider>>,
        breaker: BreakerPolicy,
        retry: RetryPolicy,
        per_number: Limiter,
        dead_letters: std::path::PathBuf,
    ) -> Self {
        let providers = providers
            .into_iter()
            .map(|p| (p, Mutex::new(Breaker { policy: breaker, failures: 0, opened_at: None, trial_running: false })))
            .collect();
        GatewaySender {
            providers,
            retry: RetryPolicy { attempts: retry.attempts.max(1), ..retry },
            per_number,
            dead_letters,
        }
    }

    /// The breaker of provider `name`.
    pub fn breaker_state(&self, name: &str) -> Option<BreakerState> {
        self.providers.iter().find(|(p, _)| p.name() == name).and_then(|(_, b)| b.lock().ok().map(|b| b.state()))
    }

    fn admit(breaker: &Mutex<Breaker>) -> bool {
        breaker.lock().map(|mut b| b.admit()).unwrap_or(false)
    }

    fn record(breaker: &Mutex<Breaker>, ok: bool) {
        if let Ok(mut b) = breaker.lock() {
            if ok { b.success() } else { b.failure() }
        }
    }

    async fn dead_letter(&self, id: &str, kind: &str, to: &str, reasons: &[String]) {
        let tail: String = to.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
        let line = serde_json::json!({
            "id": id, "kind": kind, "to_last_digits": tail, "reasons": reasons,
            "at": fintech_telemetry::now_rfc3339(),
        });
        let write = async {
            if let Some(dir) = self.dead_letters.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(&self.dead_letters).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, format!("{line}\n").as_bytes()).await?;
            file.sync_data().await
        };
        if let Err(e) = write.await {
            tracing::error!(message_id = id, error = %e, "could not record an undelivered SMS");
        }
    }
}

#[async_trait]
impl MessageSender for GatewaySender {
    async fn send_sms(&self, to: &str, body: &str, kind: &str) -> Result<String, MessageError> {
        crate::messages::check(to, body, kind)?;
        // Each kind of message has its own allowance per number: a run of transfer notices must
        // not use up the one-time codes a customer needs to sign in.
        if let Err(wait) = self.per_number.take(&format!("{kind}:{to}")).await {
            tracing::warn!(kind, retry_after_s = wait.secs(), "SMS refused: too many messages to this number");
            return Err(MessageError::Limited(wait));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let sms = Sms { id: &id, to, body };
        let mut reasons = Vec::new();
        for (provider, breaker) in &self.providers {
            let name = provider.name();
            for attempt in 1..=self.retry.attempts {
                if !Self::admit(breaker) {
                    reasons.push(format!("{name}: circuit open"));
                    break;
                }
                match provider.submit(&sms).await {
                    Submission::Accepted(provider_id) => {
                        Self::record(breaker, true);
                        tracing::info!(message_id = %id, kind, provider = name, provider_id = %provider_id, attempt,
                            "SMS accepted by the gateway");
                        return Ok(id);
                    }
                    Submission::Refused(reason) => {
                        // The message is at fault, not the provider: the breaker is not charged.
                        Self::record(breaker, true);
                        tracing::warn!(message_id = %id, kind, provider = name, reason = %reason, "SMS refused");
                        reasons.push(format!("{name}: {reason}"));
                        self.dead_letter(&id, kind, to, &reasons).await;
                        return Err(MessageError::Undelivered(format!("{name} refused the message: {reason}")));
                    }
                    Submission::Unknown(reason) => {
                        Self::record(breaker, false);
                        tracing::error!(message_id = %id, kind, provider = name, reason = %reason,
                            "SMS outcome unknown: not sent again, so the recipient gets no duplicate");
                        reasons.push(format!("{name}: {reason} (may have been sent)"));
                        self.dead_letter(&id, kind, to, &reasons).await;
                        return Err(MessageError::Ambiguous(format!("{name}: {reason}")));
                    }
                    Submission::NotAccepted(reason) => {
                        Self::record(breaker, false);
                        tracing::warn!(message_id = %id, kind, provider = name, reason = %reason, attempt,
                            "SMS not accepted");
                        reasons.push(format!("{name}: {reason}"));
                        if attempt < self.retry.attempts {
                            tokio::time::sleep(self.retry.backoff(attempt)).await;
                        }
                    }
                }
            }
        }
        tracing::error!(message_id = %id, kind, "no SMS gateway accepted the message");
        self.dead_letter(&id, kind, to, &reasons).await;
        Err(MessageError::Undelivered("no SMS gateway accepted the message".into()))
    }
}
