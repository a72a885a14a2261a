//! `database.replica_url`: heavy reads (the public list, auditors' history, reports,
//! exports) go to the replica while it is in use; checks and writes stay on the primary.
//! The real standby (and its lag) is exercised by `api/tests/cluster.rs`; here the
//! "replica" is a second database of the test server, not in recovery (lag 0) and with
//! other rows, so that which database answered a read shows.

use serde_json::json;
use tests::{Backend, create_pg_database, spawn_app_with, valid_code};

const PUBLIC: &str = "{ publicListings(first: 10) { edges { node { uscc } } } }";
const CHECK: &str = "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { decision } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_reads_go_to_the_replica_and_checks_to_the_primary() {
    let (replica_url, replica_name) = create_pg_database().await;
    let replica = sea_orm::Database::connect(&replica_url).await.unwrap();
    api::db::migrate_up(&replica).await.unwrap();
    let url = replica_url.clone();
    let app = spawn_app_with(Backend::Postgres, move |s| {
        s.database.replica_url = Some(url);
        s.database.replica_check_interval_ms = 100;
    })
    .await;

    // The lag is measured in the background: in use within a few intervals.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ready = loop {
        let r: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
        if r["replica"]["in_use"] == true {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["replica"]["lag_ms"], 0, "not in recovery: lag 0");
    assert_eq!(ready["replica"]["max_lag_ms"], 1000);

    // A listing in force on the primary only.
    let code = valid_code("441802", 61);
    app.create_operator(&code, "清远市副本路由有限公司").await;
    app.insert_listing_in_force(&code, &["PROCUREMENT_RESTRICT"])
        .await;

    // The check reads the primary: it is restricted.
    let partner = app
        .partner(
            "replica-partner",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let check = app.gql(Some(&partner), CHECK, json!({ "u": code })).await;
    assert_eq!(check.data()["check"]["decision"], "RESTRICTED");

    // The public list (anonymous and with a token) and the auditors' history read the
    // replica, which has none of it.
    let public = app.gql(None, PUBLIC, json!({})).await;
    assert_eq!(
        public.data()["publicListings"]["edges"],
        json!([]),
        "{}",
        public.body
    );
    let public = app.gql(Some(&app.auditor()), PUBLIC, json!({})).await;
    assert_eq!(public.data()["publicListings"]["edges"], json!([]));
    let events = app
        .gql(
            Some(&app.auditor()),
            "{ auditEvents(first: 5) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        events.data()["auditEvents"]["edges"],
        json!([]),
        "{}",
        events.body
    );
    let export = app.get("/exports/public-list.jsonl").await;
    assert_eq!(export.status(), 200);
    assert_eq!(
        export.text().await.unwrap().trim(),
        "",
        "the replica's empty list"
    );

    // The metrics say so.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("registry_replica_in_use 1"), "{metrics}");
    assert!(
        metrics.contains("registry_replica_lag_seconds 0"),
        "{metrics}"
    );

    // The replica down: heavy reads go back to the primary and /readyz says why, still
    // ready.
    drop(replica);
    let admin = sea_orm::Database::connect(tests::pg_admin_url())
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{replica_name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let r = loop {
        let r: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
        if r["replica"]["in_use"] == false {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(r["replica"]["lag_ms"], serde_json::Value::Null, "{r}");
    assert!(
        r["replica"]["note"].as_str().unwrap().contains("unknown"),
        "{r}"
    );
    let public = app.gql(None, PUBLIC, json!({})).await;
    assert_eq!(
        public.data()["publicListings"]["edges"][0]["node"]["uscc"],
        code,
        "from the primary again"
    );
}

#[tokio::test]
async fn a_replica_needs_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = tests::test_settings(
        dir.path(),
        format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
    );
    settings.database.replica_url = Some("postgres://postgres@127.0.0.1:5432/x".into());
    let err = match api::startup::Application::build(settings).await {
        Ok(_) => panic!("started with an SQLite primary and a replica"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("database.replica_url needs PostgreSQL"),
        "{err}"
    );
}

#[tokio::test]
async fn a_blank_replica_url_means_no_standby() {
    // `REGISTRY_DATABASE__REPLICA_URL=` (a cleared variable) loads as `Some("")`; it must
    // start without a standby, not refuse to start (here: "needs PostgreSQL", on SQLite).
    for blank in ["", "  "] {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = tests::test_settings(
            dir.path(),
            format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
        );
        settings.database.replica_url = Some(blank.into());
        if let Err(err) = api::startup::Application::build(settings).await {
            panic!("a blank replica_url {blank:?} stopped the start: {err:#}");
        }
    }
}
