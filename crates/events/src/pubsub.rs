//! The distributed mode's event bus: Google Cloud Pub/Sub, through Google's official client
//! (`google-cloud-pubsub`: streaming pull, ordering keys, dead-letter policies, and an endpoint
//! override for the emulator).
//!
//! - A topic per event stream (`projects/<project>/topics/<prefix><topic>`, the prefix naming the
//!   environment: `fintech-prod-identity.events`); the envelope is the message data (JSON), its
//!   `ordering_key` the message's ordering key, its id and type attributes.
//! - A subscription per consuming service and topic (`<prefix><consumer>.<topic>`), with message
//!   ordering on, and one dead-letter topic per consuming service, `<prefix><consumer>.dead-letter`
//!   (with a subscription `....dead-letter.hold`, so dead letters are kept for an operator), after
//!   `RetryPolicy::max_attempts` deliveries (Pub/Sub allows 5 to 100). These are the names
//!   `deploy/terraform/modules/pubsub` creates. The bus dead-letters itself: when the last attempt
//!   (Pub/Sub's delivery attempt count, which it keeps only for subscriptions with a dead-letter
//!   policy) fails, it publishes the message to the dead-letter topic with the subscription, the
//!   attempts and the error as attributes (so the service account publishes to its own
//!   dead-letter topic), and acks it once that publish succeeded. The
//!   subscription's own dead-letter policy (same limit) remains the backstop when that publish
//!   fails. (The emulator cannot forward dead letters of an ordered subscription at all: it fails
//!   with an internal error.)
//! - A message is acked only after its handler returned `Ok`, i.e. after the effect committed.
//!   An error, a panic or an attempt past `RetryPolicy::attempt_timeout` nacks it: Pub/Sub
//!   delivers it again, and dead-letters it after the last attempt. Delivery is at least once,
//!   so handlers dedupe by event id ([`crate::inbox`]).
//! - Messages with the same ordering key are handled one at a time, in order; when one fails,
//!   the later ones of its key already received are nacked too, so they come back after it.
//!
//! In GCP, topics and subscriptions come from Terraform (the workloads may publish and consume
//! but not administer). Against the emulator ([`PubSubConfig::emulator`]) the bus creates what it
//! uses, and uses no credentials.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::{BasePublisher, Publisher, Subscriber, SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::{DeadLetterPolicy, Message, RetryPolicy as PubSubRetry};
use google_cloud_pubsub::subscriber::handler::Handler;
use tokio_util::sync::CancellationToken;

use crate::{BusError, EventBus, EventEnvelope, EventHandler, Subscription};

/// Suffix of a consuming service's dead-letter topic (after the service's name).
pub const DEAD_LETTER_SUFFIX: &str = ".dead-letter";
/// Suffix of the subscription that keeps a dead-letter topic's messages (after the topic's name).
pub const HOLD_SUFFIX: &str = ".hold";

/// The dead-letter topic of the service consuming through `subscription` (`<consumer>.<topic>`).
pub fn dead_letter_topic(subscription: &str) -> String {
    let consumer = subscription.split('.').next().unwrap_or(subscription);
    format!("{consumer}{DEAD_LETTER_SUFFIX}")
}

/// Where the bus connects.
#[derive(Debug, Clone)]
pub struct PubSubConfig {
    /// The Google Cloud project of the topics and subscriptions.
    pub project: String,
    /// Prefix of every topic and subscription name (`fintech-prod-`), so that environments can
    /// share a project; empty for none.
    pub prefix: String,
    /// `http://host:port` of the Pub/Sub emulator. `None`: Google's endpoint with the workload's
    /// credentials (Workload Identity), topics and subscriptions made by Terraform.
    pub emulator: Option<String>,
    /// Whether the subscriptions the bus creates deliver in ordering-key order: true everywhere
    /// but one test. The emulator (Cloud SDK 528) stops delivering an ordered subscription for
    /// good once a consumer died without closing its stream (a killed process): it neither
    /// redelivers the dead consumer's messages nor delivers new ones, where Pub/Sub redelivers
    /// after the ack deadline. The test of that crash runs unordered. (In GCP, Terraform makes
    /// the subscriptions, ordered.)
    pub ordering: bool,
}

impl PubSubConfig {
    /// Google's endpoint with the workload's credentials; subscriptions made by Terraform.
    pub fn google(project: impl Into<String>) -> Self {
        PubSubConfig { project: project.into(), prefix: String::new(), emulator: None, ordering: true }
    }

    /// The emulator at `endpoint` (`http://host:port`), no credentials; the bus creates what it uses.
    pub fn emulator(project: impl Into<String>, endpoint: impl Into<String>) -> Self {
        PubSubConfig { project: project.into(), prefix: String::new(), emulator: Some(endpoint.into()), ordering: true }
    }
}

impl PubSubConfig {
    fn topic_path(&self, topic: &str) -> String {
        format!("projects/{}/topics/{}{topic}", self.project, self.prefix)
    }

    fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{}{subscription}", self.project, self.prefix)
    }
}

/// Admin clients, only against the emulator (see the module's documentation).
struct Admin {
    topics: TopicAdmin,
    subscriptions: SubscriptionAdmin,
    created: tokio::sync::Mutex<HashSet<String>>,
}

/// The Pub/Sub event bus.
pub struct PubSubBus {
    config: PubSubConfig,
    base: BasePublisher,
    publishers: Mutex<HashMap<String, Publisher>>,
    subscriber: Subscriber,
    admin: Option<Admin>,
    shutdown: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for PubSubBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubBus").field("config", &self.config).finish_non_exhaustive()
    }
}

fn transport(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Transport(format!("{what}: {e}"))
}

fn is_code(e: &google_cloud_pubsub::Error, code: Code) -> bool {
    e.status().is_some_and(|s| s.code == code)
}

impl PubSubBus {
    /// Builds the clients. Subscriptions stop, nacking what they hold, when `shutdown` fires.
    pub async fn connect(config: PubSubConfig, shutdown: CancellationToken) -> Result<Self, BusError> {
        fintech_http::install_crypto_provider();
        macro_rules! configure {
            ($builder:expr) => {{
                let builder = $builder;
                match &config.emulator {
                    Some(endpoint) => builder
                        .with_endpoint(endpoint.clone())
                        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build()),
                    None => builder,
                }
            }};
        }
        let base = configure!(BasePublisher::builder()).build().await.map_err(|e| transport("Pub/Sub publisher", e))?;
        let subscriber =
            configure!(Subscriber::builder()).build().await.map_err(|e| transport("Pub/Sub subscriber", e))?;
        let admin = match &config.emulator {
            None => None,
            Some(_) => Some(Admin {
                topics: configure!(TopicAdmin::builder())
                    .build()
                    .await
                    .map_err(|e| transport("Pub/Sub topic admin", e))?,
                subscriptions: configure!(SubscriptionAdmin::builder())
                    .build()
                    .await
                    .map_err(|e| transport("Pub/Sub subscription admin", e))?,
                created: tokio::sync::Mutex::default(),
            }),
        };
        Ok(PubSubBus {
            config,
            base,
            publishers: Mutex::default(),
            subscriber,
            admin,
            shutdown,
            tasks: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Waits until every subscription has stopped (after the shutdown token fired) and sent its
    /// last acks and nacks.
    pub async fn closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Creates `topic` unless it exists (emulator only; in GCP Terraform does).
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        let Some(admin) = &self.admin else { return Ok(()) };
        let path = self.config.topic_path(topic);
        let mut created = admin.created.lock().await;
        if created.contains(&path) {
            return Ok(());
        }
        match admin.topics.create_topic().set_name(&path).send().await {
            Ok(_) => {}
            Err(e) if is_code(&e, Code::AlreadyExists) => {}
            Err(e) => return Err(transport(&format!("creating topic {path}"), e)),
        }
        created.insert(path);
        Ok(())
    }

    /// Creates `subscription` (ordered, with its consumer's dead-letter topic and the subscription
    /// that keeps the dead letters) unless it exists (emulator only).
    pub async fn ensure_subscription(&self, subscription: &Subscription) -> Result<(), BusError> {
        let Some(admin) = &self.admin else { return Ok(()) };
        let dead_letter = dead_letter_topic(&subscription.name);
        self.ensure_topic(&subscription.topic).await?;
        self.ensure_topic(&dead_letter).await?;
        let seconds = |d: Duration| google_cloud_wkt::Duration::clamp(d.as_secs().min(600) as i64, 0);
        let create = |name: &str, topic: &str| {
            admin
                .subscriptions
                .create_subscription()
                .set_name(self.config.subscription_path(name))
                .set_topic(self.config.topic_path(topic))
        };
        let main = create(&subscription.name, &subscription.topic)
            .set_enable_message_ordering(self.config.ordering)
            .set_ack_deadline_seconds(subscription.retry.attempt_timeout.as_secs().clamp(10, 600) as i32)
            .set_retry_policy(
                PubSubRetry::new()
                    .set_minimum_backoff(seconds(subscription.retry.initial_backoff))
                    .set_maximum_backoff(seconds(subscription.retry.max_backoff.max(Duration::from_secs(1)))),
            )
            .set_dead_letter_policy(
                DeadLetterPolicy::new()
                    .set_dead_letter_topic(self.config.topic_path(&dead_letter))
                    .set_max_delivery_attempts(max_attempts(&subscription.retry)),
            );
        for request in [main, create(&format!("{dead_letter}{HOLD_SUFFIX}"), &dead_letter)] {
            match request.send().await {
                Ok(_) => {}
                Err(e) if is_code(&e, Code::AlreadyExists) => {}
                Err(e) => return Err(transport(&format!("creating subscription {}", subscription.name), e)),
            }
        }
        Ok(())
    }

    fn publisher(&self, topic: &str) -> Result<Publisher, BusError> {
        let mut publishers = self.publishers.lock().map_err(|_| BusError::Closed)?;
        Ok(publishers
            .entry(topic.to_string())
            .or_insert_with(|| {
                self.base.publisher(self.config.topic_path(topic)).set_delay_threshold(Duration::from_millis(5)).build()
            })
            .clone())
    }
}

#[async_trait]
impl EventBus for PubSubBus {
    async fn publish(&self, topic: &str, events: &[EventEnvelope]) -> Result<(), BusError> {
        if self.shutdown.is_cancelled() {
            return Err(BusError::Closed);
        }
        self.ensure_topic(topic).await?;
        let publisher = self.publisher(topic)?;
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            let data = serde_json::to_vec(event).map_err(|e| transport("encoding an event", e))?;
            let message = Message::new()
                .set_data(data)
                .set_ordering_key(event.ordering_key.clone())
                .set_attributes([("event_id", event.id.as_str()), ("type", event.event_type.as_str())]);
            pending.push((event, publisher.publish(message)));
        }
        // All of them are awaited: each key's later messages were paused behind a failed one,
        // and must be resumed, or the key stays paused for good. The caller publishes them all
        // again (at least once; consumers dedupe).
        let mut failure = None;
        for (event, future) in pending {
            if let Err(e) = future.await {
                publisher.resume_publish(event.ordering_key.clone());
                failure.get_or_insert_with(|| transport(&format!("publishing to {topic}"), e));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn subscribe(&self, subscription: Subscription, handler: Arc<dyn EventHandler>) -> Result<(), BusError> {
        self.ensure_subscription(&subscription).await?;
        let path = self.config.subscription_path(&subscription.name);
        let dead_letters = self.publisher(&dead_letter_topic(&subscription.name))?;
        let worker = Arc::new(Worker {
            subscription,
            handler,
            dead_letters,
            queues: Mutex::default(),
            shutdown: self.shutdown.clone(),
        });
        let subscriber = self.subscriber.clone();
        let shutdown = self.shutdown.clone();
        let tasks = self.tasks.clone();
        self.tasks.spawn(async move {
            let mut failures = 0u32;
            while !shutdown.is_cancelled() {
                let mut stream = subscriber
                    .subscribe(path.clone())
                    .set_max_lease_extension(Duration::from_secs(10))
                    .set_shutdown_behavior(google_cloud_pubsub::subscriber::ShutdownBehavior::NackImmediately)
                    .build();
                let token = stream.shutdown_token();
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => {
                            token.shutdown().await;
                            return;
                        }
                        next = stream.next() => match next {
                            Some(Ok((message, handle))) => {
                                failures = 0;
                                worker.enqueue(message, handle, &tasks);
                            }
                            Some(Err(e)) => {
                                failures = failures.saturating_add(1);
                                tracing::warn!(subscription = %worker.subscription.name, error = %e,
                                    "Pub/Sub streaming pull failed; reconnecting");
                                break;
                            }
                            None => break,
                        }
                    }
                }
                let delay = Duration::from_millis(200u64.saturating_mul(1 << failures.min(6)));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        });
        Ok(())
    }
}

struct Worker {
    subscription: Subscription,
    handler: Arc<dyn EventHandler>,
    /// The subscription's dead-letter topic.
    dead_letters: Publisher,
    /// Messages waiting per ordering key; a key is present while a task is draining it.
    queues: Mutex<HashMap<String, VecDeque<(Message, Handler)>>>,
    /// Once it fires, queued messages are not started: they go back to Pub/Sub unacked.
    shutdown: CancellationToken,
}

impl Worker {
    fn enqueue(self: &Arc<Self>, message: Message, handle: Handler, tasks: &tokio_util::task::TaskTracker) {
        let key = message.ordering_key.clone();
        {
            let Ok(mut queues) = self.queues.lock() else {
                handle.nack();
                return;
            };
            if let Some(queue) = queues.get_mut(&key) {
                queue.push_back((message, handle));
                return;
            }
            queues.insert(key.clone(), VecDeque::from([(message, handle)]));
        }
        let worker = Arc::clone(self);
        tasks.spawn(async move { worker.drain(key).await });
    }

    async fn drain(self: Arc<Self>, key: String) {
        loop {
            if self.shutdown.is_cancelled() {
                // Stopping: what is queued is dropped, which nacks it for redelivery, so the process
                // stops within one attempt, not after the whole queue.
                if let Ok(mut queues) = self.queues.lock() {
                    queues.remove(&key);
                }
                return;
            }
            let next = {
                let Ok(mut queues) = self.queues.lock() else { return };
                let Some(queue) = queues.get_mut(&key) else { return };
                match queue.pop_front() {
                    Some(item) => item,
                    None => {
                        queues.remove(&key);
                        return;
                    }
                }
            };
            let (message, handle) = next;
            let failure = match self.deliver(&message, &handle).await {
                Ok(()) => None,
                Err(error) if self.is_last(&handle) => self.dead_letter(&message, &handle, &error).await.err(),
                Err(error) => Some(error),
            };
            if failure.is_some() {
                handle.nack();
                // The key's later messages must not overtake this one: back to Pub/Sub too.
                let rest = self.queues.lock().ok().and_then(|mut q| q.remove(&key)).unwrap_or_default();
                for (_, later) in rest {
                    later.nack();
                }
                return;
            }
            handle.ack();
        }
    }

    /// Whether this delivery is the subscription's last attempt.
    fn is_last(&self, handle: &Handler) -> bool {
        handle.delivery_attempt().is_some_and(|a| a >= max_attempts(&self.subscription.retry))
    }

    /// One attempt: the handler's error, if it failed.
    async fn deliver(&self, message: &Message, handle: &Handler) -> Result<(), String> {
        let name = &self.subscription.name;
        let attempt = handle.delivery_attempt().unwrap_or(1);
        let event: EventEnvelope = serde_json::from_slice(&message.data).map_err(|e| {
            tracing::error!(subscription = %name, message_id = %message.message_id, attempt, error = %e,
                "a message on the bus is not an event envelope");
            format!("not an event envelope: {e}")
        })?;
        let run = std::panic::AssertUnwindSafe(self.handler.handle(&event)).catch_unwind();
        let error = match tokio::time::timeout(self.subscription.retry.attempt_timeout, run).await {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(e))) => e.0,
            Ok(Err(_)) => "the handler panicked".to_string(),
            Err(_) => format!("the attempt ran past {:?}", self.subscription.retry.attempt_timeout),
        };
        tracing::warn!(subscription = %name, event_id = %event.id, event_type = %event.event_type, attempt,
            last = self.is_last(handle), error = %error, "event handler failed");
        Err(error)
    }

    /// Publishes a message that failed its last attempt to the dead-letter topic.
    async fn dead_letter(&self, message: &Message, handle: &Handler, error: &str) -> Result<(), String> {
        let name = &self.subscription.name;
        let attempts = handle.delivery_attempt().unwrap_or_default().to_string();
        let mut attributes = message.attributes.clone();
        attributes.insert("dead_letter_subscription".into(), name.clone());
        attributes.insert("dead_letter_attempts".into(), attempts);
        attributes.insert("dead_letter_error".into(), error.chars().take(1024).collect());
        let letter = Message::new()
            .set_data(message.data.clone())
            .set_ordering_key(message.ordering_key.clone())
            .set_attributes(attributes);
        match self.dead_letters.publish(letter).await {
            Ok(_) => {
                tracing::error!(subscription = %name, message_id = %message.message_id,
                    dead_letter_topic = %dead_letter_topic(name),
                    "event failed its last attempt and was moved to the dead-letter topic");
                Ok(())
            }
            Err(e) => {
                self.dead_letters.resume_publish(message.ordering_key.clone());
                tracing::error!(subscription = %name, message_id = %message.message_id, error = %e,
                    "could not publish a dead letter; the message goes back to Pub/Sub");
                Err(e.to_string())
            }
        }
    }
}

/// Pub/Sub's bounds on a dead-letter policy's attempts.
fn max_attempts(retry: &crate::RetryPolicy) -> i32 {
    retry.max_attempts.clamp(5, 100) as i32
}
