//! Rate limits in a real Redis (started by the test): two limiters standing for two replicas
//! draw from the same buckets; failures counted by one are seen by the other and forgiven for
//! both; a Redis that stops answering leaves the limits on, per process.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fintech_kit::ratelimit::{Limiter, RetryAfter, Rule, Store};
use fintech_testkit::RedisServer;

fn prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn replicas_share_buckets_in_redis() {
    let url = RedisServer::shared().url();
    let store = Store::redis(&url, &prefix()).await.unwrap();
    let rule = Rule { capacity: 3, refill_every: Duration::from_millis(300) };
    let (a, b) = (Limiter::new("per-ip", rule, &store), Limiter::new("per-ip", rule, &store));

    a.take("10.0.0.1").await.unwrap();
    b.take("10.0.0.1").await.unwrap();
    a.take("10.0.0.1").await.unwrap();
    let RetryAfter(wait) = b.take("10.0.0.1").await.expect_err("the burst of 3 is shared by both replicas");
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(300), "{wait:?}");
    a.take("10.0.0.2").await.expect("another key has its own bucket");
    // Another rule's limiter has other buckets, even for the same key.
    Limiter::new("failures", rule, &store).take("10.0.0.1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    b.take("10.0.0.1").await.expect("one token came back");
    assert!(a.take("10.0.0.1").await.is_err());

    // Failures: counted by one replica, seen by the other, forgiven for both.
    let slow = Rule { capacity: 2, refill_every: Duration::from_secs(60) };
    let (a, b) = (Limiter::new("fail", slow, &store), Limiter::new("fail", slow, &store));
    a.check("ana@example.com|10.0.0.9").await.unwrap();
    a.charge("ana@example.com|10.0.0.9").await;
    b.charge("ana@example.com|10.0.0.9").await;
    let RetryAfter(wait) = b.check("ana@example.com|10.0.0.9").await.expect_err("two failures");
    assert!(wait > Duration::from_secs(50), "{wait:?}");
    a.check("ana@example.com|10.0.0.9").await.expect_err("seen by the other replica");
    b.forgive("ana@example.com|10.0.0.9").await;
    a.check("ana@example.com|10.0.0.9").await.expect("forgiven for both");
}

#[tokio::test]
async fn keys_hold_no_personal_data_and_expire() {
    let url = RedisServer::shared().url();
    let prefix = prefix();
    let store = Store::redis(&url, &prefix).await.unwrap();
    let limiter = Limiter::new("per-phone", Rule { capacity: 5, refill_every: Duration::from_secs(2) }, &store);
    limiter.take("+15551234567").await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with(&format!("{prefix}ratelimit:per-phone:")) && !keys[0].contains("5551234567"),
        "{keys:?}"
    );
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 3_000, "the bucket expires once it would be full again: {ttl} ms");
}

#[tokio::test]
async fn a_silent_redis_leaves_the_limits_on_per_process() {
    // A Redis that accepts the connection, then is gone: the limiter falls back to memory.
    let port = fintech_testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(fintech_testkit::require_binary("redis-server", "redis-server"))
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}/0");
    let store = loop {
        match Store::redis(&url, &prefix()).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let limiter = Limiter::new("per-ip", Rule { capacity: 2, refill_every: Duration::from_secs(60) }, &store);
    limiter.take("10.0.0.1").await.unwrap();
    limiter.take("10.0.0.1").await.unwrap();
    assert!(limiter.take("10.0.0.1").await.is_err(), "still limited without Redis");
    // And a Redis that is not there at start is refused, clearly.
    let err = Store::redis(&url, "x:").await.unwrap_err();
    assert!(!err.to_string().is_empty());
}
