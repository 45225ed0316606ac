//! The in-process event bus of the embedded mode, with Pub/Sub's delivery semantics:
//!
//! - at least once: a handler error is retried with backoff until the subscription's attempt
//!   limit, then the event goes to the dead letters; nothing is dropped silently;
//! - per-ordering-key order: events of one key are handled one at a time, in publish order;
//!   different keys are handled concurrently;
//! - bounded: a subscription holds at most [`MAX_QUEUED_PER_SUBSCRIPTION`] undelivered events;
//!   beyond that `publish` answers [`BusError::Full`] and the outbox relay tries again later.
//!
//! It keeps nothing on disk, so `publish` returns only when every subscription has processed (or
//! dead-lettered) the events: the outbox row stays unpublished until then, and a crash before
//! that means the relay publishes again after restart.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use crate::{BusError, DeadLetterSink, EventBus, EventEnvelope, EventHandler, Subscription};

/// Undelivered events one subscription may hold (memory bound).
pub const MAX_QUEUED_PER_SUBSCRIPTION: usize = 100_000;

type Done = oneshot::Sender<()>;

struct Delivery {
    event: EventEnvelope,
    done: Done,
}

struct Worker {
    subscription: Subscription,
    handler: Arc<dyn EventHandler>,
    dead_letters: Arc<dyn DeadLetterSink>,
    /// Queues per ordering key; a key is present while a task is draining it.
    queues: Mutex<Queues>,
}

#[derive(Default)]
struct Queues {
    by_key: HashMap<String, VecDeque<Delivery>>,
    queued: usize,
}

/// The in-process bus.
#[derive(Clone)]
pub struct InProcessBus {
    topics: Arc<Mutex<HashMap<String, Vec<Arc<Worker>>>>>,
    dead_letters: Arc<dyn DeadLetterSink>,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus").finish_non_exhaustive()
    }
}

impl InProcessBus {
    pub fn new(dead_letters: Arc<dyn DeadLetterSink>) -> Self {
        InProcessBus { topics: Arc::default(), dead_letters }
    }
}

impl Worker {
    /// Queues the events, starting a drain task for each key that has none. All-or-nothing:
    /// if the subscription lacks room for all of them, none is queued.
    fn enqueue(self: &Arc<Self>, events: &[EventEnvelope]) -> Result<Vec<oneshot::Receiver<()>>, BusError> {
        let mut receivers = Vec::with_capacity(events.len());
        let mut start = Vec::new();
        {
            let mut q = self.queues.lock().map_err(|_| BusError::Closed)?;
            if q.queued + events.len() > MAX_QUEUED_PER_SUBSCRIPTION {
                return Err(BusError::Full(self.subscription.name.clone()));
            }
            q.queued += events.len();
            for event in events {
                let (done, rx) = oneshot::channel();
                receivers.push(rx);
                let key = event.ordering_key.clone();
                match q.by_key.get_mut(&key) {
                    Some(queue) => queue.push_back(Delivery { event: event.clone(), done }),
                    None => {
                        q.by_key.insert(key.clone(), VecDeque::from([Delivery { event: event.clone(), done }]));
                        start.push(key);
                    }
                }
            }
        }
        for key in start {
            let worker = Arc::clone(self);
            tokio::spawn(async move { worker.drain(key).await });
        }
        Ok(receivers)
    }

    async fn drain(self: Arc<Self>, key: String) {
        loop {
            let next = {
                let Ok(mut q) = self.queues.lock() else { return };
                let Some(queue) = q.by_key.get_mut(&key) else { return };
                match queue.pop_front() {
                    Some(d) => Some(d),
                    None => {
                        q.by_key.remove(&key);
                        None
                    }
                }
            };
            let Some(delivery) = next else { return };
            self.deliver(&delivery.event).await;
            if let Ok(mut q) = self.queues.lock() {
                q.queued = q.queued.saturating_sub(1);
            }
            let _ = delivery.done.send(());
        }
    }

    async fn deliver(&self, event: &EventEnvelope) {
        let policy = self.subscription.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A panicking or hung handler is a failed attempt, not a lost event or a dead worker.
            let attempt_run = std::panic::AssertUnwindSafe(self.handler.handle(event)).catch_unwind();
            let error = match tokio::time::timeout(policy.attempt_timeout, attempt_run).await {
                Ok(Ok(Ok(()))) => return,
                Ok(Ok(Err(e))) => e.0,
                Ok(Err(_)) => "handler panicked".to_owned(),
                Err(_) => format!("handler did not finish within {} ms", policy.attempt_timeout.as_millis()),
            };
            if attempt >= policy.max_attempts.max(1) {
                tracing::error!(
                    subscription = %self.subscription.name, event_id = %event.id, event_type = %event.event_type,
                    attempts = attempt, error = %error, "event dead-lettered"
                );
                self.dead_letters.dead_letter(&self.subscription.name, event, &error).await;
                return;
            }
            tracing::warn!(
                subscription = %self.subscription.name, event_id = %event.id, attempt, error = %error,
                "event handler failed; retrying"
            );
            tokio::time::sleep(policy.backoff(attempt)).await;
        }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, topic: &str, events: &[EventEnvelope]) -> Result<(), BusError> {
        let workers = {
            let topics = self.topics.lock().map_err(|_| BusError::Closed)?;
            topics.get(topic).cloned().unwrap_or_default()
        };
        // As with Pub/Sub, a topic without subscriptions drops what is published to it.
        let mut receivers = Vec::new();
        for worker in &workers {
            receivers.extend(worker.enqueue(events)?);
        }
        for rx in receivers {
            rx.await.map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }

    async fn subscribe(&self, subscription: Subscription, handler: Arc<dyn EventHandler>) -> Result<(), BusError> {
        let mut topics = self.topics.lock().map_err(|_| BusError::Closed)?;
        let exists = topics.values().flatten().any(|w| w.subscription.name == subscription.name);
        if exists {
            return Err(BusError::DuplicateSubscription(subscription.name));
        }
        let worker = Arc::new(Worker {
            subscription: subscription.clone(),
            handler,
            dead_letters: Arc::clone(&self.dead_letters),
            queues: Mutex::default(),
        });
        topics.entry(subscription.topic).or_default().push(worker);
        Ok(())
    }
}

/// Dead letters appended to `<dir>/<subscription>.jsonl`, one JSON object per line, synced to
/// disk before the event counts as handled.
#[derive(Debug, Clone)]
pub struct FileDeadLetters {
    dir: PathBuf,
}

impl FileDeadLetters {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileDeadLetters { dir: dir.into() }
    }

    async fn append(&self, subscription: &str, line: &[u8]) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let name: String =
            subscription.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.jsonl")))
            .await?;
        file.write_all(line).await?;
        file.sync_data().await
    }
}

#[async_trait]
impl DeadLetterSink for FileDeadLetters {
    async fn dead_letter(&self, subscription: &str, event: &EventEnvelope, error: &str) {
        let record = serde_json::json!({
            "subscription": subscription,
            "dead_lettered_at": fintech_telemetry::now_rfc3339(),
            "last_error": error,
            "event": event,
        });
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.append(subscription, &line).await {
            // The event is still in the log line above; say loudly that the file write failed.
            tracing::error!(error = &e as &dyn std::error::Error, subscription, event_id = %event.id,
                "could not write the dead letter to disk");
        }
    }
}

/// Dead letters kept in memory (tests, and inspection).
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetters {
    letters: Arc<Mutex<Vec<(String, EventEnvelope, String)>>>,
}

impl MemoryDeadLetters {
    pub fn all(&self) -> Vec<(String, EventEnvelope, String)> {
        self.letters.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl DeadLetterSink for MemoryDeadLetters {
    async fn dead_letter(&self, subscription: &str, event: &EventEnvelope, error: &str) {
        if let Ok(mut l) = self.letters.lock() {
            l.push((subscription.to_owned(), event.clone(), error.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HandlerError, RetryPolicy};
    use std::time::Duration;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<(String, i64)>>,
        fail_first: Mutex<HashMap<String, u32>>,
    }

    #[async_trait]
    impl EventHandler for Recorder {
        async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
            if event.data["poison"] == true {
                return Err(HandlerError::new("poison"));
            }
            {
                let mut fails = self.fail_first.lock().map_err(HandlerError::new)?;
                let left = fails.entry(event.id.clone()).or_insert(if event.data["flaky"] == true { 2 } else { 0 });
                if *left > 0 {
                    *left -= 1;
                    return Err(HandlerError::new("transient"));
                }
            }
            // Yield so that keys really interleave.
            tokio::time::sleep(Duration::from_micros(50)).await;
            let n = event.data["n"].as_i64().unwrap_or(-1);
            self.seen.lock().map_err(HandlerError::new)?.push((event.ordering_key.clone(), n));
            Ok(())
        }
    }

    fn fast_retry(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            attempt_timeout: Duration::from_millis(500),
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        }
    }

    fn event(key: &str, n: i64, extra: serde_json::Value) -> EventEnvelope {
        let mut data = serde_json::json!({ "n": n });
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        EventEnvelope::new("test.happened", "test", key, data)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn per_key_order_retries_and_dead_letters() {
        let dead = MemoryDeadLetters::default();
        let bus = InProcessBus::new(Arc::new(dead.clone()));
        let recorder = Arc::new(Recorder::default());
        let sub = Subscription { name: "s1".into(), topic: "t".into(), retry: fast_retry(3) };
        bus.subscribe(sub.clone(), recorder.clone()).await.expect("subscribes");
        assert!(matches!(bus.subscribe(sub, recorder.clone()).await, Err(BusError::DuplicateSubscription(_))));

        let mut events = Vec::new();
        for n in 0..200 {
            let key = format!("k{}", n % 7);
            let extra = match n {
                13 => serde_json::json!({ "poison": true }),
                n if n % 11 == 0 => serde_json::json!({ "flaky": true }),
                _ => serde_json::json!({}),
            };
            events.push(event(&key, n, extra));
        }
        for chunk in events.chunks(17) {
            bus.publish("t", chunk).await.expect("publishes");
        }
        bus.publish("nobody-listens", &events[..1]).await.expect("dropped like Pub/Sub");

        let seen = recorder.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 199, "every event but the poison one handled once");
        for k in 0..7 {
            let key = format!("k{k}");
            let ns: Vec<i64> = seen.iter().filter(|(kk, _)| *kk == key).map(|(_, n)| *n).collect();
            assert!(ns.windows(2).all(|w| w[0] < w[1]), "order kept for {key}: {ns:?}");
        }
        let letters = dead.all();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].1.data["n"], 13);
        assert_eq!(letters[0].2, "poison");
    }

    #[tokio::test]
    async fn a_full_subscription_refuses_instead_of_growing() {
        struct Stuck;
        #[async_trait]
        impl EventHandler for Stuck {
            async fn handle(&self, _: &EventEnvelope) -> Result<(), HandlerError> {
                futures::future::pending::<()>().await;
                Ok(())
            }
        }
        let bus = InProcessBus::new(Arc::new(MemoryDeadLetters::default()));
        let retry = RetryPolicy { attempt_timeout: Duration::from_secs(60), ..fast_retry(1) };
        let sub = Subscription { name: "s".into(), topic: "t".into(), retry };
        bus.subscribe(sub, Arc::new(Stuck)).await.expect("subscribes");
        let many: Vec<_> =
            (0..MAX_QUEUED_PER_SUBSCRIPTION as i64).map(|n| event("k", n, serde_json::json!({}))).collect();
        let b = bus.clone();
        let _stuck = tokio::spawn(async move { b.publish("t", &many).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let more = bus.publish("t", &[event("k", -1, serde_json::json!({}))]).await;
        assert!(matches!(more, Err(BusError::Full(_))), "{more:?}");
    }

    #[tokio::test]
    async fn a_hung_handler_fails_its_attempt_and_the_key_moves_on() {
        struct HangsOnFirst(Mutex<bool>, Mutex<Vec<i64>>);
        #[async_trait]
        impl EventHandler for HangsOnFirst {
            async fn handle(&self, e: &EventEnvelope) -> Result<(), HandlerError> {
                if e.data["n"] == 0 && std::mem::replace(&mut *self.0.lock().map_err(HandlerError::new)?, false) {
                    futures::future::pending::<()>().await;
                }
                self.1.lock().map_err(HandlerError::new)?.push(e.data["n"].as_i64().unwrap_or(-1));
                Ok(())
            }
        }
        let bus = InProcessBus::new(Arc::new(MemoryDeadLetters::default()));
        let handler = Arc::new(HangsOnFirst(Mutex::new(true), Mutex::default()));
        let retry = RetryPolicy { attempt_timeout: Duration::from_millis(50), ..fast_retry(3) };
        bus.subscribe(Subscription { name: "s".into(), topic: "t".into(), retry }, handler.clone())
            .await
            .expect("subscribes");
        let events = [event("k", 0, serde_json::json!({})), event("k", 1, serde_json::json!({}))];
        tokio::time::timeout(Duration::from_secs(5), bus.publish("t", &events)).await.expect("not stuck").expect("ok");
        assert_eq!(*handler.1.lock().expect("lock"), vec![0, 1], "retried after the timeout, order kept");
    }

    #[tokio::test]
    async fn file_dead_letters_are_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = FileDeadLetters::new(dir.path().join("dl"));
        sink.dead_letter("notifications/contact", &event("k", 1, serde_json::json!({})), "boom").await;
        let text = std::fs::read_to_string(dir.path().join("dl/notifications_contact.jsonl")).expect("written");
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        assert_eq!(v["last_error"], "boom");
        assert_eq!(v["event"]["data"]["n"], 1);
    }
}
