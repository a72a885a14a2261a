//! Record time (`knownAt`) and valid time (`asOf`): a listing, a page of listings and an
//! operator's listings as the registry recorded them before a correction, and as it
//! records them since.

use super::{CORRECT, ids};
use crate::listings::listed;
use chrono::{DateTime, Duration, Months, Utc};
use serde_json::{Value, json};
use tests::{TestApp, on_both_backends};

async fn record_time_shows_what_was_recorded_before_a_correction(app: TestApp) {
    let auditor = app.auditor();
    let before_anything = app.instant_between();
    // Decided 40 months ago: its 36 months ran out 4 months ago. Its end is corrected
    // to ten days after its start, which changes what held in the past (valid time), not
    // whether it is on the list now (a correction may not take a listing in force off
    // the list, nor put an expired one back).
    let start = app
        .state
        .clock
        .now()
        .checked_sub_months(Months::new(40))
        .unwrap();
    let (code, id, v) = listed(&app, "441802", 1, start).await;
    let as_recorded = app.instant_between();
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
    let after_correction = app.instant_between();

    let one = "query($id: ID!, $k: DateTime) { listing(id: $id, knownAt: $k) { id knownAt authority version status expiresAt measures { code } } }";
    let old = app
        .gql(Some(&auditor), one, json!({"id": id, "k": as_recorded}))
        .await;
    let old = &old.data()["listing"];
    assert_eq!(old["authority"], "清远市市场监督管理局");
    assert_eq!(old["version"], v);
    assert_eq!(old["status"], "EXPIRED");
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
    let new_end: DateTime<Utc> = new["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(new_end, corrected_end);
    assert_eq!(
        new["measures"],
        json!([{"code": "SAMR44_FACTOR_PROCUREMENT"}])
    );
    // A catalogue edit after the correction: the record keeps the measure's name as it
    // stood then; the live listing shows the new one. (Its effect is fixed once used:
    // `a_measure_in_use_keeps_its_domain_and_effect`.)
    app.gql(
        Some(&app.admin()),
        "mutation { upsertMeasure(input: {code: \"SAMR44_FACTOR_PROCUREMENT\", name: \"政府采购重要考量\", domain: PROCUREMENT, effect: CONSIDER, legalBasis: \"测试\"}) { effect } }",
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
        json!([{"code": "SAMR44_FACTOR_PROCUREMENT", "effect": "CONSIDER", "name": "政府采购重要考量"}])
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

/// A change that waited for the audit chain's lock is on record from when it got the
/// lock, not from when it asked for it: while it waited no check could see it, so as
/// known at an instant of that wait the listing is as it was before.
async fn a_change_that_waited_for_the_chain_lock_is_on_record_from_when_it_got_it(app: TestApp) {
    let start = app.state.clock.now() - Duration::days(30);
    let (_, id, v) = listed(&app, "441802", 2, start).await;
    // Another write holds the chain's lock while the correction asks for it.
    let held = api::service::audit::begin_write(&app.state.services.db)
        .await
        .unwrap();
    let admin = app.admin();
    let correction = app.gql(
        Some(&admin),
        CORRECT,
        json!({"i": {"id": id, "expectedVersion": v, "reason": "机关名称更正",
                      "authority": "清远市市场监督管理局（更正）"}}),
    );
    let hold_then_release = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let while_waiting = app.instant_between();
        held.commit().await.unwrap();
        while_waiting
    };
    let (corrected, while_waiting) = tokio::join!(correction, hold_then_release);
    corrected.data();

    let one = "query($id: ID!, $k: DateTime) { listing(id: $id, knownAt: $k) { authority } }";
    let auditor = app.auditor();
    let then = app
        .gql(Some(&auditor), one, json!({"id": id, "k": while_waiting}))
        .await;
    assert_eq!(
        then.data()["listing"]["authority"],
        "清远市市场监督管理局",
        "as known while the correction waited for the lock"
    );
    let now = app
        .gql(Some(&auditor), one, json!({"id": id, "k": null}))
        .await;
    assert_eq!(
        now.data()["listing"]["authority"],
        "清远市市场监督管理局（更正）"
    );
}

on_both_backends!(
    record_time_shows_what_was_recorded_before_a_correction,
    a_change_that_waited_for_the_chain_lock_is_on_record_from_when_it_got_it,
);
