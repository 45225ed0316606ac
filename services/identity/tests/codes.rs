//! The one-time code store on both of its backends, the same answers from each: identity's
//! database (SQLite, MariaDB) and a real Redis.

#![allow(clippy::unwrap_used)]
use fintech_identity::codes::{CodeStore, Slot};
use fintech_identity::sms::MAX_CODE_ATTEMPTS;
use fintech_identity::store::SmsCode;
use fintech_kit::ratelimit;
use fintech_testkit::app::{Backend, Spawn, TestApp};

fn code(id: &str, user: &str, challenge: Option<&str>, expires_at: i64) -> SmsCode {
    SmsCode {
        id: id.to_owned(),
        user_id: user.to_owned(),
        purpose: if challenge.is_some() { "sign_in" } else { "enrol" }.to_owned(),
        challenge_hash: challenge.map(str::to_owned),
        phone: "+15551234567".to_owned(),
        code_salt: "00112233445566778899aabbccddeeff".to_owned(),
        code_hash: "ab".repeat(32),
        expires_at,
        attempts: 0,
        used: false,
        created_at: 1_000,
    }
}

/// Spend once; wrong tries kill a code; a newer code replaces the older; expiry; slots apart.
async fn same_answers(codes: &CodeStore, user: &str) {
    let challenge = "c".repeat(64);
    let now = fintech_telemetry::now_unix_ms() / 1000;
    let enrol = Slot::Enrol(user);
    let sign_in = Slot::SignIn(&challenge);
    assert!(codes.latest(enrol).await.unwrap().is_none(), "nothing sent yet");

    codes.put(code("e1", user, None, now + 300), now).await.unwrap();
    let stored = codes.latest(enrol).await.unwrap().expect("stored");
    assert_eq!((stored.id.as_str(), stored.purpose.as_str(), stored.attempts, stored.used), ("e1", "enrol", 0, false));
    assert_eq!((stored.code_hash, stored.phone, stored.challenge_hash), ("ab".repeat(32), "+15551234567".into(), None));
    assert!(codes.latest(sign_in).await.unwrap().is_none(), "another slot");
    assert!(!codes.spend(enrol, "e0", now).await.unwrap(), "not the slot's code");
    assert!(codes.spend(enrol, "e1", now).await.unwrap(), "spent");
    assert!(!codes.spend(enrol, "e1", now).await.unwrap(), "spent once only");
    codes.failed(enrol, "e1").await.unwrap();
    let spent = codes.latest(enrol).await.unwrap().unwrap();
    assert_eq!((spent.used, spent.attempts), (true, 0), "a spent code counts no tries");

    // A newer code replaces the older; wrong tries kill it.
    codes.put(code("e2", user, None, now + 300), now).await.unwrap();
    codes.put(code("e3", user, None, now + 300), now).await.unwrap();
    assert!(!codes.spend(enrol, "e2", now).await.unwrap(), "replaced");
    for n in 1..=MAX_CODE_ATTEMPTS {
        codes.failed(enrol, "e2").await.unwrap();
        codes.failed(enrol, "e3").await.unwrap();
        assert_eq!(codes.latest(enrol).await.unwrap().unwrap().attempts, n);
    }
    assert!(!codes.spend(enrol, "e3", now).await.unwrap(), "dead after {MAX_CODE_ATTEMPTS} wrong tries");

    // Expired: refused; concurrent answers: one wins.
    codes.put(code("s1", user, Some(&challenge), now + 10), now).await.unwrap();
    assert_eq!(codes.latest(sign_in).await.unwrap().unwrap().challenge_hash.as_deref(), Some(challenge.as_str()));
    assert!(!codes.spend(sign_in, "s1", now + 10).await.unwrap(), "expired");
    codes.put(code("s2", user, Some(&challenge), now + 300), now).await.unwrap();
    let answers = futures::future::join_all((0..8).map(|_| codes.spend(sign_in, "s2", now))).await;
    let won = answers.into_iter().map(Result::unwrap).filter(|spent| *spent).count();
    assert_eq!(won, 1, "one of eight concurrent answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_in_redis() {
    let url = fintech_testkit::RedisServer::shared().url();
    let prefix = format!("t-{}:", uuid::Uuid::new_v4().simple());
    let ratelimit::Store::Redis(redis) = ratelimit::Store::redis(&url, &prefix, None).await.unwrap() else {
        panic!("a Redis store");
    };
    let codes = CodeStore::Redis(redis);
    same_answers(&codes, "u-redis").await;

    // Kept a while after expiry, then gone by themselves.
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(format!("{prefix}otp:enrol:u-redis")).query_async(&mut conn).await.unwrap();
    assert!((600..=900).contains(&ttl), "{ttl}");

    // Redis gone: a clear 503, nothing pretends.
    let ratelimit::Store::Redis(gone) = ratelimit::Store::redis(&url, &prefix, None).await.unwrap() else {
        panic!("a Redis store");
    };
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(1500).query_async(&mut conn).await.unwrap();
    let err = CodeStore::Redis(gone).latest(Slot::Enrol("u-redis")).await.unwrap_err();
    assert!(matches!(err, fintech_identity::error::IdentityError::CodesUnavailable), "{err:?}");
}

async fn codes_in_database(backend: Backend) {
    let app = TestApp::spawn(&[&fintech_identity::IdentityService], Spawn::new(backend)).await;
    let db = app.db("identity").await;
    // The codes' rows name their user.
    sqlx::query(
        "INSERT INTO users (id, kind, email, password_hash, roles, status, created_at) \
         VALUES ('u-db', 'customer', 'u@example.com', 'x', '', 'active', '2026-01-01T00:00:00Z')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    same_answers(&CodeStore::Database(db), "u-db").await;
}

fintech_testkit::on_both_engines!(codes_in_database);
