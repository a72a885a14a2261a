//! Faults against PostgreSQL, with the real binary:
//! (1) `kill -9` in the middle of a stream of mutations: every acknowledged mutation is
//!     there exactly once after a restart, and retrying the unacknowledged ones with their
//!     Idempotency-Keys never applies anything twice;
//! (2) the database stops under load (a throwaway cluster of this test's own, never the
//!     shared server): requests fail fast with SERVICE_UNAVAILABLE and `/readyz` says 503;
//!     after it restarts, requests succeed again without restarting the service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, admin_token, code, pg, upsert_body};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_string(),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

async fn post(
    client: &reqwest::Client,
    server_url: &str,
    token: &str,
    body: &Value,
    key: Option<&str>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = client
        .post(format!("{server_url}/graphql"))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await?;
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_mutation_and_retries_apply_once() {
    let admin_url = pg::admin_url();
    let name = format!("fault_kill_{}", uuid::Uuid::new_v4().simple());
    let url = pg::create_database(&admin_url, &name).await;
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    // A short request timeout makes a dead attempt's pending key stale sooner.
    let env = [("REGISTRY_LIMITS__REQUEST_TIMEOUT_MS", "2000")];
    let server = Server::start(dir.path(), &url, &env, "run-1.log").await;
    let base = server.url("");

    // Four writers stream distinct keyed mutations until the server dies under them.
    let acknowledged: Arc<Mutex<BTreeMap<u32, String>>> = Arc::default();
    let sent: Arc<Mutex<BTreeSet<u32>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..4u32 {
        let (acknowledged, sent, token, base) = (
            acknowledged.clone(),
            sent.clone(),
            token.clone(),
            base.clone(),
        );
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..10_000u32 {
                let n = writer * 10_000 + i;
                sent.lock().unwrap().insert(n);
                let key = format!("op-{n}");
                match post(&client, &base, &token, &upsert_body(n), Some(&key)).await {
                    Ok((200, body)) => {
                        let op = &body["data"]["upsertOperator"];
                        assert_eq!(op["version"], 1, "{body}");
                        let id = op["id"].as_str().unwrap().to_string();
                        acknowledged.lock().unwrap().insert(n, id);
                    }
                    Ok((status, body)) => panic!("unexpected answer {status}: {body}"),
                    // The server died: this one is unacknowledged; stop writing.
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 60 {
        assert!(Instant::now() < deadline, "the stream did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    for w in writers {
        w.await.unwrap();
    }
    drop(server);
    let acknowledged = acknowledged.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    let unacknowledged: Vec<u32> = sent
        .iter()
        .filter(|n| !acknowledged.contains_key(n))
        .copied()
        .collect();
    eprintln!(
        "kill -9 after {} acknowledged mutations; {} in flight",
        acknowledged.len(),
        unacknowledged.len()
    );
    assert!(
        !unacknowledged.is_empty(),
        "the kill hit no request in flight"
    );

    // Restart on the same database: every acknowledged mutation is there exactly once.
    let server = Server::start(dir.path(), &url, &env, "run-2.log").await;
    let db = pg::connect(&url).await;
    for (n, id) in &acknowledged {
        let uscc = code(*n);
        assert_eq!(
            count(
                &db,
                &format!("SELECT COUNT(*) AS n FROM operators WHERE uscc = '{uscc}' AND id::text = '{id}' AND version = 1")
            )
            .await,
            1,
            "acknowledged operator {uscc} ({id}) is missing or changed"
        );
        assert_eq!(
            count(
                &db,
                &format!("SELECT COUNT(*) AS n FROM audit_events WHERE entity_type = 'operator' AND entity_id = '{id}'")
            )
            .await,
            1,
            "operator {uscc} was audited other than once"
        );
    }

    // Retry every unacknowledged mutation with its key until it has a final answer: it
    // either runs now (its first attempt had committed nothing) or is reported as applied.
    let client = reqwest::Client::new();
    let mut ran_now = 0;
    let mut applied_before = 0;
    for n in &unacknowledged {
        let key = format!("op-{n}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = post(
                &client,
                &server.url(""),
                &token,
                &upsert_body(*n),
                Some(&key),
            )
            .await
            .unwrap();
            let code = body["errors"][0]["extensions"]["code"].as_str();
            match (status, code) {
                (200, None) => {
                    assert_eq!(body["data"]["upsertOperator"]["version"], 1, "{body}");
                    ran_now += 1;
                    break;
                }
                (409, Some("IDEMPOTENCY_ANSWER_LOST")) => {
                    applied_before += 1;
                    break;
                }
                (409, Some("IDEMPOTENCY_KEY_IN_PROGRESS")) => {
                    assert!(Instant::now() < deadline, "key {key} never became stale");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => panic!("unexpected retry answer {other:?}: {body}"),
            }
        }
    }
    eprintln!("retries: {ran_now} ran now, {applied_before} had been applied before the kill");

    // Every mutation ever sent is applied exactly once, and the audit chain is intact.
    for n in &sent {
        let uscc = code(*n);
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) AS n FROM operators WHERE uscc = '{uscc}' AND version = 1"
                )
            )
            .await,
            1,
            "{uscc}"
        );
    }
    let operators = count(&db, "SELECT COUNT(*) AS n FROM operators").await;
    assert_eq!(operators, sent.len() as i64);
    assert_eq!(
        count(&db, "SELECT COUNT(*) AS n FROM audit_events").await,
        operators,
        "some mutation was applied twice"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM audit_events e JOIN audit_events p ON p.id = (SELECT MAX(id) FROM audit_events WHERE id < e.id) WHERE e.prev_hash <> p.hash"
        )
        .await,
        0,
        "the audit chain is broken"
    );
    db.close().await.ok();
    drop(server);
    pg::drop_database(&admin_url, &name).await;
}

/// Sends one operator read and one keyed-less write; returns (elapsed, statuses, codes).
async fn probe(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    n: u32,
) -> (Duration, Vec<(u16, Option<String>)>) {
    let started = Instant::now();
    let read = json!({ "query": format!("{{ operator(uscc: \"{}\") {{ id }} }}", code(1)) });
    let mut answers = Vec::new();
    for body in [read, upsert_body(n)] {
        let (status, body) = post(client, base, token, &body, None)
            .await
            .expect("the service answers while the database is down");
        let code = body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_string);
        answers.push((status, code));
    }
    (started.elapsed(), answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_and_recovers_without_restart() {
    let cluster = pg::Cluster::init("fault-pg-").unwrap_or_else(|e| panic!("{e}"));
    let url = pg::create_database(&cluster.admin_url(), "registry").await;
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    let env = [
        ("REGISTRY_DATABASE__ACQUIRE_TIMEOUT_MS", "1000"),
        ("REGISTRY_DATABASE__CONNECT_TIMEOUT_MS", "1000"),
    ];
    let server = Server::start(dir.path(), &url, &env, "server.log").await;
    let base = server.url("");
    let client = reqwest::Client::new();

    // Healthy: reads and writes succeed.
    for n in 1..=5 {
        let (_, answers) = probe(&client, &base, &token, n).await;
        assert!(
            answers.iter().all(|(s, c)| *s == 200 && c.is_none()),
            "{answers:?}"
        );
    }
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Background load while the database goes away and comes back.
    let load_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, base, token, stop) = (
            client.clone(),
            base.clone(),
            token.clone(),
            load_stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 1000;
            let mut codes = BTreeMap::<String, u32>::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (_, answers) = probe(&client, &base, &token, n).await;
                for (status, code) in answers {
                    assert_ne!(status, 500, "a 500 under the outage");
                    *codes
                        .entry(code.unwrap_or_else(|| "ok".into()))
                        .or_default() += 1;
                }
            }
            codes
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.stop("fast").unwrap();
    // Down: every request fails fast with SERVICE_UNAVAILABLE; /readyz says 503.
    let mut n = 100;
    let down_since = Instant::now();
    let mut slowest = Duration::ZERO;
    while down_since.elapsed() < Duration::from_secs(4) {
        n += 1;
        let (elapsed, answers) = probe(&client, &base, &token, n).await;
        // Two requests, each bounded by the 1 s acquire timeout.
        assert!(
            elapsed < Duration::from_secs(3),
            "two requests took {elapsed:?}"
        );
        slowest = slowest.max(elapsed);
        for (status, code) in &answers {
            assert_eq!(code.as_deref(), Some("SERVICE_UNAVAILABLE"), "{answers:?}");
            assert!(matches!(status, 200 | 503), "{answers:?}");
        }
        // A write fails as a whole: 503 with Retry-After.
        assert_eq!(answers[1].0, 503, "{answers:?}");
    }
    eprintln!("while down, the slowest read+write pair took {slowest:?}");
    let started = Instant::now();
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(3));

    // Back: requests succeed again, the service was never restarted.
    cluster.start().unwrap();
    let back_since = Instant::now();
    loop {
        n += 1;
        let (_, answers) = probe(&client, &base, &token, n).await;
        if answers.iter().all(|(s, c)| *s == 200 && c.is_none()) {
            break;
        }
        assert!(
            back_since.elapsed() < Duration::from_secs(15),
            "the service did not recover: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovered {:?} after the database restarted",
        back_since.elapsed()
    );
    for _ in 0..10 {
        n += 1;
        let (_, answers) = probe(&client, &base, &token, n).await;
        assert!(
            answers.iter().all(|(s, c)| *s == 200 && c.is_none()),
            "{answers:?}"
        );
    }
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    load_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let codes = load.await.unwrap();
    eprintln!("background load answers: {codes:?}");
    assert!(
        codes
            .keys()
            .all(|c| c == "ok" || c == "SERVICE_UNAVAILABLE"),
        "{codes:?}"
    );
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the service exited"
    );
}
