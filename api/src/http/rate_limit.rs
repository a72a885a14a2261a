//! Rate limits: an in-memory token bucket per token subject (authenticated callers) and
//! per client address (anonymous callers and callers whose token is refused), and one
//! more per client address for transparency-log tiles, which verifiers fetch by the
//! thousand ([`RateKey::LogReader`], `limits.public_log_rate_*`).
//!
//! The client address is the TCP peer, unless the peer is one of `limits.trusted_proxies`:
//! then it is the right-most `X-Forwarded-For` entry (all the header's lines, in order) that
//! is not itself a trusted proxy (entries to its left were written by the client and prove
//! nothing).
//!
//! A GraphQL operation is charged by its cost (`graphql::cost`, rows rather than fields):
//! [`tokens_for`] = max(1, ceil(cost / [`POINTS_PER_TOKEN`])) tokens, so a `checkBatch`
//! of 1,000 codes (cost about 2,000 to 20,000 with its fields) takes 20 to 200 tokens,
//! not one. The HTTP handler takes one token per operation before reading the body
//! (cheap refusal of floods); the query-limits extension takes the rest once the
//! document's cost is known, before anything executes ([`RateLimiter::cost_charge`]).
//! A charge above the burst is capped at the burst, so every admitted document can pass
//! eventually (after a full refill).
//!
//! Work per request: one hash and one uncontended lock of one of [`SHARDS`] maps. Memory is
//! bounded: each shard keeps at most `MAX_KEYS / SHARDS` buckets; when full, buckets that
//! have refilled (and so equal a fresh one) are dropped first.
//!
//! With `limits.shared_store_url` set, the buckets live in Redis instead ([`shared`]), so
//! a limit holds for all instances together; the process's own buckets then decide only
//! while the store does not answer. Every decision goes through [`RateLimiter::check`]
//! and [`RateLimiter::charge_refused`], whichever transport asked, so HTTP and WebSocket
//! operations share one code path and one store.

pub mod shared;

use crate::config::Limits;
use anyhow::Context;
use ipnet::IpNet;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SHARDS: usize = 16;
/// Buckets kept per kind of key (subjects, addresses).
pub const MAX_KEYS: usize = 65_536;

/// A sustained rate and a burst; `rate_per_second == 0` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub rate_per_second: f64,
    pub burst: f64,
}

impl Quota {
    pub fn new(rate_per_second: u32, burst: u32) -> Option<Self> {
        (rate_per_second > 0).then(|| Self {
            rate_per_second: f64::from(rate_per_second),
            // A burst below the rate would refuse a steady caller at exactly the rate.
            burst: f64::from(burst.max(rate_per_second).max(1)),
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(quota: &Quota, now: Instant) -> Self {
        Self {
            tokens: quota.burst,
            last: now,
        }
    }

    /// Takes `cost` tokens (at most the burst, so any request can pass eventually), or
    /// says how long until it could.
    pub fn take(&mut self, quota: &Quota, now: Instant, cost: u32) -> Result<(), Duration> {
        self.refill(quota, now);
        let cost = f64::from(cost).min(quota.burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (cost - self.tokens) / quota.rate_per_second,
            ))
        }
    }

    /// Takes `cost` tokens (at most the burst) whether or not they are there: the bucket
    /// may go into debt, down to minus one burst, and the caller's next operations wait
    /// until it is paid back. For work already done that the caller will not get.
    pub fn owe(&mut self, quota: &Quota, now: Instant, cost: u32) {
        self.refill(quota, now);
        self.tokens = (self.tokens - f64::from(cost).min(quota.burst)).max(-quota.burst);
    }

    /// Adds what the rate gave since the last operation, up to the burst.
    fn refill(&mut self, quota: &Quota, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * quota.rate_per_second).min(quota.burst);
        self.last = now;
    }

    fn is_refilled(&self, quota: &Quota, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * quota.rate_per_second >= quota.burst
    }
}

/// Token buckets by key, sharded to keep the locks short and uncontended.
pub struct KeyedBuckets<K> {
    quota: Option<Quota>,
    shards: Vec<Mutex<HashMap<K, Bucket>>>,
    hasher: RandomState,
    per_shard: usize,
}

impl<K: Hash + Eq + Clone> KeyedBuckets<K> {
    pub fn new(quota: Option<Quota>, max_keys: usize) -> Self {
        Self {
            quota,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: (max_keys / SHARDS).max(1),
        }
    }

    pub fn check(&self, key: &K, cost: u32, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |bucket, quota| bucket.take(quota, now, cost))
            .unwrap_or(Ok(()))
    }

    /// Puts `cost` on the key's bucket even if it goes into debt ([`Bucket::owe`]).
    pub fn owe(&self, key: &K, cost: u32, now: Instant) {
        self.with_bucket(key, now, |bucket, quota| bucket.owe(quota, now, cost));
    }

    /// Runs `f` on the key's bucket (a full one if the key is new); `None` when unlimited.
    fn with_bucket<T>(
        &self,
        key: &K,
        now: Instant,
        f: impl FnOnce(&mut Bucket, &Quota) -> T,
    ) -> Option<T> {
        let quota = self.quota.as_ref()?;
        let shard = (self.hasher.hash_one(key) as usize) % self.shards.len();
        // A poisoned lock only means another request panicked mid-update of a counter.
        let mut map = match self.shards[shard].lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(bucket) = map.get_mut(key) {
            return Some(f(bucket, quota));
        }
        if map.len() >= self.per_shard {
            map.retain(|_, b| !b.is_refilled(quota, now));
            if map.len() >= self.per_shard
                && let Some(victim) = map.keys().next().cloned()
            {
                map.remove(&victim);
            }
        }
        let mut bucket = Bucket::full(quota, now);
        let result = f(&mut bucket, quota);
        map.insert(key.clone(), bucket);
        Some(result)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// Who a request is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// `role:subject` of a verified token.
    Subject(String),
    /// The client address of an anonymous caller, as [`RateKey::of_address`] groups it.
    Address(IpAddr),
    /// The client address of a transparency-log tile reader ([`RateKey::of_log_reader`]):
    /// a bucket of its own (`limits.public_log_rate_*`), since a verifier fetches
    /// thousands of tiles in a row.
    LogReader(IpAddr),
}

impl RateKey {
    /// An anonymous caller's key: its address as [`caller_network`] groups it.
    pub fn of_address(address: IpAddr) -> Self {
        Self::Address(caller_network(address))
    }

    /// A tile reader's key: its address grouped as [`RateKey::of_address`] groups it.
    pub fn of_log_reader(address: IpAddr) -> Self {
        Self::LogReader(caller_network(address))
    }
}

/// The network an anonymous caller is counted by: an IPv4 address as it is, an IPv6
/// address by its /64. One subscriber is routinely given a whole /64 and may use any
/// address in it, so counting per IPv6 address would give whoever wants one a fresh
/// bucket (or a fresh WebSocket allowance) per request. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is its IPv4 address.
pub fn caller_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(network))
            }
        },
    }
}

/// Query cost points per token (see the module documentation).
pub const POINTS_PER_TOKEN: usize = 100;

/// Tokens an operation of `cost` points takes: at least one.
pub fn tokens_for(cost: usize) -> u32 {
    u32::try_from(cost.div_ceil(POINTS_PER_TOKEN))
        .unwrap_or(u32::MAX)
        .max(1)
}

pub struct RateLimiter {
    subjects: KeyedBuckets<String>,
    addresses: KeyedBuckets<IpAddr>,
    log_readers: KeyedBuckets<IpAddr>,
    /// The buckets of all instances, when configured; the two above decide otherwise,
    /// and whenever the store does not answer.
    shared: Option<shared::SharedBuckets>,
    trusted_proxies: Vec<IpNet>,
}

impl RateLimiter {
    /// Needs a Tokio runtime when `limits.shared_store_url` is set (the store's
    /// connection is opened in the background on first use).
    pub fn from_limits(limits: &Limits) -> anyhow::Result<Self> {
        let trusted_proxies = limits
            .trusted_proxies
            .iter()
            .map(|p| parse_net(p).with_context(|| format!("limits.trusted_proxies: '{p}'")))
            .collect::<anyhow::Result<_>>()?;
        let shared = match limits.shared_store_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => Some(shared::SharedBuckets::new(
                url,
                &limits.shared_store_prefix,
                Duration::from_millis(limits.shared_store_timeout_ms.max(1)),
                Duration::from_millis(limits.shared_store_retry_ms),
            )?),
        };
        Ok(Self {
            subjects: KeyedBuckets::new(
                Quota::new(limits.rate_per_second, limits.rate_burst),
                MAX_KEYS,
            ),
            addresses: KeyedBuckets::new(
                Quota::new(limits.public_rate_per_second, limits.public_rate_burst),
                MAX_KEYS,
            ),
            log_readers: KeyedBuckets::new(
                Quota::new(
                    limits.public_log_rate_per_second,
                    limits.public_log_rate_burst,
                ),
                MAX_KEYS,
            ),
            shared,
            trusted_proxies,
        })
    }

    /// Takes `cost` requests from the key's bucket, or returns how long to wait.
    pub async fn check(&self, key: &RateKey, cost: u32) -> Result<(), Duration> {
        if let Some(decision) = self.shared_decision(key, cost, shared::Mode::Take).await {
            return decision;
        }
        let now = Instant::now();
        match key {
            RateKey::Subject(s) => self.subjects.check(s, cost, now),
            RateKey::Address(a) => self.addresses.check(a, cost, now),
            RateKey::LogReader(a) => self.log_readers.check(a, cost, now),
        }
    }

    /// The shared store's decision for `key`, if there is a store, the key's kind is
    /// limited, and the store answered.
    async fn shared_decision(
        &self,
        key: &RateKey,
        cost: u32,
        mode: shared::Mode,
    ) -> Option<Result<(), Duration>> {
        let store = self.shared.as_ref()?;
        let (quota, name) = match key {
            RateKey::Subject(s) => (self.subjects.quota?, format!("s:{s}")),
            RateKey::Address(a) => (self.addresses.quota?, format!("a:{a}")),
            RateKey::LogReader(a) => (self.log_readers.quota?, format!("l:{a}")),
        };
        store.decide(&name, &quota, cost, mode).await
    }

    /// Charges one GraphQL operation of `cost` points ([`tokens_for`]) to `key`, or
    /// returns how long to wait. Both transports call this (HTTP through
    /// [`RateLimiter::cost_charge`], WebSocket per operation).
    pub async fn charge(&self, key: &RateKey, cost: usize) -> Result<(), Duration> {
        self.check(key, tokens_for(cost)).await
    }

    /// Charges a document refused for its cost ([`tokens_for`], capped at the burst),
    /// into debt if need be: its caller asked for that work, and parsing and validating
    /// it was not free (a 30-alias `checkBatch` took about 12 ms to refuse). A caller
    /// that keeps resending it is then refused at the door, before its body is read.
    pub async fn charge_refused(&self, key: &RateKey, cost: usize) {
        let tokens = tokens_for(cost);
        if self
            .shared_decision(key, tokens, shared::Mode::Owe)
            .await
            .is_some()
        {
            return;
        }
        let now = Instant::now();
        match key {
            RateKey::Subject(s) => self.subjects.owe(s, tokens, now),
            RateKey::Address(a) => self.addresses.owe(a, tokens, now),
            RateKey::LogReader(a) => self.log_readers.owe(a, tokens, now),
        }
    }

    /// The request data through which the query-limits extension charges an
    /// operation's cost to `key` once it is known; `prepaid` tokens were already taken
    /// for it (the HTTP handler takes one per operation before reading the body).
    pub fn cost_charge(
        limiter: std::sync::Arc<Self>,
        key: RateKey,
        prepaid: u32,
    ) -> crate::graphql::limits::CostCharge {
        crate::graphql::limits::CostCharge::new(move |cost, refused| {
            let limiter = limiter.clone();
            let key = key.clone();
            Box::pin(async move {
                if refused {
                    limiter.charge_refused(&key, cost).await;
                    return Ok(());
                }
                // The whole charge, prepaid part included, is capped at the burst: any
                // admitted document can pass once the bucket is full.
                let tokens = limiter
                    .burst_of(&key)
                    .map_or(0, |burst| tokens_for(cost).min(burst))
                    .saturating_sub(prepaid);
                if tokens == 0 {
                    Ok(())
                } else {
                    limiter.check(&key, tokens).await
                }
            })
        })
    }

    /// The burst of `key`'s kind of bucket (`None`: unlimited).
    fn burst_of(&self, key: &RateKey) -> Option<u32> {
        let quota = match key {
            RateKey::Subject(_) => self.subjects.quota,
            RateKey::Address(_) => self.addresses.quota,
            RateKey::LogReader(_) => self.log_readers.quota,
        };
        // Bursts come from u32 settings.
        quota.map(|q| q.burst as u32)
    }

    /// The client of `req`: its peer, or what a trusted proxy forwarded.
    pub fn client_address(&self, req: &actix_web::HttpRequest) -> IpAddr {
        let forwarded_for = forwarded_for(req.headers());
        client_address(
            req.peer_addr().map(|p| p.ip()),
            forwarded_for.as_deref(),
            &self.trusted_proxies,
        )
    }
}

/// Every `X-Forwarded-For` line of `headers`, in order, as the one comma-separated list
/// they are (RFC 9110 §5.3). HAProxy's `option forwardfor` adds its own line after
/// whatever the client sent instead of appending to it, so reading only the first line
/// would believe the client's own entry (a fresh rate bucket per request, or a victim's
/// address spent). A line that is not visible ASCII is kept as an entry that does not
/// parse, so the walk stops there as it does at any other garbage.
fn forwarded_for(
    headers: &actix_web::http::header::HeaderMap,
) -> Option<std::borrow::Cow<'_, str>> {
    let mut lines = headers
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("?"));
    let first = lines.next()?;
    // One line (the usual case) is borrowed; only several are joined.
    match lines.next() {
        None => Some(std::borrow::Cow::Borrowed(first)),
        Some(second) => {
            let mut joined = format!("{first},{second}");
            for line in lines {
                joined.push(',');
                joined.push_str(line);
            }
            Some(std::borrow::Cow::Owned(joined))
        }
    }
}

/// `10.0.0.0/8`, `::1/128` or a bare address.
fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    let addr: IpAddr = s
        .parse()
        .map_err(|_| anyhow::anyhow!("not an IP address or CIDR network"))?;
    Ok(IpNet::from(addr))
}

/// The address a request is counted against (see the module documentation).
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for entry in header.rsplit(',') {
        match parse_forwarded_entry(entry) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            // Garbage written by someone we do not trust: stop at the last good hop.
            None => return client,
        }
    }
    client
}

fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// What a refused caller is told.
pub fn refusal_message(seconds: u64) -> String {
    format!("too many requests; retry in {seconds} s")
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(rate: u32, burst: u32) -> Quota {
        Quota::new(rate, burst).unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let q = quota(10, 20);
        let t0 = Instant::now();
        let mut b = Bucket::full(&q, t0);
        for _ in 0..20 {
            assert!(b.take(&q, t0, 1).is_ok());
        }
        let wait = b.take(&q, t0, 1).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // 100 ms later one more token is there, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(&q, t1, 1).is_ok());
        assert!(b.take(&q, t1, 1).is_err());
    }

    #[test]
    fn a_cost_above_the_burst_is_capped_so_it_can_pass() {
        let q = quota(1, 2);
        let t0 = Instant::now();
        let mut b = Bucket::full(&q, t0);
        assert!(b.take(&q, t0, 50).is_ok());
        assert!(b.take(&q, t0, 1).is_err());
    }

    #[tokio::test]
    async fn operations_are_charged_by_cost() {
        assert_eq!(tokens_for(0), 1);
        assert_eq!(tokens_for(1), 1);
        assert_eq!(tokens_for(100), 1);
        assert_eq!(tokens_for(101), 2);
        assert_eq!(tokens_for(30_000), 300);
        assert_eq!(tokens_for(usize::MAX), u32::MAX);
        let limits = Limits {
            rate_per_second: 1,
            rate_burst: 10,
            ..Limits::default()
        };
        let limiter = std::sync::Arc::new(RateLimiter::from_limits(&limits).unwrap());
        let key = RateKey::Subject("partner:p".into());
        // A cost of 500 is five tokens; one was prepaid elsewhere: six of ten are left.
        let charge = RateLimiter::cost_charge(limiter.clone(), key.clone(), 1);
        assert!(charge.charge(500).await.is_ok());
        assert!(limiter.charge(&key, 600).await.is_ok());
        assert!(limiter.charge(&key, 1).await.is_err());
        // A charge above the burst takes the burst, prepaid part included.
        let fresh = RateKey::Subject("partner:q".into());
        assert!(limiter.check(&fresh, 1).await.is_ok());
        let charge = RateLimiter::cost_charge(limiter.clone(), fresh.clone(), 1);
        assert!(charge.charge(1_000_000).await.is_ok());
        assert!(limiter.check(&fresh, 1).await.is_err());
    }

    #[test]
    fn a_refused_document_puts_the_bucket_in_debt() {
        let q = quota(10, 10);
        let t0 = Instant::now();
        let mut b = Bucket::full(&q, t0);
        // 25 tokens owed on a full bucket of 10: capped at the burst, so 10 - 10 = 0, and
        // owing again goes to minus one burst at most.
        b.owe(&q, t0, 25);
        assert!(b.take(&q, t0, 1).is_err());
        b.owe(&q, t0, 25);
        let wait = b.take(&q, t0, 1).unwrap_err();
        assert!(wait >= Duration::from_millis(1000), "{wait:?}");
        assert!(!b.is_refilled(&q, t0 + Duration::from_millis(1500)));
        assert!(b.take(&q, t0 + Duration::from_millis(1100), 1).is_ok());
        assert!(b.is_refilled(&q, t0 + Duration::from_secs(5)));
    }

    #[test]
    fn zero_rate_means_unlimited() {
        assert_eq!(Quota::new(0, 10), None);
        let buckets: KeyedBuckets<u32> = KeyedBuckets::new(None, 10);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(buckets.check(&1, 1, now).is_ok());
        }
    }

    #[tokio::test]
    async fn tile_readers_have_a_budget_of_their_own() {
        let limits = Limits {
            public_rate_per_second: 1,
            public_rate_burst: 1,
            public_log_rate_per_second: 1,
            public_log_rate_burst: 3,
            ..Limits::default()
        };
        let limiter = RateLimiter::from_limits(&limits).unwrap();
        let address: IpAddr = "203.0.113.7".parse().unwrap();
        assert!(
            limiter
                .check(&RateKey::of_address(address), 1)
                .await
                .is_ok()
        );
        assert!(
            limiter
                .check(&RateKey::of_address(address), 1)
                .await
                .is_err()
        );
        for _ in 0..3 {
            assert!(
                limiter
                    .check(&RateKey::of_log_reader(address), 1)
                    .await
                    .is_ok()
            );
        }
        assert!(
            limiter
                .check(&RateKey::of_log_reader(address), 1)
                .await
                .is_err()
        );
    }

    #[test]
    fn keys_have_separate_buckets() {
        let buckets = KeyedBuckets::new(Some(quota(1, 1)), 100);
        let now = Instant::now();
        assert!(buckets.check(&"a", 1, now).is_ok());
        assert!(buckets.check(&"a", 1, now).is_err());
        assert!(buckets.check(&"b", 1, now).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let buckets = KeyedBuckets::new(Some(quota(1, 5)), SHARDS * 4);
        let now = Instant::now();
        for key in 0..10_000u32 {
            let _ = buckets.check(&key, 1, now);
        }
        assert!(buckets.len() <= SHARDS * 4, "{}", buckets.len());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let trusted = vec![parse_net("10.0.0.0/8").unwrap()];
        // Not from a trusted proxy: the header is ignored.
        assert_eq!(
            client_address(Some(client), Some("198.51.100.1"), &trusted),
            client
        );
        // From the proxy: the right-most untrusted entry.
        assert_eq!(
            client_address(
                Some(proxy),
                Some("1.1.1.1, 203.0.113.7, 10.0.0.9"),
                &trusted
            ),
            client
        );
        // From the proxy without a header: the proxy itself.
        assert_eq!(client_address(Some(proxy), None, &trusted), proxy);
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_address(Some(proxy), Some("evil, 10.0.0.9"), &trusted),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        // Ports are tolerated.
        assert_eq!(
            client_address(Some(proxy), Some("203.0.113.7:5555"), &trusted),
            client
        );
    }

    /// HAProxy's `option forwardfor` adds a line after the client's own: the right-most
    /// entry of all the lines together is the one the proxy wrote.
    #[test]
    fn forwarded_for_reads_every_header_line() {
        use actix_web::test::TestRequest;
        let limits = Limits {
            trusted_proxies: vec!["127.0.0.1".into()],
            ..Limits::default()
        };
        let limiter = RateLimiter::from_limits(&limits).unwrap();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let two_lines = TestRequest::default()
            .peer_addr(peer)
            .append_header(("x-forwarded-for", "10.9.9.1"))
            .append_header(("x-forwarded-for", "198.51.100.1"))
            .to_http_request();
        assert_eq!(
            limiter.client_address(&two_lines),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Trusted hops on the last line are skipped into the line before.
        let through_two_proxies = TestRequest::default()
            .peer_addr(peer)
            .append_header(("x-forwarded-for", "203.0.113.7"))
            .append_header(("x-forwarded-for", "127.0.0.1"))
            .to_http_request();
        assert_eq!(
            limiter.client_address(&through_two_proxies),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // A line that is not text stops the walk, as garbage does.
        let garbage = TestRequest::default()
            .peer_addr(peer)
            .append_header((
                "x-forwarded-for",
                actix_web::http::header::HeaderValue::from_bytes(b"\xff").unwrap(),
            ))
            .append_header(("x-forwarded-for", "127.0.0.1"))
            .to_http_request();
        assert_eq!(limiter.client_address(&garbage), peer.ip());
    }

    #[test]
    fn trusted_proxy_settings_must_parse() {
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("::1").is_ok());
        assert!(parse_net("127.0.0.1").is_ok());
        assert!(parse_net("localhost").is_err());
        let limits = Limits {
            trusted_proxies: vec!["nonsense".into()],
            ..Limits::default()
        };
        assert!(RateLimiter::from_limits(&limits).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
