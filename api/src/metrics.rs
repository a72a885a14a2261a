//! Prometheus metrics: the `metrics` facade with the Prometheus exporter, rendered at
//! `GET /metrics` on the main address (see `http::metrics` for who may read it).
//!
//! One recorder per process (the facade's is global): servers started in one process,
//! as the tests do, share it. Gauges that describe the database (pool connections, the
//! audit chain head) are sampled from the scraping server's state at scrape time.
//!
//! Every label value is bounded: routes are route patterns (or `default`), methods the
//! standard ones (or `OTHER`), GraphQL operation names at most [`MAX_OPERATION_NAMES`]
//! distinct ones (later ones count as `OTHER`), so callers cannot grow the registry.
//!
//! Hooks for code that records its own figures (`check_answered`, `check_record_group`,
//! `lookup_group`) are here so that the metric names and label sets live in one place;
//! the checks service, the check-record writers and the shared lookups call them.

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseBackend, DatabaseConnection, EntityTrait};
use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

pub const HTTP_REQUESTS: &str = "registry_http_requests_total";
pub const HTTP_DURATION: &str = "registry_http_request_duration_seconds";
pub const GRAPHQL_OPERATIONS: &str = "registry_graphql_operations_total";
pub const DB_POOL_CONNECTIONS: &str = "registry_db_pool_connections";
pub const DB_POOL_MAX: &str = "registry_db_pool_max_connections";
pub const AUDIT_HEAD: &str = "registry_audit_chain_head_event_id";
pub const WS_OPEN: &str = "registry_websocket_connections";
pub const WS_ACCEPTED: &str = "registry_websocket_connections_total";
pub const CHECKS: &str = "registry_checks_total";
pub const CHECK_RECORD_GROUP: &str = "registry_check_record_group_size";
pub const CHECK_RECORD_COMMIT: &str = "registry_check_record_commit_seconds";
pub const CHECK_RECORD_HEAD_MOVED: &str = "registry_check_record_head_moved_total";
pub const LOOKUP_GROUP: &str = "registry_check_lookup_group_size";
pub const REFUSALS: &str = "registry_refusals_total";
pub const DB_POOL_WAITS: &str = "registry_db_pool_waits_total";
pub const DB_POOL_WAIT: &str = "registry_db_pool_wait_seconds";
pub const WS_SUBSCRIPTIONS_OPEN: &str = "registry_websocket_subscriptions";
pub const WS_SUBSCRIPTIONS_STARTED: &str = "registry_websocket_subscriptions_total";
pub const PERSISTED_QUERIES: &str = "registry_persisted_queries_total";
pub const REFUSALS_HELD: &str = "registry_refusals_held_total";
pub const NOTIFICATIONS_SENT: &str = "registry_cluster_notifications_sent_total";
pub const NOTIFICATIONS_RECEIVED: &str = "registry_cluster_notifications_received_total";
pub const LISTENER_RECONNECTS: &str = "registry_cluster_listener_reconnects_total";
pub const RATE_STORE_FAILURES: &str = "registry_rate_limit_store_failures_total";
pub const RATE_STORE_UP: &str = "registry_rate_limit_store_up";
pub const REPLICA_LAG: &str = "registry_replica_lag_seconds";
pub const REPLICA_IN_USE: &str = "registry_replica_in_use";

/// Distinct GraphQL operation names kept as label values.
pub const MAX_OPERATION_NAMES: usize = 256;
/// Longer operation names count as `OTHER`.
pub const MAX_OPERATION_NAME_LEN: usize = 64;
/// The label value standing for everything past a bound.
pub const OTHER: &str = "OTHER";

const SECONDS_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Installs the process's recorder on first use and returns its handle; `None` when
/// another recorder was installed first (then nothing is exported).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let built = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS))
        .and_then(|b| b.install_recorder());
    let handle = match built {
        Ok(handle) => handle,
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed; /metrics will be empty");
            return None;
        }
    };
    describe();
    // Histograms keep samples until upkeep folds them in; a thread of its own, so it
    // outlives whichever runtime happened to install the recorder.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "metrics upkeep thread not started; scrapes still run it");
    }
    Some(handle)
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        ::metrics::Unit::Seconds,
        "HTTP request duration until the response head, by method and route pattern"
    );
    describe_counter!(
        GRAPHQL_OPERATIONS,
        "GraphQL operations executed, by operation name and outcome (OK or the first error's code)"
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Database pool connections, by state (in_use, idle)"
    );
    describe_gauge!(DB_POOL_MAX, "Database pool size limit");
    describe_gauge!(
        REPLICA_LAG,
        ::metrics::Unit::Seconds,
        "Lag of the read standby behind the primary at its last measurement (-1: unknown)"
    );
    describe_gauge!(
        REPLICA_IN_USE,
        "1 while heavy reads go to the read standby, 0 while they go to the primary"
    );
    describe_gauge!(AUDIT_HEAD, "Id of the last event of the audit hash chain");
    describe_gauge!(
        WS_OPEN,
        "Open WebSocket (subscription) connections past connection_init"
    );
    describe_counter!(
        WS_ACCEPTED,
        "WebSocket connections accepted at connection_init"
    );
    describe_counter!(CHECKS, "Checks answered, by domain and decision");
    describe_histogram!(CHECK_RECORD_GROUP, "Check records written per group commit");
    describe_histogram!(
        CHECK_RECORD_COMMIT,
        ::metrics::Unit::Seconds,
        "Duration of a check-record group commit"
    );
    describe_counter!(
        CHECK_RECORD_HEAD_MOVED,
        "Check-record groups computed on an answer-log head that had moved on (another writer or instance appended first), written again under the head's lock"
    );
    describe_histogram!(LOOKUP_GROUP, "Checks answered per shared lookup statement");
    describe_counter!(
        DB_POOL_WAITS,
        "Write transactions that began while the main pool had no idle connection (they waited for one to come back or to be opened); reads outside transactions are not seen"
    );
    describe_histogram!(
        DB_POOL_WAIT,
        ::metrics::Unit::Seconds,
        "Time each write transaction took to begin: the wait for a pooled connection plus BEGIN (on SQLite also the wait for the write lock)"
    );
    describe_gauge!(
        WS_SUBSCRIPTIONS_OPEN,
        "GraphQL subscriptions streaming now over WebSocket"
    );
    describe_counter!(
        WS_SUBSCRIPTIONS_STARTED,
        "GraphQL subscriptions started over WebSocket"
    );
    describe_counter!(
        PERSISTED_QUERIES,
        "Requests that used automatic persisted queries, by outcome (found, registered, or the refusal's code)"
    );
    describe_counter!(
        REFUSALS_HELD,
        "429 refusals by whether they were held before being sent (held: true) or sent at once because every place was taken (held: false)"
    );
    describe_counter!(
        NOTIFICATIONS_SENT,
        "Announcements to other instances queued with pg_notify in a writing transaction (delivered only if it commits), by channel"
    );
    describe_counter!(
        NOTIFICATIONS_RECEIVED,
        "Announcements received by this instance's listening connection, by channel"
    );
    describe_counter!(
        LISTENER_RECONNECTS,
        "Times the listening connection was lost and opened again (each followed by a full refresh)"
    );
    describe_counter!(
        RATE_STORE_FAILURES,
        "Rate-limit decisions the shared store (limits.shared_store_url) did not answer in time or answered with an error; each was taken by the process's own buckets"
    );
    describe_gauge!(
        RATE_STORE_UP,
        "1 while rate limits are decided by the shared store, 0 while this process decides alone because the store did not answer (absent without a store)"
    );
    describe_counter!(
        REFUSALS,
        "Requests refused before GraphQL ran, by code (RATE_LIMITED, PAYLOAD_TOO_LARGE, ...)"
    );
}

/// A standard method as itself, anything else as `OTHER` (methods are caller-chosen).
fn method_label(method: &str) -> &'static str {
    const STANDARD: &[&str] = &[
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or(OTHER)
}

/// One HTTP request (the access middleware calls it for every response).
pub fn http_request(method: &str, route: &str, status: u16, duration: Duration) {
    let method = method_label(method);
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.to_string(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "method" => method, "route" => route.to_string())
        .record(duration.as_secs_f64());
}

/// The label for an operation name: the name while fewer than [`MAX_OPERATION_NAMES`]
/// distinct ones were seen, `anonymous` for none, `OTHER` past the bound.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<RwLock<HashSet<String>>> = OnceLock::new();
    bounded_label(SEEN.get_or_init(RwLock::default), name, MAX_OPERATION_NAMES)
}

fn bounded_label(seen: &RwLock<HashSet<String>>, name: Option<&str>, max: usize) -> String {
    let Some(name) = name else {
        return "anonymous".into();
    };
    if name.len() > MAX_OPERATION_NAME_LEN {
        return OTHER.into();
    }
    // Partners repeat the same few names: the usual case only reads.
    if seen.read().is_ok_and(|seen| seen.contains(name)) {
        return name.to_string();
    }
    let Ok(mut seen) = seen.write() else {
        return OTHER.into();
    };
    if seen.contains(name) || seen.len() < max {
        seen.insert(name.to_string());
        return name.to_string();
    }
    OTHER.into()
}

/// One GraphQL operation: its (bounded) name and `OK` or the first error's code.
pub fn graphql_operation(name: Option<&str>, outcome: &str) {
    counter!(GRAPHQL_OPERATIONS, "operation" => operation_label(name), "outcome" => outcome.to_string())
        .increment(1);
}

/// A check answered (hook for the checks service).
pub fn check_answered(domain: &str, decision: &str) {
    counter!(CHECKS, "domain" => domain.to_string(), "decision" => decision.to_string())
        .increment(1);
}

/// A check-record group committed (hook for the check-record writers).
pub fn check_record_group(size: usize, commit: Duration) {
    histogram!(CHECK_RECORD_GROUP).record(size as f64);
    histogram!(CHECK_RECORD_COMMIT).record(commit.as_secs_f64());
}

/// A check-record group found the answer log's head moved on and was written again.
pub fn check_record_head_moved() {
    counter!(CHECK_RECORD_HEAD_MOVED).increment(1);
}

/// A shared lookup statement answered `size` checks (hook for the shared lookups).
pub fn lookup_group(size: usize) {
    histogram!(LOOKUP_GROUP).record(size as f64);
}

/// A request refused before GraphQL ran (rate limit, body cap, bad body, token, ...), by
/// its stable code (always one of the fixed codes, never caller text).
pub fn refusal(code: &str) {
    counter!(REFUSALS, "code" => code.to_string()).increment(1);
}

/// A 429 refusal about to be sent: held for its `Retry-After`, or not (no place left).
pub fn refusal_hold(held: bool) {
    counter!(REFUSALS_HELD, "held" => if held { "true" } else { "false" }).increment(1);
}

/// The shared rate-limit store failed one decision (hook for `http::rate_limit::shared`).
pub fn rate_store_failure() {
    counter!(RATE_STORE_FAILURES).increment(1);
}

/// Whether rate limits are decided by the shared store now.
pub fn rate_store_up(up: bool) {
    gauge!(RATE_STORE_UP).set(if up { 1.0 } else { 0.0 });
}

/// A write transaction began: whether it found no idle connection in the pool, and how
/// long beginning took (hook for `service::audit::begin_write`).
pub fn pool_acquired(waited: bool, took: Duration) {
    if waited {
        counter!(DB_POOL_WAITS).increment(1);
    }
    histogram!(DB_POOL_WAIT).record(took.as_secs_f64());
}

/// A request that used automatic persisted queries (`graphql::persisted`), by outcome:
/// a fixed label or one of that module's codes.
pub fn persisted_query(outcome: &'static str) {
    counter!(PERSISTED_QUERIES, "outcome" => outcome).increment(1);
}

/// A channel name as a label: one of the registry's channels, `OTHER` otherwise.
fn channel_label(channel: &str) -> &'static str {
    crate::cluster::notify::CHANNELS
        .iter()
        .find(|c| **c == channel)
        .copied()
        .unwrap_or(OTHER)
}

/// An announcement queued in a writing transaction (hook for `cluster::notify`).
pub fn notification_sent(channel: &str) {
    counter!(NOTIFICATIONS_SENT, "channel" => channel_label(channel)).increment(1);
}

/// An announcement heard by the listener (hook for `cluster::notify`).
pub fn notification_received(channel: &str) {
    counter!(NOTIFICATIONS_RECEIVED, "channel" => channel_label(channel)).increment(1);
}

/// The listening connection was opened again after it was lost.
pub fn listener_reconnected() {
    counter!(LISTENER_RECONNECTS).increment(1);
}

/// Counts a streaming subscription while it lives: keep it with the stream.
pub struct Subscription(());

impl Subscription {
    pub fn started() -> Self {
        counter!(WS_SUBSCRIPTIONS_STARTED).increment(1);
        gauge!(WS_SUBSCRIPTIONS_OPEN).increment(1.0);
        Self(())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        gauge!(WS_SUBSCRIPTIONS_OPEN).decrement(1.0);
    }
}

/// Counts an open WebSocket connection while it lives: keep it with the connection.
pub struct WebSocketConnection(());

impl WebSocketConnection {
    pub fn opened() -> Self {
        counter!(WS_ACCEPTED).increment(1);
        gauge!(WS_OPEN).increment(1.0);
        Self(())
    }
}

impl Drop for WebSocketConnection {
    fn drop(&mut self) {
        gauge!(WS_OPEN).decrement(1.0);
    }
}

/// The exposition text, with the database gauges sampled from `db` now.
pub async fn render(db: &DatabaseConnection) -> Option<String> {
    let handle = handle()?;
    sample_pool(db);
    match entity::audit_head::Entity::find_by_id(1).one(db).await {
        Ok(Some(head)) => gauge!(AUDIT_HEAD).set(head.last_event_id as f64),
        Ok(None) => gauge!(AUDIT_HEAD).set(0.0),
        // A scrape during an outage still shows everything else.
        Err(err) => tracing::debug!(error = %err, "audit head not sampled"),
    }
    handle.run_upkeep();
    Some(handle.render())
}

/// The read standby's gauges, sampled at scrape from the scraping server's state.
pub fn replica_sample(status: &crate::replica::ReplicaStatus) {
    let lag = status.lag_ms.map_or(-1.0, |ms| ms as f64 / 1000.0);
    gauge!(REPLICA_LAG).set(lag);
    gauge!(REPLICA_IN_USE).set(if status.in_use { 1.0 } else { 0.0 });
}

/// Whether the pool behind `db` has an idle connection now (`true` when it cannot tell:
/// an unknown backend is not counted as waiting). A sample, not a reservation: another
/// task may take that connection first, so waits are counted at most once each, and a
/// few may be missed under contention.
pub fn pool_has_idle(db: &DatabaseConnection) -> bool {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => db.get_postgres_connection_pool().num_idle() > 0,
        DatabaseBackend::Sqlite => db.get_sqlite_connection_pool().num_idle() > 0,
        _ => true,
    }
}

fn sample_pool(db: &DatabaseConnection) {
    let (size, idle, max) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size - idle));
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    gauge!(DB_POOL_MAX).set(f64::from(max));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        let seen = RwLock::default();
        assert_eq!(bounded_label(&seen, None, 2), "anonymous");
        assert_eq!(bounded_label(&seen, Some("CheckBidder"), 2), "CheckBidder");
        assert_eq!(bounded_label(&seen, Some("Listings"), 2), "Listings");
        assert_eq!(bounded_label(&seen, Some("Third"), 2), OTHER);
        assert_eq!(bounded_label(&seen, Some("CheckBidder"), 2), "CheckBidder");
        let long = "x".repeat(MAX_OPERATION_NAME_LEN + 1);
        assert_eq!(bounded_label(&RwLock::default(), Some(&long), 2), OTHER);
    }

    #[test]
    fn only_standard_methods_are_labels() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PROPFIND"), OTHER);
        assert_eq!(method_label("get"), OTHER);
    }
}
