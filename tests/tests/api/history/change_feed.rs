//! The change feed (`changes`): every change of the list, in order, across pages; a
//! mirror that applies it holds exactly the listings in force.

use super::{CORRECT, ids};
use crate::listings::{listed, propose};
use api::domain::measures::Domain;
use api::service::Actor;
use chrono::{DateTime, Duration, Months, Utc};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tests::{TestApp, on_both_backends, valid_code};

const CHANGES: &str = "query($a: String, $n: Int) { changes(after: $a, first: $n) { edges { cursor node { cursor kind listingId uscc listCode occurredAt effectiveAt status inForce version measureCodes listing { id uscc operatorName listName decisionDocNo expiresAt } } } pageInfo { hasNextPage endCursor } } }";

/// Reads the whole feed after `after`, `first` events a page; returns the events and
/// the cursor to continue from.
pub(super) async fn read_feed(
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
        api::service::feed::record_expiries(&app.db, &app.state.clock)
            .await
            .unwrap(),
        0
    );
    // Time moves on (the registry's clock, not a sleep).
    app.state.clock.advance(Duration::seconds(3));
    assert_eq!(
        api::service::feed::record_expiries(&app.db, &app.state.clock)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        api::service::feed::record_expiries(&app.db, &app.state.clock)
            .await
            .unwrap(),
        0
    );
    // A is repaired, then the repair is revoked (the repair service's entry points).
    let a_id: i64 = a.parse().unwrap();
    let actor = Actor::system("test-repair");
    let tx = begin(&app).await;
    api::service::listings::mark_repaired(&tx, &actor, a_id, app.state.clock.now(), "信用修复")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let tx = begin(&app).await;
    api::service::listings::restore_after_repair_revocation(
        &tx,
        &actor,
        a_id,
        app.state.clock.now(),
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
        // C was a proposal, withdrawn: never on a list, never in the feed.
        ("DECIDED", &d),
        ("EXPIRED", &d),
        ("REPAIRED", &a),
        ("REPAIR_REVOKED", &a),
    ]
    .iter()
    .map(|(k, id)| (k.to_string(), id.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);
    let occurred: Vec<DateTime<Utc>> = events
        .iter()
        .map(|e| e["occurredAt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(occurred.windows(2).all(|w| w[0] <= w[1]), "{occurred:?}");
    let expired = &events[6];
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

on_both_backends!(the_feed_mirrors_every_change_in_order_across_pages,);
