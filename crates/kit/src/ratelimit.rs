//! Token-bucket rate limits, kept in memory (one process: the embedded mode, or one replica).
//!
//! A [`Rule`] gives a bucket's size and how often one token comes back; each key (an IP, a user,
//! an API key, a phone number) has its own bucket. Integer arithmetic only: tokens are counted
//! in thousandths.
//! NOT YET: the Redis-backed limiter of the distributed mode (shared by replicas) comes with the
//! Redis adapter; until then each replica limits on its own.

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

/// Buckets of one rule, by key.
#[derive(Debug)]
pub struct Limiter {
    rule: Rule,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rule: Rule) -> Limiter {
        Limiter { rule, buckets: Mutex::new(HashMap::new()) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_then_refilled() {
        let limiter = Limiter::new(Rule { capacity: 3, refill_every: Duration::from_millis(50) });
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
        let limiter = Limiter::new(Rule { capacity: 2, refill_every: Duration::from_secs(60) });
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
