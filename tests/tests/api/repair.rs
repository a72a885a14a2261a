//! Credit repair: eligibility, deadlines in working days, decisions, revocation, overdue
//! detection and the on-time rate.

use crate::listings::{listed, propose};
use chrono::{DateTime, Days, Duration, Months, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use tests::{Gql, TestApp, on_both_backends, valid_code};

const REPAIR_FIELDS: &str = "id listingId status eligible failedConditions eligibility { condition met explanation } \
    receivedDate acceptedAt dueDate overdue decidedOnTime decidedAt decidedBy decisionReason revokedAt revocationReason \
    version documents { kind fileName sha256 } statements { obligationsPerformed { affirmed note } harmCorrected { affirmed } statutoryRestrictionEnded { affirmed } }";

const ALL_KINDS: [&str; 4] = [
    "REPAIR_APPLICATION",
    "CREDIT_COMMITMENT",
    "LEGAL_STATUS_PROOF",
    "PERFORMANCE_PROOF",
];

fn documents(kinds: &[&str]) -> Value {
    Value::Array(
        kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                json!({"kind": k, "fileName": format!("{}.pdf", k.to_lowercase()), "sha256": format!("{:064x}", i + 1)})
            })
            .collect(),
    )
}

fn statements(all: bool) -> Value {
    json!({
        "obligationsPerformed": {"affirmed": all, "note": "罚款已于2026年1月缴清"},
        "harmCorrected": {"affirmed": true},
        "statutoryRestrictionEnded": {"affirmed": true, "note": "无法定限制期"},
    })
}

async fn submit_with(
    app: &TestApp,
    token: &str,
    listing_id: &str,
    received: NaiveDate,
    docs: Value,
    stmts: Value,
) -> Gql {
    app.gql(
        Some(token),
        &format!("mutation($i: SubmitRepairApplicationInput!) {{ submitRepairApplication(input: $i) {{ {REPAIR_FIELDS} }} }}"),
        json!({"i": {"listingId": listing_id, "receivedDate": received, "documents": docs, "statements": stmts}}),
    )
    .await
}

/// A complete application, every statement affirmed.
async fn submit(app: &TestApp, listing_id: &str, received: NaiveDate) -> Value {
    let r = submit_with(
        app,
        &app.admin(),
        listing_id,
        received,
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    r.data()["submitRepairApplication"].clone()
}

async fn decide_as(
    app: &TestApp,
    token: &str,
    id: &str,
    version: i64,
    approve: bool,
    reason: &str,
) -> Gql {
    app.gql(
        Some(token),
        &format!("mutation($id: ID!, $v: Int!, $a: Boolean!, $r: String!) {{ decideRepairApplication(id: $id, expectedVersion: $v, approve: $a, reason: $r) {{ {REPAIR_FIELDS} }} }}"),
        json!({"id": id, "v": version, "a": approve, "r": reason}),
    )
    .await
}

async fn decide(app: &TestApp, id: &str, version: i64, approve: bool) -> Value {
    let r = decide_as(
        app,
        &app.admin(),
        id,
        version,
        approve,
        "材料齐全，符合提前移出条件",
    )
    .await;
    r.data()["decideRepairApplication"].clone()
}

async fn revoke(app: &TestApp, id: &str, version: Option<i64>) -> Gql {
    app.gql(
        Some(&app.admin()),
        &format!("mutation($id: ID!, $v: Int) {{ revokeRepair(id: $id, reason: \"提交虚假履行证明\", expectedVersion: $v) {{ {REPAIR_FIELDS} }} }}"),
        json!({"id": id, "v": version}),
    )
    .await
}

async fn listing(app: &TestApp, id: &str, at: Option<DateTime<Utc>>) -> Value {
    let r = app
        .gql(
            Some(&app.auditor()),
            "query($id: ID!, $at: DateTime) { listing(id: $id) { status version inForce inForceAt: inForce(at: $at) removalReason \
             periods { startsAt endsAt removedAt removalKind } repairApplications { id status } } }",
            json!({"id": id, "at": at}),
        )
        .await;
    r.data()["listing"].clone()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A back-dated listing instant: 10:00 Beijing on `d`.
fn beijing_morning(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(2, 0, 0).unwrap())
}

fn today() -> NaiveDate {
    api::domain::china_date(Utc::now())
}

/// A listing in force since a year and a few days, so that an application received
/// 366 days after it is eligible and recent enough to be decided on time.
async fn listed_a_year_ago(app: &TestApp, division: &str, serial: u32) -> (String, NaiveDate) {
    let listed_on = today() - Days::new(370);
    let (_, id, _) = listed(app, division, serial, beijing_morning(listed_on)).await;
    (id, listed_on)
}

/// The ids of the listings in force at `t`.
async fn in_force_ids(app: &TestApp, t: DateTime<Utc>) -> Vec<String> {
    let r = app
        .gql(
            Some(&app.auditor()),
            "query($t: DateTime!) { listings(filter: {inForceAt: $t}) { edges { node { id } } } }",
            json!({"t": t}),
        )
        .await;
    r.data()["listings"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// The ids of the repair applications matching `filter`, sorted.
async fn ids(app: &TestApp, filter: Value) -> Vec<String> {
    let r = app
        .gql(
            Some(&app.auditor()),
            "query($f: RepairApplicationFilter) { repairApplications(filter: $f) { edges { node { id overdue } } } }",
            json!({"f": filter}),
        )
        .await;
    let edges = r.data()["repairApplications"]["edges"].as_array().unwrap();
    // The computed field agrees with the filter.
    if let Some(wanted) = filter.get("overdue") {
        for e in edges {
            assert_eq!(&e["node"]["overdue"], wanted, "{e}");
        }
    }
    let mut ids: Vec<String> = edges
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn rate(app: &TestApp, region: Option<&str>, from: NaiveDate, to: NaiveDate) -> Value {
    let r = app
        .gql(
            Some(&app.auditor()),
            "query($f: NaiveDate!, $t: NaiveDate!, $r: String) { repairOnTimeRate(from: $f, to: $t, region: $r) { decided onTime overdue rate meetsTarget } }",
            json!({"f": from, "t": to, "r": region}),
        )
        .await;
    r.data()["repairOnTimeRate"].clone()
}

async fn a_year_means_a_full_year(app: TestApp) {
    let listed_on = date("2025-03-02");
    let (_, id, _) = listed(&app, "441802", 1, beijing_morning(listed_on)).await;

    // 364 days: not yet a year, so recorded as INELIGIBLE with the condition named.
    let early = submit(&app, &id, listed_on + Days::new(364)).await;
    assert_eq!(early["status"], "INELIGIBLE");
    assert_eq!(early["eligible"], false);
    assert_eq!(early["failedConditions"], json!(["MINIMUM_PERIOD_LISTED"]));
    assert!(early["dueDate"].is_null() && early["acceptedAt"].is_null());
    let min = &early["eligibility"].as_array().unwrap()[0];
    assert_eq!(min["condition"], "MINIMUM_PERIOD_LISTED");
    assert!(
        min["explanation"].as_str().unwrap().contains("2026-03-02"),
        "{min}"
    );
    assert_eq!(early["eligibility"].as_array().unwrap().len(), 7);

    // 366 days: eligible, accepted, due 15 working days after receipt.
    let ok = submit(&app, &id, listed_on + Days::new(366)).await;
    assert_eq!(ok["status"], "PENDING", "{ok}");
    assert_eq!(ok["failedConditions"], json!([]));
    assert!(ok["acceptedAt"].is_string());
    // Received Tue 2026-03-03: 15 working days → Tue 2026-03-24.
    assert_eq!(ok["dueDate"], "2026-03-24");
    assert_eq!(ok["documents"][0]["sha256"], format!("{:064x}", 1), "{ok}");
    assert_eq!(
        ok["statements"]["obligationsPerformed"]["note"],
        "罚款已于2026年1月缴清"
    );

    // Both were recorded, each with its audit event.
    assert_eq!(app.count("repair_applications").await, 2);
    let l = listing(&app, &id, None).await;
    assert_eq!(l["repairApplications"].as_array().unwrap().len(), 2);

    // A second application while one is pending is refused.
    let again = submit_with(
        &app,
        &app.admin(),
        &id,
        listed_on + Days::new(370),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    again.assert_error("CONFLICT");
}

/// The operator `code` listed again, on the tax list, for the penalty `penalty_doc_no` of
/// `penalty_date`: noticed and decided on `decided_on`, in force from that morning
/// (Beijing). Its listing id.
async fn listed_again(
    app: &TestApp,
    code: &str,
    penalty_doc_no: &str,
    penalty_date: NaiveDate,
    decided_on: NaiveDate,
) -> String {
    let p = app
        .gql(
            Some(&app.admin()),
            "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id } }",
            json!({"i": {"uscc": code, "list": "TAX_MAJOR_VIOLATION", "authority": "国家税务总局清远市税务局",
                "penaltyDocNo": penalty_doc_no, "penaltyDate": penalty_date, "violationCategory": "CONSUMER_HARM",
                "reason": "虚开发票", "legalBasis": "《重大税收违法失信主体信息公布管理办法》",
                "noticeDate": decided_on}}),
        )
        .await;
    let later_id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::listings::decide(
        app,
        &app.admin(),
        &later_id,
        1,
        &decided_on.to_string(),
        Some(beijing_morning(decided_on)),
    )
    .await
    .data();
    later_id
}

async fn every_failed_condition_is_answered(app: TestApp) {
    let (id, listed_on) = listed_a_year_ago(&app, "441802", 2).await;
    // A later listing of the same operator on another list.
    let code = valid_code("441802", 2);
    let later_id = listed_again(
        &app,
        &code,
        "清税罚〔2025〕9号",
        listed_on,
        listed_on + Days::new(30),
    )
    .await;

    let r = submit_with(
        &app,
        &app.admin(),
        &id,
        listed_on + Days::new(366),
        documents(&["REPAIR_APPLICATION", "CREDIT_COMMITMENT"]),
        statements(false),
    )
    .await;
    let a = &r.data()["submitRepairApplication"];
    assert_eq!(a["status"], "INELIGIBLE");
    assert_eq!(
        a["failedConditions"],
        json!([
            "OBLIGATIONS_PERFORMED",
            "NO_NEW_LISTING",
            "DOCUMENTS_COMPLETE"
        ])
    );
    let explanations: Vec<&str> = a["eligibility"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["met"] == false)
        .map(|c| c["explanation"].as_str().unwrap())
        .collect();
    assert!(
        explanations[1].contains(&format!("listing {later_id}")),
        "{explanations:?}"
    );
    assert!(
        explanations[2].contains("LEGAL_STATUS_PROOF")
            && explanations[2].contains("PERFORMANCE_PROOF"),
        "{explanations:?}"
    );

    // Bad input is refused and nothing is written.
    let before = app.count("repair_applications").await;
    let bad_digest = submit_with(
        &app,
        &app.admin(),
        &id,
        listed_on + Days::new(366),
        json!([{"kind": "REPAIR_APPLICATION", "fileName": "a.pdf", "sha256": "abc"}]),
        statements(true),
    )
    .await;
    bad_digest.assert_error("BAD_USER_INPUT");
    assert!(bad_digest.error_message().contains("SHA-256"));
    let future = submit_with(
        &app,
        &app.admin(),
        &id,
        today() + Days::new(2),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    future.assert_error("BAD_USER_INPUT");
    let before_listing = submit_with(
        &app,
        &app.admin(),
        &id,
        listed_on - Days::new(1),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    before_listing.assert_error("BAD_USER_INPUT");
    // A listing not in force (a proposal) cannot be repaired.
    let code = valid_code("441802", 3);
    app.create_operator(&code, "清远提议中有限公司").await;
    let proposal = propose(&app, &app.admin(), &code, &today().to_string()).await;
    let proposal_id = proposal.data()["proposeListing"]["id"].as_str().unwrap();
    let not_listed = submit_with(
        &app,
        &app.admin(),
        proposal_id,
        today(),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    not_listed.assert_error("BAD_USER_INPUT");
    assert!(
        not_listed.error_message().contains("PROPOSED"),
        "{}",
        not_listed.body
    );
    assert_eq!(
        not_listed.body["errors"][0]["extensions"]["details"]["status"],
        "PROPOSED"
    );
    let missing = submit_with(
        &app,
        &app.admin(),
        "999999",
        today(),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    missing.assert_error("NOT_FOUND");
    assert_eq!(app.count("repair_applications").await, before);
}

async fn the_deadline_skips_the_spring_festival(app: TestApp) {
    let (_, id, _) = listed(&app, "441802", 4, beijing_morning(date("2024-06-03"))).await;
    let a = submit(&app, &id, date("2026-02-12")).await;
    // Thu 12 Feb 2026 + 15 working days: Fri 13, Sat 14 (swapped working day), holiday
    // 15–23 Feb, Tue 24 … Fri 27, Sat 28 (swapped), 2–6 Mar, Mon 9, Tue 10, Wed 11.
    assert_eq!(a["dueDate"], "2026-03-11");
    // Still pending long after its due date: overdue.
    assert_eq!(a["status"], "PENDING");
    assert_eq!(a["overdue"], true);
    // Decided now, i.e. late: it stays overdue and is counted as not on time.
    let d = decide(&app, &id_of(&a), 1, true).await;
    assert_eq!(d["decidedOnTime"], false);
    assert_eq!(d["overdue"], true);
}

async fn approval_removes_the_listing_at_the_decision_instant(app: TestApp) {
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 5).await;
    let a = submit(&app, &listing_id, listed_on + Days::new(366)).await;
    let app_id = id_of(&a);
    assert_eq!(a["overdue"], false);
    let before_approval = Utc::now();

    // Who may decide: admins of the operator's region only; a reason is mandatory.
    decide_as(&app, &app.region_admin("441803"), &app_id, 1, true, "x")
        .await
        .assert_error("FORBIDDEN");
    decide_as(&app, &app.auditor(), &app_id, 1, true, "x")
        .await
        .assert_error("FORBIDDEN");
    decide_as(&app, &app.admin(), &app_id, 1, true, "  ")
        .await
        .assert_error("BAD_USER_INPUT");
    // A stale version: CONFLICT, nothing written.
    let events = app.count("audit_events").await;
    decide_as(&app, &app.admin(), &app_id, 7, true, "x")
        .await
        .assert_error("CONFLICT");
    assert_eq!(app.count("audit_events").await, events);
    let l = listing(&app, &listing_id, None).await;
    assert_eq!(l["status"], "LISTED");
    assert_eq!(l["inForce"], true);

    let d = decide_as(
        &app,
        &app.region_admin("441802"),
        &app_id,
        1,
        true,
        "已履行全部义务",
    )
    .await
    .data()["decideRepairApplication"]
        .clone();
    assert_eq!(d["status"], "APPROVED");
    assert_eq!(d["version"], 2);
    assert_eq!(d["decisionReason"], "已履行全部义务");
    assert_eq!(d["decidedOnTime"], true);
    assert_eq!(d["overdue"], false);
    let decided_at: DateTime<Utc> = d["decidedAt"].as_str().unwrap().parse().unwrap();
    // The approval and the listing's removal: one audit event each, in one transaction.
    assert_eq!(app.count("audit_events").await, events + 2);

    // From the decision instant the listing is no longer in force; before it, it was.
    let l = listing(&app, &listing_id, Some(before_approval)).await;
    assert_eq!(l["status"], "REPAIRED");
    assert_eq!(l["inForce"], false);
    assert_eq!(l["inForceAt"], true);
    let period = &l["periods"][0];
    assert_eq!(period["removalKind"], "REPAIRED");
    let removed_at: DateTime<Utc> = period["removedAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(removed_at, decided_at);
    let just_before = listing(
        &app,
        &listing_id,
        Some(decided_at - Duration::microseconds(1)),
    )
    .await;
    assert_eq!(just_before["inForceAt"], true);
    let at_decision = listing(&app, &listing_id, Some(decided_at)).await;
    assert_eq!(at_decision["inForceAt"], false);

    assert!(!in_force_ids(&app, Utc::now()).await.contains(&listing_id));
    assert!(
        in_force_ids(&app, before_approval)
            .await
            .contains(&listing_id)
    );
    // The partner-facing `check` comes from the checks slice: these assertions run once
    // both are merged (the schema then has the query).
    if api::graphql::sdl().contains("check(uscc:") {
        let q = "query($u: String!, $t: DateTime) { check(uscc: $u, domain: PROCUREMENT, asOf: $t) { decision } }";
        let uscc = valid_code("441802", 5);
        let now = app
            .gql(Some(&app.admin()), q, json!({"u": uscc, "t": null}))
            .await;
        assert_eq!(now.data()["check"]["decision"], "CLEAR", "{}", now.body);
        let earlier = app
            .gql(
                Some(&app.admin()),
                q,
                json!({"u": uscc, "t": before_approval}),
            )
            .await;
        assert_eq!(
            earlier.data()["check"]["decision"],
            "RESTRICTED",
            "{}",
            earlier.body
        );
    }

    // Deciding again is refused: it is no longer pending.
    let again = decide_as(&app, &app.admin(), &app_id, 2, false, "x").await;
    again.assert_error("BAD_USER_INPUT");
    assert!(again.error_message().contains("APPROVED"), "{}", again.body);

    // A rejection keeps the listing, with the reason.
    let (other, other_on) = listed_a_year_ago(&app, "441802", 6).await;
    let b = submit(&app, &other, other_on + Days::new(366)).await;
    let r = decide_as(&app, &app.admin(), &id_of(&b), 1, false, "危害后果尚未消除")
        .await
        .data()["decideRepairApplication"]
        .clone();
    assert_eq!(r["status"], "REJECTED");
    assert_eq!(r["decisionReason"], "危害后果尚未消除");
    let l = listing(&app, &other, None).await;
    assert_eq!(l["status"], "LISTED");
    assert_eq!(l["inForce"], true);
    // A rejected application cannot be revoked.
    revoke(&app, &id_of(&b), None)
        .await
        .assert_error("BAD_USER_INPUT");
}

async fn revocation_restores_the_listing(app: TestApp) {
    // RESTART (the SAMR list's default): a full new period from the revocation.
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 7).await;
    let a = submit(&app, &listing_id, listed_on + Days::new(366)).await;
    let app_id = id_of(&a);
    // A pending application cannot be revoked.
    revoke(&app, &app_id, None)
        .await
        .assert_error("BAD_USER_INPUT");
    decide(&app, &app_id, 1, true).await;
    revoke(&app, &app_id, Some(1))
        .await
        .assert_error("CONFLICT");
    let r = revoke(&app, &app_id, Some(2)).await.data()["revokeRepair"].clone();
    assert_eq!(r["status"], "REVOKED");
    assert_eq!(r["version"], 3);
    assert_eq!(r["revocationReason"], "提交虚假履行证明");
    let l = listing(&app, &listing_id, None).await;
    assert_eq!(l["status"], "LISTED");
    assert_eq!(l["inForce"], true);
    let periods = l["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2);
    let start: DateTime<Utc> = periods[1]["startsAt"].as_str().unwrap().parse().unwrap();
    let end: DateTime<Utc> = periods[1]["endsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(end, start.checked_add_months(Months::new(36)).unwrap());
    assert_eq!(
        start,
        r["revokedAt"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    );
    // Revoked once is enough.
    revoke(&app, &app_id, None)
        .await
        .assert_error("BAD_USER_INPUT");

    // RESUME: the listing is in force again for the time it had left.
    app.gql(
        Some(&app.admin()),
        "mutation { upsertList(input: {code: \"SAMR_SERIOUS_DISHONEST\", repairRevocationPolicy: RESUME}) { repairRevocationPolicy } }",
        json!({}),
    )
    .await
    .data();
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 8).await;
    let a = submit(&app, &listing_id, listed_on + Days::new(366)).await;
    decide(&app, &id_of(&a), 1, true).await;
    revoke(&app, &id_of(&a), None).await.data();
    let l = listing(&app, &listing_id, None).await;
    assert_eq!(l["inForce"], true);
    let periods = l["periods"].as_array().unwrap();
    let t = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let left = t(&periods[0]["endsAt"]) - t(&periods[0]["removedAt"]);
    assert_eq!(t(&periods[1]["endsAt"]) - t(&periods[1]["startsAt"]), left);
}

async fn overdue_and_the_on_time_rate(app: TestApp) {
    // Late: received before the Spring Festival, decided now.
    let (_, late_listing, _) =
        listed(&app, "441802", 10, beijing_morning(date("2024-06-03"))).await;
    let late = submit(&app, &late_listing, date("2026-02-12")).await;
    // Pending past its due date, never decided.
    let (_, stale_listing, _) =
        listed(&app, "441803", 11, beijing_morning(date("2024-06-03"))).await;
    let stale = submit(&app, &stale_listing, date("2026-02-12")).await;
    // On time: received a few days ago.
    let (l1, on1) = listed_a_year_ago(&app, "441802", 12).await;
    let ok1 = submit(&app, &l1, on1 + Days::new(366)).await;
    let (l2, on2) = listed_a_year_ago(&app, "441803", 13).await;
    let ok2 = submit(&app, &l2, on2 + Days::new(366)).await;
    let (l3, on3) = listed_a_year_ago(&app, "441802", 14).await;
    let ok3 = submit(&app, &l3, on3 + Days::new(366)).await;
    // Ineligible: no deadline, never overdue.
    let (l4, on4) = listed_a_year_ago(&app, "441802", 15).await;
    let ineligible = submit(&app, &l4, on4 + Days::new(300)).await;
    assert_eq!(ineligible["status"], "INELIGIBLE");

    decide(&app, &id_of(&late), 1, true).await;
    decide(&app, &id_of(&ok1), 1, true).await;
    decide(&app, &id_of(&ok2), 1, false).await;
    decide(&app, &id_of(&ok3), 1, false).await;

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        ids(&app, json!({"overdue": true})).await,
        sorted(vec![id_of(&late), id_of(&stale)])
    );
    assert_eq!(
        ids(&app, json!({"overdue": false})).await,
        sorted(vec![
            id_of(&ok1),
            id_of(&ok2),
            id_of(&ok3),
            id_of(&ineligible)
        ])
    );
    assert_eq!(
        ids(&app, json!({"overdue": true, "status": "PENDING"})).await,
        vec![id_of(&stale)]
    );
    assert_eq!(
        ids(&app, json!({"dueBefore": "2026-03-12"})).await,
        sorted(vec![id_of(&late), id_of(&stale)])
    );
    assert_eq!(
        ids(&app, json!({"dueBefore": "2026-03-11"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&app, json!({"dueAfter": "2026-03-11"})).await,
        sorted(vec![id_of(&ok1), id_of(&ok2), id_of(&ok3)])
    );
    assert_eq!(
        ids(&app, json!({"listingId": stale_listing})).await,
        vec![id_of(&stale)]
    );
    let one = app
        .gql(Some(&app.admin()), "query($id: ID!) { repairApplication(id: $id) { overdue status dueDate listing { id } } }",
             json!({"id": id_of(&stale)}))
        .await;
    assert_eq!(one.data()["repairApplication"]["overdue"], true);
    assert_eq!(
        one.data()["repairApplication"]["listing"]["id"],
        stale_listing
    );

    // Pages of two, in id order.
    let page = app
        .gql(Some(&app.auditor()), "{ repairApplications(first: 2) { edges { node { id } } pageInfo { hasNextPage endCursor } } }", json!({}))
        .await;
    let p = &page.data()["repairApplications"];
    assert_eq!(p["pageInfo"]["hasNextPage"], true);
    assert_eq!(p["edges"][0]["node"]["id"], id_of(&late));
    let next = app
        .gql(Some(&app.auditor()), "query($a: String) { repairApplications(first: 5, after: $a) { edges { node { id } } pageInfo { hasNextPage } } }",
             json!({"a": p["pageInfo"]["endCursor"]}))
        .await;
    let n = &next.data()["repairApplications"];
    assert_eq!(n["edges"].as_array().unwrap().len(), 4);
    assert_eq!(n["pageInfo"]["hasNextPage"], false);

    // The on-time rate: four decisions today, one late.
    let (from, to) = (today() - Days::new(1), today() + Days::new(1));
    let all = rate(&app, None, from, to).await;
    assert_eq!(all["decided"], 4);
    assert_eq!(all["onTime"], 3);
    assert_eq!(all["overdue"], 1);
    assert_eq!(all["rate"].as_f64(), Some(0.75));
    assert_eq!(all["meetsTarget"], false);
    let city = rate(&app, Some("441800"), from, to).await;
    assert_eq!(city["decided"], 4);
    let qingcheng = rate(&app, Some("441802"), from, to).await;
    assert_eq!(qingcheng["decided"], 3);
    assert_eq!(qingcheng["onTime"], 2);
    assert_eq!(qingcheng["rate"].as_f64(), Some(2.0 / 3.0));
    let qingxin = rate(&app, Some("441803"), from, to).await;
    assert_eq!(qingxin["decided"], 1);
    assert_eq!(qingxin["rate"].as_f64(), Some(1.0));
    assert_eq!(qingxin["meetsTarget"], true);
    // An admin limited to a division gets its own figure, as from `report`, and may
    // not ask for another division's.
    let qingxin_admin = app.region_admin("441803");
    const RATE: &str = "query($f: NaiveDate!, $t: NaiveDate!, $r: String) { repairOnTimeRate(from: $f, to: $t, region: $r) { decided } }";
    let own = app
        .gql(Some(&qingxin_admin), RATE, json!({"f": from, "t": to}))
        .await;
    assert_eq!(
        own.data()["repairOnTimeRate"]["decided"],
        1,
        "{:?}",
        own.body
    );
    app.gql(
        Some(&qingxin_admin),
        RATE,
        json!({"f": from, "t": to, "r": "441802"}),
    )
    .await
    .assert_error("FORBIDDEN");
    let earlier = rate(&app, None, date("2026-01-01"), from - Days::new(1)).await;
    assert_eq!(earlier["decided"], 0);
    assert!(earlier["rate"].is_null());
    app.gql(
        Some(&app.auditor()),
        "{ repairOnTimeRate(from: \"2026-03-02\", to: \"2026-03-01\") { decided } }",
        json!({}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
    app.gql(Some(&app.auditor()), "{ repairOnTimeRate(from: \"2026-03-01\", to: \"2026-03-02\", region: \"4418\") { decided } }", json!({}))
        .await
        .assert_error("BAD_USER_INPUT");
}

async fn only_admins_and_auditors_see_repairs(app: TestApp) {
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 20).await;
    let q = "{ repairApplications { edges { node { id } } } }";
    app.gql(None, q, json!({}))
        .await
        .assert_error("UNAUTHENTICATED");
    let partner = app.partner_token(
        "gov-procurement",
        &[api::domain::measures::Domain::Procurement],
    );
    app.gql(Some(&partner), q, json!({}))
        .await
        .assert_error("FORBIDDEN");
    app.gql(
        Some(&partner),
        "{ repairOnTimeRate(from: \"2026-01-01\", to: \"2026-01-31\") { decided } }",
        json!({}),
    )
    .await
    .assert_error("FORBIDDEN");
    // Auditors read but do not write; region admins write only in their region.
    let r = submit_with(
        &app,
        &app.auditor(),
        &listing_id,
        listed_on + Days::new(366),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    r.assert_error("FORBIDDEN");
    let r = submit_with(
        &app,
        &app.region_admin("441803"),
        &listing_id,
        listed_on + Days::new(366),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    r.assert_error("FORBIDDEN");
    assert_eq!(app.count("repair_applications").await, 0);
    let r = submit_with(
        &app,
        &app.region_admin("441800"),
        &listing_id,
        listed_on + Days::new(366),
        documents(&ALL_KINDS),
        statements(true),
    )
    .await;
    assert_eq!(r.data()["submitRepairApplication"]["status"], "PENDING");
    app.gql(Some(&app.auditor()), q, json!({})).await.data();
}

/// An application eligible when submitted, then a heavier penalty listed before the
/// decision: approval is refused, naming the condition; the application can be rejected.
async fn approval_judges_eligibility_again(app: TestApp) {
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 6).await;
    let a = submit(&app, &listing_id, listed_on + Days::new(366)).await;
    assert_eq!(a["status"], "PENDING");
    let app_id = id_of(&a);
    // The same operator listed again for another penalty, after the submission.
    let code = valid_code("441802", 6);
    let on = today() - Days::new(1);
    let later_id = listed_again(&app, &code, "清税罚〔2026〕7号", on, on).await;

    let events = app.count("audit_events").await;
    let refused = decide_as(&app, &app.admin(), &app_id, 1, true, "已履行全部义务").await;
    refused.assert_error("BAD_USER_INPUT");
    let details = &refused.body["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "NO_LONGER_ELIGIBLE", "{}", refused.body);
    assert_eq!(details["failedConditions"], json!(["NO_NEW_LISTING"]));
    assert!(
        refused
            .error_message()
            .contains(&format!("listing {later_id}")),
        "{}",
        refused.error_message()
    );
    // Nothing written: the listing in force, the application still pending.
    assert_eq!(app.count("audit_events").await, events);
    let l = listing(&app, &listing_id, None).await;
    assert_eq!(
        (l["status"].clone(), l["inForce"].clone()),
        (json!("LISTED"), json!(true))
    );
    let rejected = decide(&app, &app_id, 1, false).await;
    assert_eq!(rejected["status"], "REJECTED");
}

async fn set_samr_list(app: &TestApp, fields: &str) {
    app.gql(
        Some(&app.admin()),
        &format!("mutation {{ upsertList(input: {{code: \"SAMR_SERIOUS_DISHONEST\", {fields}}}) {{ code }} }}"),
        json!({}),
    )
    .await
    .data();
}

/// The second period of a listing whose repair was revoked: (start, end).
async fn restored_period(app: &TestApp, listing_id: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let l = listing(app, listing_id, None).await;
    let periods = l["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{l}");
    let t = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    (t(&periods[1]["startsAt"]), t(&periods[1]["endsAt"]))
}

/// RESTART counts the listing's own months again, whatever the list's default became
/// since its decision (a default changed later applies to later decisions), and without
/// refusing an override the new default would not allow.
async fn a_restarted_period_is_the_listings_own(app: TestApp) {
    // Decided on the default of 36 months, then the default lowered to 24.
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 31).await;
    let a = submit(&app, &listing_id, listed_on + Days::new(366)).await;
    decide(&app, &id_of(&a), 1, true).await;
    set_samr_list(&app, "defaultPeriodMonths: 24").await;
    revoke(&app, &id_of(&a), None).await.data();
    let (start, end) = restored_period(&app, &listing_id).await;
    assert_eq!(end, start.checked_add_months(Months::new(36)).unwrap());

    // Decided for 48 months (a longer statutory period), then the default raised to 60.
    let code = valid_code("441802", 32);
    app.create_operator(&code, "清远测试32有限公司").await;
    let on = today() - Days::new(370);
    let p = crate::listings::propose(&app, &app.admin(), &code, &on.to_string()).await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&app.admin()),
        "mutation($i: DecideListingInput!) { decideListing(input: $i) { id } }",
        json!({"i": {"id": id, "expectedVersion": 1, "decisionDocNo": "清市监列〔2025〕32号",
                     "decisionDate": on, "effectiveAt": beijing_morning(on), "periodMonths": 48,
                     "defenceWaived": true}}),
    )
    .await
    .data();
    let a = submit(&app, &id, on + Days::new(366)).await;
    assert_eq!(a["status"], "PENDING", "{a}");
    decide(&app, &id_of(&a), 1, true).await;
    set_samr_list(&app, "defaultPeriodMonths: 60").await;
    let r = revoke(&app, &id_of(&a), None).await;
    assert_eq!(r.data()["revokeRepair"]["status"], "REVOKED", "{}", r.body);
    let (start, end) = restored_period(&app, &id).await;
    assert_eq!(end, start.checked_add_months(Months::new(48)).unwrap());
}

/// A removed period's end cannot be corrected to before its removal (the record would say
/// it expired before it was repaired), and RESUME never writes a period with no time left.
async fn a_resumed_period_never_runs_backwards(app: TestApp) {
    set_samr_list(&app, "repairRevocationPolicy: RESUME").await;
    let (listing_id, listed_on) = listed_a_year_ago(&app, "441802", 33).await;
    let a = submit(&app, &listing_id, listed_on + Days::new(366)).await;
    decide(&app, &id_of(&a), 1, true).await;
    let l = listing(&app, &listing_id, None).await;
    let removed: DateTime<Utc> = l["periods"][0]["removedAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let version = l["version"].as_i64().unwrap();
    let corrected = app
        .gql(
            Some(&app.admin()),
            "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
            json!({"i": {"id": listing_id, "expectedVersion": version, "reason": "期限更正",
                         "expiresAt": removed - Duration::days(31)}}),
        )
        .await;
    corrected.assert_error("BAD_USER_INPUT");
    assert_eq!(
        corrected.body["errors"][0]["extensions"]["details"]["reason"], "INVALID_TRANSITION",
        "{}",
        corrected.body
    );
    // A period recorded (before this rule) as ending when it was removed has nothing
    // left to resume: refused, nothing written.
    app.sql(&format!(
        "UPDATE listing_periods SET ends_at = removed_at WHERE listing_id = {listing_id}"
    ))
    .await;
    let events = app.count("audit_events").await;
    let r = revoke(&app, &id_of(&a), None).await;
    r.assert_error("BAD_USER_INPUT");
    assert_eq!(
        r.body["errors"][0]["extensions"]["details"]["reason"], "INVALID_TRANSITION",
        "{}",
        r.body
    );
    assert_eq!(app.count("audit_events").await, events);
    let l = listing(&app, &listing_id, None).await;
    assert_eq!(l["status"], "REPAIRED");
    assert_eq!(l["periods"].as_array().unwrap().len(), 1);
}

/// The operator `code` proposed (not decided) for another penalty of `penalty_date`.
async fn proposed_again(
    app: &TestApp,
    code: &str,
    penalty_doc_no: &str,
    penalty_date: NaiveDate,
) -> String {
    let p = app
        .gql(
            Some(&app.admin()),
            "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id status } }",
            json!({"i": {"uscc": code, "list": "TAX_MAJOR_VIOLATION", "authority": "国家税务总局清远市税务局",
                "penaltyDocNo": penalty_doc_no, "penaltyDate": penalty_date, "violationCategory": "CONSUMER_HARM",
                "reason": "虚开发票", "legalBasis": "《重大税收违法失信主体信息公布管理办法》",
                "noticeDate": penalty_date}}),
        )
        .await;
    assert_eq!(p.data()["proposeListing"]["status"], "PROPOSED");
    p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A new heavier penalty counts from its penalty decision, not from a listing decision
/// that may still be pending (the party being heard): a proposal resting on a penalty
/// after the listing's start fails NO_NEW_LISTING, at submission and at approval.
async fn a_proposed_later_penalty_blocks_repair(app: TestApp) {
    let (id, listed_on) = listed_a_year_ago(&app, "441802", 34).await;
    let code = valid_code("441802", 34);
    // A proposal for a penalty older than the listing does not count.
    proposed_again(&app, &code, "清税罚〔2024〕1号", listed_on - Days::new(10)).await;
    let later_id =
        proposed_again(&app, &code, "清税罚〔2025〕34号", listed_on + Days::new(30)).await;
    let r = submit(&app, &id, listed_on + Days::new(366)).await;
    assert_eq!(r["status"], "INELIGIBLE", "{r}");
    assert_eq!(r["failedConditions"], json!(["NO_NEW_LISTING"]));
    let no_new = &r["eligibility"].as_array().unwrap()[5];
    assert!(
        no_new["explanation"]
            .as_str()
            .unwrap()
            .contains(&format!("listing {later_id}")),
        "{no_new}"
    );

    // Proposed after the submission: the approval sees it.
    let (id, listed_on) = listed_a_year_ago(&app, "441802", 35).await;
    let a = submit(&app, &id, listed_on + Days::new(366)).await;
    assert_eq!(a["status"], "PENDING");
    let code = valid_code("441802", 35);
    proposed_again(&app, &code, "清税罚〔2026〕35号", today() - Days::new(1)).await;
    let refused = decide_as(&app, &app.admin(), &id_of(&a), 1, true, "已履行全部义务").await;
    refused.assert_error("BAD_USER_INPUT");
    let details = &refused.body["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "NO_LONGER_ELIGIBLE", "{}", refused.body);
    assert_eq!(details["failedConditions"], json!(["NO_NEW_LISTING"]));
}

on_both_backends!(
    a_proposed_later_penalty_blocks_repair,
    a_restarted_period_is_the_listings_own,
    a_resumed_period_never_runs_backwards,
    approval_judges_eligibility_again,
    a_year_means_a_full_year,
    every_failed_condition_is_answered,
    the_deadline_skips_the_spring_festival,
    approval_removes_the_listing_at_the_decision_instant,
    revocation_restores_the_listing,
    overdue_and_the_on_time_rate,
    only_admins_and_auditors_see_repairs,
);
