//! The read standby (`database.replica_url`): heavy reads (auditors' history, reports,
//! exports, the public list) go to it while it lags the primary by less than
//! `database.replica_max_lag_ms`; checks and every write always go to the primary.
//!
//! Which connection a read takes is decided in one place, [`crate::state::AppState::heavy_reads`],
//! from the flag this module keeps. A background job measures the lag every
//! `database.replica_check_interval_ms`:
//!
//! 1. on the primary, its current WAL position (`pg_current_wal_lsn()`);
//! 2. on the standby, whether it has replayed up to that position. If it has, it lags by
//!    at most the time between the two statements: 0. If it has not, the lag is the age
//!    of the last transaction it replayed (`now() - pg_last_xact_replay_timestamp()`).
//!
//! The age alone would not do: on an idle primary nothing new is replayed, so the age
//! grows although the standby is complete; the position alone says bytes, not time. A
//! standby that is not in recovery is a primary (the primary's own URL, or the standby
//! after a promotion): it lags by 0. A measurement that fails, or a standby that has
//! replayed nothing yet, means "unknown": the standby is not used until one succeeds.

use crate::config::Settings;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How long one measurement may take before it counts as failed.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(2);

/// The standby's pools and what the last measurement found.
pub struct Replica {
    /// Heavy reads of callers with a token (same size as the main pool, lazily opened:
    /// a standby that is down at start does not stop the instance).
    pub main: DatabaseConnection,
    /// Anonymous callers' heavy reads (the public list): the anonymous pool's shape.
    pub anonymous: DatabaseConnection,
    max_lag_ms: i64,
    /// The last measured lag in milliseconds; -1: unknown (not measured yet, or failed).
    /// Heavy reads go to the standby while it is known and under `max_lag_ms`.
    lag_ms: AtomicI64,
    /// Why not, when it is not in use (for /readyz).
    note: std::sync::Mutex<Option<String>>,
}

/// What `/readyz` and `/metrics` say about the standby.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReplicaStatus {
    pub in_use: bool,
    /// `None` when unknown.
    pub lag_ms: Option<i64>,
    pub max_lag_ms: i64,
    /// Why it is not in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Replica {
    /// The standby's pools, when `database.replica_url` is set. Both URLs must be
    /// PostgreSQL (checked by `db::connect_replica`).
    pub async fn connect(settings: &Settings) -> anyhow::Result<Option<Arc<Self>>> {
        // A blank URL is no standby, as a blank `limits.shared_store_url` is no store: an
        // environment that clears the variable (`REGISTRY_DATABASE__REPLICA_URL=`, which
        // `deploy/cluster.sh` passes through) means "without", not "connect to ''".
        let url = match settings.database.replica_url.as_deref().map(str::trim) {
            None | Some("") => return Ok(None),
            Some(url) => url,
        };
        let main = crate::db::connect_replica(url, settings, false).await?;
        let anonymous = crate::db::connect_replica(url, settings, true).await?;
        Ok(Some(Arc::new(Self {
            main,
            anonymous,
            max_lag_ms: i64::try_from(settings.database.replica_max_lag_ms).unwrap_or(i64::MAX),
            lag_ms: AtomicI64::new(-1),
            note: std::sync::Mutex::new(Some("not measured yet".into())),
        })))
    }

    /// Whether heavy reads go to the standby now.
    pub fn in_use(&self) -> bool {
        // Derived from the last measurement, so the two can never disagree.
        let lag = self.lag_ms.load(Ordering::Acquire);
        lag >= 0 && lag < self.max_lag_ms
    }

    pub fn status(&self) -> ReplicaStatus {
        let lag = self.lag_ms.load(Ordering::Acquire);
        ReplicaStatus {
            in_use: self.in_use(),
            lag_ms: (lag >= 0).then_some(lag),
            max_lag_ms: self.max_lag_ms,
            note: self.note.lock().map(|n| n.clone()).unwrap_or_default(),
        }
    }

    /// Records one measurement: the standby is used only while it is known to lag less
    /// than the maximum. A change of state is logged once.
    fn record(&self, lag: Result<i64, String>) {
        let (lag_ms, use_it, note) = match lag {
            Ok(ms) if ms < self.max_lag_ms => (ms, true, None),
            Ok(ms) => (
                ms,
                false,
                Some(format!(
                    "standby lags {ms} ms, more than database.replica_max_lag_ms ({} ms): heavy reads go to the primary",
                    self.max_lag_ms
                )),
            ),
            Err(why) => (
                -1,
                false,
                Some(format!(
                    "standby lag unknown ({why}): heavy reads go to the primary"
                )),
            ),
        };
        let was = self.in_use();
        self.lag_ms.store(lag_ms, Ordering::Release);
        if was != use_it {
            match &note {
                None => tracing::info!(lag_ms, "replica in use for heavy reads"),
                Some(note) => tracing::warn!(lag_ms, "{note}"),
            }
        }
        if let Ok(mut slot) = self.note.lock() {
            *slot = note;
        }
    }

    /// Measures the lag every `interval` for as long as the service runs.
    pub async fn watch(self: Arc<Self>, primary: DatabaseConnection, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let measured = tokio::time::timeout(MEASURE_TIMEOUT, measure(&primary, &self.main))
                .await
                .unwrap_or_else(|_| Err("the measurement timed out".into()));
            self.record(measured);
        }
    }
}

/// The standby's lag behind the primary now, in milliseconds (see the module's doc).
pub async fn measure(
    primary: &DatabaseConnection,
    standby: &DatabaseConnection,
) -> Result<i64, String> {
    let position = primary
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            // On a primary in recovery (mid-failover) there is no current position.
            "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn",
        ))
        .await
        .map_err(|e| format!("primary: {e}"))?
        .and_then(|row| row.try_get::<Option<String>>("", "lsn").ok().flatten())
        .ok_or("the primary has no WAL position")?;
    let row = standby
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_is_in_recovery() AS recovering, \
                    COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught_up, \
                    (EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) * 1000)::bigint AS age_ms",
            [position.into()],
        ))
        .await
        .map_err(|e| format!("standby: {e}"))?
        .ok_or("the standby answered no row")?;
    let get_bool = |col: &str| row.try_get::<bool>("", col).map_err(|e| e.to_string());
    if !get_bool("recovering")? || get_bool("caught_up")? {
        return Ok(0);
    }
    row.try_get::<Option<i64>>("", "age_ms")
        .map_err(|e| e.to_string())?
        .map(|ms| ms.max(0))
        .ok_or_else(|| "the standby has replayed no transaction yet".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(max_lag_ms: i64) -> Replica {
        Replica {
            main: DatabaseConnection::default(),
            anonymous: DatabaseConnection::default(),
            max_lag_ms,
            lag_ms: AtomicI64::new(-1),
            note: std::sync::Mutex::new(Some("not measured yet".into())),
        }
    }

    #[test]
    fn used_only_while_known_to_lag_less_than_the_maximum() {
        let r = replica(1000);
        assert!(!r.in_use(), "not before the first measurement");
        r.record(Ok(999));
        let s = r.status();
        assert!(s.in_use);
        assert_eq!((s.lag_ms, s.note), (Some(999), None));
        r.record(Ok(1000));
        let s = r.status();
        assert!(!s.in_use, "the maximum itself is too much");
        assert!(s.note.unwrap().contains("database.replica_max_lag_ms"));
        r.record(Ok(0));
        assert!(r.in_use());
        r.record(Err("standby: connection refused".into()));
        let s = r.status();
        assert!(!s.in_use);
        assert_eq!(s.lag_ms, None, "unknown");
        assert!(s.note.unwrap().contains("connection refused"));
    }
}
