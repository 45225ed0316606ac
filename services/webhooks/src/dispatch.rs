//! The dispatcher: posts due deliveries, one attempt each, and schedules the next.
//!
//! Each pass takes up to [`BATCH`] due deliveries of enabled endpoints, claims each (its next
//! attempt moves a lease ahead, so two replicas never post the same one at once), and posts them,
//! [`CONCURRENCY`] at a time. A 2xx within `webhooks.timeout_ms` is success; anything else (another
//! status, a timeout, a refused connection, an address the guard refuses) is a failure: the next
//! attempt waits `backoff_base_ms × 2^(attempts-1)`, at most `backoff_max_ms`, with up to 10 %
//! jitter, until `max_attempts` are used (`failed`). Failed attempts in a row disable the endpoint.

use std::sync::Arc;
use std::time::Duration;

use fintech_db::Db;
use futures::StreamExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::WebhooksConfig;
use crate::guard::{Guard, GuardedResolver};
use crate::store::{self, Delivery, Endpoint, Outcome};

const BATCH: u32 = 64;
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct Dispatcher {
    db: Db,
    guard: Arc<Guard>,
    http: reqwest::Client,
    config: WebhooksConfig,
}

impl Dispatcher {
    pub fn new(db: Db, guard: Arc<Guard>, config: WebhooksConfig) -> anyhow::Result<Dispatcher> {
        let http = fintech_http::http_client()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&guard))))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5_000)))
            .user_agent("FINTECH-Webhooks/1")
            .build()?;
        Ok(Dispatcher { db, guard, http, config })
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failures.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self.config.backoff_base_ms.saturating_mul(1u64 << exp).min(self.config.backoff_max_ms);
        let jitter = rand::random_range(0..=base / 10);
        Duration::from_millis(base + jitter)
    }

    /// Runs passes until `shutdown`: after each `poll_ms`, or at once when `wake` is notified.
    pub async fn run(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(self.config.poll_ms)) => {}
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "webhook dispatch pass failed; trying again at the next one");
            }
        }
    }

    /// One pass: every due delivery, at most a batch. Returns how many were attempted.
    pub async fn pass(&self) -> Result<usize, sqlx::Error> {
        let now = fintech_telemetry::now_unix_ms();
        let due = store::due(&self.db, now, BATCH).await?;
        let lease = i64::try_from(self.config.timeout_ms * 3).unwrap_or(i64::MAX);
        let attempted = futures::stream::iter(due)
            .map(|(d, e)| async move {
                match store::claim(&self.db, &d.id, d.next_attempt_at, now + lease).await {
                    Ok(true) => {
                        self.attempt(&d, &e).await;
                        1
                    }
                    Ok(false) => 0,
                    Err(err) => {
                        tracing::warn!(delivery = %d.id, error = %err, "could not claim a webhook delivery");
                        0
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .fold(0, |n, one| async move { n + one })
            .await;
        Ok(attempted)
    }

    async fn attempt(&self, d: &Delivery, e: &Endpoint) {
        let (succeeded, status_code, error) = match self.post(d, e).await {
            Ok(status) if status.is_success() => (true, Some(i64::from(status.as_u16())), None),
            Ok(status) => (false, Some(i64::from(status.as_u16())), Some(format!("answered {status}"))),
            Err(why) => (false, None, Some(why)),
        };
        let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let next = (!succeeded && attempts < self.config.max_attempts).then(|| {
            fintech_telemetry::now_unix_ms() + i64::try_from(self.backoff(attempts).as_millis()).unwrap_or(i64::MAX)
        });
        let outcome = Outcome { succeeded, status_code, error: error.as_deref() };
        match store::record_attempt(&self.db, d, &outcome, next, self.config.disable_after_failures).await {
            Ok(disabled) => {
                tracing::info!(delivery = %d.id, endpoint = %e.id, event_type = %d.event_type, attempt = attempts,
                    succeeded, status = ?status_code, "webhook attempt");
                if disabled {
                    tracing::warn!(endpoint = %e.id, merchant = %e.merchant_id,
                        "webhook endpoint disabled after failing repeatedly");
                }
            }
            Err(err) => tracing::error!(delivery = %d.id, error = %err, "could not record a webhook attempt"),
        }
    }

    /// Posts one delivery; the status, or why no answer came.
    async fn post(&self, d: &Delivery, e: &Endpoint) -> Result<reqwest::StatusCode, String> {
        let url = url::Url::parse(&e.url).map_err(|_| "the endpoint's URL does not parse".to_owned())?;
        // Names are checked by the resolver on every connection; IP literals never reach it.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(why) = literal.and_then(|ip| self.guard.refuse(ip)) {
            return Err(format!("refused by the SSRF guard: {why}"));
        }
        let body = d.payload.clone().into_bytes();
        let signature = crate::signing::header(&e.secret, fintech_telemetry::now_unix_ms() / 1000, &body);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Fintech-Signature", signature)
            .header("Fintech-Event-Id", &d.event_id)
            .header("Fintech-Delivery-Id", &d.id)
            .body(body)
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    "no answer in time".to_owned()
                } else if err.is_connect() {
                    format!(
                        "could not connect: {}",
                        std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default()
                    )
                } else {
                    "the request failed".to_owned()
                }
            })?;
        Ok(response.status())
    }
}
