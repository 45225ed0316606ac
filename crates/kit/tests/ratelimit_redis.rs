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
    let store = Store::redis(&url, &prefix(), None).await.unwrap();
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
    let store = Store::redis(&url, &prefix, None).await.unwrap();
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
        match Store::redis(&url, &prefix(), None).await {
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
    let err = Store::redis(&url, "x:", None).await.unwrap_err();
    assert!(!err.to_string().is_empty());
}

/// Runs `openssl` with `args` in `dir`, failing loudly.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(fintech_testkit::require_binary("openssl", "openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Memorystore's shape: Redis over TLS with a server certificate from a private authority. With
/// that authority's certificate the limiter connects; with the system's roots it is refused.
#[tokio::test]
async fn redis_over_tls_with_a_private_authority() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let port = fintech_testkit::free_port();
    let mut child = std::process::Command::new(fintech_testkit::require_binary("redis-server", "redis-server"))
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem"])
        .args(["--tls-auth-clients", "no"])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("rediss://127.0.0.1:{port}/0");
    let ca = std::fs::read(d.join("ca.pem")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let store = loop {
        match Store::redis(&url, &prefix(), Some(&ca)).await {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => panic!("no TLS Redis: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let limiter = Limiter::new("per-ip", Rule { capacity: 1, refill_every: Duration::from_secs(60) }, &store);
    limiter.take("10.0.0.1").await.unwrap();
    assert!(limiter.take("10.0.0.1").await.is_err());
    assert!(Store::redis(&url, &prefix(), None).await.is_err(), "a certificate from an unknown authority is refused");
    child.kill().unwrap();
    child.wait().unwrap();
}
