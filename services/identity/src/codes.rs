//! Where one-time codes sent by SMS are kept: identity's database (`sms_codes`), or Redis when
//! `redis.url` names one (Memorystore in the cluster), shared by every replica.
//!
//! Either way a code is kept as [`SmsCode`]: its salted SHA-256, never the code. A code belongs
//! to a [`Slot`] (a user's SMS enrolment, or one sign-in challenge); a newer code in the slot
//! replaces the earlier one. The answers are the same on both stores:
//! - [`CodeStore::spend`] succeeds once, for the slot's current code only, while it is live
//!   (unspent, under [`MAX_CODE_ATTEMPTS`] wrong tries, not expired): two replicas answering the
//!   same code at once cannot both succeed (one SQL `UPDATE … WHERE used_at IS NULL`, or one Lua
//!   script in Redis);
//! - [`CodeStore::failed`] counts a wrong try against the current code, atomically.
//!
//! In Redis a slot is one hash, `<redis.key_prefix>otp:enrol:<user id>` or
//! `<redis.key_prefix>otp:sign-in:<challenge hash>`, which expires [`KEEP_AFTER_EXPIRY_SECS`]
//! after its code (so a late answer is told "wrong or expired code", as on the database, rather
//! than "nothing started"). Nothing is purged by hand. A code that Redis loses (eviction,
//! failover) only makes the user ask for a new one; a spent mark that a failover loses cannot
//! open anything twice either: a sign-in challenge is spent in identity's database, and an
//! enrolment turns SMS on once (`users.sms_enabled`). When Redis does not answer, codes can be
//! neither sent nor checked: 503 `codes_unavailable` (no fallback to this replica's memory,
//! where the other replicas could not see the code).

use std::collections::HashMap;

use fintech_db::Db;
use fintech_kit::ratelimit::{RedisStore, within_timeout};

use crate::error::IdentityError;
use crate::sms::{KEEP_EXPIRED_SECS, MAX_CODE_ATTEMPTS};
use crate::store::{self, SmsCode};

/// How long Redis keeps a slot after its code expired.
pub const KEEP_AFTER_EXPIRY_SECS: i64 = 600;

/// Whose code: a user's enrolment (by user id) or a sign-in challenge (by its hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    Enrol(&'a str),
    SignIn(&'a str),
}

impl<'a> Slot<'a> {
    /// The slot `code` belongs to.
    pub fn of(code: &'a SmsCode) -> Slot<'a> {
        match &code.challenge_hash {
            Some(challenge) => Slot::SignIn(challenge),
            None => Slot::Enrol(&code.user_id),
        }
    }

    fn redis_key(self, redis: &RedisStore) -> String {
        match self {
            Slot::Enrol(user) => redis.key(&format!("otp:enrol:{user}")),
            Slot::SignIn(challenge) => redis.key(&format!("otp:sign-in:{challenge}")),
        }
    }
}

/// Where codes are kept.
#[derive(Clone)]
pub enum CodeStore {
    Database(Db),
    Redis(RedisStore),
}

impl std::fmt::Debug for CodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodeStore::Database(_) => "CodeStore::Database",
            CodeStore::Redis(_) => "CodeStore::Redis",
        })
    }
}

/// Counts a wrong try against the slot's current code `ARGV[1]` while unspent.
const FAILED_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] and redis.call('HGET', KEYS[1], 'used') == '0' then
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
return 0
";

/// Spends the slot's current code `ARGV[1]` if it is live: under `ARGV[2]` wrong tries, expiring
/// after `ARGV[3]` (seconds). 1 when spent now, else 0.
const SPEND_SCRIPT: &str = r"
local h = redis.call('HMGET', KEYS[1], 'id', 'used', 'attempts', 'expires_at')
if h[1] == ARGV[1] and h[2] == '0' and tonumber(h[3]) < tonumber(ARGV[2]) and tonumber(h[4]) > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'used', '1')
  return 1
end
return 0
";

static FAILED: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static SPEND: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

/// Runs one Redis call within the kit's timeout; a failure is logged (never the key: it names a
/// user or a challenge) and answered 503 `codes_unavailable`.
async fn within<T>(what: &'static str, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, IdentityError> {
    within_timeout(call).await.map_err(|e| {
        tracing::error!(error = %e, what, "Redis failed: one-time codes are unavailable");
        IdentityError::CodesUnavailable
    })
}

fn from_hash(fields: &HashMap<String, String>) -> Option<SmsCode> {
    let text = |name: &str| fields.get(name).cloned();
    let number = |name: &str| fields.get(name)?.parse::<i64>().ok();
    let challenge = text("challenge_hash")?;
    Some(SmsCode {
        id: text("id")?,
        user_id: text("user_id")?,
        purpose: text("purpose")?,
        challenge_hash: (!challenge.is_empty()).then_some(challenge),
        phone: text("phone")?,
        code_salt: text("code_salt")?,
        code_hash: text("code_hash")?,
        expires_at: number("expires_at")?,
        attempts: number("attempts")?,
        used: number("used")? != 0,
        created_at: number("created_at")?,
    })
}

impl CodeStore {
    /// Redis when the process has one, else identity's database.
    pub fn new(ctx: &fintech_kit::ServiceContext) -> CodeStore {
        match ctx.redis() {
            Some(redis) => CodeStore::Redis(redis.clone()),
            None => CodeStore::Database(ctx.db.clone()),
        }
    }

    /// Keeps `code` as its slot's current code (the earlier one is replaced). `now` in seconds.
    pub async fn put(&self, code: SmsCode, now: i64) -> Result<(), IdentityError> {
        match self {
            CodeStore::Database(db) => {
                db.write(move |conn| {
                    Box::pin(async move {
                        store::purge_sms_codes(&mut *conn, &code.user_id, now - KEEP_EXPIRED_SECS).await?;
                        store::retire_sms_codes(&mut *conn, &code, now).await?;
                        store::insert_sms_code(&mut *conn, &code).await
                    })
                })
                .await?;
                Ok(())
            }
            CodeStore::Redis(redis) => {
                let key = Slot::of(&code).redis_key(redis);
                let fields: [(&str, String); 11] = [
                    ("id", code.id.clone()),
                    ("user_id", code.user_id.clone()),
                    ("purpose", code.purpose.clone()),
                    ("challenge_hash", code.challenge_hash.clone().unwrap_or_default()),
                    ("phone", code.phone.clone()),
                    ("code_salt", code.code_salt.clone()),
                    ("code_hash", code.code_hash.clone()),
                    ("expires_at", code.expires_at.to_string()),
                    ("attempts", code.attempts.to_string()),
                    ("used", u8::from(code.used).to_string()),
                    ("created_at", code.created_at.to_string()),
                ];
                let keep_until_ms = code.expires_at.saturating_add(KEEP_AFTER_EXPIRY_SECS).saturating_mul(1000);
                let mut pipe = redis::pipe();
                pipe.atomic().del(&key).ignore().hset_multiple(&key, &fields).ignore();
                pipe.cmd("PEXPIREAT").arg(&key).arg(keep_until_ms).ignore();
                let mut conn = redis.connection();
                within("storing a one-time code", pipe.query_async::<()>(&mut conn)).await
            }
        }
    }

    /// The slot's current code, spent or not; `None` when no code was sent (or Redis let it go).
    pub async fn latest(&self, slot: Slot<'_>) -> Result<Option<SmsCode>, IdentityError> {
        match self {
            CodeStore::Database(db) => {
                let mut conn = db.pool().acquire().await?;
                Ok(match slot {
                    Slot::Enrol(user) => store::latest_enrol_code(&mut conn, user).await?,
                    Slot::SignIn(challenge) => store::latest_challenge_code(&mut conn, challenge).await?,
                })
            }
            CodeStore::Redis(redis) => {
                let mut conn = redis.connection();
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(slot.redis_key(redis));
                let fields: HashMap<String, String> =
                    within("reading a one-time code", cmd.query_async(&mut conn)).await?;
                if fields.is_empty() {
                    return Ok(None);
                }
                from_hash(&fields)
                    .map(Some)
                    .ok_or_else(|| IdentityError::Internal("a one-time code in Redis lacks fields".into()))
            }
        }
    }

    /// Counts a wrong try against the slot's code `id`, unless it was spent or replaced.
    pub async fn failed(&self, slot: Slot<'_>, id: &str) -> Result<(), IdentityError> {
        match self {
            CodeStore::Database(db) => {
                let id = id.to_owned();
                db.write(move |conn| Box::pin(async move { store::sms_code_failed(&mut *conn, &id).await })).await?;
                Ok(())
            }
            CodeStore::Redis(redis) => {
                let script = FAILED.get_or_init(|| redis::Script::new(FAILED_SCRIPT));
                let mut conn = redis.connection();
                let mut invocation = script.key(slot.redis_key(redis));
                invocation.arg(id);
                within("counting a wrong one-time code", invocation.invoke_async::<i64>(&mut conn)).await?;
                Ok(())
            }
        }
    }

    /// Spends the slot's code `id` if it is live at `now` (seconds); false when it is spent,
    /// replaced, expired or dead already (another request got there first).
    pub async fn spend(&self, slot: Slot<'_>, id: &str, now: i64) -> Result<bool, IdentityError> {
        match self {
            CodeStore::Database(db) => {
                let id = id.to_owned();
                Ok(db
                    .write(move |conn| {
                        Box::pin(async move { store::use_sms_code(&mut *conn, &id, now, MAX_CODE_ATTEMPTS).await })
                    })
                    .await?)
            }
            CodeStore::Redis(redis) => {
                let script = SPEND.get_or_init(|| redis::Script::new(SPEND_SCRIPT));
                let mut conn = redis.connection();
                let mut invocation = script.key(slot.redis_key(redis));
                invocation.arg(id).arg(MAX_CODE_ATTEMPTS).arg(now);
                let spent = within("spending a one-time code", invocation.invoke_async::<i64>(&mut conn)).await?;
                Ok(spent == 1)
            }
        }
    }
}
