//! A cache shared by every replica, in Redis (`redis.url`), for values that have a version: a
//! document read from a database whose rows are numbered (risk's rule sets), later quotes.
//!
//! Entries only move forward: [`SharedCache::offer`] replaces an entry only with a version at
//! least as new (one Lua script, atomic), so a replica that read an old version from its
//! database just before a change cannot put it back over the new one. Each entry expires after
//! the cache's time to live, which bounds how long a stale entry can outlive a failed `offer`
//! (the writer's Redis call failing after its database commit).
//!
//! An entry is a hash `<redis.key_prefix>cache:<cache name>:<key>` with `v` (the version) and
//! `d` (the value as JSON). Without Redis the cache holds nothing ([`SharedCache::get`] answers
//! `None`): in one process, the caller's own copy is the cache. A Redis that fails or takes over
//! 500 ms is a miss, logged at most every 10 s: callers read their source of truth instead.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ratelimit::{RedisStore, WarnEvery, within_timeout};

/// A value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub version: i64,
    pub value: T,
}

/// One kind of entry (a name: part of the keys), shared through Redis when there is one.
#[derive(Debug)]
pub struct SharedCache {
    name: &'static str,
    redis: Option<RedisStore>,
    ttl: Duration,
    warnings: WarnEvery,
}

/// Stores `ARGV[2]` as version `ARGV[1]` unless a newer version is there; expires in `ARGV[3]` ms.
/// 1 when stored.
const OFFER_SCRIPT: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v'))
if v ~= nil and v > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

static OFFER: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

impl SharedCache {
    /// `name` is part of the Redis keys: caches of different things need different names.
    /// `redis`: the process's ([`crate::ServiceContext::redis`]); `None`: nothing is shared.
    pub fn new(name: &'static str, ttl: Duration, redis: Option<&RedisStore>) -> SharedCache {
        SharedCache { name, redis: redis.cloned(), ttl, warnings: WarnEvery::new() }
    }

    /// Whether entries are shared (there is a Redis).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    fn key(&self, redis: &RedisStore, key: &str) -> String {
        redis.key(&format!("cache:{}:{key}", self.name))
    }

    fn warn(&self, what: &str, error: &dyn std::fmt::Display) {
        if self.warnings.due() {
            tracing::warn!(cache = self.name, error = %error, "{what}: the shared cache is skipped");
        }
    }

    async fn within<T>(&self, what: &str, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        within_timeout(call).await.map_err(|e| self.warn(what, &e)).ok()
    }

    /// The entry under `key`; `None` when there is none, no Redis, Redis failed, or the entry
    /// does not decode as `T` (written by another version of the code).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<Versioned<T>> {
        let redis = self.redis.as_ref()?;
        let mut conn = redis.connection();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.key(redis, key)).arg("v").arg("d");
        let (version, data): (Option<i64>, Option<String>) =
            self.within("reading the cache", cmd.query_async(&mut conn)).await?;
        let (version, data) = (version?, data?);
        match serde_json::from_str(&data) {
            Ok(value) => Some(Versioned { version, value }),
            Err(e) => {
                self.warn("an entry that does not decode", &e);
                None
            }
        }
    }

    /// Offers `value` as version `version` of `key`: stored unless a newer version is there.
    /// True when stored; false when a newer one is there, or nothing could be stored.
    pub async fn offer<T: Serialize>(&self, key: &str, version: i64, value: &T) -> bool {
        let Some(redis) = self.redis.as_ref() else {
            return false;
        };
        let data = match serde_json::to_string(value) {
            Ok(data) => data,
            Err(e) => {
                self.warn("a value that does not encode", &e);
                return false;
            }
        };
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let script = OFFER.get_or_init(|| redis::Script::new(OFFER_SCRIPT));
        let mut conn = redis.connection();
        let mut invocation = script.key(self.key(redis, key));
        invocation.arg(version).arg(data).arg(ttl_ms);
        self.within("writing the cache", invocation.invoke_async::<i64>(&mut conn)).await == Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_redis_nothing_is_shared() {
        let cache = SharedCache::new("t", Duration::from_secs(1), None);
        assert!(!cache.is_shared());
        assert!(!cache.offer("k", 1, &"v").await);
        assert_eq!(cache.get::<String>("k").await, None);
    }
}
