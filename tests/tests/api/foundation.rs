use serde_json::json;
use tests::{Backend, TestApp, on_both_backends, spawn_app};

async fn health_and_readiness(app: TestApp) {
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status().as_u16(), 200);
    let sdl = app.get("/schema.graphql").await.text().await.unwrap();
    assert!(sdl.contains("upsertOperator"));
}

/// An instance started with `--no-migrate` on a schema that lacks one of its migrations
/// (a rolling upgrade before `credit-registry migrate` ran) is not ready until it is
/// migrated: it would have been put in rotation and failed on the missing schema.
async fn an_instance_is_not_ready_before_its_migrations(app: TestApp) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::TransactionTrait;
    // The newest migration undone (an index only: the running server is unaffected).
    let txn = app.db.begin().await.unwrap();
    Migrator::down(&txn, Some(1)).await.unwrap();
    txn.commit().await.unwrap();
    let peer = app.spawn_peer(|s| s.run_migrations = false).await;
    let waiting = peer.get("/readyz").await;
    assert_eq!(waiting.status().as_u16(), 503);
    let body: serde_json::Value = waiting.json().await.unwrap();
    assert_eq!(
        body["migrations"], "1 pending: run credit-registry migrate",
        "{body}"
    );
    api::db::migrate_up(&app.db).await.unwrap();
    assert_eq!(peer.get("/readyz").await.status().as_u16(), 200);
}

async fn migrations_seed_the_catalogues(app: TestApp) {
    assert_eq!(app.count("credit_lists").await, 3);
    assert!(app.count("measures").await >= 11);
    // The four shipped notices (2023-2026); later years in a test database are the
    // harness's plain fixture years.
    let shipped = app
        .count_where(
            "calendar_years",
            "source LIKE 'State Council holiday notice%'",
        )
        .await;
    assert_eq!(shipped, 4);
}

async fn malformed_requests_are_refused_with_codes(app: TestApp) {
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    let resp = app
        .gql(Some("not-a-token"), "{ __typename }", json!({}))
        .await;
    assert_eq!(resp.status, 401);
    resp.assert_error("UNAUTHENTICATED");
}

/// Upgrading a registry that already has listings: the migration that fixes a measure's
/// domain and effect once used marks the measures listings use at that moment, and only
/// those.
async fn the_measures_listings_use_are_marked_when_the_rule_arrives(app: TestApp) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::TransactionTrait;
    let code = tests::valid_code("441802", 3);
    app.create_operator(&code, "清远迁移测试有限公司").await;
    // The migration stamps the machine's instant, not the test clock's.
    let now = chrono::Utc::now();
    app.insert_listing_in_force(&code, &["SAMR44_FACTOR_PROCUREMENT"])
        .await;
    // Back to the schema before the rule (that migration and every later one undone),
    // then up again, on one connection: a SQLite connection keeps its own parsed copy of
    // the schema, and one of the pool that did not run the DROP COLUMN would parse the
    // migration's ADD COLUMN against its stale copy ("duplicate column name"). A
    // transaction holds one connection for both steps (each migration nests in it).
    let migrations = Migrator::migrations();
    let rule = migrations
        .iter()
        .position(|m| m.name() == "m20261202_100000_measures_first_used")
        .expect("the migration of the rule");
    let steps = (migrations.len() - rule) as u32;
    let txn = app.db.begin().await.unwrap();
    Migrator::down(&txn, Some(steps)).await.unwrap();
    assert_eq!(
        Migrator::get_pending_migrations(&txn).await.unwrap().len(),
        steps as usize,
        "the rule's migration and the later ones are undone"
    );
    Migrator::up(&txn, None).await.unwrap();
    txn.commit().await.unwrap();
    let used = "first_used_at IS NOT NULL";
    assert_eq!(app.count_where("measures", used).await, 1);
    assert_eq!(
        app.count_where(
            "measures",
            &format!("{used} AND code = 'SAMR44_FACTOR_PROCUREMENT'")
        )
        .await,
        1
    );
    let ours = app
        .measure_as_read("PROCUREMENT", "SAMR44_FACTOR_PROCUREMENT", "firstUsedAt")
        .await;
    let at: chrono::DateTime<chrono::Utc> = ours["firstUsedAt"].as_str().unwrap().parse().unwrap();
    assert!(at >= now - chrono::Duration::seconds(1), "{ours}");
}

on_both_backends!(
    health_and_readiness,
    an_instance_is_not_ready_before_its_migrations,
    migrations_seed_the_catalogues,
    malformed_requests_are_refused_with_codes,
    the_measures_listings_use_are_marked_when_the_rule_arrives,
);

/// The SDL is a contract with partner systems: a change must be deliberate.
/// Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p tests sdl_snapshot`.
#[test]
fn sdl_snapshot() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/schema.graphql");
    let sdl = api::graphql::sdl();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == sdl,
        "the GraphQL schema changed; review it and run UPDATE_SNAPSHOTS=1 cargo test -p tests sdl_snapshot"
    );
}

/// The development profile starts with no configuration at all: it creates its SQLite
/// file and signing key under the data folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = api::config::Settings::default();
    settings.bind = "127.0.0.1:0".into();
    settings.data_dir = dir.path().join("data");
    let app = api::startup::Application::build(settings).await.unwrap();
    assert!(dir.path().join("data/registry.db").exists());
    assert!(dir.path().join("data/token-signing-key.pem").exists());
    drop(app);
    let _ = Backend::Sqlite;
    let _ = spawn_app;
}

/// Production refuses to start without a configured key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = api::config::Settings::default();
    settings.bind = "127.0.0.1:0".into();
    settings.data_dir = dir.path().to_path_buf();
    settings.profile = api::config::Profile::Production;
    let err = api::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("production"), "{err:#}");
}

/// An upgrade of the embedded SQLite file runs in one transaction: a migration that
/// fails undoes the earlier ones of the same run (the file stays as it was, and says
/// which migrations are pending), and the upgrade goes through once the cause is gone.
/// The cause here is the column the measures rule adds, put there by hand, and dropped
/// again before the retry, each time on whichever connection of the pool is free (so the
/// retry also shows that the migrations read the schema as it is, not a stale copy).
#[tokio::test]
async fn a_failed_upgrade_of_sqlite_leaves_the_file_as_it_was() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    let db = api::db::connect(&tests::test_settings(dir.path(), url))
        .await
        .unwrap();
    let pending = |db: sea_orm::DatabaseConnection| async move {
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .iter()
            .map(|m| m.name().to_string())
            .collect::<Vec<_>>()
    };
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let rule = names
        .iter()
        .position(|n| n == "m20261202_100000_measures_first_used")
        .unwrap();
    // The database of a release before the index on revisions by record time.
    Migrator::up(&db, Some(rule as u32 - 1)).await.unwrap();
    let before = pending(db.clone()).await;
    assert_eq!(before[0], "m20261202_000001_revisions_by_record_time");
    let index =
        "SELECT count(*) AS n FROM sqlite_master WHERE name = 'idx_listing_revisions_record_time'";
    let count = |db: sea_orm::DatabaseConnection, sql: &'static str| async move {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };

    // A change of the schema by hand, read first like the migrations (a pooled connection
    // keeps its own copy of the schema and refreshes it when it next reads).
    let by_hand = |db: sea_orm::DatabaseConnection, ddl: &'static str| async move {
        use sea_orm::TransactionTrait;
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("SELECT count(*) FROM sqlite_master")
            .await
            .unwrap();
        txn.execute_unprepared(ddl).await.unwrap();
        txn.commit().await.unwrap();
    };
    by_hand(
        db.clone(),
        "ALTER TABLE measures ADD COLUMN first_used_at TEXT",
    )
    .await;
    let err = api::db::migrate_up(&db).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("duplicate column name: first_used_at"),
        "{err:#}"
    );
    assert_eq!(
        pending(db.clone()).await,
        before,
        "nothing of the run stays"
    );
    assert_eq!(
        count(db.clone(), index).await,
        0,
        "the earlier migration's index is undone"
    );

    by_hand(db.clone(), "ALTER TABLE measures DROP COLUMN first_used_at").await;
    api::db::migrate_up(&db).await.unwrap();
    assert!(pending(db.clone()).await.is_empty());
    assert_eq!(count(db.clone(), index).await, 1);
}

/// The migration lock lives and dies with the migrations it protects: when the session
/// holding it ends mid-migration (an idle-session timeout, `pg_terminate_backend`, a
/// proxy's timeout), those migrations end with it, and the instance that was waiting
/// migrates alone. The lock used to be a session lock on a second, idle connection:
/// losing it let the waiter migrate beside migrations that went on, and one of the two
/// failed on the other's tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_that_loses_its_lock_ends_and_the_waiter_migrates_alone() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    use std::time::{Duration, Instant};
    let (url, name) = tests::create_pg_database().await;
    let admin = tests::pg::connect(&url).await;
    // Holding seaql_migrations keeps the first instance inside its migrations, lock
    // taken, until this test lets it go on.
    Migrator::install(&admin).await.unwrap();
    let holder = tests::pg::connect(&url).await;
    let hold = holder.begin().await.unwrap();
    hold.execute_unprepared("LOCK TABLE seaql_migrations IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let key = api::cluster::locks::Lock::Migrations.key();
    let lockers = |granted: bool| {
        let admin = admin.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let rows = admin
                    .query_all_raw(Statement::from_string(
                        DbBackend::Postgres,
                        format!(
                            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 \
                             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                             AND ((classid::bigint << 32) | objid::bigint) = {key} AND granted = {granted}"
                        ),
                    ))
                    .await
                    .unwrap();
                if let Some(row) = rows.first() {
                    return row.try_get::<i32>("", "pid").unwrap();
                }
                assert!(
                    Instant::now() < deadline,
                    "no session {} the migration lock",
                    if granted { "holds" } else { "waits for" }
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let first_db = tests::pg::connect(&url).await;
    let first = tokio::spawn(async move { api::db::migrate_up(&first_db).await });
    let holding = lockers(true).await;
    let next_db = tests::pg::connect(&url).await;
    let next = tokio::spawn(async move { api::db::migrate_up(&next_db).await });
    lockers(false).await;
    admin
        .execute_unprepared(&format!("SELECT pg_terminate_backend({holding})"))
        .await
        .unwrap();
    hold.commit().await.unwrap();
    let first = first.await.unwrap();
    let next = next.await.unwrap();
    assert!(
        first.is_err(),
        "the first instance's migrations went on after their lock was lost"
    );
    if let Err(err) = next {
        panic!("the waiting instance did not migrate: {err:#}");
    }
    assert!(
        Migrator::get_pending_migrations(&admin)
            .await
            .unwrap()
            .is_empty()
    );
    admin.close().await.ok();
    holder.close().await.ok();
    tests::pg::drop_database(&tests::pg_admin_url(), &name).await;
}

/// A database a newer build migrated (an older instance restarting during a rolling
/// upgrade, a rollback of the binary): with none of this build's migrations pending it
/// starts on it; with some pending as well it refuses, naming both. sea-orm's own
/// answer was "Migration file ... is missing" either way, and the old build could not
/// restart.
async fn a_schema_newer_than_the_build(app: TestApp) {
    use migration::{Migrator, MigratorTrait};
    app.sql(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000000_future', 0)",
    )
    .await;
    if let Err(err) = api::db::migrate_up(&app.db).await {
        panic!("refused a newer schema with nothing of its own pending: {err:#}");
    }
    // The newest of this build's marked pending (its row only: nothing is applied here).
    let newest = Migrator::migrations().last().unwrap().name().to_string();
    app.sql(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{newest}'"
    ))
    .await;
    let err = match api::db::migrate_up(&app.db).await {
        Ok(()) => panic!("migrated beside another build's migrations"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("m20991231_000000_future") && err.contains(&newest),
        "{err}"
    );
}

on_both_backends!(a_schema_newer_than_the_build);
