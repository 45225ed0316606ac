//! Token-bucket rate limits: in memory (the embedded mode, one process), or in Redis (the
//! distributed mode: every replica draws from the same buckets).
//!
//! A [`Rule`] gives a bucket's size and how often one token comes back; each key (an IP, a user,
//! an API key, a phone number) has its own bucket. Integer arithmetic only: tokens are counted
//! in thousandths. In Redis a bucket is a hash updated by one Lua script, atomically, on the
//! server's clock; its key holds a SHA-256 of the caller's key (no e-mail address or phone
//! number is stored) and expires once the bucket would be full again.
//!
//! When Redis does not answer, a limiter falls back to its own in-memory buckets and says so in
//! the log: limits stay on, per replica, rather than failing every request or none.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys kept per limiter; when full, buckets that have refilled completely are dropped
/// first (they hold nothing a fresh bucket would not), then the oldest.
pub const MAX_KEYS: usize = 100_000;

const MILLI: u64 = 1000;

/// The shape of one kind of bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Tokens in a full bucket: the burst allowed.
    pub capacity: u32,
    /// One token comes back every this long.
    pub refill_every: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    updated: Instant,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for a `Retry-After` header, at least 1.
    pub fn secs(self) -> u64 {
        self.0.as_secs().max(1) + u64::from(self.0.subsec_nanos() > 0 && self.0.as_secs() > 0)
    }
}

/// Buckets of one rule, by key, in this process's memory.
#[derive(Debug)]
pub struct LocalLimiter {
    rule: Rule,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl LocalLimiter {
    pub fn new(rule: Rule) -> LocalLimiter {
        LocalLimiter { rule, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let full = u64::from(self.rule.capacity) * MILLI;
        let every_ms = u64::try_from(self.rule.refill_every.as_millis()).unwrap_or(u64::MAX).max(1);
        let elapsed_ms = u64::try_from(now.saturating_duration_since(bucket.updated).as_millis()).unwrap_or(u64::MAX);
        let gained = elapsed_ms.saturating_mul(MILLI) / every_ms;
        Bucket { milli_tokens: bucket.milli_tokens.saturating_add(gained).min(full), updated: now }
    }

    fn wait_for_one(&self, milli_tokens: u64) -> RetryAfter {
        let missing = MILLI.saturating_sub(milli_tokens);
        let every_ms = u64::try_from(self.rule.refill_every.as_millis()).unwrap_or(u64::MAX).max(1);
        RetryAfter(Duration::from_millis(missing.saturating_mul(every_ms).div_ceil(MILLI)))
    }

    fn with_bucket<T>(&self, key: &str, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let now = Instant::now();
        let full = Bucket { milli_tokens: u64::from(self.rule.capacity) * MILLI, updated: now };
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let capacity = u64::from(self.rule.capacity) * MILLI;
            buckets.retain(|_, b| self.refilled(*b, now).milli_tokens < capacity);
            if buckets.len() >= MAX_KEYS
                && let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.updated).map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(full);
        *bucket = self.refilled(*bucket, now);
        f(bucket)
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), RetryAfter> {
        self.with_bucket(key, |b| {
            if b.milli_tokens >= MILLI {
                b.milli_tokens -= MILLI;
                Ok(())
            } else {
                Err(self.wait_for_one(b.milli_tokens))
            }
        })
    }

    /// Whether `key` has a token, without taking it (limits that count failures only).
    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        self.with_bucket(key, |b| if b.milli_tokens >= MILLI { Ok(()) } else { Err(self.wait_for_one(b.milli_tokens)) })
    }

    /// Takes a token if there is one (a failure being counted); never refuses.
    pub fn charge(&self, key: &str) {
        self.with_bucket(key, |b| b.milli_tokens = b.milli_tokens.saturating_sub(MILLI));
    }

    /// Fills `key`'s bucket again (a success forgives earlier failures).
    pub fn forgive(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.remove(key);
    }
}

/// Where limiters keep their buckets.
#[derive(Debug, Clone, Default)]
pub enum Store {
    /// Each process its own (the embedded mode).
    #[default]
    Memory,
    Redis(RedisStore),
}

/// Buckets in Redis, shared by every replica.
#[derive(Clone)]
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// How long one Redis call may take before the limiter uses its local buckets instead (and
/// before the other users of [`RedisStore`] give up on an answer).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// A Redis call that failed, or did not answer within [`REDIS_TIMEOUT`].
#[derive(Debug)]
pub enum RedisCallError {
    Failed(redis::RedisError),
    TimedOut,
}

impl std::fmt::Display for RedisCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisCallError::Failed(e) => e.fmt(f),
            RedisCallError::TimedOut => write!(f, "Redis did not answer within {} ms", REDIS_TIMEOUT.as_millis()),
        }
    }
}

impl std::error::Error for RedisCallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RedisCallError::Failed(e) => Some(e),
            RedisCallError::TimedOut => None,
        }
    }
}

/// Runs one Redis call, giving up after [`REDIS_TIMEOUT`]: what every user of [`RedisStore`]
/// does, each deciding what a failure means (limits fall back to memory, a cache misses, codes
/// are unavailable).
pub async fn within_timeout<T>(call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, RedisCallError> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(answer) => answer.map_err(RedisCallError::Failed),
        Err(_) => Err(RedisCallError::TimedOut),
    }
}

impl RedisStore {
    /// `suffix` under this deployment's key prefix (`redis.key_prefix`).
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// A handle on the shared connection (cheap: the manager is cloned, not the connection).
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.conn.clone()
    }
}

impl Store {
    /// Buckets in the Redis at `url` (`redis://host:6379/0`, or `rediss://` over TLS), under
    /// keys starting with `prefix`. `root_ca`: the PEM of the authority that signed a TLS
    /// server's certificate (Memorystore's); `None`: the system's roots. Fails when Redis does
    /// not answer now: a deployment that names one must have it.
    pub async fn redis(url: &str, prefix: &str, root_ca: Option<&[u8]>) -> Result<Store, redis::RedisError> {
        fintech_http::install_crypto_provider();
        let client = match root_ca {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let mut conn = client.get_connection_manager_with_config(config).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(Store::Redis(RedisStore { conn, prefix: prefix.to_owned() }))
    }
}

/// One token-bucket step on the server's clock. KEYS[1] the bucket; ARGV: capacity in
/// thousandths, milliseconds per token, the operation (`take`, `check`, `charge`). Returns 0
/// when allowed, else the milliseconds until a token is back.
const BUCKET_SCRIPT: &str = r"
local capacity = tonumber(ARGV[1])
local every = tonumber(ARGV[2])
local op = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'm', 'u')
local m = tonumber(b[1])
local u = tonumber(b[2])
if m == nil or u == nil then
  m = capacity
  u = now
end
if now > u then
  m = math.min(capacity, m + math.floor((now - u) * 1000 / every))
end
local wait = 0
if m < 1000 then
  wait = math.max(1, math.ceil((1000 - m) * every / 1000))
end
if op == 'take' then
  if m >= 1000 then m = m - 1000 end
elseif op == 'charge' then
  m = math.max(0, m - 1000)
  wait = 0
end
redis.call('HSET', KEYS[1], 'm', m, 'u', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - m) * every / 1000) + 1000)
return wait
";

static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

#[derive(Debug, Clone, Copy)]
enum Op {
    Take,
    Check,
    Charge,
}

/// One rule's buckets: in Redis when the store is, else (and whenever Redis fails) in memory.
#[derive(Debug)]
pub struct Limiter {
    name: &'static str,
    local: LocalLimiter,
    redis: Option<RedisStore>,
    warnings: WarnEvery,
}

/// Logs a failing Redis at most every 10 s, not once per request.
#[derive(Debug)]
pub(crate) struct WarnEvery {
    /// When Redis last failed, in ms since `made`; `u64::MAX`: never.
    last_ms: std::sync::atomic::AtomicU64,
    made: Instant,
}

impl WarnEvery {
    pub(crate) fn new() -> WarnEvery {
        WarnEvery { last_ms: std::sync::atomic::AtomicU64::new(u64::MAX), made: Instant::now() }
    }

    /// Whether a warning is due now (and from now on, not for 10 s).
    pub(crate) fn due(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.made.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if last == u64::MAX || now.saturating_sub(last) >= 10_000 {
            self.last_ms.store(now, Ordering::Relaxed);
            return true;
        }
        false
    }
}

impl Limiter {
    /// `name` is part of the Redis key: limiters of different rules must have different names.
    pub fn new(name: &'static str, rule: Rule, store: &Store) -> Limiter {
        let redis = match store {
            Store::Memory => None,
            Store::Redis(r) => Some(r.clone()),
        };
        Limiter { name, local: LocalLimiter::new(rule), redis, warnings: WarnEvery::new() }
    }

    pub fn rule(&self) -> Rule {
        self.local.rule()
    }

    fn redis_key(&self, prefix: &str, key: &str) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{prefix}ratelimit:{}:{hex}", self.name)
    }

    fn warn(&self, error: &dyn std::error::Error) {
        if self.warnings.due() {
            tracing::warn!(limiter = self.name, error = %error,
                "Redis did not answer: rate limits fall back to this process's buckets");
        }
    }

    /// Runs `op` in Redis; `None` when there is no Redis or it failed (then: local buckets).
    async fn remote(&self, key: &str, op: Op) -> Option<Result<(), RetryAfter>> {
        let store = self.redis.as_ref()?;
        let rule = self.local.rule();
        let every_ms = u64::try_from(rule.refill_every.as_millis()).unwrap_or(u64::MAX).max(1);
        let op_name = match op {
            Op::Take => "take",
            Op::Check => "check",
            Op::Charge => "charge",
        };
        let script = SCRIPT.get_or_init(|| redis::Script::new(BUCKET_SCRIPT));
        let mut conn = store.conn.clone();
        let mut invocation = script.key(self.redis_key(&store.prefix, key));
        invocation.arg(u64::from(rule.capacity) * MILLI).arg(every_ms).arg(op_name);
        match within_timeout(invocation.invoke_async::<u64>(&mut conn)).await {
            Ok(0) => Some(Ok(())),
            Ok(wait_ms) => Some(Err(RetryAfter(Duration::from_millis(wait_ms)))),
            Err(e) => {
                self.warn(&e);
                None
            }
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub async fn take(&self, key: &str) -> Result<(), RetryAfter> {
        match self.remote(key, Op::Take).await {
            Some(answer) => answer,
            None => self.local.take(key),
        }
    }

    /// Whether `key` has a token, without taking it (limits that count failures only).
    pub async fn check(&self, key: &str) -> Result<(), RetryAfter> {
        match self.remote(key, Op::Check).await {
            Some(answer) => answer,
            None => self.local.check(key),
        }
    }

    /// Takes a token if there is one (a failure being counted); never refuses.
    pub async fn charge(&self, key: &str) {
        if self.remote(key, Op::Charge).await.is_none() {
            self.local.charge(key);
        }
    }

    /// Fills `key`'s bucket again (a success forgives earlier failures).
    pub async fn forgive(&self, key: &str) {
        self.local.forgive(key);
        if let Some(store) = &self.redis {
            let mut conn = store.conn.clone();
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.redis_key(&store.prefix, key));
            if let Err(e) = within_timeout(cmd.query_async::<i64>(&mut conn)).await {
                self.warn(&e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_then_refilled() {
        let limiter = LocalLimiter::new(Rule { capacity: 3, refill_every: Duration::from_millis(50) });
        for _ in 0..3 {
            limiter.take("a").expect("within the burst");
        }
        let RetryAfter(wait) = limiter.take("a").expect_err("burst spent");
        assert!(wait <= Duration::from_millis(50) && wait > Duration::ZERO, "{wait:?}");
        limiter.take("b").expect("another key has its own bucket");
        std::thread::sleep(Duration::from_millis(60));
        limiter.take("a").expect("one token came back");
        assert!(limiter.take("a").is_err());
    }

    #[test]
    fn failures_counted_and_forgiven() {
        let limiter = LocalLimiter::new(Rule { capacity: 2, refill_every: Duration::from_secs(60) });
        limiter.check("k").expect("fresh");
        limiter.charge("k");
        limiter.charge("k");
        let RetryAfter(wait) = limiter.check("k").expect_err("two failures");
        assert!(wait > Duration::from_secs(50));
        limiter.forgive("k");
        limiter.check("k").expect("forgiven");
    }

    #[test]
    fn retry_after_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(10)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1500)).secs(), 2);
        assert_eq!(RetryAfter(Duration::from_secs(60)).secs(), 60);
    }
}
