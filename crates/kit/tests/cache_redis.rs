//! The shared cache in a real Redis (started by the test): two caches standing for two replicas
//! see each other's entries; entries only move forward; they expire; a Redis that does not answer
//! is a miss, quickly.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fintech_kit::cache::{SharedCache, Versioned};
use fintech_kit::ratelimit::Store;
use fintech_testkit::RedisServer;

async fn redis(prefix: &str) -> fintech_kit::ratelimit::RedisStore {
    match Store::redis(&RedisServer::shared().url(), prefix, None).await.unwrap() {
        Store::Redis(r) => r,
        Store::Memory => panic!("a Redis store"),
    }
}

#[tokio::test]
async fn replicas_share_entries_that_only_move_forward() {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let store = redis(&prefix).await;
    let a = SharedCache::new("rules", Duration::from_secs(60), Some(&store));
    let b = SharedCache::new("rules", Duration::from_secs(60), Some(&store));
    assert!(a.is_shared());
    assert_eq!(b.get::<Vec<i64>>("set").await, None, "nothing yet");

    assert!(a.offer("set", 2, &vec![20, 21]).await);
    assert_eq!(b.get::<Vec<i64>>("set").await, Some(Versioned { version: 2, value: vec![20, 21] }));
    assert!(!b.offer("set", 1, &vec![10]).await, "an older version never replaces a newer one");
    assert!(b.offer("set", 3, &vec![30]).await);
    assert!(a.offer("set", 3, &vec![30]).await, "the same version again: kept, its time renewed");
    assert_eq!(a.get::<Vec<i64>>("set").await, Some(Versioned { version: 3, value: vec![30] }));
    assert_eq!(a.get::<Vec<i64>>("other").await, None, "keys apart");
    // Another cache's entries are its own, and so are another deployment's (prefix).
    assert_eq!(SharedCache::new("quotes", Duration::from_secs(60), Some(&store)).get::<Vec<i64>>("set").await, None);
    let elsewhere = redis(&format!("other-{prefix}")).await;
    assert_eq!(SharedCache::new("rules", Duration::from_secs(60), Some(&elsewhere)).get::<Vec<i64>>("set").await, None);
    // An entry that does not decode as asked is a miss, not an error.
    assert_eq!(a.get::<String>("set").await, None);

    // Entries expire by themselves.
    let short = SharedCache::new("short", Duration::from_millis(200), Some(&store));
    assert!(short.offer("k", 1, &"v").await);
    assert_eq!(short.get::<String>("k").await.map(|e| e.value), Some("v".to_owned()));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(short.get::<String>("k").await, None, "expired");
}

#[tokio::test]
async fn a_redis_that_does_not_answer_is_a_miss() {
    // A server of this test's own: pausing the shared one would stall the other tests.
    let server = RedisServer::start();
    let store = match Store::redis(&server.url(), "t:", None).await.unwrap() {
        Store::Redis(r) => r,
        Store::Memory => panic!("a Redis store"),
    };
    let cache = SharedCache::new("rules", Duration::from_secs(60), Some(&store));
    assert!(cache.offer("set", 1, &1).await);
    let mut conn = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(2000).query_async(&mut conn).await.unwrap();
    let started = Instant::now();
    assert_eq!(cache.get::<i64>("set").await, None);
    assert!(!cache.offer("set", 2, &2).await);
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}
