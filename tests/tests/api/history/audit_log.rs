//! The audit log: append-only on both backends, searchable by entity, action, actor and
//! time, and hash-chained so that an altered or deleted row (even the last one) is found
//! by `verifyAuditChain` and by the code behind `credit-registry verify-audit`.

use crate::listings::listed;
use api::domain::measures::Domain;
use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{Backend, TestApp, on_both_backends};

async fn run_sql(app: &TestApp, sql: &str) -> Result<(), sea_orm::DbErr> {
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .map(|_| ())
}

/// What an intruder with database access does first: switch off the append-only guard.
async fn disable_audit_triggers(app: &TestApp) {
    match app.backend {
        Backend::Postgres => {
            app.sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
                .await
        }
        Backend::Sqlite => {
            app.sql("DROP TRIGGER audit_events_no_update").await;
            app.sql("DROP TRIGGER audit_events_no_delete").await;
        }
    }
}

const VERIFY: &str =
    "{ verifyAuditChain { ok checkedEvents firstBrokenEventId problem lastEventId } }";

pub(super) async fn verify(app: &TestApp) -> Value {
    app.gql(Some(&app.auditor()), VERIFY, json!({}))
        .await
        .data()["verifyAuditChain"]
        .clone()
}

async fn some_history(app: &TestApp) -> i64 {
    for n in 1..=2 {
        listed(app, "441803", n, Utc::now() - Duration::days(3)).await;
    }
    app.count("audit_events").await
}

async fn the_audit_log_is_append_only_and_searchable(app: TestApp) {
    let events = some_history(&app).await;
    assert_eq!(events, 6, "two operators, proposals and decisions");
    let ok = verify(&app).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["checkedEvents"], events);
    assert_eq!(ok["lastEventId"], events.to_string());

    // The database refuses changes on both backends.
    for sql in [
        "UPDATE audit_events SET actor = 'mallory' WHERE id = 2",
        "DELETE FROM audit_events WHERE id = 2",
        "UPDATE audit_head SET last_event_id = 1 WHERE id = 1",
    ] {
        let err = run_sql(&app, sql).await.expect_err(sql);
        let text = err.to_string();
        assert!(
            text.contains("append-only") || text.contains("only moves forward"),
            "{sql}: {text}"
        );
    }
    if app.backend == Backend::Postgres {
        assert!(run_sql(&app, "TRUNCATE audit_events").await.is_err());
    }
    assert_eq!(app.count("audit_events").await, events);
    assert_eq!(verify(&app).await["ok"], true);

    // Search by entity, action, actor and time, page by page.
    let auditor = app.auditor();
    let q = "query($f: AuditEventFilter, $n: Int, $a: String) { auditEvents(filter: $f, first: $n, after: $a) { edges { cursor node { id action entityType entityId actor role before after prevHash hash } } pageInfo { hasNextPage endCursor } } }";
    let listings = app
        .gql(
            Some(&auditor),
            q,
            json!({"f": {"entityType": "listing"}, "n": 3}),
        )
        .await;
    let page = &listings.data()["auditEvents"];
    assert_eq!(page["edges"].as_array().unwrap().len(), 3);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let rest = app
        .gql(
            Some(&auditor),
            q,
            json!({"f": {"entityType": "listing"}, "n": 3, "a": page["pageInfo"]["endCursor"]}),
        )
        .await;
    let rest = &rest.data()["auditEvents"];
    assert_eq!(rest["edges"].as_array().unwrap().len(), 1);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let first = &page["edges"][0]["node"];
    assert_eq!(first["action"], "listing.proposed");
    assert_eq!(first["actor"], "admin-city");
    assert_eq!(first["before"], Value::Null);
    assert_eq!(first["after"]["status"], "PROPOSED");
    let decided = app
        .gql(
            Some(&auditor),
            q,
            json!({"f": {"action": "listing.decided", "entityId": first["entityId"]}}),
        )
        .await;
    let decided = decided.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["node"]["before"]["status"], "PROPOSED");
    assert_eq!(decided[0]["node"]["after"]["status"], "LISTED");
    assert_eq!(decided[0]["node"]["prevHash"].as_str().unwrap().len(), 64);
    let nobody = app
        .gql(Some(&auditor), q, json!({"f": {"actor": "nobody"}}))
        .await;
    assert!(
        nobody.data()["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let future = app
        .gql(
            Some(&auditor),
            q,
            json!({"f": {"from": Utc::now() + Duration::hours(1)}}),
        )
        .await;
    assert!(
        future.data()["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let past = app
        .gql(
            Some(&auditor),
            q,
            json!({"f": {"to": Utc::now() + Duration::hours(1)}, "n": 100}),
        )
        .await;
    assert_eq!(
        past.data()["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .len() as i64,
        events
    );
    app.gql(
        Some(&app.partner("p", &[Domain::Procurement]).await),
        "{ auditEvents { edges { cursor } } }",
        json!({}),
    )
    .await
    .assert_error("FORBIDDEN");
    app.gql(None, VERIFY, json!({}))
        .await
        .assert_error("UNAUTHENTICATED");
}

async fn the_chain_verifier_catches_an_altered_row(app: TestApp) {
    some_history(&app).await;
    disable_audit_triggers(&app).await;
    app.sql("UPDATE audit_events SET reason = '事后补记' WHERE id = 4")
        .await;
    let r = verify(&app).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["firstBrokenEventId"], "4");
    assert_eq!(r["checkedEvents"], 3);
    assert!(r["problem"].as_str().unwrap().contains("altered"), "{r}");
    // The same verdict from the code behind `credit-registry verify-audit`.
    let cli = api::service::audit_query::verify_chain(&app.db, 2)
        .await
        .unwrap();
    assert!(!cli.ok);
    assert_eq!(cli.first_broken_event_id, Some(4));
}

async fn the_chain_verifier_catches_a_deleted_row(app: TestApp) {
    some_history(&app).await;
    disable_audit_triggers(&app).await;
    app.sql("DELETE FROM audit_events WHERE id = 3").await;
    let r = verify(&app).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["firstBrokenEventId"], "4");
    assert!(r["problem"].as_str().unwrap().contains("event 2"), "{r}");
}

async fn the_chain_verifier_catches_a_deleted_last_row(app: TestApp) {
    let events = some_history(&app).await;
    disable_audit_triggers(&app).await;
    app.sql(&format!("DELETE FROM audit_events WHERE id = {events}"))
        .await;
    let r = verify(&app).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["firstBrokenEventId"], events.to_string());
    assert_eq!(r["checkedEvents"], events - 1);
    assert!(r["problem"].as_str().unwrap().contains("head"), "{r}");
}

/// `hash` of `e` linked to `prev`, as the registry computes it (and anyone can: it is
/// unkeyed and documented).
fn rehash(e: &entity::audit_event::Model, prev: &str) -> String {
    api::domain::audit_chain::event_hash(prev, &api::service::audit_query::chained(e))
}

/// The chain alone is recomputable by a writer with the database: an event appended with
/// the triggers intact, or an old event rewritten with every later hash recomputed and the
/// head moved, verifies `ok`. A head saved earlier and passed back (`verify-audit
/// --expect ID:HASH`) catches the rewrite; it cannot catch events added after it.
async fn an_expected_head_catches_a_recomputed_rewrite(app: TestApp) {
    use api::service::audit_query::{ExpectedHead, verify_chain_expecting};
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, QueryOrder, Set};
    let events = some_history(&app).await;
    let first = verify_chain_expecting(&app.db, 2, &[]).await.unwrap();
    assert!(first.ok, "{first:?}");
    let saved = ExpectedHead::parse(&format!(
        "{}:{}",
        first.last_event_id.unwrap(),
        first.last_hash.clone().unwrap()
    ))
    .unwrap();
    assert_eq!(saved.event_id, events);

    // Triggers intact: a forged event framing "bob", linked to the head, the head moved on.
    let head = entity::audit_head::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let all = entity::audit_event::Entity::find()
        .order_by_asc(entity::audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    let mut forged = all.last().unwrap().clone();
    forged.id = events + 1;
    forged.actor = "bob".into();
    forged.action = "listing.revoked".into();
    forged.prev_hash = head.last_hash.clone();
    forged.hash = rehash(&forged, &head.last_hash);
    let mut row = forged.clone().into_active_model();
    row.id = Set(forged.id);
    row.reset_all().insert(&app.db).await.unwrap();
    let mut h: entity::audit_head::ActiveModel = head.into();
    h.last_event_id = Set(forged.id);
    h.last_hash = Set(forged.hash.clone());
    h.update(&app.db).await.unwrap();
    let r = verify_chain_expecting(&app.db, 2, std::slice::from_ref(&saved))
        .await
        .unwrap();
    assert!(r.ok, "an appended event is after the saved head: {r:?}");

    // Triggers off: event 2 rewritten, every later hash recomputed, the head moved.
    disable_audit_triggers(&app).await;
    let mut chain = entity::audit_event::Entity::find()
        .order_by_asc(entity::audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    chain[1].actor = "mallory".into();
    let mut prev = chain[0].hash.clone();
    for e in chain.iter_mut().skip(1) {
        e.prev_hash = prev.clone();
        e.hash = rehash(e, &prev);
        prev = e.hash.clone();
        let mut row: entity::audit_event::ActiveModel = e.clone().into();
        row.actor = Set(e.actor.clone());
        row.prev_hash = Set(e.prev_hash.clone());
        row.hash = Set(e.hash.clone());
        row.update(&app.db).await.unwrap();
    }
    app.sql(&format!(
        "UPDATE audit_head SET last_hash = '{prev}' WHERE id = 1"
    ))
    .await;
    let alone = verify(&app).await;
    assert_eq!(alone["ok"], true, "the chain alone holds: {alone}");
    let r = verify_chain_expecting(&app.db, 2, std::slice::from_ref(&saved))
        .await
        .unwrap();
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.first_broken_event_id, Some(events));
    assert!(r.problem.unwrap().contains("rewritten"));
}

on_both_backends!(
    an_expected_head_catches_a_recomputed_rewrite,
    the_audit_log_is_append_only_and_searchable,
    the_chain_verifier_catches_an_altered_row,
    the_chain_verifier_catches_a_deleted_row,
    the_chain_verifier_catches_a_deleted_last_row,
);
