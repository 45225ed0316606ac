//! Black-box tests of audit, run on SQLite and on a MariaDB server the tests start themselves.
//!
//! Events are staged in the audit database's own outbox: its relay publishes them on the
//! in-process bus like any service's relay, each to the subscriptions of its topic, so they reach
//! the log the way every event does. They are recorded in order and once; operators read them;
//! `verify` passes on the untouched chain and names each kind of tampering done with raw SQL.
//!
//! The tampering steps assume the log is quiet meanwhile (no other service here publishes
//! during them): each step waits for the head to settle first, and puts the rows back after.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fintech_audit::store::StoredRecord;
use fintech_audit::verify::Problem;
use fintech_audit::{Appended, AuditError, AuditService, Report, TOPICS, chain};
use fintech_auth::{Kind, Role};
use fintech_db::Db;
use fintech_db::sqlx::{self, Row};
use fintech_events::EventEnvelope;
use fintech_identity::IdentityService;
use fintech_identity::mint::Minter;
use fintech_testkit::app::{Backend, Spawn, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Longest wait for the relay and the bus (the relay polls every 250 ms).
const WAIT: Duration = Duration::from_secs(30);

struct App {
    app: TestApp,
    /// A pool on audit's database, for staging events and for tampering.
    db: Db,
    minter: Minter,
}

async fn spawn_app(spawn: Spawn) -> App {
    let app = TestApp::spawn(&[&IdentityService, &AuditService], spawn).await;
    let db = app.db("audit").await;
    let minter = Minter::from_registry(&app.registry).unwrap();
    App { app, db, minter }
}

/// One event per topic of the log, in `TOPICS` order, with data that is not all ASCII.
fn events(tag: &str) -> Vec<(&'static str, EventEnvelope)> {
    TOPICS
        .iter()
        .enumerate()
        .map(|(i, topic)| {
            let data = json!({ "i": i, "tag": tag, "note": "façade, 10 €, \"quoted\"" });
            (*topic, EventEnvelope::new(format!("test.event_{i}"), "audit-test", format!("{tag}-subject-{i}"), data))
        })
        .collect()
}

/// Stages `events` in audit's outbox in one transaction, one row each. Consecutive events have
/// different topics, so the relay publishes them one at a time, in order.
async fn stage(db: &Db, events: &[(&str, EventEnvelope)]) {
    let mut tx = db.begin_write().await.unwrap();
    for (topic, event) in events {
        fintech_events::outbox::stage(&mut tx, topic, event).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn seq_of(db: &Db, event_id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT seq FROM audit_records WHERE event_id = ?")
        .bind(event_id)
        .fetch_optional(db.pool())
        .await
        .unwrap()
}

/// Waits until every event is recorded; answers their seqs, in the order given.
async fn recorded(db: &Db, events: &[(&str, EventEnvelope)]) -> Vec<i64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut seqs = Vec::new();
        for (_, event) in events {
            match seq_of(db, &event.id).await {
                Some(seq) => seqs.push(seq),
                None => break,
            }
        }
        if seqs.len() == events.len() {
            return seqs;
        }
        assert!(Instant::now() < deadline, "{} of {} events recorded", seqs.len(), events.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn head_row(db: &Db) -> (i64, String) {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db.pool()).await.unwrap();
    (row.try_get("seq").unwrap(), row.try_get("hash").unwrap())
}

/// The head once it has not moved for half a second: no append in flight.
async fn settled_head(db: &Db) -> (i64, String) {
    let deadline = Instant::now() + WAIT;
    let mut last = head_row(db).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = head_row(db).await;
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the head never settled");
        last = now;
    }
}

async fn verify(db: &Db, anchor: Option<(u64, String)>) -> Report {
    fintech_audit::verify(db, |_| {}, anchor).await.unwrap()
}

/// Record `seq` as stored.
async fn record(db: &Db, seq: i64) -> StoredRecord {
    let mut conn = db.pool().acquire().await.unwrap();
    let page = fintech_audit::store::records_after(&mut conn, seq - 1, 1).await.unwrap();
    page.into_iter().find(|r| r.seq == seq).unwrap()
}

/// Puts a record back as it was.
async fn put_back(db: &Db, r: &StoredRecord) {
    sqlx::query(
        "INSERT INTO audit_records (seq, event_id, topic, event_type, source, subject, occurred_at, recorded_at, \
         data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.seq)
    .bind(&r.event_id)
    .bind(&r.topic)
    .bind(&r.event_type)
    .bind(&r.source)
    .bind(&r.subject)
    .bind(&r.occurred_at)
    .bind(&r.recorded_at)
    .bind(&r.data)
    .bind(&r.prev_hash)
    .bind(&r.hash)
    .execute(db.pool())
    .await
    .unwrap();
}

async fn delete(db: &Db, seq: i64) {
    sqlx::query("DELETE FROM audit_records WHERE seq = ?").bind(seq).execute(db.pool()).await.unwrap();
}

async fn set_head(db: &Db, seq: i64, hash: &str) {
    sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")
        .bind(seq)
        .bind(hash)
        .execute(db.pool())
        .await
        .unwrap();
}

async fn get(app: &App, token: &str, path: &str) -> (StatusCode, Value) {
    let resp = app.app.http.get(app.app.url("audit", path)).bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn unsigned(seq: i64) -> u64 {
    u64::try_from(seq).unwrap()
}

async fn records_every_topic_in_order_once(backend: Backend) {
    let app = spawn_app(Spawn::new(backend)).await;
    let published = events("a");
    stage(&app.db, &published).await;
    let seqs = recorded(&app.db, &published).await;
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "recorded in the order published: {seqs:?}");

    // Every seq from 1 to the head, without a gap.
    let (head_seq, head_hash) = settled_head(&app.db).await;
    let all: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_records ORDER BY seq").fetch_all(app.db.pool()).await.unwrap();
    assert_eq!(all, (1..=head_seq).collect::<Vec<_>>());

    // Operators read the records: the fields as published, the data as JSON again.
    let operator = app.minter.staff(&[Role::Operator]);
    let (status, page) = get(&app, &operator, "/v1/records?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), all.len());
    for (topic, event) in &published {
        let item = items.iter().find(|i| i["event_id"] == event.id.as_str()).unwrap();
        assert_eq!(item["topic"], *topic);
        assert_eq!(item["type"], event.event_type.as_str());
        assert_eq!(item["source"], "audit-test");
        assert_eq!(item["subject"], event.ordering_key.as_str());
        assert_eq!(item["occurred_at"], event.time.as_str());
        assert_eq!(item["data"], event.data);
        assert_eq!(item["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(items[0]["prev_hash"], chain::GENESIS_HASH);
    assert_eq!(items.last().unwrap()["hash"], head_hash.as_str());
    assert!(page.get("next_after_seq").is_none(), "one page holds them all");

    // Pages of 3 cover the same records, in order.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = get(&app, &operator, &format!("/v1/records?limit=3&after_seq={after}")).await;
        assert_eq!(status, StatusCode::OK);
        paged.extend(page["items"].as_array().unwrap().iter().map(|r| r["seq"].as_i64().unwrap()));
        match page["next_after_seq"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(paged, all);

    let (status, head) = get(&app, &operator, "/v1/head").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(head, json!({ "seq": head_seq, "hash": head_hash, "records": head_seq }));

    // At-least-once delivery: the same event published again is not recorded again.
    let (topic, again) = &published[0];
    sqlx::query("UPDATE outbox SET published_at = NULL WHERE event_id = ?")
        .bind(&again.id)
        .execute(app.db.pool())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never published the event again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(chain::append(&app.db, topic, again).await.unwrap(), Appended::Duplicate);
    let ours: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_records WHERE source = 'audit-test'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(ours, i64::try_from(published.len()).unwrap(), "each event recorded once");

    let report = verify(&app.db, None).await;
    assert_eq!(report.problem, None);
    assert_eq!((report.records, report.head_seq), (unsigned(head_seq), unsigned(head_seq)));
    assert_eq!(report.head_hash, head_hash);

    // Operators and admins read; customers, merchants and support staff are refused, before
    // the query is even looked at; no token is 401.
    let refused = [
        app.minter.user(Kind::Customer, "customer-1"),
        app.minter.user(Kind::Merchant, "merchant-1"),
        app.minter.staff(&[Role::Support]),
    ];
    for token in &refused {
        for path in ["/v1/records", "/v1/head", "/v1/records?limit=0"] {
            let (status, body) = get(&app, token, path).await;
            assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{path}");
        }
    }
    let admin = app.minter.staff(&[Role::Admin]);
    for path in ["/v1/records", "/v1/head"] {
        assert_eq!(get(&app, &admin, path).await.0, StatusCode::OK, "{path}");
        let resp = app.app.http.get(app.app.url("audit", path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    // A query out of range is the platform's `invalid_query` (400), as in contact-us and the
    // ledger: the same answer as a query that does not parse.
    for query in ["limit=0", "limit=501", "limit=abc", "after_seq=x", "evil=1"] {
        let (status, body) = get(&app, &operator, &format!("/v1/records?{query}")).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{query}");
    }
}

async fn verify_names_every_tampering(backend: Backend) {
    let app = spawn_app(Spawn::new(backend)).await;
    let db = &app.db;
    let published = events("t");
    stage(db, &published).await;
    let seqs = recorded(db, &published).await;
    let (head_seq, head_hash) = settled_head(db).await;
    let anchor = (unsigned(head_seq), head_hash.clone());
    assert_eq!(verify(db, None).await.problem, None);
    assert_eq!(verify(db, Some(anchor.clone())).await.problem, None, "the head is its own anchor");
    assert_eq!(verify(db, Some((0, chain::GENESIS_HASH.to_owned()))).await.problem, None, "the empty log's head");

    // A record with records before and after it.
    let mid = seqs[3];
    let original = record(db, mid).await;

    // Its data changed in place.
    sqlx::query("UPDATE audit_records SET data = ? WHERE seq = ?")
        .bind("{\"i\":999}")
        .bind(mid)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(verify(db, None).await.problem, Some(Problem::Altered { seq: unsigned(mid) }));
    sqlx::query("UPDATE audit_records SET data = ? WHERE seq = ?")
        .bind(&original.data)
        .bind(mid)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(verify(db, None).await.problem, None, "restored");

    // Removed.
    delete(db, mid).await;
    assert_eq!(
        verify(db, None).await.problem,
        Some(Problem::Removed { after_seq: unsigned(mid - 1), next_seq: unsigned(mid + 1) })
    );
    put_back(db, &original).await;
    assert_eq!(verify(db, None).await.problem, None, "restored");

    // Re-linked: another prev_hash, with the record's hash recomputed to match it.
    let mut relinked = original.clone();
    relinked.prev_hash = "a".repeat(64);
    relinked.hash = chain::record_hash(&relinked.hash_input(unsigned(mid)));
    sqlx::query("UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?")
        .bind(&relinked.prev_hash)
        .bind(&relinked.hash)
        .bind(mid)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(verify(db, None).await.problem, Some(Problem::Relinked { seq: unsigned(mid) }));
    sqlx::query("UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?")
        .bind(&original.prev_hash)
        .bind(&original.hash)
        .bind(mid)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(verify(db, None).await.problem, None, "restored");

    // The newest record removed: the head still names it.
    let last = record(db, head_seq).await;
    let before_last = record(db, head_seq - 1).await;
    delete(db, head_seq).await;
    assert_eq!(
        verify(db, None).await.problem,
        Some(Problem::HeadMismatch {
            head_seq,
            head_hash: head_hash.clone(),
            last_seq: unsigned(head_seq - 1),
            last_hash: before_last.hash.clone(),
        })
    );

    // ...and the head moved back to match: the chain is consistent and verifies on its own.
    // Only the anchor noted before shows the cut (the limit the README states).
    set_head(db, before_last.seq, &before_last.hash).await;
    assert_eq!(verify(db, None).await.problem, None);
    assert_eq!(
        verify(db, Some(anchor.clone())).await.problem,
        Some(Problem::AnchorMismatch { seq: anchor.0, expected_hash: anchor.1.clone(), found_hash: None })
    );
    put_back(db, &last).await;
    set_head(db, head_seq, &head_hash).await;
    assert_eq!(verify(db, Some(anchor.clone())).await.problem, None, "restored");

    // An anchor whose hash is not the chain's.
    let wrong = (anchor.0, "f".repeat(64));
    assert_eq!(
        verify(db, Some(wrong.clone())).await.problem,
        Some(Problem::AnchorMismatch { seq: wrong.0, expected_hash: wrong.1, found_hash: Some(head_hash.clone()) })
    );

    // A database without the audit tables is refused, not verified as empty.
    let identity_db = app.app.db("identity").await;
    assert!(matches!(fintech_audit::verify(&identity_db, |_| {}, None).await, Err(AuditError::NotInstalled)));
}

async fn the_chain_continues_after_a_restart(backend: Backend) {
    let App { app, db, .. } = spawn_app(Spawn::new(backend)).await;
    let before = events("before");
    stage(&db, &before).await;
    let first = recorded(&db, &before).await;
    settled_head(&db).await;
    db.close().await;
    let (urls, dir, _guard) = app.stop().await;

    let mut spawn = Spawn::new(backend);
    spawn.reuse = Some((urls, dir));
    let app = spawn_app(spawn).await;
    let after = events("after");
    stage(&app.db, &after).await;
    let second = recorded(&app.db, &after).await;
    assert!(first.iter().max() < second.iter().min(), "{first:?} then {second:?}");
    settled_head(&app.db).await;
    let report = verify(&app.db, None).await;
    assert_eq!(report.problem, None);
    assert!(report.records >= u64::try_from(before.len() + after.len()).unwrap());
}

fintech_testkit::on_both_engines!(
    records_every_topic_in_order_once,
    verify_names_every_tampering,
    the_chain_continues_after_a_restart,
);
