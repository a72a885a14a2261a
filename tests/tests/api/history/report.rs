//! The yearly report: per county-level division and in total, over GraphQL and as the
//! CSV of `credit-registry report`.

use crate::listings::listed;
use api::domain::measures::Domain;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sea_orm::{ActiveEnum, ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};
use tests::{TestApp, on_both_backends, valid_code};

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
    let now = app.state.clock.now();
    entity::repair_application::ActiveModel {
        listing_id: Set(listing_id.parse().unwrap()),
        status: Set(ActiveEnum::try_from_value(&status.to_string()).unwrap()),
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

/// A partner's check record; returns its receipt id.
async fn check_record(
    app: &TestApp,
    uscc: &str,
    operator_id: Option<i64>,
    domain: &str,
    decision: &str,
    checked_at: DateTime<Utc>,
) -> String {
    let by = Checker {
        subject: "gov-procurement",
        role: "partner",
        known_at: None,
    };
    check_record_by(app, by, uscc, operator_id, domain, decision, checked_at).await
}

/// Who made a check, and the `knownAt` of a reconstruction.
#[derive(Clone, Copy)]
struct Checker {
    subject: &'static str,
    role: &'static str,
    known_at: Option<DateTime<Utc>>,
}

async fn check_record_by(
    app: &TestApp,
    by: Checker,
    uscc: &str,
    operator_id: Option<i64>,
    domain: &str,
    decision: &str,
    checked_at: DateTime<Utc>,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    entity::check_record::ActiveModel {
        id: Set(id.clone()),
        subject: Set(by.subject.into()),
        role: Set(by.role.into()),
        domain: Set(ActiveEnum::try_from_value(&domain.to_string()).unwrap()),
        uscc: Set(uscc.into()),
        operator_id: Set(operator_id),
        as_of: Set(checked_at),
        checked_at: Set(checked_at),
        reference: Set(Some("QYCG-2025-001".into())),
        decision: Set(ActiveEnum::try_from_value(&decision.to_string()).unwrap()),
        hit_listing_ids: Set(json!([])),
        hit_measure_codes: Set(None),
        warnings: Set(json!([])),
        request_id: Set("r".into()),
        batch_id: Set(None),
        known_at: Set(by.known_at),
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
    // Yingde (441881): one decided in 2025 whose period ran out in 2025 (a short one,
    // written as a fixture: no API sets a period that ended before it was set); one
    // decided in 2024 and removed after a repair in 2025.
    let (_, y1, _) = listed(&app, "441881", 1, utc(2025, 2, 3, 2, 0)).await;
    let period_of = |id: String| {
        let db = app.db.clone();
        async move {
            entity::listing_period::Entity::find()
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .find(|p| p.listing_id.to_string() == id)
                .unwrap()
        }
    };
    let mut p: entity::listing_period::ActiveModel = period_of(y1.clone()).await.into();
    p.ends_at = Set(utc(2025, 8, 1, 0, 0));
    p.update(&app.db).await.unwrap();
    let (_, y2, _) = listed(&app, "441881", 2, utc(2024, 6, 3, 2, 0)).await;
    let mut p: entity::listing_period::ActiveModel = period_of(y2.clone()).await.into();
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
    let report = api::service::report::yearly(&app.db, app.state.clock.now(), 2025, None)
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

/// The year's checks are partners' checks before a procedure: an auditor re-running a
/// past check with `knownAt`, an admin's test check, or a partner's own reconstruction,
/// all dated in the year, are not among them (they counted, by the date they were re-run).
async fn only_partners_checks_at_the_time_count_in_the_report(app: TestApp) {
    let code = valid_code("441802", 998);
    let in_2025 = utc(2025, 3, 10, 2, 0);
    let reconstructing = Some(utc(2024, 6, 1, 2, 0));
    check_record(&app, &code, None, "PROCUREMENT", "CLEAR", in_2025).await;
    for by in [
        Checker {
            subject: "auditor-1",
            role: "auditor",
            known_at: reconstructing,
        },
        Checker {
            subject: "admin-city",
            role: "admin",
            known_at: None,
        },
        Checker {
            subject: "gov-procurement",
            role: "partner",
            known_at: reconstructing,
        },
    ] {
        check_record_by(&app, by, &code, None, "PROCUREMENT", "RESTRICTED", in_2025).await;
    }
    let resp = app
        .gql(Some(&app.auditor()), REPORT, json!({"y": 2025}))
        .await;
    let report = resp.data()["report"].clone();
    let qc = report["divisions"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["regionCode"] == "441802"))
        .cloned()
        .unwrap();
    assert_eq!(qc["checksTotal"], 1);
    assert_eq!(
        qc["checks"],
        json!([{"domain": "PROCUREMENT", "decision": "CLEAR", "count": 1}])
    );
    assert_eq!(report["totals"]["checksTotal"], 1);
    assert_eq!(app.count("check_records").await, 4);
}

/// A check of an unregistered code counts for positions 3-8 only when they name a
/// Qingyuan division; every other code (another city's division, letters) goes to one
/// `OUTSIDE` row of the report. The public statistics page shows Qingyuan's divisions and
/// at most one outside row, and none for checks alone: it shows no check counts, and a
/// row per checked code told the public whom partners checked (and grew without bound).
async fn unknown_divisions_of_checked_codes_make_one_outside_row(app: TestApp) {
    let in_2025 = utc(2025, 3, 10, 2, 0);
    let year = |y: i32| json!({"y": y});
    let known = valid_code("441802", 997);
    let guangzhou = valid_code("440100", 1);
    let letters = valid_code("ABCDEF", 1);
    let other_letters = valid_code("GHJKLM", 2);
    for code in [&known, &guangzhou, &letters, &other_letters] {
        let r = check_record(&app, code, None, "PROCUREMENT", "CLEAR", in_2025).await;
        feedback(&app, &r, "PROCUREMENT_RESTRICT", in_2025).await;
    }
    let resp = app.gql(Some(&app.auditor()), REPORT, year(2025)).await;
    let report = resp.data()["report"].clone();
    let divisions = report["divisions"].as_array().cloned().unwrap_or_default();
    let codes: Vec<&str> = divisions
        .iter()
        .filter_map(|d| d["regionCode"].as_str())
        .collect();
    assert_eq!(
        codes,
        vec![
            "441800", "441802", "441803", "441821", "441823", "441825", "441826", "441881",
            "441882", "OUTSIDE"
        ]
    );
    let outside = &divisions[9];
    assert_eq!(outside["regionName"], "（清远市外）");
    assert_eq!(outside["checksTotal"], 3);
    assert_eq!(outside["feedbackTotal"], 3);
    assert_eq!(divisions[1]["checksTotal"], 1);
    assert_eq!(report["totals"]["checksTotal"], 4);
    // A county report leaves the outside row out.
    let county = app
        .gql(
            Some(&app.auditor()),
            REPORT,
            json!({"y": 2025, "r": "441802"}),
        )
        .await;
    assert_eq!(county.data()["report"]["totals"]["checksTotal"], 1);

    let outside_rows = |body: &str| {
        body.matches("<td data-label=\"区划\">（清远市外）</td>")
            .count()
    };
    let page = app.get("/statistics/2025").await;
    assert_eq!(page.status().as_u16(), 200);
    let body = page.text().await.unwrap();
    assert_eq!(outside_rows(&body), 0, "{body}");
    assert_eq!(
        body.matches("<td data-label=\"区划\">").count(),
        10,
        "{body}"
    );

    // Listings of operators registered in two other cities: one outside row, their sum.
    listed(&app, "110000", 1, in_2025).await;
    listed(&app, "440300", 2, in_2025).await;
    let page = app.get("/statistics/2025").await;
    let body = page.text().await.unwrap();
    assert_eq!(outside_rows(&body), 1, "{body}");
    assert!(
        body.contains("<td data-label=\"区划\">（清远市外）</td><td data-label=\"列入\">2</td>"),
        "{body}"
    );
    assert_eq!(
        body.matches("<td data-label=\"区划\">").count(),
        11,
        "{body}"
    );
}

on_both_backends!(
    the_yearly_report_counts_the_records,
    only_partners_checks_at_the_time_count_in_the_report,
    unknown_divisions_of_checked_codes_make_one_outside_row,
);
