//! The outbox relay is killed and restarted mid-stream while acknowledgements get lost, and
//! every event still has exactly one effect, in per-key order. On SQLite and on a real MariaDB.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fintech_db::sqlx::{self, Row};
use fintech_db::{Db, Engine, PoolLimits};
use fintech_events::memory::{InProcessBus, MemoryDeadLetters};
use fintech_events::outbox::{EventSource, OutboxRelay, RelayConfig, stage, stage_derived, stage_many};
use fintech_events::{BusError, EventBus, EventEnvelope, EventHandler, HandlerError, RetryPolicy, Subscription, inbox};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "orders.events";
const KEYS: usize = 8;
const EVENTS: usize = 600;

/// Delivers, then "loses" every third acknowledgement, so the relay publishes those rows again.
#[derive(Debug)]
struct LossyAckBus {
    inner: InProcessBus,
    calls: AtomicUsize,
}

#[async_trait]
impl EventBus for LossyAckBus {
    async fn publish(&self, topic: &str, events: &[EventEnvelope]) -> Result<(), BusError> {
        self.inner.publish(topic, events).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
            return Err(BusError::Transport("acknowledgement lost".into()));
        }
        Ok(())
    }
    async fn subscribe(&self, s: Subscription, h: Arc<dyn EventHandler>) -> Result<(), BusError> {
        self.inner.subscribe(s, h).await
    }
}

/// The consumer's effect: a row per event, written with the inbox claim in one transaction.
struct Effects {
    db: Db,
    deliveries: AtomicUsize,
}

#[async_trait]
impl EventHandler for Effects {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let mut tx = self.db.begin_write().await.map_err(HandlerError::new)?;
        if !inbox::claim(&mut tx, self.db.engine(), "effects", &event.id).await.map_err(HandlerError::new)? {
            tx.commit().await.map_err(HandlerError::new)?;
            return Ok(());
        }
        sqlx::query("INSERT INTO effects (event_id, k, n) VALUES (?, ?, ?)")
            .bind(&event.id)
            .bind(&event.ordering_key)
            .bind(event.data["n"].as_i64().unwrap_or(-1))
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::new)?;
        tx.commit().await.map_err(HandlerError::new)
    }
}

/// The business rows that derived outbox rows reference: the relay builds their events from them.
#[derive(Debug)]
struct Facts;

#[async_trait]
impl EventSource for Facts {
    fn name(&self) -> &'static str {
        "facts"
    }

    async fn events(&self, conn: &mut sqlx::AnyConnection, keys: &[String]) -> Result<Vec<EventEnvelope>, sqlx::Error> {
        let mut events = Vec::new();
        for key in keys {
            let row = sqlx::query("SELECT k, n FROM facts WHERE id = ?").bind(key).fetch_one(&mut *conn).await?;
            let n: i64 = row.try_get("n")?;
            events.push(EventEnvelope {
                id: format!("fact-{key}"),
                event_type: "order.changed".into(),
                source: "orders".into(),
                ordering_key: row.try_get("k")?,
                time: "2026-11-26T00:00:00Z".into(),
                data: serde_json::json!({ "n": n }),
            });
        }
        Ok(events)
    }
}

fn sources() -> [Arc<dyn EventSource>; 1] {
    [Arc::new(Facts)]
}

async fn database(engine: Engine) -> (Db, Option<tempfile::TempDir>) {
    let (url, dir) = match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}/events.db", dir.path().display()), Some(dir))
        }
        Engine::MySql => (fintech_testkit::MariaDb::shared().fresh_database_url(), None),
    };
    fintech_db::create_database_if_absent(&url).await.unwrap();
    let db = Db::connect(&url, PoolLimits { max_connections: 8, ..PoolLimits::default() }).await.unwrap();
    let (platform, effects) = match engine {
        Engine::Sqlite => (
            &fintech_events::SQLITE_MIGRATIONS,
            "CREATE TABLE effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, k TEXT NOT NULL, n BIGINT NOT NULL)",
        ),
        Engine::MySql => (
            &fintech_events::MYSQL_MIGRATIONS,
            "CREATE TABLE effects (seq BIGINT AUTO_INCREMENT PRIMARY KEY, event_id VARCHAR(64) NOT NULL, k VARCHAR(64) NOT NULL, n BIGINT NOT NULL)",
        ),
    };
    db.migrate(platform).await.unwrap();
    sqlx::query(effects).execute(db.pool()).await.unwrap();
    sqlx::query("CREATE TABLE facts (id VARCHAR(64) PRIMARY KEY, k VARCHAR(64) NOT NULL, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    (db, dir)
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    sqlx::query(sql).fetch_one(db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap()
}

/// Stages events `range` in transactions of three, like services do after a business write:
/// one transaction in three stages them one by one, the next together (one outbox row carrying
/// three events), the next by reference (one row naming three `facts` rows written with it).
async fn produce(db: Db, range: std::ops::Range<usize>) {
    let ids: Vec<usize> = range.collect();
    for (i, chunk) in ids.chunks(3).enumerate() {
        let mut tx = db.begin_write().await.unwrap();
        let events: Vec<EventEnvelope> = chunk
            .iter()
            .map(|&n| {
                EventEnvelope::new("order.changed", "orders", format!("k{}", n % KEYS), serde_json::json!({ "n": n }))
            })
            .collect();
        match i % 3 {
            0 => {
                for event in &events {
                    stage(&mut tx, TOPIC, event).await.unwrap();
                }
            }
            1 => stage_many(&mut tx, TOPIC, &events).await.unwrap(),
            _ => {
                let mut keys = Vec::new();
                for &n in chunk {
                    sqlx::query("INSERT INTO facts (id, k, n) VALUES (?, ?, ?)")
                        .bind(format!("f{n}"))
                        .bind(format!("k{}", n % KEYS))
                        .bind(n as i64)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    keys.push(format!("f{n}"));
                }
                stage_derived(&mut tx, TOPIC, "facts", ("k0", "order.changed"), &keys).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
}

async fn relay_killed_and_restarted_mid_stream(engine: Engine) {
    let (db, _dir) = database(engine).await;
    let dead = MemoryDeadLetters::default();
    let bus = Arc::new(LossyAckBus { inner: InProcessBus::new(Arc::new(dead.clone())), calls: AtomicUsize::new(0) });
    let effects = Arc::new(Effects { db: db.clone(), deliveries: AtomicUsize::new(0) });
    let retry = RetryPolicy {
        max_attempts: 20,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    bus.subscribe(Subscription { name: "effects".into(), topic: TOPIC.into(), retry }, effects.clone()).await.unwrap();

    let config = RelayConfig {
        batch_size: 25,
        idle_poll: Duration::from_millis(10),
        lease: Duration::from_millis(300),
        max_backoff: Duration::from_millis(40),
        ..RelayConfig::default()
    };
    produce(db.clone(), 0..EVENTS / 2).await;
    let producer = tokio::spawn(produce(db.clone(), EVENTS / 2..EVENTS));

    // First relay: killed (aborted at whatever await it is in) once part of the stream is through.
    let first = tokio::spawn(
        OutboxRelay::new(db.clone(), bus.clone(), config.clone()).with_sources(sources()).run(CancellationToken::new()),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(&db, "SELECT COUNT(*) FROM effects").await < 150 {
        assert!(Instant::now() < deadline, "the first relay made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.abort();
    let _ = first.await;
    let after_kill = scalar(&db, "SELECT COUNT(*) FROM effects").await;
    assert!(after_kill < EVENTS as i64, "the kill happened mid-stream ({after_kill} effects)");

    // Second relay: a new owner, so it must wait for the dead relay's lease to expire.
    let stop = CancellationToken::new();
    let second =
        tokio::spawn(OutboxRelay::new(db.clone(), bus.clone(), config).with_sources(sources()).run(stop.clone()));
    producer.await.unwrap();
    loop {
        let pending = scalar(&db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await;
        let done = scalar(&db, "SELECT COUNT(*) FROM effects").await;
        if pending == 0 && done >= EVENTS as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {pending} unpublished, {done} effects");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    second.await.unwrap();

    // Rows carrying several events were among them, and every event was in exactly one row.
    assert!(scalar(&db, "SELECT COUNT(*) FROM outbox WHERE event_count > 1 AND derived_from IS NULL").await > 0);
    assert!(scalar(&db, "SELECT COUNT(*) FROM outbox WHERE derived_from = 'facts'").await > 0);
    assert_eq!(scalar(&db, "SELECT CAST(SUM(event_count) AS SIGNED) FROM outbox").await, EVENTS as i64);
    // Exactly one effect per event...
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM effects").await, EVENTS as i64);
    assert_eq!(scalar(&db, "SELECT COUNT(DISTINCT event_id) FROM effects").await, EVENTS as i64);
    assert!(dead.all().is_empty());
    // ...although some were delivered more than once (the lost acks and the kill)...
    let deliveries = effects.deliveries.load(Ordering::SeqCst);
    assert!(deliveries > EVENTS, "redeliveries happened and were absorbed: {deliveries} deliveries");
    // ...and in per-key order.
    let rows = sqlx::query("SELECT k, n FROM effects ORDER BY seq").fetch_all(db.pool()).await.unwrap();
    let mut last = [-1i64; KEYS];
    for row in rows {
        let k: String = row.try_get("k").unwrap();
        let n: i64 = row.try_get("n").unwrap();
        let key: usize = k[1..].parse().unwrap();
        assert!(n > last[key], "key {k}: {n} came after {}", last[key]);
        last[key] = n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_relay_killed_and_restarted_mid_stream() {
    relay_killed_and_restarted_mid_stream(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_relay_killed_and_restarted_mid_stream() {
    relay_killed_and_restarted_mid_stream(Engine::MySql).await;
}

#[tokio::test]
async fn only_one_relay_holds_the_lease() {
    let (db, _dir) = database(Engine::Sqlite).await;
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new(Arc::new(MemoryDeadLetters::default())));
    let config = RelayConfig { lease: Duration::from_millis(200), ..RelayConfig::default() };
    let a = OutboxRelay::new(db.clone(), bus.clone(), config.clone());
    let b = OutboxRelay::new(db.clone(), bus, config);
    assert!(a.acquire_lease().await.unwrap());
    assert!(a.acquire_lease().await.unwrap(), "the holder renews");
    assert!(!b.acquire_lease().await.unwrap(), "a second relay waits");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(b.acquire_lease().await.unwrap(), "an expired lease is taken over");
    assert!(!a.acquire_lease().await.unwrap());
}

/// Leases of other names (a service's periodic job) in the same table: made on first use, one
/// live holder each, independent of the relay's; on both engines.
async fn named_leases_are_independent(engine: Engine) {
    use fintech_events::lease::Lease;
    let (db, _dir) = database(engine).await;
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::new(InProcessBus::new(Arc::new(MemoryDeadLetters::default()))),
        RelayConfig::default(),
    );
    let length = Duration::from_millis(300);
    let (a, b) = (Lease::new(db.clone(), "monthly", length), Lease::new(db.clone(), "monthly", length));
    assert!(a.acquire().await.unwrap(), "a name never used is made and taken");
    assert!(!b.acquire().await.unwrap(), "one live holder");
    assert!(relay.acquire_lease().await.unwrap(), "the relay's lease is another row");
    assert!(Lease::new(db.clone(), "other", length).acquire().await.unwrap());
    assert!(a.acquire().await.unwrap(), "renewed");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(b.acquire().await.unwrap(), "expired: taken over");
    assert!(!a.acquire().await.unwrap());
    let owner: String =
        sqlx::query_scalar("SELECT owner FROM outbox_lease WHERE name = 'monthly'").fetch_one(db.pool()).await.unwrap();
    assert_eq!(owner, b.owner());
}

#[tokio::test]
async fn sqlite_named_leases_are_independent() {
    named_leases_are_independent(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_named_leases_are_independent() {
    named_leases_are_independent(Engine::MySql).await;
}

/// A row naming an event source the relay does not have stops the relay at that row with an
/// error that names it (publishing later rows first would break the per-key order); a relay
/// that has the source publishes it.
#[tokio::test]
async fn a_row_of_an_unknown_source_is_not_skipped() {
    let (db, _dir) = database(Engine::Sqlite).await;
    let dead = MemoryDeadLetters::default();
    let bus = Arc::new(InProcessBus::new(Arc::new(dead.clone())));
    let effects = Arc::new(Effects { db: db.clone(), deliveries: AtomicUsize::new(0) });
    let subscription = Subscription { name: "effects".into(), topic: TOPIC.into(), retry: RetryPolicy::default() };
    bus.subscribe(subscription, effects.clone()).await.unwrap();
    produce(db.clone(), 0..9).await;

    let without = OutboxRelay::new(db.clone(), bus.clone(), RelayConfig::default());
    let err = without.relay_once().await.unwrap_err();
    assert!(err.to_string().contains("\"facts\""), "{err}");
    // The pass publishes nothing (the pass's rows are read before any is published): all five
    // rows (three single, one carrying three events, one derived) are still there.
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await, 5);

    let with = OutboxRelay::new(db.clone(), bus, RelayConfig::default()).with_sources(sources());
    with.relay_once().await.unwrap();
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while scalar(&db, "SELECT COUNT(*) FROM effects").await < 9 {
        assert!(Instant::now() < deadline, "the derived events were not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dead.all().is_empty());
}
