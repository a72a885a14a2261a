//! Rate buckets kept in Redis (`limits.shared_store_url`), so that a caller's limit holds
//! across every instance that uses the same store and key prefix.
//!
//! One round trip per decision: `EVALSHA` of [`SCRIPT`], which does the arithmetic of
//! [`super::Bucket`] atomically on the server (with the server's clock, so instances
//! whose clocks differ agree) and lets the key expire once the bucket would be full
//! again, so Redis holds only buckets that are not.
//!
//! When the store does not answer within `limits.shared_store_timeout_ms` (or answers
//! with an error), the decision is taken by the process's own buckets instead: the
//! registry fails open to per-process limits rather than refusing everyone, since a
//! Redis outage must not stop procurement checks. The first failure of an outage is
//! logged once (a warning), every failure is counted ([`crate::metrics::RATE_STORE_FAILURES`]),
//! `registry_rate_limit_store_up` says which way decisions go now, and for
//! `limits.shared_store_retry_ms` after a failure the store is not asked at all, so a
//! dead store costs one timeout per interval instead of one per request.

use super::Quota;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The bucket arithmetic, run by Redis.
pub const SCRIPT: &str = include_str!("bucket.lua");

/// What a decision does to the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// [`super::Bucket::take`]: take the cost or refuse.
    Take,
    /// [`super::Bucket::owe`]: take the cost, into debt if need be.
    Owe,
}

impl Mode {
    fn as_arg(self) -> &'static str {
        match self {
            Mode::Take => "take",
            Mode::Owe => "owe",
        }
    }
}

pub struct SharedBuckets {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    retry: Duration,
    /// Whether the last attempt failed (an outage is logged once, at its start).
    down: AtomicBool,
    /// Until when (milliseconds since `epoch`) the store is not asked.
    skip_until_ms: AtomicU64,
    epoch: Instant,
}

impl SharedBuckets {
    /// Parses the URL and prepares a connection that is opened on first use (and
    /// reopened after a failure), so that a server starts whether or not Redis is up.
    pub fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        retry: Duration,
    ) -> anyhow::Result<Self> {
        // The URL may carry a password: it is never logged or echoed.
        let client = redis::Client::open(url).map_err(|e| {
            anyhow::anyhow!(
                "limits.shared_store_url is not a Redis URL (redis://host:port[/db]): {e}"
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Reconnection is paced by `retry` here, not by the manager's own backoff.
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("limits.shared_store_url: {e}"))?;
        crate::metrics::rate_store_up(true);
        Ok(Self {
            connection,
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_string(),
            timeout,
            retry,
            down: AtomicBool::new(false),
            skip_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// The decision of the shared bucket `key` (under the prefix), or `None` when the
    /// store cannot give one now (the caller then decides with its own buckets).
    pub async fn decide(
        &self,
        key: &str,
        quota: &Quota,
        cost: u32,
        mode: Mode,
    ) -> Option<Result<(), Duration>> {
        if self.elapsed_ms() < self.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{}{key}", self.prefix))
            .arg(quota.rate_per_second)
            .arg(quota.burst)
            .arg(cost)
            .arg(mode.as_arg());
        let mut connection = self.connection.clone();
        let answer = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(i64, String)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok(answer)) => match decision(answer) {
                Some(decision) => {
                    self.answered();
                    Some(decision)
                }
                None => {
                    self.failed("an answer the script does not give");
                    None
                }
            },
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("no answer in time");
                None
            }
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("rate-limit store answers again: limits are shared across instances");
            crate::metrics::rate_store_up(true);
        }
    }

    fn failed(&self, why: &str) {
        crate::metrics::rate_store_failure();
        let retry = u64::try_from(self.retry.as_millis()).unwrap_or(u64::MAX);
        self.skip_until_ms
            .store(self.elapsed_ms().saturating_add(retry), Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                retry_ms = retry,
                "rate-limit store unreachable: each instance applies the limits alone until it answers again"
            );
            crate::metrics::rate_store_up(false);
        }
    }
}

/// The script's `{1, "0"}` (taken) or `{0, wait}` (refused, wait in seconds).
fn decision((taken, wait): (i64, String)) -> Option<Result<(), Duration>> {
    if taken == 1 {
        return Some(Ok(()));
    }
    let wait: f64 = wait.parse().ok()?;
    Duration::try_from_secs_f64(wait).ok().map(Err)
}

#[cfg(test)]
mod tests {
    //! The script against [`super::super::Bucket`]: the same operations at the same
    //! instants must give the same decisions. These run the script on a real Redis
    //! (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), with the instants passed
    //! in (the script's optional fifth argument) instead of the server's clock.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::Bucket;
    use super::*;
    use proptest::prelude::*;

    fn redis_url() -> String {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    #[derive(Clone, Debug)]
    struct Step {
        after_us: u64,
        cost: u32,
        mode: Mode,
    }

    async fn scripted(
        connection: &mut redis::aio::MultiplexedConnection,
        key: &str,
        quota: &Quota,
        step: &Step,
        now_us: u64,
    ) -> Result<(), Duration> {
        let script = redis::Script::new(SCRIPT);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(key)
            .arg(quota.rate_per_second)
            .arg(quota.burst)
            .arg(step.cost)
            .arg(step.mode.as_arg())
            .arg(now_us);
        let answer: (i64, String) = invocation
            .invoke_async(connection)
            .await
            .expect("Redis runs the script (is Redis running? TEST_REDIS_URL)");
        decision(answer).expect("a well-formed answer")
    }

    fn in_process(
        bucket: &mut Bucket,
        quota: &Quota,
        step: &Step,
        now: Instant,
    ) -> Result<(), Duration> {
        match step.mode {
            Mode::Take => bucket.take(quota, now, step.cost),
            Mode::Owe => {
                bucket.owe(quota, now, step.cost);
                Ok(())
            }
        }
    }

    /// Runs `steps` on a fresh bucket both ways and compares each decision.
    async fn compare(quota: Quota, steps: &[Step]) -> Result<(), String> {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("a Redis to test the script on (TEST_REDIS_URL)");
        let key = format!("test:bucket:{}", uuid::Uuid::new_v4().simple());
        let t0 = Instant::now();
        // Any base instant: the script only subtracts instants.
        let base_us = 1_700_000_000_000_000u64;
        let mut bucket = Bucket::full(&quota, t0);
        let mut at_us = 0u64;
        for (i, step) in steps.iter().enumerate() {
            at_us += step.after_us;
            let local = in_process(&mut bucket, &quota, step, t0 + Duration::from_micros(at_us));
            let shared = scripted(&mut connection, &key, &quota, step, base_us + at_us).await;
            let same = match (&local, &shared) {
                (Ok(()), Ok(())) => true,
                (Err(a), Err(b)) => (a.as_secs_f64() - b.as_secs_f64()).abs() < 1e-6,
                _ => false,
            };
            if !same {
                return Err(format!(
                    "step {i} {step:?} at {at_us} µs: in process {local:?}, in Redis {shared:?}"
                ));
            }
        }
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        Ok(())
    }

    fn step(after_ms: u64, cost: u32, mode: Mode) -> Step {
        Step {
            after_us: after_ms * 1000,
            cost,
            mode,
        }
    }

    #[tokio::test]
    async fn the_script_allows_the_burst_then_the_rate_like_the_bucket() {
        let quota = Quota::new(10, 20).unwrap();
        let mut steps: Vec<Step> = (0..21).map(|_| step(0, 1, Mode::Take)).collect();
        steps.push(step(100, 1, Mode::Take));
        steps.push(step(0, 1, Mode::Take));
        steps.push(step(0, 50, Mode::Take));
        steps.push(step(5_000, 50, Mode::Take));
        compare(quota, &steps).await.unwrap();
    }

    #[tokio::test]
    async fn the_script_goes_into_debt_like_the_bucket() {
        let quota = Quota::new(10, 10).unwrap();
        let steps = [
            step(0, 25, Mode::Owe),
            step(0, 1, Mode::Take),
            step(0, 25, Mode::Owe),
            step(0, 1, Mode::Take),
            step(1_050, 1, Mode::Take),
            step(100, 1, Mode::Take),
            step(2_000, 10, Mode::Take),
        ];
        compare(quota, &steps).await.unwrap();
    }

    #[tokio::test]
    async fn a_full_bucket_leaves_no_key_and_others_expire_once_refilled() {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("test:bucket:{}", uuid::Uuid::new_v4().simple());
        let quota = Quota::new(10, 20).unwrap();
        let now = 1_700_000_000_000_000u64;
        scripted(&mut connection, &key, &quota, &step(0, 5, Mode::Take), now)
            .await
            .unwrap();
        // Five tokens short at ten a second: full again in 500 ms (+ 1 s of margin).
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!((1_000..=1_500).contains(&ttl), "{ttl}");
        // Refilled: the key is dropped rather than kept equal to a missing one.
        scripted(
            &mut connection,
            &key,
            &quota,
            &step(0, 0, Mode::Take),
            now + 600_000,
        )
        .await
        .unwrap();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(exists, 0);
    }

    fn any_step() -> impl Strategy<Value = Step> {
        (
            prop_oneof![Just(0u64), 0u64..2_000_000],
            0u32..40,
            prop_oneof![4 => Just(Mode::Take), 1 => Just(Mode::Owe)],
        )
            .prop_map(|(after_us, cost, mode)| Step {
                after_us,
                cost,
                mode,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Same inputs, same decisions, whatever the quota and sequence.
        #[test]
        fn the_script_decides_as_the_bucket_does(
            rate in 1u32..50,
            burst in 1u32..60,
            steps in proptest::collection::vec(any_step(), 1..40),
        ) {
            let quota = Quota::new(rate, burst).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let result = runtime.block_on(compare(quota, &steps));
            prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
        }
    }

    #[tokio::test]
    async fn a_dead_store_gives_no_decision_quickly_and_is_skipped_until_the_retry() {
        // Nothing listens on port 1: the connection is refused at once.
        let store = SharedBuckets::new(
            "redis://127.0.0.1:1",
            "test:",
            Duration::from_millis(50),
            Duration::from_secs(60),
        )
        .unwrap();
        let quota = Quota::new(1, 1).unwrap();
        let started = Instant::now();
        assert_eq!(store.decide("k", &quota, 1, Mode::Take).await, None);
        assert!(store.down.load(Ordering::Relaxed));
        // Within the retry interval the store is not even asked.
        assert_eq!(store.decide("k", &quota, 1, Mode::Take).await, None);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_url_that_is_not_redis_is_refused_at_start() {
        let refused = SharedBuckets::new(
            "http://127.0.0.1:6379",
            "p:",
            Duration::from_millis(50),
            Duration::from_secs(1),
        );
        assert!(refused.is_err());
    }
}
