//! Request rate limits: per client address (every API request), per token
//! (after authentication) and for failed authentications per client
//! address, each a token bucket answered with 429 and `Retry-After`.
//!
//! Why here and not in a proxy: lagwatch is often run without one, and a
//! team script in a loop, or a token guesser, must not starve the other
//! teams or the store. Failed authentications are checked *before* a token
//! is looked up, so once an address has used up its failures it learns
//! nothing more (not even whether a token would have been right) until the
//! bucket refills.
//!
//! The buckets are small maps behind a mutex (a few hundred bytes per key,
//! full buckets pruned when the map grows), not a crate: three counters do
//! not justify a new dependency tree. The client address is the TCP peer:
//! behind a reverse proxy every request shares the proxy's address, so set
//! `api.rate_limit_per_address = 0` there and limit at the proxy.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::router::ApiState;

/// The limits, in requests per minute (0 = no limit). Each bucket holds a
/// minute's worth, so short bursts pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per token and minute.
    pub per_token: u32,
    /// Requests per client address and minute.
    pub per_address: u32,
    /// Failed authentications per client address and minute.
    pub auth_failures: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_token: 600,
            per_address: 1_200,
            auth_failures: 20,
        }
    }
}

/// Keyed token buckets of one limit.
#[derive(Debug)]
pub struct Buckets<K> {
    /// Tokens a full bucket holds; 0 disables the limit.
    capacity: f64,
    /// Tokens added per second.
    refill_per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Keys kept before full buckets are pruned.
const PRUNE_ABOVE: usize = 10_000;

impl<K: Eq + Hash + Clone> Buckets<K> {
    /// `per_minute` requests per minute and key, bursts up to that many.
    pub fn per_minute(per_minute: u32) -> Self {
        Buckets {
            capacity: f64::from(per_minute),
            refill_per_sec: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity >= 1.0
    }

    /// Takes one token for `key`; `Err(wait)` when the bucket is empty.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        self.update(key, now, true)
    }

    /// Whether `key` could take a token now, without taking one.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        self.update(key, now, false)
    }

    fn update(&self, key: &K, now: Instant, take: bool) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panic while holding the lock: fail open rather than lock
            // every team out; the panic itself stops the process.
            return Ok(());
        };
        if buckets.len() > PRUNE_ABOVE {
            let (capacity, rate) = (self.capacity, self.refill_per_sec);
            buckets.retain(|_, b| refilled(*b, now, capacity, rate) < capacity);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        let tokens = refilled(*bucket, now, self.capacity, self.refill_per_sec);
        *bucket = Bucket { tokens, at: now };
        if tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            let missing = 1.0 - tokens;
            Err(Duration::from_secs_f64(missing / self.refill_per_sec))
        }
    }
}

fn refilled(bucket: Bucket, now: Instant, capacity: f64, rate: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(capacity)
}

/// The three limits of one API.
#[derive(Debug)]
pub struct Limiter {
    pub per_token: Buckets<String>,
    pub per_address: Buckets<IpAddr>,
    pub auth_failures: Buckets<IpAddr>,
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        Limiter {
            per_token: Buckets::per_minute(limits.per_token),
            per_address: Buckets::per_minute(limits.per_address),
            auth_failures: Buckets::per_minute(limits.auth_failures),
        }
    }
}

/// The client's address, when the server recorded it.
pub fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Middleware: every API request counts against its client address.
pub async fn per_address(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(address) = client_address(request.extensions()) {
        if let Err(wait) = state.limiter().per_address.take(&address, Instant::now()) {
            tracing::warn!(client = %address, retry_after_secs = wait.as_secs_f64(), "request rate limit per address reached");
            return ApiError::rate_limited(
                "too many requests from this address; retry later",
                wait,
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let buckets = Buckets::<u8>::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take(&1, start).is_ok());
        }
        let wait = buckets.take(&1, start).expect_err("empty");
        assert!(
            (19.0..=20.1).contains(&wait.as_secs_f64()),
            "one token per 20 s: {wait:?}"
        );
        assert!(buckets.take(&2, start).is_ok(), "keys are independent");
        assert!(buckets.check(&1, start + Duration::from_secs(21)).is_ok());
        assert!(buckets.take(&1, start + Duration::from_secs(21)).is_ok());
        assert!(buckets.take(&1, start + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn check_does_not_take_and_zero_disables() {
        let buckets = Buckets::<u8>::per_minute(1);
        let now = Instant::now();
        assert!(buckets.check(&1, now).is_ok());
        assert!(buckets.check(&1, now).is_ok());
        assert!(buckets.take(&1, now).is_ok());
        assert!(buckets.check(&1, now).is_err());
        let off = Buckets::<u8>::per_minute(0);
        for _ in 0..100 {
            assert!(off.take(&1, now).is_ok());
        }
    }

    #[test]
    fn full_buckets_are_pruned_when_the_map_grows() {
        let buckets = Buckets::<usize>::per_minute(60);
        let start = Instant::now();
        for key in 0..=PRUNE_ABOVE {
            assert!(buckets.take(&key, start).is_ok());
        }
        // A minute later every bucket is full again and gets dropped.
        assert!(buckets
            .take(&usize::MAX, start + Duration::from_secs(61))
            .is_ok());
        let kept = buckets.buckets.lock().map(|b| b.len()).unwrap_or(0);
        assert_eq!(kept, 1);
    }
}
