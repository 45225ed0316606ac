//! The Pub/Sub bus against Google's real Pub/Sub emulator, started by the tests: two services
//! (an outbox and relay on one side, an inbox on the other, each with its own bus client),
//! redelivery after a consumer dies before its ack with no second effect, per-key order, and a
//! poison message dead-lettered after the subscription's attempts.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fintech_db::sqlx::{self, Row};
use fintech_db::{Db, PoolLimits};
use fintech_events::outbox::{OutboxRelay, RelayConfig, stage};
use fintech_events::pubsub::{HOLD_SUFFIX, PubSubBus, PubSubConfig};
use fintech_events::{EventBus, EventEnvelope, EventHandler, HandlerError, RetryPolicy, Subscription, inbox};
use fintech_testkit::PubSubEmulator;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "orders.events";

async fn bus(project: &str) -> (PubSubBus, CancellationToken) {
    // A prefix, as every environment has.
    let config = PubSubConfig {
        prefix: "fintech-test-".into(),
        ..PubSubConfig::emulator(project, PubSubEmulator::shared().endpoint())
    };
    bus_with(config).await
}

async fn bus_with(config: PubSubConfig) -> (PubSubBus, CancellationToken) {
    let shutdown = CancellationToken::new();
    (PubSubBus::connect(config, shutdown.clone()).await.unwrap(), shutdown)
}

fn subscription(name: &str) -> Subscription {
    Subscription {
        name: name.to_string(),
        topic: TOPIC.to_string(),
        retry: RetryPolicy { attempt_timeout: Duration::from_secs(10), ..RetryPolicy::default() },
    }
}

fn event(key: &str, n: usize) -> EventEnvelope {
    EventEnvelope::new("order.changed", "orders", key, serde_json::json!({ "n": n }))
}

fn db_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}/{name}.db", dir.path().display())
}

async fn database(dir: &tempfile::TempDir, name: &str) -> Db {
    let url = db_url(dir, name);
    fintech_db::create_database_if_absent(&url).await.unwrap();
    let db = Db::connect(&url, PoolLimits::default()).await.unwrap();
    db.migrate(&fintech_events::SQLITE_MIGRATIONS).await.unwrap();
    sqlx::query("CREATE TABLE effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, k TEXT NOT NULL, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    db
}

/// The consuming service's handler: the inbox claim and the effect row commit together.
/// `hang_after_commit`: the first delivery of that event commits its effect and then never
/// returns, like a process that dies between its commit and its ack.
/// `panic_after_commit`: the first delivery of that event commits its effect and then panics.
struct Consumer {
    db: Db,
    deliveries: AtomicUsize,
    hang_after_commit: Option<String>,
    panic_after_commit: Mutex<Option<String>>,
}

impl Consumer {
    fn new(db: &Db) -> Self {
        Consumer {
            db: db.clone(),
            deliveries: AtomicUsize::new(0),
            hang_after_commit: None,
            panic_after_commit: Mutex::default(),
        }
    }
}

#[async_trait]
impl EventHandler for Consumer {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let mut tx = self.db.begin_write().await.map_err(HandlerError::new)?;
        if inbox::claim(&mut tx, self.db.engine(), "consumer", &event.id).await.map_err(HandlerError::new)? {
            sqlx::query("INSERT INTO effects (event_id, k, n) VALUES (?, ?, ?)")
                .bind(&event.id)
                .bind(&event.ordering_key)
                .bind(event.data["n"].as_i64().unwrap_or(-1))
                .execute(&mut *tx)
                .await
                .map_err(HandlerError::new)?;
        }
        tx.commit().await.map_err(HandlerError::new)?;
        if self.hang_after_commit.as_deref() == Some(event.id.as_str()) {
            std::future::pending::<()>().await;
        }
        let panic_now = {
            let mut once = self.panic_after_commit.lock().unwrap();
            if once.as_deref() == Some(event.id.as_str()) { once.take().is_some() } else { false }
        };
        assert!(!panic_now, "the consumer fails between its commit and its ack");
        Ok(())
    }
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    sqlx::query(sql).fetch_one(db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap()
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Effects per key in the order they were committed.
async fn effects_by_key(db: &Db) -> HashMap<String, Vec<i64>> {
    let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for row in sqlx::query("SELECT k, n FROM effects ORDER BY seq").fetch_all(db.pool()).await.unwrap() {
        by_key.entry(row.get::<String, _>("k")).or_default().push(row.get::<i64, _>("n"));
    }
    by_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_exchange_events_through_the_outbox_in_key_order() {
    let emulator = PubSubEmulator::shared();
    let project = emulator.project();
    let dir = tempfile::tempdir().unwrap();
    let producer_db = database(&dir, "orders").await;
    let consumer_db = database(&dir, "billing").await;

    // The consumer subscribes first: Pub/Sub drops what reaches a topic with no subscription.
    let (consumer_bus, consumer_stop) = bus(&project).await;
    let consumer = Arc::new(Consumer::new(&consumer_db));
    consumer_bus.subscribe(subscription("billing.orders.events"), consumer.clone()).await.unwrap();

    const KEYS: usize = 4;
    const PER_KEY: usize = 25;
    for n in 0..PER_KEY {
        let mut tx = producer_db.begin_write().await.unwrap();
        for k in 0..KEYS {
            stage(&mut tx, TOPIC, &event(&format!("order-{k}"), n)).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let (producer_bus, producer_stop) = bus(&project).await;
    let relay_stop = CancellationToken::new();
    let relay = OutboxRelay::new(producer_db.clone(), Arc::new(producer_bus), RelayConfig::default());
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));

    let total = (KEYS * PER_KEY) as i64;
    wait_for("every effect", Duration::from_secs(60), async || {
        count(&consumer_db, "SELECT COUNT(*) FROM effects").await >= total
    })
    .await;
    wait_for("the outbox to be marked published", Duration::from_secs(20), async || {
        count(&producer_db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&consumer_db, "SELECT COUNT(*) FROM effects").await, total, "one effect per event");
    for (key, ns) in effects_by_key(&consumer_db).await {
        assert_eq!(ns, (0..PER_KEY as i64).collect::<Vec<_>>(), "order of {key}");
    }
    relay_stop.cancel();
    relay_task.await.unwrap();
    producer_stop.cancel();
    consumer_stop.cancel();
    consumer_bus.closed().await;
}

/// The environment variable that makes [`dying_consumer_process`] the consumer process of the
/// crash test (its value: what it needs, as JSON). Unset: that function does nothing.
const DYING_CONSUMER: &str = "PUBSUB_TEST_DYING_CONSUMER";

/// Not a test of its own: this test binary, started again by the crash test below for this one
/// function, is the consumer process that dies. It subscribes, publishes two events, commits the
/// effect of the first and never acks it (its handler hangs), acks the second, and waits to be
/// killed. Run with the rest of the suite it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dying_consumer_process() {
    let Ok(spec) = std::env::var(DYING_CONSUMER) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let text = |key: &str| spec[key].as_str().unwrap().to_owned();
    let config = PubSubConfig { ordering: false, ..PubSubConfig::emulator(text("project"), text("endpoint")) };
    let db = Db::connect(&text("database"), PoolLimits::default()).await.unwrap();
    let victim: EventEnvelope = serde_json::from_value(spec["victim"].clone()).unwrap();
    let (bus, _never_stopped) = bus_with(config).await;
    let dying = Arc::new(Consumer { hang_after_commit: Some(victim.id.clone()), ..Consumer::new(&db) });
    bus.subscribe(subscription("billing.orders.events"), dying).await.unwrap();
    bus.publish(TOPIC, &[victim, event("order-2", 0)]).await.unwrap();
    std::future::pending::<()>().await;
}

/// Kills the child process when dropped (also when the test fails before it does).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_process_that_dies_before_its_ack_gets_the_event_again_with_no_second_effect() {
    let emulator = PubSubEmulator::shared();
    // Unordered: see `PubSubConfig::ordering` for the emulator's failure with ordered ones.
    let config = PubSubConfig { ordering: false, ..PubSubConfig::emulator(emulator.project(), emulator.endpoint()) };
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "billing").await;
    let victim = event("order-1", 0);
    // The first consumer is a process of its own, killed (SIGKILL) after committing the effect of
    // `victim` and before acking it; its other event was acked. The kernel closes its streams.
    let spec = serde_json::json!({
        "project": config.project, "endpoint": config.emulator, "database": db_url(&dir, "billing"), "victim": victim,
    });
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "dying_consumer_process", "--quiet"])
        .env(DYING_CONSUMER, spec.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    wait_for("the effects of the first deliveries", Duration::from_secs(60), async || {
        count(&db, "SELECT COUNT(*) FROM effects").await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the ack of the other one
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let (second, second_stop) = bus_with(config).await;
    let survivor = Arc::new(Consumer::new(&db));
    second.subscribe(subscription("billing.orders.events"), survivor.clone()).await.unwrap();
    // Pub/Sub redelivers once the dead consumer's lease (the ack deadline, 10 s) has run out.
    wait_for("the redelivery", Duration::from_secs(90), async || survivor.deliveries.load(Ordering::SeqCst) >= 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(survivor.deliveries.load(Ordering::SeqCst), 1, "only the unacked event came back");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM effects").await, 2, "the redelivered event had no second effect");
    assert_eq!(effects_of(&db, &victim.id).await, 1);
    second_stop.cancel();
    second.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_fails_between_commit_and_ack_gets_the_event_again_in_order() {
    let emulator = PubSubEmulator::shared();
    let (bus, stop) = bus(&emulator.project()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "billing").await;
    let events: Vec<_> = (0..5).map(|n| event("order-1", n)).collect();
    let consumer = Arc::new(Consumer::new(&db));
    *consumer.panic_after_commit.lock().unwrap() = Some(events[1].id.clone());
    bus.subscribe(subscription("billing.orders.events"), consumer.clone()).await.unwrap();
    bus.publish(TOPIC, &events).await.unwrap();
    wait_for("every effect", Duration::from_secs(60), async || count(&db, "SELECT COUNT(*) FROM effects").await == 5)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM effects").await, 5, "one effect per event");
    assert_eq!(effects_of(&db, &events[1].id).await, 1, "the failed event's effect is not repeated");
    assert_eq!(effects_by_key(&db).await["order-1"], vec![0, 1, 2, 3, 4]);
    assert!(consumer.deliveries.load(Ordering::SeqCst) >= 6, "the failed event was delivered again");
    stop.cancel();
    bus.closed().await;
}

async fn effects_of(db: &Db, event_id: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM effects WHERE event_id = ?")
        .bind(event_id)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

/// Fails every delivery of one event; records the others.
struct Poisoned {
    poison: String,
    attempts: AtomicUsize,
    handled: Mutex<Vec<String>>,
}

#[async_trait]
impl EventHandler for Poisoned {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if event.id == self.poison {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            return Err(HandlerError("cannot process this one".into()));
        }
        self.handled.lock().unwrap().push(event.id.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_after_the_attempt_limit() {
    let emulator = PubSubEmulator::shared();
    let project = emulator.project();
    let (bus, stop) = bus(&project).await;
    let poison = event("order-9", 0);
    let healthy = event("order-8", 0);
    let handler =
        Arc::new(Poisoned { poison: poison.id.clone(), attempts: AtomicUsize::new(0), handled: Mutex::default() });
    let sub = Subscription {
        retry: RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        },
        ..subscription("ledger.orders.events")
    };
    bus.subscribe(sub, handler.clone()).await.unwrap();
    bus.publish(TOPIC, &[poison.clone(), healthy.clone()]).await.unwrap();

    // The dead letter arrives on the subscription's dead-letter topic, where an operator reads it.
    let dead = Arc::new(Poisoned { poison: String::new(), attempts: AtomicUsize::new(0), handled: Mutex::default() });
    let dead_sub = Subscription {
        name: format!("ledger.dead-letter{HOLD_SUFFIX}"),
        topic: "ledger.dead-letter".into(),
        retry: RetryPolicy::default(),
    };
    bus.subscribe(dead_sub, dead.clone()).await.unwrap();
    wait_for("the dead letter", Duration::from_secs(90), async || !dead.handled.lock().unwrap().is_empty()).await;
    assert_eq!(*dead.handled.lock().unwrap(), vec![poison.id.clone()], "the poison event, whole");
    assert_eq!(handler.attempts.load(Ordering::SeqCst), 5, "attempts before the dead letter");
    assert_eq!(*handler.handled.lock().unwrap(), vec![healthy.id.clone()], "other keys were not held up");
    stop.cancel();
    bus.closed().await;
}
