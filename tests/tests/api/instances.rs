//! Several instances on one PostgreSQL database behave as one (issue 16): two (or three)
//! `Application`s on port 0 share a fresh database, each with its own pool, caches,
//! feed hub and background jobs, as a cluster runs them.
//!
//! The caches' fallback times are raised far above each test's bound
//! (`auth.partner_cache_seconds`, `jobs.feed_poll_ms`), so what the tests see can only
//! have come through the announcements (`cluster::notify`).

use crate::checks::check;
use crate::history::subscriptions::{ws_connect, ws_next, ws_send};
use crate::listings::{decide, listed, propose};
use api::cluster::locks::{Lock, run_exclusive};
use api::config::Settings;
use api::domain::measures::Domain;
use chrono::Utc;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;
use std::time::{Duration, Instant};
use tests::{Backend, TestApp, spawn_app_with, valid_code};

/// Fallbacks slower than any bound asserted here.
fn slow_fallbacks(s: &mut Settings) {
    s.auth.partner_cache_seconds = 60;
    s.jobs.feed_poll_ms = 60_000;
}

async fn two_instances() -> (TestApp, TestApp) {
    let a = spawn_app_with(Backend::Postgres, slow_fallbacks).await;
    let b = a.spawn_peer(|_| {}).await;
    (a, b)
}

fn decision(resp: &tests::Gql) -> String {
    resp.data()["check"]["decision"]
        .as_str()
        .expect("decision")
        .to_string()
}

/// Polls `probe` every 10 ms until it holds or `within` has passed; the time it took.
async fn within<F, Fut>(within: Duration, mut probe: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if probe().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_decided_through_one_instance_is_restricted_through_another_at_once() {
    let (a, b) = two_instances().await;
    let admin = a.admin();
    let date = api::domain::china_date(Utc::now()).to_string();
    for serial in 1..=5 {
        let code = valid_code("441802", 700 + serial);
        a.create_operator(&code, &format!("清远多实例{serial}有限公司"))
            .await;
        let id = propose(&a, &admin, &code, &date).await.data()["proposeListing"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // B has answered for this code before the decision (nothing it keeps may hide it).
        assert_eq!(
            decision(&check(&b, &b.admin(), &code, "PROCUREMENT", None).await),
            "CLEAR"
        );
        decide(&a, &admin, &id, 1, &date, None).await.data();
        // Immediately after the mutation returned, through the other instance.
        assert_eq!(
            decision(&check(&b, &b.admin(), &code, "PROCUREMENT", None).await),
            "RESTRICTED",
            "a decision committed through A was missed by a check through B"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_deactivated_through_one_instance_is_refused_by_another_within_the_notification_delay()
 {
    let (a, b) = two_instances().await;
    let code = valid_code("441802", 801);
    let token = a.partner("land-bureau", &[Domain::LandTransfer]).await;
    // B has the partner cached (for 60 s here).
    assert_eq!(
        decision(&check(&b, &token, &code, "LAND_TRANSFER", None).await),
        "CLEAR"
    );
    a.gql(
        Some(&a.admin()),
        "mutation { deactivatePartner(subject: \"land-bureau\", reason: \"decommissioned\") { active } }",
        json!({}),
    )
    .await
    .data();
    let delay = within(Duration::from_secs(1), || async {
        check(&b, &token, &code, "LAND_TRANSFER", None)
            .await
            .error_code()
            == Some("FORBIDDEN")
    })
    .await
    .expect("B still serves a partner deactivated through A a second later");
    eprintln!("partner deactivated through A: refused by B after {delay:?}");
    // Counted (the recorder is the test process's, shared by its servers).
    let metrics = b.get("/metrics").await.text().await.unwrap();
    for family in [
        "registry_cluster_notifications_sent_total{channel=\"registry_partner\"}",
        "registry_cluster_notifications_received_total{channel=\"registry_partner\"}",
    ] {
        assert!(metrics.contains(family), "{family} missing from /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_instance_receives_a_change_committed_through_another() {
    let (a, b) = two_instances().await;
    let partner = a.partner("gov-bidding", &[Domain::Bidding]).await;
    let admin = a.admin();
    let code = valid_code("441882", 901);
    a.create_operator(&code, "连州多实例订阅公司").await;
    let date = api::domain::china_date(Utc::now()).to_string();
    let id = propose(&a, &admin, &code, &date).await.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut ws = ws_connect(&b, "/graphql/ws").await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {partner}")}}),
    )
    .await;
    let ack = ws_next(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { registryChanged { cursor kind listingId uscc inForce } }"
        }}),
    )
    .await;
    // The subscription must be running on B before the change commits on A.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (from the mutation sent, from its answer received)
    let mut delays = Vec::new();
    let started = Instant::now();
    decide(&a, &admin, &id, 1, &date, None).await.data();
    let answered = Instant::now();
    let next = ws_next(&mut ws, Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("no event on B within a second of the mutation on A: {e}"));
    delays.push((started.elapsed(), answered.elapsed()));
    assert_eq!(next["type"], "next", "{next}");
    let event = &next["payload"]["data"]["registryChanged"];
    assert_eq!(event["kind"], "DECIDED");
    assert_eq!(event["listingId"], id.as_str());
    assert_eq!(event["uscc"], code.as_str());

    // A second change, the revocation: same path.
    let started = Instant::now();
    let revoked = a.gql(
        Some(&admin),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { status } }",
        json!({"i": {"id": id, "expectedVersion": 2, "ground": "PENALTY_REVOKED", "revocationDocNo": "R-1", "reason": "行政复议撤销原处罚决定"}}),
    )
    .await;
    let answered = Instant::now();
    revoked.data();
    let next = ws_next(&mut ws, Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("no second event on B within a second: {e}"));
    delays.push((started.elapsed(), answered.elapsed()));
    assert_eq!(
        next["payload"]["data"]["registryChanged"]["kind"], "REVOKED",
        "{next}"
    );
    eprintln!(
        "registryChanged on B: events received (after the mutation was sent to A, after A answered) {delays:?}"
    );
    for (sent, _) in &delays {
        assert!(*sent < Duration::from_secs(1), "{sent:?}");
    }
}

/// The listener's connection (`credit-registry-listener`) of every instance on the test
/// database is terminated; each reconnects and refreshes everything.
async fn terminate_listeners(app: &TestApp) -> u64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = '{}'",
                api::cluster::notify::LISTENER_APPLICATION_NAME
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_lost_its_connection_refreshes_what_it_may_have_missed() {
    let (a, b) = two_instances().await;
    let code = valid_code("441802", 802);
    let token = a.partner("gov-honors", &[Domain::Honors]).await;
    assert_eq!(
        decision(&check(&b, &token, &code, "HONORS", None).await),
        "CLEAR"
    );
    // A change nobody announces (as if its notification had been lost): B keeps serving
    // its cached registration...
    a.sql("UPDATE partners SET active = false WHERE subject = 'gov-honors'")
        .await;
    assert_eq!(
        decision(&check(&b, &token, &code, "HONORS", None).await),
        "CLEAR"
    );
    // ...until its listener reconnects, which empties the partner cache.
    assert_eq!(terminate_listeners(&a).await, 2);
    let delay = within(Duration::from_secs(3), || async {
        check(&b, &token, &code, "HONORS", None).await.error_code() == Some("FORBIDDEN")
    })
    .await
    .expect("B did not refresh its partner cache after its listener reconnected");
    eprintln!("listener reconnected and refreshed after {delay:?}");
    // Announcements flow again after the reconnect.
    let code2 = valid_code("441802", 803);
    let token2 = a.partner("gov-bidding-2", &[Domain::Bidding]).await;
    assert_eq!(
        decision(&check(&b, &token2, &code2, "BIDDING", None).await),
        "CLEAR"
    );
    a.gql(
        Some(&a.admin()),
        "mutation { deactivatePartner(subject: \"gov-bidding-2\", reason: \"ended\") { active } }",
        json!({}),
    )
    .await
    .data();
    within(Duration::from_secs(1), || async {
        check(&b, &token2, &code2, "BIDDING", None)
            .await
            .error_code()
            == Some("FORBIDDEN")
    })
    .await
    .expect("announcements did not reach B after its listener reconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_key_added_on_one_instance_is_used_by_all_at_once() {
    let (a, b) = two_instances().await;
    let dir = a.state.settings.receipt_key_dir();
    let kid = api::service::receipts::add_key(&dir).unwrap();
    // What `credit-registry rotate-receipt-key` does after writing the key.
    assert!(
        api::cluster::notify::announce_keys(&a.state.settings, "receipts")
            .await
            .unwrap()
    );
    // The periodic re-read is 30 s away: only the announcement explains this.
    for app in [&a, &b] {
        let delay = within(Duration::from_secs(1), || async {
            let jwks = app
                .get("/.well-known/jwks.json")
                .await
                .text()
                .await
                .unwrap();
            jwks.contains(&kid)
        })
        .await
        .unwrap_or_else(|| panic!("{} does not publish the new key {kid}", app.address));
        eprintln!("{}: new receipt key published after {delay:?}", app.address);
        assert_eq!(
            app.state
                .receipts
                .ring()
                .signer()
                .map(|(k, _)| k.to_string()),
            Some(kid.clone())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_other_log_keys_is_refused_at_start() {
    let a = spawn_app_with(Backend::Postgres, |_| {}).await;
    // Another data directory: development generates other keys there.
    let other = tempfile::tempdir().unwrap();
    let mut settings = (*a.state.settings).clone();
    settings.data_dir = other.path().to_path_buf();
    let err = match api::startup::Application::build(settings).await {
        Ok(_) => panic!("an instance with other log keys started on the same database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("same log keys"), "{err}");
    assert!(err.contains("registry log"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_at_once_on_an_empty_database_all_become_ready() {
    let (url, name) = tests::create_pg_database().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = tests::test_settings(dir.path(), url);
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        api::startup::Application::build(settings.clone()),
        api::startup::Application::build(settings.clone()),
        api::startup::Application::build(settings.clone()),
    );
    eprintln!(
        "three instances built at once on an empty database in {:?}",
        started.elapsed()
    );
    let client = reqwest::Client::new();
    let mut states = Vec::new();
    for app in [a, b, c] {
        let app = app.expect("every instance starts");
        let port = app.port();
        states.push(app.state());
        tokio::spawn(app.run_until_stopped());
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
    // Every migration ran once, and all three agree on the keys.
    let status = api::db::migration_status(&states[0].db).await.unwrap();
    assert!(status.iter().all(|(_, applied)| *applied), "{status:?}");
    let vkey = |i: usize| {
        states[i]
            .logs
            .key(api::store::tlog_store::LogName::Registry)
            .vkey()
    };
    assert_eq!(vkey(0), vkey(1));
    assert_eq!(vkey(0), vkey(2));
    for state in &states {
        state.db.clone().close().await.ok();
    }
    drop(states);
    tests::pg::drop_database(&tests::pg_admin_url(), &name).await;
}

async fn connect(url: &str) -> DatabaseConnection {
    Database::connect(url).await.unwrap()
}

/// The session holding `lock` on the current database, if any.
async fn holder(db: &DatabaseConnection, lock: Lock) -> Option<i32> {
    let key = lock.key();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = {} AND objid = {}",
                (key >> 32) as u32,
                (key & 0xffff_ffff) as u32
            ),
        ))
        .await
        .unwrap()?;
    Some(row.try_get::<i32>("", "pid").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_job_runs_on_one_instance_and_another_takes_over_when_it_dies() {
    let (url, name) = tests::create_pg_database().await;
    let (one, two, observer) = (
        connect(&url).await,
        connect(&url).await,
        connect(&url).await,
    );

    // Instance one is in the middle of a tick.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let one = one.clone();
        async move {
            run_exclusive(&one, Lock::ExpiryRecorder, async move {
                let _ = started_tx.send(());
                // Hangs, as an instance that dies mid-tick would.
                std::future::pending::<()>().await;
                Ok(1)
            })
            .await
        }
    });
    started_rx.await.unwrap();

    // Instance two's tick of the same job is skipped; another job still runs there.
    assert_eq!(
        run_exclusive(&two, Lock::ExpiryRecorder, async { Ok(2) })
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        run_exclusive(&two, Lock::IdempotencyPurge, async { Ok(3) })
            .await
            .unwrap(),
        Some(3)
    );

    // Instance one dies: its session ends (terminated by the server, not a clean
    // rollback), and with it the lock; instance two's next tick runs.
    let pid = holder(&observer, Lock::ExpiryRecorder)
        .await
        .expect("the running tick holds its lock");
    observer
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
    let mut ran = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while ran.is_none() && Instant::now() < deadline {
        ran = run_exclusive(&two, Lock::ExpiryRecorder, async { Ok(2) })
            .await
            .unwrap();
        if ran.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        ran,
        Some(2),
        "the job did not move to the surviving instance"
    );
    // A finished tick releases the lock: the next one runs again.
    assert_eq!(
        run_exclusive(&two, Lock::ExpiryRecorder, async { Ok(4) })
            .await
            .unwrap(),
        Some(4)
    );
    running.abort();
    for db in [one, two, observer] {
        db.close().await.ok();
    }
    tests::pg::drop_database(&tests::pg_admin_url(), &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_recorder_of_two_instances_records_each_expiry_once() {
    let (a, b) = two_instances().await;
    // Listings whose period runs out two seconds from now...
    let soon = Utc::now() + chrono::Duration::seconds(2);
    for serial in 1..=3 {
        listed(
            &a,
            "441802",
            950 + serial,
            soon.checked_sub_months(chrono::Months::new(36)).unwrap(),
        )
        .await;
    }
    // ...and then have (the registries' clocks, not a sleep).
    a.state.clock.advance(chrono::Duration::seconds(3));
    b.state.clock.advance(chrono::Duration::seconds(3));
    // Both instances tick at once, many times.
    let runs = |app: &TestApp| {
        let db = app.db.clone();
        let clock = app.state.clock.clone();
        async move {
            let mut recorded = 0;
            for _ in 0..5 {
                if let Some(n) = run_exclusive(
                    &db,
                    Lock::ExpiryRecorder,
                    api::service::feed::record_expiries(&db, &clock),
                )
                .await
                .unwrap()
                {
                    recorded += n;
                }
            }
            recorded
        }
    };
    let (on_a, on_b) = tokio::join!(runs(&a), runs(&b));
    assert_eq!(on_a + on_b, 3, "A recorded {on_a}, B {on_b}");
    assert_eq!(
        a.count_where("listing_revisions", "action = 'listing.expired'")
            .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_key_rotated_on_one_instance_is_accepted_by_all_at_once() {
    let a = spawn_app_with(Backend::Postgres, |s| {
        slow_fallbacks(s);
        s.auth.signing_key_dir = Some(s.data_dir.join("token-keys"));
    })
    .await;
    let b = a.spawn_peer(|_| {}).await;
    let before = a.admin();
    assert!(a.state.tokens.signing_kid().is_some());
    let who = "{ checkRecords(first: 1) { edges { cursor } } }";
    b.gql(Some(&before), who, json!({})).await.data();

    // What `credit-registry rotate-token-key` does.
    let dir = a.state.settings.auth.signing_key_dir.clone().unwrap();
    let kid = api::service::receipts::add_key(&dir).unwrap();
    assert!(
        api::cluster::notify::announce_keys(&a.state.settings, "tokens")
            .await
            .unwrap()
    );
    let delay = within(Duration::from_secs(1), || async {
        a.state.tokens.signing_kid().as_deref() == Some(kid.as_str())
            && b.state.tokens.signing_kid().as_deref() == Some(kid.as_str())
    })
    .await
    .expect("the instances did not take up the new token key");
    eprintln!("new token key used by both instances after {delay:?}");
    // A token of the new key, issued through A, is accepted by B; the old one still is.
    let after = a.admin();
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    b.gql(Some(&after), who, json!({})).await.data();
    b.gql(Some(&before), who, json!({})).await.data();
}

/// Checks answered through two instances at once share one answer log (each instance's
/// writers append on top of the head they keep in memory, and a group computed on a head
/// the other instance has moved is written again on top of it): every receipt verifies,
/// no two answers share an index, each stored entry is the answer its receipt names,
/// and the stored entries make exactly the tree of the final checkpoint. One instance
/// has the default single writer, the other two writers (`database.check_record_writers`),
/// whose groups may be computed on their own group still in flight.
#[tokio::test]
async fn checks_through_two_instances_at_once_land_in_one_answer_log() {
    use api::store::tlog_store::{self, LogName};
    let a = spawn_app_with(Backend::Postgres, slow_fallbacks).await;
    let b = a.spawn_peer(|s| s.database.check_record_writers = 2).await;
    let callers = (0..8u32).map(|caller| {
        let (app, token) = if caller % 2 == 0 {
            (&a, a.admin())
        } else {
            (&b, b.admin())
        };
        async move {
            let mut receipts = Vec::new();
            for i in 0..12u32 {
                let code = valid_code("110000", caller * 100 + i);
                let resp = check(app, &token, &code, "PROCUREMENT", None).await;
                let check = &resp.data()["check"];
                receipts.push((
                    check["receiptId"].as_str().expect("receiptId").to_string(),
                    check["receipt"].as_str().expect("receipt").to_string(),
                ));
            }
            receipts
        }
    });
    let receipts: Vec<(String, String)> = futures_util::future::join_all(callers)
        .await
        .into_iter()
        .flatten()
        .collect();

    let vkey = a.get("/logs/answers/vkey").await.text().await.unwrap();
    let verifier = api::tlog::note::LogVerifier::parse(&vkey).unwrap();
    let mut indexes = std::collections::HashSet::new();
    for (id, receipt) in &receipts {
        let verified = api::service::receipts::verify_any(
            receipt,
            &std::collections::HashMap::new(),
            Some(&verifier),
        )
        .unwrap();
        assert_eq!(&verified.payload.receipt_id, id);
        let proof = api::tlog::proof::TlogProof::parse(receipt).unwrap();
        assert!(
            indexes.insert(proof.index),
            "index {} answered twice",
            proof.index
        );
        let stored =
            tlog_store::read_entries(&a.db, LogName::Answers, proof.index..proof.index + 1)
                .await
                .unwrap();
        assert_eq!(
            stored.first(),
            proof.extra.as_ref(),
            "entry {}",
            proof.index
        );
    }
    let head = tlog_store::head(&a.db, LogName::Answers)
        .await
        .unwrap()
        .unwrap();
    assert!(head.size >= receipts.len() as u64);
    let entries = tlog_store::read_entries(&a.db, LogName::Answers, 0..head.size)
        .await
        .unwrap();
    assert_eq!(entries.len() as u64, head.size, "no index skipped");
    let leaves: Vec<api::tlog::Hash> = entries.iter().map(|e| api::tlog::record_hash(e)).collect();
    let (_, root) =
        api::tlog::stored_hashes_for_leaves(0, &leaves, &mut api::tlog::HashMemo::default())
            .unwrap();
    assert_eq!(
        root, head.root,
        "the stored entries are the checkpoint's tree"
    );
    let note = a
        .get("/logs/answers/checkpoint")
        .await
        .text()
        .await
        .unwrap();
    let checkpoint = verifier.verify_checkpoint(&note).unwrap();
    assert_eq!((checkpoint.size, checkpoint.root), (head.size, head.root));
}
