//! Execution feedback (执行反馈): the checking partner reports the measure it applied.

use super::checks::check;
use api::domain::measures::Domain;
use chrono::{Duration, Utc};
use serde_json::json;
use tests::{TestApp, on_both_backends, valid_code};

const REPORT: &str = "mutation($r: String!, $m: String!, $c: String!, $n: String) {
  reportMeasureApplied(receiptId: $r, measureCode: $m, context: $c, note: $n) {
    id receiptId subject measureCode context note createdAt } }";
const FEEDBACK: &str = "query($f: PartnerFeedbackFilter) { partnerFeedback(filter: $f) {
  edges { node { receiptId subject measureCode context note } } pageInfo { hasNextPage } } }";

async fn the_checking_partner_reports_the_measure_it_applied(app: TestApp) {
    let code = valid_code("441802", 60);
    app.create_operator(&code, "某公司").await;
    let now = Utc::now();
    app.insert_listing(
        &code,
        "SAMR_SERIOUS_DISHONEST",
        now - Duration::days(5),
        now + Duration::days(900),
        None,
        &["BIDDING_RESTRICT"],
    )
    .await;
    let bidder_a = app.partner("bidding-a", &[Domain::Bidding]).await;
    let bidder_b = app.partner("bidding-b", &[Domain::Bidding]).await;
    let resp = check(&app, &bidder_a, &code, "BIDDING", None).await;
    let receipt_id = resp.data()["check"]["receiptId"]
        .as_str()
        .unwrap()
        .to_string();
    let audit_before = app.count("audit_events").await;

    let report = |token: String, receipt: String, measure: &'static str| {
        let app = &app;
        async move {
            app.gql(
                Some(&token),
                REPORT,
                json!({"r": receipt, "m": measure, "c": "投标被否决：清远市某项目 ZB-2026-0042", "n": "资格审查阶段"}),
            )
            .await
        }
    };

    // Another partner may not report on this check; nor may an admin.
    report(bidder_b.clone(), receipt_id.clone(), "BIDDING_RESTRICT")
        .await
        .assert_error("FORBIDDEN");
    report(app.admin(), receipt_id.clone(), "BIDDING_RESTRICT")
        .await
        .assert_error("FORBIDDEN");
    // Unknown receipt, unknown measure, a measure of another domain.
    report(
        bidder_a.clone(),
        "00000000-0000-7000-8000-000000000000".into(),
        "BIDDING_RESTRICT",
    )
    .await
    .assert_error("NOT_FOUND");
    report(bidder_a.clone(), receipt_id.clone(), "NO_SUCH_MEASURE")
        .await
        .assert_error("BAD_USER_INPUT");
    report(bidder_a.clone(), receipt_id.clone(), "HONORS_RESTRICT")
        .await
        .assert_error("BAD_USER_INPUT");
    assert_eq!(app.count("partner_feedback").await, 0);
    assert_eq!(app.count("audit_events").await, audit_before);

    // The partner that checked reports; stored and audited.
    let resp = report(bidder_a.clone(), receipt_id.clone(), "BIDDING_RESTRICT").await;
    let saved = &resp.data()["reportMeasureApplied"];
    assert_eq!(saved["receiptId"], receipt_id);
    assert_eq!(saved["subject"], "bidding-a");
    assert_eq!(saved["measureCode"], "BIDDING_RESTRICT");
    assert_eq!(app.count("partner_feedback").await, 1);
    assert_eq!(app.count("audit_events").await, audit_before + 1);

    // Auditors see it; the other partner does not.
    let resp = app
        .gql(
            Some(&app.auditor()),
            FEEDBACK,
            json!({"f": {"receiptId": receipt_id}}),
        )
        .await;
    let edges = resp.data()["partnerFeedback"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["note"], "资格审查阶段");
    let resp = app.gql(Some(&bidder_b), FEEDBACK, json!({})).await;
    assert_eq!(resp.data()["partnerFeedback"]["edges"], json!([]));
    let resp = app.gql(Some(&bidder_a), FEEDBACK, json!({})).await;
    assert_eq!(
        resp.data()["partnerFeedback"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

on_both_backends!(the_checking_partner_reports_the_measure_it_applied);
