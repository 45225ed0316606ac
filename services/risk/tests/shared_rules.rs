//! Replicas sharing the rules in force through a real Redis (`fintech_kit::cache`): a change
//! made on one is read from Redis by the others, the database is read only on a miss, and an
//! entry that outlived a change made behind Redis's back expires.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use fintech_identity::IdentityService;
use fintech_kit::cache::SharedCache;
use fintech_kit::ratelimit::Store;
use fintech_risk::rules::Rules;
use fintech_risk::{Risk, RiskService};
use fintech_testkit::app::{Backend, Spawn, TestApp};
use serde_json::json;

fn rules(review_at: u32) -> Rules {
    serde_json::from_value(json!({
        "review_at": review_at,
        "decline_at": 100,
        "amount_limits": [],
        "velocity": [],
        "blocked_bins": [],
        "blocked_countries": [],
        "bin_countries": []
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_rules_in_force_through_redis() {
    let app = TestApp::spawn(&[&IdentityService, &RiskService], Spawn::new(Backend::Sqlite)).await;
    let db = app.db("risk").await;
    let prefix = format!("t-{}:", uuid::Uuid::new_v4().simple());
    let Store::Redis(redis) = Store::redis(&fintech_testkit::RedisServer::shared().url(), &prefix, None).await.unwrap()
    else {
        panic!("a Redis store");
    };
    let replica = |redis: Option<&fintech_kit::ratelimit::RedisStore>| {
        let shared = Arc::new(SharedCache::new("risk", Duration::from_millis(1500), redis));
        // No copy of its own kept: every call asks Redis, then the database.
        Risk::new(db.clone(), Arc::new(tokio::sync::Notify::new()), Duration::ZERO, shared)
    };
    let (a, b) = (replica(Some(&redis)), replica(Some(&redis)));

    assert_eq!(b.rules().await.unwrap().version, 0, "the built-in defaults, nothing stored");
    let set = a.set_rules(rules(40), "admin-1").await.unwrap();
    assert_eq!(set.version, 1);
    let seen = b.rules().await.unwrap();
    assert_eq!((seen.version, seen.rules.review_at), (1, 40));

    // A version written behind Redis's back (as by a restored backup or a hand-made fix) is not
    // seen while Redis holds the shared copy: proof that the replicas read Redis, not the database...
    let document = serde_json::to_string(&rules(60)).unwrap();
    sqlx::query("INSERT INTO rule_sets (version, document, created_by, created_at) VALUES (2, ?, 'dba', '2026-11-27T00:00:00Z')")
        .bind(&document)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(b.rules().await.unwrap().version, 1, "served from Redis");
    let alone = replica(None);
    assert_eq!(alone.rules().await.unwrap().version, 2, "a replica without Redis reads the database");
    // ...until the entry expires: then the first replica to miss reads the database and shares it.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let seen = b.rules().await.unwrap();
    assert_eq!((seen.version, seen.rules.review_at), (2, 60));
    sqlx::query("DELETE FROM rule_sets WHERE version = 2").execute(db.pool()).await.unwrap();
    assert_eq!(a.rules().await.unwrap().version, 2, "a shares what b read");

    // A change through the API moves the shared copy forward at once.
    let set = a.set_rules(rules(30), "admin-1").await.unwrap();
    assert_eq!(set.version, 2, "version 2 was deleted: the next is 2 again");
    assert_eq!(b.rules().await.unwrap().rules.review_at, 30);
}
