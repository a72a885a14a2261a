//! History and audit: record time (`knownAt`) and valid time (`asOf`), the append-only
//! hash-chained audit log, the change feed and its subscription, the public list,
//! typical cases and the yearly report.

use crate::listings::{LISTING_FIELDS, decide, listed, propose};
use api::auth::Role;
use api::auth::tokens::TokenRequest;
use api::domain::measures::Domain;
use api::service::Actor;
use chrono::{DateTime, Duration, Months, NaiveDate, TimeZone, Utc};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set, Statement};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tests::{Backend, Gql, TestApp, on_both_backends, valid_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A distinct instant between two changes (instants are kept to the microsecond).
async fn instant_between() -> DateTime<Utc> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let t = api::domain::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    t
}

fn ids(resp: &Gql, field: &str) -> Vec<String> {
    resp.data()[field]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

const CORRECT: &str =
    "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }";

async fn record_time_shows_what_was_recorded_before_a_correction(app: TestApp) {
    let auditor = app.auditor();
    let before_anything = instant_between().await;
    let start = api::domain::now() - Duration::days(30);
    let (code, id, v) = listed(&app, "441802", 1, start).await;
    let as_recorded = instant_between().await;
    let corrected_end = start + Duration::days(10);
    app.gql(
        Some(&app.admin()),
        CORRECT,
        json!({"i": {"id": id, "expectedVersion": v, "reason": "期限与文书不符",
                      "authority": "清远市市场监督管理局（更正）",
                      "expiresAt": corrected_end,
                      "measureCodes": ["SAMR44_FACTOR_PROCUREMENT"]}}),
    )
    .await
    .data();
    let after_correction = instant_between().await;

    let one = "query($id: ID!, $k: DateTime) { listing(id: $id, knownAt: $k) { id knownAt authority version status expiresAt measures { code } } }";
    let old = app
        .gql(Some(&auditor), one, json!({"id": id, "k": as_recorded}))
        .await;
    let old = &old.data()["listing"];
    assert_eq!(old["authority"], "清远市市场监督管理局");
    assert_eq!(old["version"], v);
    assert_eq!(old["status"], "LISTED");
    assert!(old["measures"].as_array().unwrap().len() > 3, "{old}");
    let known_at: DateTime<Utc> = old["knownAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(known_at, as_recorded);
    let old_end: DateTime<Utc> = old["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(old_end, start.checked_add_months(Months::new(36)).unwrap());

    let new = app
        .gql(
            Some(&auditor),
            one,
            json!({"id": id, "k": after_correction}),
        )
        .await;
    let new = &new.data()["listing"];
    assert_eq!(new["authority"], "清远市市场监督管理局（更正）");
    assert_eq!(new["version"], v + 1);
    assert_eq!(new["status"], "EXPIRED");
    assert_eq!(
        new["measures"],
        json!([{"code": "SAMR44_FACTOR_PROCUREMENT"}])
    );
    // A catalogue edit after the correction: the record keeps the measure's effect as it
    // stood then; the live listing shows the new one.
    app.gql(
        Some(&app.admin()),
        "mutation { upsertMeasure(input: {code: \"SAMR44_FACTOR_PROCUREMENT\", name: \"政府采购限制\", domain: PROCUREMENT, effect: PROHIBIT, legalBasis: \"测试\"}) { effect } }",
        json!({}),
    )
    .await
    .data();
    let effect = "query($id: ID!, $k: DateTime) { listing(id: $id, knownAt: $k) { measures { code effect name } } }";
    let then = app
        .gql(
            Some(&auditor),
            effect,
            json!({"id": id, "k": after_correction}),
        )
        .await;
    assert_eq!(
        then.data()["listing"]["measures"],
        json!([{"code": "SAMR44_FACTOR_PROCUREMENT", "effect": "CONSIDER", "name": "委托承担政府采购项目时作为重要考量因素"}])
    );
    let now = app
        .gql(Some(&auditor), effect, json!({"id": id, "k": Value::Null}))
        .await;
    assert_eq!(
        now.data()["listing"]["measures"],
        json!([{"code": "SAMR44_FACTOR_PROCUREMENT", "effect": "PROHIBIT", "name": "政府采购限制"}])
    );
    let live = app
        .gql(Some(&auditor), one, json!({"id": id, "k": Value::Null}))
        .await;
    assert_eq!(live.data()["listing"]["knownAt"], Value::Null);
    assert_eq!(live.data()["listing"]["authority"], new["authority"]);
    // Not yet recorded: it did not exist.
    let none = app
        .gql(Some(&auditor), one, json!({"id": id, "k": before_anything}))
        .await;
    assert_eq!(none.data()["listing"], Value::Null);

    // Both kinds of "as of": in force twenty days after the start, as the registry
    // knew it before the correction; not in force, as it knows it since.
    let twenty_days_in = start + Duration::days(20);
    let page = "query($f: ListingFilter, $a: DateTime, $k: DateTime) { listings(filter: $f, asOf: $a, knownAt: $k) { edges { node { id authority } } } }";
    let at = |k: DateTime<Utc>| json!({"f": {"operator": code}, "a": twenty_days_in, "k": k});
    let then = app.gql(Some(&auditor), page, at(as_recorded)).await;
    assert_eq!(ids(&then, "listings"), vec![id.clone()]);
    let since = app.gql(Some(&auditor), page, at(after_correction)).await;
    assert!(ids(&since, "listings").is_empty(), "{}", since.body);
    let now = app
        .gql(
            Some(&auditor),
            page,
            json!({"f": {"operator": code}, "a": twenty_days_in}),
        )
        .await;
    assert!(ids(&now, "listings").is_empty());
    // filter.inForceAt means the same as asOf; two different instants are refused.
    app.gql(
        Some(&auditor),
        page,
        json!({"f": {"operator": code, "inForceAt": start}, "a": twenty_days_in}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
    // Record-time filters see the recorded values.
    let by_authority = "query($k: DateTime) { listings(filter: {authority: \"清远市市场监督管理局\"}, knownAt: $k) { edges { node { id } } } }";
    let then = app
        .gql(Some(&auditor), by_authority, json!({"k": as_recorded}))
        .await;
    assert_eq!(ids(&then, "listings"), vec![id.clone()]);
    let since = app
        .gql(Some(&auditor), by_authority, json!({"k": after_correction}))
        .await;
    assert!(ids(&since, "listings").is_empty());
    let before = app
        .gql(
            Some(&auditor),
            "query($k: DateTime) { listings(knownAt: $k) { edges { node { id } } } }",
            json!({"k": before_anything}),
        )
        .await;
    assert!(ids(&before, "listings").is_empty());

    // Operator.listings answers the same pair.
    let op = "query($c: String!, $a: DateTime, $k: DateTime) { operator(uscc: $c) { listings(asOf: $a, knownAt: $k) { id authority knownAt } } }";
    let then = app
        .gql(
            Some(&auditor),
            op,
            json!({"c": code, "a": twenty_days_in, "k": as_recorded}),
        )
        .await;
    let then = then.data()["operator"]["listings"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0]["authority"], "清远市市场监督管理局");
    let since = app
        .gql(
            Some(&auditor),
            op,
            json!({"c": code, "a": twenty_days_in, "k": after_correction}),
        )
        .await;
    assert!(
        since.data()["operator"]["listings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

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

async fn verify(app: &TestApp) -> Value {
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

const CHANGES: &str = "query($a: String, $n: Int) { changes(after: $a, first: $n) { edges { cursor node { cursor kind listingId uscc listCode occurredAt effectiveAt status inForce version measureCodes listing { id uscc operatorName listName decisionDocNo expiresAt } } } pageInfo { hasNextPage endCursor } } }";

/// Reads the whole feed after `after`, `first` events a page; returns the events and
/// the cursor to continue from.
async fn read_feed(
    app: &TestApp,
    token: &str,
    mut after: Option<String>,
    first: i64,
) -> (Vec<Value>, Option<String>, usize) {
    let mut events = Vec::new();
    let mut pages = 0;
    loop {
        let resp = app
            .gql(Some(token), CHANGES, json!({"a": after, "n": first}))
            .await;
        let page = resp.data()["changes"].clone();
        pages += 1;
        for e in page["edges"].as_array().unwrap() {
            assert_eq!(e["cursor"], e["node"]["cursor"]);
            events.push(e["node"].clone());
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_string);
        if page["pageInfo"]["hasNextPage"] == false {
            return (events, after, pages);
        }
        assert!(pages < 100, "the feed does not end");
    }
}

async fn begin(app: &TestApp) -> sea_orm::DatabaseTransaction {
    api::service::audit::begin_write(&app.db).await.unwrap()
}

async fn the_feed_mirrors_every_change_in_order_across_pages(app: TestApp) {
    let admin = app.admin();
    let partner = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let (_, a, a_version) = listed(&app, "441881", 1, Utc::now() - Duration::days(400)).await;
    let (_, b, b_version) = listed(&app, "441881", 2, Utc::now() - Duration::days(5)).await;
    app.gql(
        Some(&admin),
        CORRECT,
        json!({"i": {"id": a, "expectedVersion": a_version, "reason": "机关名称", "authority": "英德市市场监督管理局"}}),
    )
    .await
    .data();
    app.gql(
        Some(&admin),
        CORRECT,
        json!({"i": {"id": b, "expectedVersion": b_version, "reason": "措施", "measureCodes": ["SAMR44_FACTOR_PROCUREMENT"]}}),
    )
    .await
    .data();
    app.gql(
        Some(&admin),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { id } }",
        json!({"i": {"id": b, "expectedVersion": b_version + 1, "ground": "PENALTY_REVOKED", "revocationDocNo": "R-1", "reason": "复议撤销"}}),
    )
    .await
    .data();
    let c_code = valid_code("441881", 3);
    app.create_operator(&c_code, "英德撤回公司").await;
    let c = propose(&app, &admin, &c_code, "2026-03-02").await.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&admin),
        "mutation($i: WithdrawListingInput!) { withdrawListing(input: $i) { id } }",
        json!({"i": {"id": c, "expectedVersion": 1, "reason": "申辩成立"}}),
    )
    .await
    .data();
    // D expires two seconds from now; the expiry recorder tells the feed, once.
    let soon = Utc::now() + Duration::seconds(2);
    let (_, d, _) = listed(
        &app,
        "441881",
        4,
        soon.checked_sub_months(Months::new(36)).unwrap(),
    )
    .await;
    assert_eq!(
        api::service::feed::record_expiries(&app.db).await.unwrap(),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        api::service::feed::record_expiries(&app.db).await.unwrap(),
        1
    );
    assert_eq!(
        api::service::feed::record_expiries(&app.db).await.unwrap(),
        0
    );
    // A is repaired, then the repair is revoked (the repair service's entry points).
    let a_id: i64 = a.parse().unwrap();
    let actor = Actor::system("test-repair");
    let tx = begin(&app).await;
    api::service::listings::mark_repaired(&tx, &actor, a_id, api::domain::now(), "信用修复")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let tx = begin(&app).await;
    api::service::listings::restore_after_repair_revocation(
        &tx,
        &actor,
        a_id,
        api::domain::now(),
        true,
        "以欺骗手段取得修复",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (events, end, pages) = read_feed(&app, &partner, None, 3).await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["listingId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("DECIDED", &a),
        ("DECIDED", &b),
        ("CORRECTED", &a),
        ("MEASURES_CHANGED", &b),
        ("REVOKED", &b),
        ("WITHDRAWN", &c),
        ("DECIDED", &d),
        ("EXPIRED", &d),
        ("REPAIRED", &a),
        ("REPAIR_REVOKED", &a),
    ]
    .iter()
    .map(|(k, id)| (k.to_string(), id.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 4);
    let occurred: Vec<DateTime<Utc>> = events
        .iter()
        .map(|e| e["occurredAt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(occurred.windows(2).all(|w| w[0] <= w[1]), "{occurred:?}");
    let expired = &events[7];
    assert_eq!(expired["status"], "EXPIRED");
    assert_eq!(expired["inForce"], false);
    let effective: DateTime<Utc> = expired["effectiveAt"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = expired["listing"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(effective, expires);
    assert_eq!(
        events[3]["measureCodes"],
        json!(["SAMR44_FACTOR_PROCUREMENT"])
    );
    assert_eq!(events[0]["listing"]["uscc"], valid_code("441881", 1));
    assert_eq!(events[0]["listCode"], "SAMR_SERIOUS_DISHONEST");

    // A mirror that applies the events holds exactly the listings in force now.
    let mut mirror = BTreeSet::new();
    for e in &events {
        let id = e["listingId"].as_str().unwrap().to_string();
        if e["inForce"] == true {
            mirror.insert(id);
        } else {
            mirror.remove(&id);
        }
    }
    let public = app
        .gql(
            None,
            "{ publicListings(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let in_force: BTreeSet<String> = ids(&public, "publicListings").into_iter().collect();
    assert_eq!(mirror, in_force);
    assert_eq!(mirror, BTreeSet::from([a.clone()]));

    // Later, nothing new: an empty page that keeps the cursor.
    let (more, same_end, _) = read_feed(&app, &partner, end.clone(), 3).await;
    assert!(more.is_empty());
    assert_eq!(same_end, end);
    app.gql(None, CHANGES, json!({}))
        .await
        .assert_error("UNAUTHENTICATED");
    app.gql(Some(&partner), CHANGES, json!({"a": "bm9wZQ"}))
        .await
        .assert_error("BAD_USER_INPUT");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(app: &TestApp, path: &str) -> Ws {
    let mut req = app.ws_url(path).into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    ws
}

async fn ws_send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message (text), or the close frame's code and reason.
async fn ws_next(ws: &mut Ws, within: std::time::Duration) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "timed out".to_string())?;
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed: {frame:?}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("error: {e}")),
            None => return Err("ended".into()),
        }
    }
}

async fn a_subscription_receives_a_change_within_a_second(app: TestApp) {
    let partner = app.partner("gov-bidding", &[Domain::Bidding]).await;
    let code = valid_code("441882", 1);
    app.create_operator(&code, "连州订阅公司").await;
    let date = api::domain::china_date(Utc::now()).to_string();
    let id = propose(&app, &app.admin(), &code, &date).await.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    listed(&app, "441882", 2, Utc::now() - Duration::days(1)).await;
    let (before, end, _) = read_feed(&app, &partner, None, 100).await;
    assert_eq!(before.len(), 1);

    let mut ws = ws_connect(&app, "/graphql/ws").await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {partner}")}}),
    )
    .await;
    let ack = ws_next(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ack["type"], "connection_ack");
    // From the feed's current end: nothing can slip between subscribing and the mutation.
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($a: String) { registryChanged(after: $a) { cursor kind listingId uscc listCode inForce listing { operatorName } } }",
            "variables": {"a": end}
        }}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    decide(&app, &app.admin(), &id, 1, &date, None).await.data();
    let next = ws_next(&mut ws, std::time::Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("no event within a second of the mutation: {e}"));
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    eprintln!("registryChanged: event received {elapsed:?} after the mutation was sent");
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "1");
    let event = &next["payload"]["data"]["registryChanged"];
    assert_eq!(event["kind"], "DECIDED");
    assert_eq!(event["listingId"], id.as_str());
    assert_eq!(event["uscc"], code.as_str());
    assert_eq!(event["inForce"], true);
    assert_eq!(event["listing"]["operatorName"], "连州订阅公司");
    // The pushed event is the feed's event: same cursor.
    let (feed, _, _) = read_feed(&app, &partner, end, 100).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["cursor"], event["cursor"]);
    ws_send(&mut ws, json!({"id": "1", "type": "complete"})).await;

    // A subscription ends when its token expires (also served on GET /graphql).
    app.register_partner("gov-short", &[Domain::Procurement])
        .await;
    let short = app.token_for(TokenRequest {
        subject: "gov-short".into(),
        role: Role::Partner,
        domains: Vec::new(),
        region: None,
        ttl: Duration::seconds(2),
    });
    let mut ws = ws_connect(&app, "/graphql").await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {short}")}}),
    )
    .await;
    let ack = ws_next(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ack["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription { registryChanged { cursor } }"}}),
    )
    .await;
    let done = ws_next(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(done, json!({"type": "complete", "id": "2"}));

    // No token, or a bad one: closed before any acknowledgement (also on GET /graphql).
    for (path, payload) in [
        ("/graphql/ws", json!({})),
        ("/graphql", json!({"Authorization": "Bearer not-a-token"})),
    ] {
        let mut ws = ws_connect(&app, path).await;
        ws_send(
            &mut ws,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        let refused = ws_next(&mut ws, std::time::Duration::from_secs(5)).await;
        assert!(refused.is_err(), "{path}: {refused:?}");
    }
}

async fn the_public_list_leaks_no_personal_field(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 7);
    app.gql(
        Some(&admin),
        "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }",
        json!({"i": {"uscc": code, "name": "清城区张三丰小吃店", "legalRepresentative": "张三丰",
                      "legalRepIdNumber": "441802199001011234", "address": "广东省清远市清城区某路1号",
                      "addressIsPersonal": true}}),
    )
    .await
    .data();
    let start = Utc::now() - Duration::days(3);
    let date = api::domain::china_date(start).to_string();
    let id = propose(&app, &admin, &code, &date).await.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    decide(&app, &admin, &id, 1, &date, Some(start))
        .await
        .data();
    // Another listing, revoked: publicity stopped.
    let (_, revoked, v) = listed(&app, "441802", 8, start).await;
    app.gql(
        Some(&admin),
        &format!("mutation($i: RevokeListingInput!) {{ revokeListing(input: $i) {{ {LISTING_FIELDS} }} }}"),
        json!({"i": {"id": revoked, "expectedVersion": v, "ground": "CONFIRMED_ILLEGAL", "revocationDocNo": "R", "reason": "确认违法"}}),
    )
    .await
    .data();

    let all_fields = "{ publicListings { edges { cursor node { id uscc operatorName listCode listName authority penaltyDocNo decisionDocNo decisionDate listedAt expiresAt violationCategory reason legalBasis } } pageInfo { hasNextPage endCursor } } }";
    let resp = app.gql(None, all_fields, json!({})).await;
    let text = resp.body.to_string();
    for personal in [
        "张三丰\"",
        "441802199001011234",
        "某路1号",
        "legalRep",
        "address",
    ] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    let edges = resp.data()["publicListings"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 1, "{text}");
    let node = &edges[0]["node"];
    assert_eq!(node["id"], id.as_str());
    assert_eq!(node["uscc"], code.as_str());
    assert_eq!(node["operatorName"], "清城区张三丰小吃店");
    assert_eq!(node["listName"], "市场监督管理严重违法失信名单");
    assert!(node["decisionDocNo"].is_string());

    // The type itself has no personal field, and nothing else reachable from it.
    let introspect = "query($t: String!) { __type(name: $t) { fields { name type { kind name ofType { name } } } } }";
    let fields = app
        .gql(None, introspect, json!({"t": "PublicListing"}))
        .await;
    let fields: BTreeSet<String> = fields.data()["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let kind = f["type"]["kind"].as_str().unwrap();
            let named = f["type"]["name"]
                .as_str()
                .or(f["type"]["ofType"]["name"].as_str());
            assert!(
                matches!(named, Some("String" | "ID" | "NaiveDate" | "DateTime")),
                "{f} ({kind}) is not a scalar"
            );
            f["name"].as_str().unwrap().to_string()
        })
        .collect();
    let expected: BTreeSet<String> = [
        "id",
        "uscc",
        "operatorName",
        "listCode",
        "listName",
        "authority",
        "penaltyDocNo",
        "decisionDocNo",
        "decisionDate",
        "listedAt",
        "expiresAt",
        "violationCategory",
        "reason",
        "legalBasis",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(fields, expected);
    for f in &fields {
        let lower = f.to_lowercase();
        for personal in [
            "legal_rep",
            "legalrep",
            "representative",
            "idnumber",
            "address",
            "personal",
        ] {
            assert!(!lower.contains(personal), "{f}");
        }
    }

    // Search by code and by part of the name; paging.
    let search = "query($s: String) { publicListings(search: $s, first: 1) { edges { node { id } } pageInfo { hasNextPage } } }";
    let by_code = app.gql(None, search, json!({"s": code})).await;
    assert_eq!(ids(&by_code, "publicListings"), vec![id.clone()]);
    let by_name = app.gql(None, search, json!({"s": "张三丰小吃"})).await;
    assert_eq!(ids(&by_name, "publicListings"), vec![id.clone()]);
    let nothing = app.gql(None, search, json!({"s": "不存在的公司"})).await;
    assert!(ids(&nothing, "publicListings").is_empty());
    app.gql(None, search, json!({"s": "x".repeat(101)}))
        .await
        .assert_error("BAD_USER_INPUT");
}

async fn typical_cases_are_marked_by_admins_and_public(app: TestApp) {
    let admin = app.admin();
    let (_, id, _) = listed(&app, "441821", 1, Utc::now() - Duration::days(3)).await;
    let (_, revoked, rv) = listed(&app, "441821", 2, Utc::now() - Duration::days(3)).await;
    let mark = "mutation($l: ID!, $y: Int!, $c: String!) { markTypicalCase(listingId: $l, year: $y, commentary: $c) { id year commentary inForce listing { id operatorName } } }";
    let m = app
        .gql(
            Some(&admin),
            mark,
            json!({"l": id, "y": 2026, "c": "预付式消费跑路典型案例"}),
        )
        .await;
    assert_eq!(m.data()["markTypicalCase"]["listing"]["id"], id.as_str());
    assert_eq!(m.data()["markTypicalCase"]["inForce"], true);
    let again = app
        .gql(
            Some(&admin),
            mark,
            json!({"l": id, "y": 2026, "c": "修订后的点评"}),
        )
        .await;
    assert_eq!(
        again.data()["markTypicalCase"]["commentary"],
        "修订后的点评"
    );
    assert_eq!(
        again.data()["markTypicalCase"]["id"],
        m.data()["markTypicalCase"]["id"]
    );
    app.gql(
        Some(&admin),
        mark,
        json!({"l": revoked, "y": 2026, "c": "后被撤销"}),
    )
    .await
    .data();
    app.gql(
        Some(&admin),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { id } }",
        json!({"i": {"id": revoked, "expectedVersion": rv, "ground": "PENALTY_REVOKED", "revocationDocNo": "R", "reason": "撤销"}}),
    )
    .await
    .data();

    let list = "query($y: Int!) { typicalCases(year: $y) { year commentary inForce listing { id operatorName uscc } } }";
    let public = app.gql(None, list, json!({"y": 2026})).await;
    let public = public.data()["typicalCases"].as_array().unwrap().clone();
    assert_eq!(public.len(), 1, "publicity of the revoked listing stopped");
    assert_eq!(public[0]["commentary"], "修订后的点评");
    assert_eq!(public[0]["listing"]["id"], id.as_str());
    let audited = app
        .gql(Some(&app.auditor()), list, json!({"y": 2026}))
        .await;
    assert_eq!(audited.data()["typicalCases"].as_array().unwrap().len(), 2);
    let other_year = app.gql(None, list, json!({"y": 2025})).await;
    assert!(
        other_year.data()["typicalCases"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    app.gql(
        Some(&app.auditor()),
        mark,
        json!({"l": id, "y": 2026, "c": "x"}),
    )
    .await
    .assert_error("FORBIDDEN");
    app.gql(None, mark, json!({"l": id, "y": 2026, "c": "x"}))
        .await
        .assert_error("UNAUTHENTICATED");
    app.gql(Some(&admin), mark, json!({"l": id, "y": 2026, "c": "  "}))
        .await
        .assert_error("BAD_USER_INPUT");
    app.gql(
        Some(&app.region_admin("441802")),
        mark,
        json!({"l": id, "y": 2026, "c": "x"}),
    )
    .await
    .assert_error("FORBIDDEN");
    let code = valid_code("441821", 3);
    app.create_operator(&code, "佛冈提议公司").await;
    let proposal = propose(&app, &admin, &code, "2026-03-02").await.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&admin),
        mark,
        json!({"l": proposal, "y": 2026, "c": "尚未决定"}),
    )
    .await
    .assert_error("BAD_USER_INPUT");

    let unmark = "mutation($l: ID!, $y: Int!) { unmarkTypicalCase(listingId: $l, year: $y) }";
    let u = app
        .gql(Some(&admin), unmark, json!({"l": id, "y": 2026}))
        .await;
    assert_eq!(u.data()["unmarkTypicalCase"], true);
    app.gql(Some(&admin), unmark, json!({"l": id, "y": 2026}))
        .await
        .assert_error("NOT_FOUND");
    let public = app.gql(None, list, json!({"y": 2026})).await;
    assert!(public.data()["typicalCases"].as_array().unwrap().is_empty());
    let audit = app
        .gql(
            Some(&app.auditor()),
            "{ auditEvents(filter: {entityType: \"typical_case\"}) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = audit.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "typical_case.marked",
            "typical_case.updated",
            "typical_case.marked",
            "typical_case.unmarked"
        ]
    );
    assert_eq!(verify(&app).await["ok"], true);
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn repair_application(
    app: &TestApp,
    listing_id: &str,
    status: &str,
    received: NaiveDate,
    due: Option<NaiveDate>,
    decided_at: Option<DateTime<Utc>>,
) {
    let now = api::domain::now();
    entity::repair_application::ActiveModel {
        listing_id: Set(listing_id.parse().unwrap()),
        status: Set(status.into()),
        received_date: Set(received),
        accepted_at: Set(due.map(|_| now)),
        due_date: Set(due),
        documents: Set(json!([])),
        statements: Set(json!({})),
        eligibility: Set(json!({})),
        decided_at: Set(decided_at),
        decided_by: Set(decided_at.map(|_| "admin-city".to_string())),
        decision_reason: Set(None),
        revoked_at: Set(None),
        revocation_reason: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
}

/// A check record; returns its receipt id.
async fn check_record(
    app: &TestApp,
    uscc: &str,
    operator_id: Option<i64>,
    domain: &str,
    decision: &str,
    checked_at: DateTime<Utc>,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    entity::check_record::ActiveModel {
        id: Set(id.clone()),
        subject: Set("gov-procurement".into()),
        role: Set("partner".into()),
        domain: Set(domain.into()),
        uscc: Set(uscc.into()),
        operator_id: Set(operator_id),
        as_of: Set(checked_at),
        checked_at: Set(checked_at),
        reference: Set(Some("QYCG-2025-001".into())),
        decision: Set(decision.into()),
        hit_listing_ids: Set(json!([])),
        hit_measure_codes: Set(None),
        warnings: Set(json!([])),
        request_id: Set("r".into()),
        batch_id: Set(None),
        known_at: Set(None),
    }
    .insert(&app.db)
    .await
    .unwrap();
    id
}

async fn feedback(app: &TestApp, receipt: &str, measure: &str, at: DateTime<Utc>) {
    entity::partner_feedback::ActiveModel {
        receipt_id: Set(receipt.into()),
        subject: Set("gov-procurement".into()),
        measure_code: Set(measure.into()),
        context: Set("投标资格审查".into()),
        note: Set(None),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
}

async fn operator_id(app: &TestApp, uscc: &str) -> i64 {
    let op = app
        .gql(
            Some(&app.admin()),
            "query($c: String!) { operator(uscc: $c) { id } }",
            json!({"c": uscc}),
        )
        .await;
    op.data()["operator"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

const REPORT: &str = "query($y: Int!, $r: String) { report(year: $y, region: $r) { year region divisions { regionCode regionName listingsDecided removed { expired repaired revoked } repair { received receivedByStatus { status count } decided decidedOnTime onTimeRate } checksTotal checks { domain decision count } feedbackTotal feedback { measureCode count } } totals { listingsDecided removed { expired repaired revoked } repair { received decided decidedOnTime onTimeRate } checksTotal checks { domain decision count } feedbackTotal feedback { measureCode count } } } }";

async fn the_yearly_report_counts_the_records(app: TestApp) {
    let admin = app.admin();
    // Qingcheng (441802): two decided in 2025, one at the end of 2024; one revoked in 2025.
    let (q1_code, q1, q1v) = listed(&app, "441802", 1, utc(2025, 3, 3, 2, 0)).await;
    let (_, q2, _) = listed(&app, "441802", 2, utc(2025, 11, 20, 2, 0)).await;
    listed(&app, "441802", 3, utc(2024, 12, 31, 2, 0)).await;
    app.gql(
        Some(&admin),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { id } }",
        json!({"i": {"id": q1, "expectedVersion": q1v, "ground": "PENALTY_REVOKED", "revocationDocNo": "R", "reason": "撤销", "effectiveAt": utc(2025, 12, 1, 2, 0)}}),
    )
    .await
    .data();
    // Yingde (441881): one decided in 2025 whose period (corrected) ran out in 2025;
    // one decided in 2024 and removed after a repair in 2025.
    let (_, y1, y1v) = listed(&app, "441881", 1, utc(2025, 2, 3, 2, 0)).await;
    app.gql(
        Some(&admin),
        CORRECT,
        json!({"i": {"id": y1, "expectedVersion": y1v, "reason": "期限", "expiresAt": utc(2025, 8, 1, 0, 0)}}),
    )
    .await
    .data();
    let (_, y2, _) = listed(&app, "441881", 2, utc(2024, 6, 3, 2, 0)).await;
    let period = entity::listing_period::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.listing_id.to_string() == y2)
        .unwrap();
    let mut p: entity::listing_period::ActiveModel = period.into();
    p.removed_at = Set(Some(utc(2025, 9, 1, 0, 0)));
    p.removal_kind = Set(Some("REPAIRED".into()));
    p.update(&app.db).await.unwrap();

    // Repair applications of Q2: decided on time, late, pending; one from 2024 decided
    // late in 2025. Of Y1: one ineligible.
    repair_application(
        &app,
        &q2,
        "APPROVED",
        day(2025, 4, 1),
        Some(day(2025, 4, 22)),
        Some(utc(2025, 4, 20, 2, 0)),
    )
    .await;
    repair_application(
        &app,
        &q2,
        "REJECTED",
        day(2025, 10, 1),
        Some(day(2025, 10, 22)),
        Some(utc(2025, 10, 30, 2, 0)),
    )
    .await;
    repair_application(
        &app,
        &q2,
        "PENDING",
        day(2025, 12, 20),
        Some(day(2026, 1, 12)),
        None,
    )
    .await;
    repair_application(
        &app,
        &q2,
        "REJECTED",
        day(2024, 12, 1),
        Some(day(2025, 1, 3)),
        Some(utc(2025, 1, 5, 2, 0)),
    )
    .await;
    repair_application(&app, &y1, "INELIGIBLE", day(2025, 5, 5), None, None).await;

    // Checks: Q1's operator, and a code nobody registered (attributed to 441881 by its code).
    let q1_op = operator_id(&app, &q1_code).await;
    let stranger = valid_code("441881", 999);
    let mut receipts = Vec::new();
    for at in [
        utc(2025, 3, 10, 2, 0),
        utc(2025, 4, 10, 2, 0),
        utc(2025, 5, 10, 2, 0),
    ] {
        receipts
            .push(check_record(&app, &q1_code, Some(q1_op), "PROCUREMENT", "RESTRICTED", at).await);
    }
    // 00:30 on 1 January 2025 in Beijing: in 2025.
    check_record(
        &app,
        &q1_code,
        Some(q1_op),
        "PROCUREMENT",
        "RESTRICTED",
        utc(2024, 12, 31, 16, 30),
    )
    .await;
    check_record(
        &app,
        &q1_code,
        Some(q1_op),
        "BIDDING",
        "CLEAR",
        utc(2025, 6, 1, 2, 0),
    )
    .await;
    // 00:30 on 1 January 2026 in Beijing, and mid-2024: not in 2025.
    check_record(
        &app,
        &q1_code,
        Some(q1_op),
        "PROCUREMENT",
        "RESTRICTED",
        utc(2025, 12, 31, 16, 30),
    )
    .await;
    let old = check_record(
        &app,
        &q1_code,
        Some(q1_op),
        "PROCUREMENT",
        "RESTRICTED",
        utc(2024, 6, 1, 2, 0),
    )
    .await;
    let s1 = check_record(
        &app,
        &stranger,
        None,
        "PROCUREMENT",
        "CLEAR",
        utc(2025, 7, 1, 2, 0),
    )
    .await;
    check_record(
        &app,
        &stranger,
        None,
        "PROCUREMENT",
        "CLEAR",
        utc(2025, 7, 2, 2, 0),
    )
    .await;
    feedback(
        &app,
        &receipts[0],
        "PROCUREMENT_RESTRICT",
        utc(2025, 3, 11, 2, 0),
    )
    .await;
    feedback(
        &app,
        &receipts[1],
        "PROCUREMENT_RESTRICT",
        utc(2025, 4, 11, 2, 0),
    )
    .await;
    feedback(&app, &s1, "BIDDING_RESTRICT", utc(2025, 7, 3, 2, 0)).await;
    feedback(&app, &old, "PROCUREMENT_RESTRICT", utc(2024, 6, 2, 2, 0)).await;

    let resp = app
        .gql(Some(&app.auditor()), REPORT, json!({"y": 2025}))
        .await;
    let report = resp.data()["report"].clone();
    assert_eq!(report["year"], 2025);
    let divisions = report["divisions"].as_array().unwrap();
    let codes: Vec<&str> = divisions
        .iter()
        .map(|d| d["regionCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec![
            "441800", "441802", "441803", "441821", "441823", "441825", "441826", "441881",
            "441882"
        ]
    );
    let by = |code: &str| {
        divisions
            .iter()
            .find(|d| d["regionCode"] == code)
            .unwrap()
            .clone()
    };
    let qc = by("441802");
    assert_eq!(qc["regionName"], "清城区");
    assert_eq!(qc["listingsDecided"], 2);
    assert_eq!(
        qc["removed"],
        json!({"expired": 0, "repaired": 0, "revoked": 1})
    );
    assert_eq!(qc["repair"]["received"], 3);
    assert_eq!(
        qc["repair"]["receivedByStatus"],
        json!([{"status": "APPROVED", "count": 1}, {"status": "PENDING", "count": 1}, {"status": "REJECTED", "count": 1}])
    );
    assert_eq!(qc["repair"]["decided"], 3);
    assert_eq!(qc["repair"]["decidedOnTime"], 1);
    assert!((qc["repair"]["onTimeRate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(qc["checksTotal"], 5);
    assert_eq!(
        qc["checks"],
        json!([{"domain": "BIDDING", "decision": "CLEAR", "count": 1}, {"domain": "PROCUREMENT", "decision": "RESTRICTED", "count": 4}])
    );
    assert_eq!(qc["feedbackTotal"], 2);
    assert_eq!(
        qc["feedback"],
        json!([{"measureCode": "PROCUREMENT_RESTRICT", "count": 2}])
    );
    let yd = by("441881");
    assert_eq!(yd["listingsDecided"], 1);
    assert_eq!(
        yd["removed"],
        json!({"expired": 1, "repaired": 1, "revoked": 0})
    );
    assert_eq!(yd["repair"]["received"], 1);
    assert_eq!(
        yd["repair"]["receivedByStatus"],
        json!([{"status": "INELIGIBLE", "count": 1}])
    );
    assert_eq!(yd["repair"]["decided"], 0);
    assert_eq!(yd["repair"]["onTimeRate"], Value::Null);
    assert_eq!(
        yd["checks"],
        json!([{"domain": "PROCUREMENT", "decision": "CLEAR", "count": 2}])
    );
    assert_eq!(
        yd["feedback"],
        json!([{"measureCode": "BIDDING_RESTRICT", "count": 1}])
    );
    for quiet in [
        "441800", "441803", "441821", "441823", "441825", "441826", "441882",
    ] {
        let d = by(quiet);
        assert_eq!(d["listingsDecided"], 0, "{quiet}");
        assert_eq!(d["checksTotal"], 0, "{quiet}");
    }

    // Totals are the sums of the divisions, and match the rows counted directly.
    let totals = &report["totals"];
    assert_eq!(totals["listingsDecided"], 3);
    assert_eq!(
        totals["removed"],
        json!({"expired": 1, "repaired": 1, "revoked": 1})
    );
    assert_eq!(totals["repair"]["received"], 4);
    assert_eq!(totals["repair"]["decided"], 3);
    assert_eq!(totals["repair"]["decidedOnTime"], 1);
    assert_eq!(totals["checksTotal"], 7);
    assert_eq!(
        app.count("check_records").await,
        9,
        "two checks lie outside 2025"
    );
    assert_eq!(totals["feedbackTotal"], 3);
    for field in ["listingsDecided", "checksTotal", "feedbackTotal"] {
        let sum: i64 = divisions.iter().map(|d| d[field].as_i64().unwrap()).sum();
        assert_eq!(totals[field].as_i64().unwrap(), sum, "{field}");
    }

    // Limited to a division; a region admin sees only theirs.
    let one = app
        .gql(
            Some(&app.auditor()),
            REPORT,
            json!({"y": 2025, "r": "441881"}),
        )
        .await;
    let one = one.data()["report"].clone();
    assert_eq!(one["divisions"].as_array().unwrap().len(), 1);
    assert_eq!(one["totals"]["checksTotal"], 2);
    let county = app.region_admin("441881");
    let own = app.gql(Some(&county), REPORT, json!({"y": 2025})).await;
    assert_eq!(own.data()["report"]["region"], "441881");
    assert_eq!(own.data()["report"]["totals"]["listingsDecided"], 1);
    app.gql(Some(&county), REPORT, json!({"y": 2025, "r": "441802"}))
        .await
        .assert_error("FORBIDDEN");
    app.gql(
        Some(&app.partner("p2", &[Domain::Procurement]).await),
        REPORT,
        json!({"y": 2025}),
    )
    .await
    .assert_error("FORBIDDEN");
    app.gql(Some(&app.auditor()), REPORT, json!({"y": 1800}))
        .await
        .assert_error("BAD_USER_INPUT");

    // What `credit-registry report --year 2025 --format csv` prints.
    let report = api::service::report::yearly(&app.db, 2025, None)
        .await
        .unwrap();
    let csv = api::service::report::to_csv(&report);
    assert!(
        csv.contains("2025,441802,清城区,listings,decided,2\n"),
        "{csv}"
    );
    assert!(csv.contains("2025,441802,清城区,checks,PROCUREMENT/RESTRICTED,4\n"));
    assert!(csv.contains("2025,441881,英德市,removed,expired,1\n"));
    assert!(csv.contains("2025,TOTAL,合计,checks,total,7\n"));
    assert!(csv.contains("2025,441802,清城区,repair,on_time_rate,0.3333\n"));
}

on_both_backends!(
    record_time_shows_what_was_recorded_before_a_correction,
    the_audit_log_is_append_only_and_searchable,
    the_chain_verifier_catches_an_altered_row,
    the_chain_verifier_catches_a_deleted_row,
    the_chain_verifier_catches_a_deleted_last_row,
    the_feed_mirrors_every_change_in_order_across_pages,
    a_subscription_receives_a_change_within_a_second,
    the_public_list_leaks_no_personal_field,
    typical_cases_are_marked_by_admins_and_public,
    the_yearly_report_counts_the_records,
);

const CHECK_KNOWN: &str = "query($u: String!, $a: DateTime, $k: DateTime) { check(uscc: $u, domain: PROCUREMENT, asOf: $a, knownAt: $k) { decision asOf checkedAt knownAt receipt hits { listingId measures { code effect } } } }";

/// An answer given on one day, reproduced later after a retroactive change: `asOf`
/// the same instant answers from today's records, `asOf` + `knownAt` from the records
/// as they stood when the first answer was given.
async fn a_check_as_of_known_at_reproduces_an_earlier_answer(app: TestApp) {
    let (code, id, version) = listed(&app, "441802", 77, Utc::now() - Duration::days(60)).await;
    let partner = app
        .partner("gov-procurement-k", &[Domain::Procurement])
        .await;
    let first = app
        .gql(
            Some(&partner),
            CHECK_KNOWN,
            json!({"u": code, "a": null, "k": null}),
        )
        .await;
    let first = first.data()["check"].clone();
    assert_eq!(first["decision"], "RESTRICTED");
    let then: DateTime<Utc> = first["checkedAt"].as_str().unwrap().parse().unwrap();

    // Later the penalty is revoked with effect from before that check.
    let effective = Utc::now() - Duration::days(59);
    app.gql(
        Some(&app.admin()),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { status } }",
        json!({"i": {"id": id, "expectedVersion": version, "ground": "PENALTY_REVOKED",
                      "revocationDocNo": "清市监撤〔2026〕1号", "reason": "复议撤销", "effectiveAt": effective}}),
    )
    .await
    .data();

    // Valid time alone now answers from today's records: CLEAR at the same instant.
    let auditor = app.auditor();
    let today = app
        .gql(
            Some(&auditor),
            CHECK_KNOWN,
            json!({"u": code, "a": then, "k": null}),
        )
        .await;
    assert_eq!(today.data()["check"]["decision"], "CLEAR");
    // As the registry knew it then: the earlier answer, hits included.
    let reproduced = app
        .gql(
            Some(&auditor),
            CHECK_KNOWN,
            json!({"u": code, "a": then, "k": then}),
        )
        .await;
    let r = &reproduced.data()["check"];
    assert_eq!(r["decision"], first["decision"]);
    assert_eq!(r["hits"], first["hits"]);
    assert_eq!(
        r["knownAt"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(then)
    );
    // The reconstruction's receipt says it is one.
    let payload = r["receipt"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert!(payload["knownAt"].is_string(), "{payload}");
    // Only auditors and admins reconstruct; nor can anyone know the future.
    app.gql(
        Some(&partner),
        CHECK_KNOWN,
        json!({"u": code, "a": then, "k": then}),
    )
    .await
    .assert_error("FORBIDDEN");
    app.gql(
        Some(&auditor),
        CHECK_KNOWN,
        json!({"u": code, "a": null, "k": Utc::now() + Duration::hours(1)}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
}

on_both_backends!(a_check_as_of_known_at_reproduces_an_earlier_answer);
