//! Joint-punishment checks: decisions, as-of instants, domains, batches, records.

use api::domain::measures::Domain;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tests::{Gql, TestApp, at, on_both_backends, valid_code};

pub const CHECK: &str = "query($u: String!, $d: Domain!, $t: DateTime, $r: String) {
  check(uscc: $u, domain: $d, asOf: $t, reference: $r) {
    receiptId receipt uscc operatorName domain asOf checkedAt reference decision
    hits { listingId listCode listName authority decisionDocNo listedAt expiresAt
           measures { code name effect legalBasis } }
    warnings { code message }
  }
}";

const BATCH: &str = "query($u: [String!]!, $d: Domain!, $t: DateTime, $r: String) {
  checkBatch(usccs: $u, domain: $d, asOf: $t, reference: $r) {
    receiptId uscc operatorName decision warnings { code } hits { listingId }
  }
}";

const RECORDS: &str = "query($f: CheckRecordFilter, $n: Int, $a: String) {
  checkRecords(filter: $f, first: $n, after: $a) {
    edges { cursor node { receiptId subject role domain uscc decision reference asOf batchId hitListingIds warnings { code } } }
    pageInfo { hasNextPage endCursor }
  }
}";

pub async fn check(
    app: &TestApp,
    token: &str,
    uscc: &str,
    domain: &str,
    as_of: Option<&str>,
) -> Gql {
    app.gql(
        Some(token),
        CHECK,
        json!({ "u": uscc, "d": domain, "t": as_of }),
    )
    .await
}

fn decision(resp: &Gql) -> String {
    resp.data()["check"]["decision"]
        .as_str()
        .expect("decision")
        .to_string()
}

/// A listing in force from 100 days ago for about three years.
async fn listed_now(app: &TestApp, uscc: &str, list: &str, measures: &[&str]) -> i64 {
    let now = Utc::now();
    app.insert_listing(
        uscc,
        list,
        now - Duration::days(100),
        now + Duration::days(1000),
        None,
        measures,
    )
    .await
}

async fn each_effect_gives_its_decision(app: TestApp) {
    let admin = app.admin();
    let prohibited = valid_code("441802", 1);
    let considered = valid_code("441802", 2);
    let supervised = valid_code("441802", 3);
    let both = valid_code("441802", 4);
    for (code, name) in [
        (&prohibited, "甲公司"),
        (&considered, "乙公司"),
        (&supervised, "丙公司"),
        (&both, "丁公司"),
    ] {
        app.create_operator(code, name).await;
    }
    let listing = listed_now(
        &app,
        &prohibited,
        "TAX_MAJOR_VIOLATION",
        &["PROCUREMENT_RESTRICT"],
    )
    .await;
    listed_now(
        &app,
        &considered,
        "SAMR_SERIOUS_DISHONEST",
        &["SAMR44_FACTOR_PROCUREMENT"],
    )
    .await;
    listed_now(
        &app,
        &supervised,
        "SAMR_SERIOUS_DISHONEST",
        &["SAMR44_KEY_SUPERVISION"],
    )
    .await;
    listed_now(
        &app,
        &both,
        "SAMR_SERIOUS_DISHONEST",
        &["SAMR44_FACTOR_PROCUREMENT"],
    )
    .await;
    listed_now(
        &app,
        &both,
        "COURT_DISHONEST_DEBTOR",
        &["PROCUREMENT_RESTRICT"],
    )
    .await;

    // PROHIBIT → RESTRICTED, with the hit's details and legal basis.
    let resp = check(&app, &admin, &prohibited, "PROCUREMENT", None).await;
    let result = &resp.data()["check"];
    assert_eq!(result["decision"], "RESTRICTED");
    assert_eq!(result["operatorName"], "甲公司");
    assert_eq!(result["warnings"], json!([]));
    let hit = &result["hits"][0];
    assert_eq!(hit["listingId"], listing.to_string());
    assert_eq!(hit["listCode"], "TAX_MAJOR_VIOLATION");
    assert_eq!(hit["authority"], "清远市市场监督管理局");
    assert!(
        hit["decisionDocNo"]
            .as_str()
            .unwrap()
            .contains("清市监信列")
    );
    assert_eq!(hit["measures"][0]["code"], "PROCUREMENT_RESTRICT");
    assert_eq!(hit["measures"][0]["effect"], "PROHIBIT");
    assert!(
        hit["measures"][0]["legalBasis"]
            .as_str()
            .unwrap()
            .contains("政府采购法")
    );
    // The same listing restricts nothing in another domain: no hit at all.
    let resp = check(&app, &admin, &prohibited, "BIDDING", None).await;
    assert_eq!(decision(&resp), "CLEAR");
    assert_eq!(resp.data()["check"]["hits"], json!([]));

    // CONSIDER → REVIEW.
    let resp = check(&app, &admin, &considered, "PROCUREMENT", None).await;
    assert_eq!(decision(&resp), "REVIEW");
    assert_eq!(
        resp.data()["check"]["hits"][0]["measures"][0]["effect"],
        "CONSIDER"
    );

    // SUPERVISE never changes the answer, even in its own domain.
    let resp = check(&app, &admin, &supervised, "PROCUREMENT", None).await;
    assert_eq!(decision(&resp), "CLEAR");
    let resp = check(&app, &admin, &supervised, "SUPERVISION", None).await;
    assert_eq!(decision(&resp), "CLEAR");
    // …and a CLEAR answer names no hits (a supervision measure produced nothing).
    assert_eq!(resp.data()["check"]["hits"], json!([]));

    // PROHIBIT on one list beats CONSIDER on another; both are shown.
    let resp = check(&app, &admin, &both, "PROCUREMENT", None).await;
    assert_eq!(decision(&resp), "RESTRICTED");
    assert_eq!(resp.data()["check"]["hits"].as_array().unwrap().len(), 2);

    assert_eq!(app.count("check_records").await, 6);
}

async fn as_of_answers_from_the_listing_dates(app: TestApp) {
    let admin = app.admin();
    let expired = valid_code("441803", 1);
    let revoked = valid_code("441803", 2);
    let restored = valid_code("441803", 3);
    for code in [&expired, &revoked, &restored] {
        app.create_operator(code, "某公司").await;
    }
    // Listed 2021-06-01 for three years.
    app.insert_listing(
        &expired,
        "SAMR_SERIOUS_DISHONEST",
        at("2021-06-01T00:00:00Z"),
        at("2024-06-01T00:00:00Z"),
        None,
        &["PROCUREMENT_RESTRICT"],
    )
    .await;
    for (as_of, expected) in [
        ("2021-05-31T23:59:59Z", "CLEAR"),      // before the decision
        ("2021-06-01T00:00:00Z", "RESTRICTED"), // from the decision on
        ("2023-01-15T08:00:00Z", "RESTRICTED"), // during
        ("2024-05-31T23:59:59Z", "RESTRICTED"), // last second
        ("2024-06-01T00:00:00Z", "CLEAR"),      // expiry: no job needed
        ("2024-06-01T00:00:01Z", "CLEAR"),      // one second after expiry
    ] {
        let resp = check(&app, &admin, &expired, "PROCUREMENT", Some(as_of)).await;
        assert_eq!(decision(&resp), expected, "as of {as_of}");
        assert_eq!(
            resp.data()["check"]["asOf"].as_str().map(at),
            Some(at(as_of))
        );
    }
    assert_eq!(
        decision(&check(&app, &admin, &expired, "PROCUREMENT", None).await),
        "CLEAR"
    );

    // Revoked (penalty set aside) on 2023-06-01 10:00.
    app.insert_listing(
        &revoked,
        "SAMR_SERIOUS_DISHONEST",
        at("2023-01-01T00:00:00Z"),
        at("2026-01-01T00:00:00Z"),
        Some(at("2023-06-01T10:00:00Z")),
        &["PROCUREMENT_RESTRICT"],
    )
    .await;
    for (as_of, expected) in [
        ("2023-03-01T00:00:00Z", "RESTRICTED"),
        ("2023-06-01T09:59:59Z", "RESTRICTED"),
        ("2023-06-01T10:00:00Z", "CLEAR"),
        ("2023-06-01T10:00:01Z", "CLEAR"),
    ] {
        let resp = check(&app, &admin, &revoked, "PROCUREMENT", Some(as_of)).await;
        assert_eq!(decision(&resp), expected, "revoked, as of {as_of}");
    }

    // Repaired early, then the repair revoked for fraud: a second period.
    let listing = app
        .insert_listing(
            &restored,
            "SAMR_SERIOUS_DISHONEST",
            at("2022-01-01T00:00:00Z"),
            at("2025-01-01T00:00:00Z"),
            Some(at("2023-02-01T00:00:00Z")),
            &["BIDDING_RESTRICT"],
        )
        .await;
    app.add_listing_period(
        listing,
        at("2023-05-01T00:00:00Z"),
        at("2024-12-01T00:00:00Z"),
        None,
    )
    .await;
    for (as_of, expected) in [
        ("2022-06-01T00:00:00Z", "RESTRICTED"),
        ("2023-03-01T00:00:00Z", "CLEAR"),
        ("2023-06-01T00:00:00Z", "RESTRICTED"),
        ("2024-12-01T00:00:00Z", "CLEAR"),
    ] {
        let resp = check(&app, &admin, &restored, "BIDDING", Some(as_of)).await;
        assert_eq!(decision(&resp), expected, "restored, as of {as_of}");
    }
    let resp = check(
        &app,
        &admin,
        &restored,
        "BIDDING",
        Some("2023-06-01T00:00:00Z"),
    )
    .await;
    assert_eq!(
        resp.data()["check"]["hits"][0]["listedAt"].as_str().map(at),
        Some(at("2023-05-01T00:00:00Z"))
    );

    // Nobody can answer for the future.
    let future = (Utc::now() + Duration::days(2)).to_rfc3339();
    check(&app, &admin, &expired, "PROCUREMENT", Some(&future))
        .await
        .assert_error("BAD_USER_INPUT");
}

async fn unknown_and_check_digit_codes_answer_with_warnings(app: TestApp) {
    let admin = app.admin();
    let unknown = valid_code("441881", 77);
    let resp = check(&app, &admin, &unknown, "PROCUREMENT", None).await;
    let result = &resp.data()["check"];
    assert_eq!(result["decision"], "CLEAR");
    assert_eq!(result["operatorName"], Value::Null);
    assert_eq!(result["warnings"][0]["code"], "UNKNOWN_OPERATOR");

    // A genuine older code that fails its check digit, accepted by an admin and listed.
    let old = "91310115MA1H8R7C6D";
    app.gql(
        Some(&admin),
        "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }",
        json!({"i": {"uscc": old, "name": "老代码公司", "checkDigitOverrideReason": "printed on the 2015 licence"}}),
    )
    .await
    .data();
    listed_now(
        &app,
        old,
        "SAMR_SERIOUS_DISHONEST",
        &["PROCUREMENT_RESTRICT"],
    )
    .await;
    let resp = check(&app, &admin, " 91310115ma1h8r7c6d ", "PROCUREMENT", None).await;
    let result = &resp.data()["check"];
    assert_eq!(result["uscc"], old);
    assert_eq!(result["decision"], "RESTRICTED");
    let codes: Vec<&str> = result["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["CHECK_DIGIT"]);

    // A malformed code is refused, and nothing is recorded for it.
    let before = app.count("check_records").await;
    let resp = check(&app, &admin, "9111000010162374", "PROCUREMENT", None).await;
    resp.assert_error("BAD_USER_INPUT");
    assert!(
        resp.error_message().contains("18 characters"),
        "{}",
        resp.body
    );
    assert_eq!(app.count("check_records").await, before);
}

async fn partners_check_only_their_domains(app: TestApp) {
    let code = valid_code("441802", 5);
    app.create_operator(&code, "某公司").await;
    listed_now(
        &app,
        &code,
        "SAMR_SERIOUS_DISHONEST",
        &["PROCUREMENT_RESTRICT", "BIDDING_RESTRICT"],
    )
    .await;
    let procurement = app
        .partner("gov-procurement", &[Domain::Procurement, Domain::Bidding])
        .await;

    assert_eq!(
        decision(&check(&app, &procurement, &code, "PROCUREMENT", None).await),
        "RESTRICTED"
    );
    assert_eq!(
        decision(&check(&app, &procurement, &code, "BIDDING", None).await),
        "RESTRICTED"
    );
    let resp = check(&app, &procurement, &code, "LAND_TRANSFER", None).await;
    resp.assert_error("FORBIDDEN");
    assert!(
        resp.error_message().contains("LAND_TRANSFER"),
        "{}",
        resp.body
    );

    // A token may narrow the registration...
    let narrowed = app.partner_token("gov-procurement", &[Domain::Bidding]);
    check(&app, &narrowed, &code, "PROCUREMENT", None)
        .await
        .assert_error("FORBIDDEN");
    assert_eq!(
        decision(&check(&app, &narrowed, &code, "BIDDING", None).await),
        "RESTRICTED"
    );
    // ...but never widen it.
    let widened = app.partner_token("gov-procurement", &[Domain::LandTransfer]);
    check(&app, &widened, &code, "LAND_TRANSFER", None)
        .await
        .assert_error("FORBIDDEN");

    // A partner token whose subject is not registered gets nothing.
    let stranger = app.partner_token("not-registered", &[Domain::Procurement]);
    let resp = check(&app, &stranger, &code, "PROCUREMENT", None).await;
    resp.assert_error("FORBIDDEN");
    assert_eq!(resp.status, 403);
    assert!(
        resp.error_message().contains("not registered"),
        "{}",
        resp.body
    );

    // The public may not check; auditors and admins may check any domain.
    let resp = app
        .gql(None, CHECK, json!({"u": code, "d": "PROCUREMENT"}))
        .await;
    resp.assert_error("UNAUTHENTICATED");
    assert_eq!(
        decision(&check(&app, &app.auditor(), &code, "LAND_TRANSFER", None).await),
        "CLEAR"
    );

    // Only the answered checks are recorded: 3 partner checks and the auditor's.
    assert_eq!(app.count("check_records").await, 4);
}

async fn a_deactivated_partner_is_refused(app: TestApp) {
    let code = valid_code("441802", 6);
    let token = app.partner("land-bureau", &[Domain::LandTransfer]).await;
    assert_eq!(
        decision(&check(&app, &token, &code, "LAND_TRANSFER", None).await),
        "CLEAR"
    );

    let admin = app.admin();
    const DEACTIVATE: &str = "mutation($s: String!, $r: String!) { deactivatePartner(subject: $s, reason: $r) { subject active deactivatedAt } }";
    app.gql(
        Some(&admin),
        DEACTIVATE,
        json!({"s": "land-bureau", "r": " "}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
    let resp = app
        .gql(
            Some(&admin),
            DEACTIVATE,
            json!({"s": "land-bureau", "r": "system decommissioned"}),
        )
        .await;
    assert_eq!(resp.data()["deactivatePartner"]["active"], false);
    assert!(resp.data()["deactivatePartner"]["deactivatedAt"].is_string());

    // Refused from the next request on, whatever it asks.
    let resp = check(&app, &token, &code, "LAND_TRANSFER", None).await;
    resp.assert_error("FORBIDDEN");
    assert!(
        resp.error_message().contains("deactivated"),
        "{}",
        resp.body
    );
    app.gql(
        Some(&token),
        "{ checkRecords { edges { cursor } } }",
        json!({}),
    )
    .await
    .assert_error("FORBIDDEN");

    app.gql(
        Some(&admin),
        DEACTIVATE,
        json!({"s": "land-bureau", "r": "again"}),
    )
    .await
    .assert_error("CONFLICT");
    app.gql(Some(&admin), DEACTIVATE, json!({"s": "nobody", "r": "x"}))
        .await
        .assert_error("NOT_FOUND");
    assert_eq!(app.count("check_records").await, 1);
}

async fn a_batch_answers_in_order_each_place(app: TestApp) {
    let admin = app.admin();
    let listed = valid_code("441802", 10);
    let clean = valid_code("441802", 11);
    let unknown = valid_code("441802", 12);
    app.create_operator(&listed, "列入公司").await;
    app.create_operator(&clean, "守信公司").await;
    let listing = listed_now(
        &app,
        &listed,
        "SAMR_SERIOUS_DISHONEST",
        &["BIDDING_RESTRICT"],
    )
    .await;

    let asked = vec![
        clean.clone(),
        listed.clone(),
        unknown.clone(),
        format!("  {}  ", listed.to_lowercase()),
        clean.clone(),
    ];
    let resp = app
        .gql(
            Some(&admin),
            BATCH,
            json!({"u": asked, "d": "BIDDING", "r": "ZB-2026-0042"}),
        )
        .await;
    let results = resp.data()["checkBatch"].as_array().unwrap().clone();
    let usccs: Vec<&str> = results
        .iter()
        .map(|r| r["uscc"].as_str().unwrap())
        .collect();
    assert_eq!(
        usccs,
        vec![clean.as_str(), &listed, &unknown, &listed, &clean]
    );
    let decisions: Vec<&str> = results
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        vec!["CLEAR", "RESTRICTED", "CLEAR", "RESTRICTED", "CLEAR"]
    );
    assert_eq!(results[1]["hits"][0]["listingId"], listing.to_string());
    assert_eq!(results[3]["hits"][0]["listingId"], listing.to_string());
    assert_eq!(results[2]["warnings"][0]["code"], "UNKNOWN_OPERATOR");
    assert_eq!(results[0]["operatorName"], "守信公司");
    let mut receipts: Vec<&str> = results
        .iter()
        .map(|r| r["receiptId"].as_str().unwrap())
        .collect();
    receipts.sort_unstable();
    receipts.dedup();
    assert_eq!(receipts.len(), 5, "each place has its own receipt");

    // Five records, one batch, the reference on each.
    assert_eq!(app.count("check_records").await, 5);
    let resp = app
        .gql(
            Some(&app.auditor()),
            RECORDS,
            json!({"f": {"reference": "ZB-2026-0042"}}),
        )
        .await;
    let edges = resp.data()["checkRecords"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 5);
    let batch = &edges[0]["node"]["batchId"];
    assert!(batch.is_string());
    assert!(edges.iter().all(|e| &e["node"]["batchId"] == batch));
}

async fn a_batch_has_a_size_limit(app: TestApp) {
    let admin = app.admin();
    let codes: Vec<String> = (0..1001).map(|i| valid_code("441821", i)).collect();
    let resp = app
        .gql(Some(&admin), BATCH, json!({"u": codes, "d": "HONORS"}))
        .await;
    resp.assert_error("BAD_USER_INPUT");
    assert!(resp.error_message().contains("1000"), "{}", resp.body);
    assert_eq!(app.count("check_records").await, 0);

    // Exactly the limit is answered, and recorded in one go.
    let resp = app
        .gql(
            Some(&admin),
            BATCH,
            json!({"u": &codes[..1000], "d": "HONORS"}),
        )
        .await;
    let results = resp.data()["checkBatch"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    assert_eq!(results[999]["uscc"], codes[999]);
    assert_eq!(app.count("check_records").await, 1000);

    app.gql(Some(&admin), BATCH, json!({"u": [], "d": "HONORS"}))
        .await
        .assert_error("BAD_USER_INPUT");
}

async fn a_malformed_code_refuses_the_whole_batch(app: TestApp) {
    let good = valid_code("441802", 20);
    let asked = json!([
        good,
        "9111000010162374",
        good,
        "9111000010162374IK",
        "91310115MA1H8R7C6D"
    ]);
    let resp = app
        .gql(
            Some(&app.admin()),
            BATCH,
            json!({"u": asked, "d": "PROCUREMENT"}),
        )
        .await;
    resp.assert_error("BAD_USER_INPUT");
    let message = resp.error_message();
    assert!(
        message.contains("usccs[1]") && message.contains("usccs[3]"),
        "{message}"
    );
    assert!(
        !message.contains("usccs[4]"),
        "a check-digit failure is not malformed: {message}"
    );
    let details = &resp.body["errors"][0]["extensions"]["details"]["errors"];
    let indexes: Vec<u64> = details
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![1, 3]);
    assert_eq!(details[1]["value"], "9111000010162374IK");
    assert_eq!(app.count("check_records").await, 0);
}

async fn check_records_are_visible_by_role(app: TestApp) {
    let code = valid_code("441802", 30);
    app.create_operator(&code, "某公司").await;
    listed_now(
        &app,
        &code,
        "SAMR_SERIOUS_DISHONEST",
        &["SAMR44_FACTOR_PROCUREMENT"],
    )
    .await;
    let a = app.partner("buyer-a", &[Domain::Procurement]).await;
    let b = app.partner("buyer-b", &[Domain::Procurement]).await;
    app.gql(
        Some(&a),
        CHECK,
        json!({"u": code, "d": "PROCUREMENT", "r": "CG-1"}),
    )
    .await
    .data();
    app.gql(
        Some(&a),
        CHECK,
        json!({"u": valid_code("441802", 31), "d": "PROCUREMENT"}),
    )
    .await
    .data();
    app.gql(Some(&b), CHECK, json!({"u": code, "d": "PROCUREMENT"}))
        .await
        .data();
    assert_eq!(app.count("check_records").await, 3);

    let records = |token: String, vars: Value| {
        let app = &app;
        async move {
            let resp = app.gql(Some(&token), RECORDS, vars).await;
            resp.data()["checkRecords"].clone()
        }
    };
    let all = records(app.auditor(), json!({})).await;
    assert_eq!(all["edges"].as_array().unwrap().len(), 3);
    let own = records(a.clone(), json!({})).await;
    let subjects: Vec<&str> = own["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["buyer-a", "buyer-a"]);
    assert_eq!(
        records(b.clone(), json!({})).await["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.gql(Some(&a), RECORDS, json!({"f": {"subject": "buyer-b"}}))
        .await
        .assert_error("FORBIDDEN");
    app.gql(None, RECORDS, json!({}))
        .await
        .assert_error("UNAUTHENTICATED");

    // Filters.
    let review = records(app.auditor(), json!({"f": {"decision": "REVIEW"}})).await;
    assert_eq!(review["edges"].as_array().unwrap().len(), 2);
    let by_ref = records(app.auditor(), json!({"f": {"reference": "CG-1"}})).await;
    assert_eq!(by_ref["edges"][0]["node"]["subject"], "buyer-a");
    assert_eq!(by_ref["edges"][0]["node"]["role"], "partner");
    let by_code = records(
        app.auditor(),
        json!({"f": {"uscc": code.to_lowercase(), "subject": "buyer-b"}}),
    )
    .await;
    assert_eq!(by_code["edges"].as_array().unwrap().len(), 1);
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let none = records(app.auditor(), json!({"f": {"checkedFrom": later}})).await;
    assert_eq!(none["edges"], json!([]));
    let other_domain = records(app.auditor(), json!({"f": {"domain": "BIDDING"}})).await;
    assert_eq!(other_domain["edges"], json!([]));

    // Pages, newest first.
    let page1 = records(app.auditor(), json!({"n": 2})).await;
    assert_eq!(page1["pageInfo"]["hasNextPage"], true);
    let page2 = records(
        app.auditor(),
        json!({"n": 2, "a": page1["pageInfo"]["endCursor"]}),
    )
    .await;
    assert_eq!(page2["pageInfo"]["hasNextPage"], false);
    let mut ids: Vec<String> = page1["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["edges"].as_array().unwrap())
        .map(|e| e["node"]["receiptId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    ids.dedup();
    assert_eq!(ids.len(), 3);
    app.gql(Some(&app.auditor()), RECORDS, json!({"a": "not-a-cursor"}))
        .await
        .assert_error("BAD_USER_INPUT");
    app.gql(Some(&app.auditor()), RECORDS, json!({"n": 0}))
        .await
        .assert_error("BAD_USER_INPUT");
}

async fn concurrent_checks_are_all_recorded_before_they_answer(app: TestApp) {
    let token = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            check(
                app,
                &token,
                &valid_code("441802", 100 + i),
                "PROCUREMENT",
                None,
            )
            .await
        }
    }))
    .await;
    let mut ids: Vec<String> = answers
        .iter()
        .map(|a| a.data()["check"]["receiptId"].as_str().unwrap().to_string())
        .collect();
    // Every answered check already has its record (the count is taken after all answers).
    assert_eq!(app.count("check_records").await, 40);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

async fn no_answer_without_its_record(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 200);
    check(&app, &admin, &code, "HONORS", None).await.data();
    // The record cannot be written (the table is gone): the check fails, with no answer.
    app.sql("ALTER TABLE check_records RENAME TO check_records_elsewhere")
        .await;
    let resp = check(&app, &admin, &code, "HONORS", None).await;
    resp.assert_error("INTERNAL");
    assert_eq!(resp.body["data"], Value::Null);
    assert!(
        !resp.body.to_string().contains("check_records"),
        "no SQL detail leaks: {}",
        resp.body
    );
    // Once it can be written again, checks answer again.
    app.sql("ALTER TABLE check_records_elsewhere RENAME TO check_records")
        .await;
    check(&app, &admin, &code, "HONORS", None).await.data();
    assert_eq!(app.count("check_records").await, 2);
}

/// Concurrent single checks may be answered by one shared statement (PostgreSQL): each
/// must still get the answer for its own code, `asOf` and domain.
async fn concurrent_checks_each_get_their_own_answer(app: TestApp) {
    let admin = app.admin();
    let listed = valid_code("441802", 300);
    let clear = valid_code("441802", 301);
    app.create_operator(&listed, "上榜公司").await;
    app.create_operator(&clear, "守信公司").await;
    app.insert_listing(
        &listed,
        "SAMR_SERIOUS_DISHONEST",
        at("2024-03-01T00:00:00Z"),
        at("2027-03-01T00:00:00Z"),
        None,
        &["PROCUREMENT_RESTRICT"],
    )
    .await;
    let unknown = valid_code("441802", 302);
    // (code, domain, asOf, expected decision, expected hits)
    let cases: Vec<(String, &str, &str, &str, usize)> = (0..48)
        .map(|i| match i % 6 {
            0 => (
                listed.clone(),
                "PROCUREMENT",
                "2024-02-29T23:59:59Z",
                "CLEAR",
                0,
            ),
            1 => (
                listed.clone(),
                "PROCUREMENT",
                "2024-03-01T00:00:00Z",
                "RESTRICTED",
                1,
            ),
            2 => (listed.clone(), "HONORS", "2025-01-01T00:00:00Z", "CLEAR", 0),
            3 => (
                clear.clone(),
                "PROCUREMENT",
                "2025-01-01T00:00:00Z",
                "CLEAR",
                0,
            ),
            4 => (
                unknown.clone(),
                "PROCUREMENT",
                "2025-01-01T00:00:00Z",
                "CLEAR",
                0,
            ),
            _ => (
                listed.clone(),
                "PROCUREMENT",
                "2026-06-01T08:00:00Z",
                "RESTRICTED",
                1,
            ),
        })
        .collect();
    let answers =
        futures_util::future::join_all(cases.iter().map(|(code, domain, as_of, _, _)| {
            let (app, admin) = (&app, admin.clone());
            async move { check(app, &admin, code, domain, Some(as_of)).await }
        }))
        .await;
    for ((code, domain, as_of, expected, hits), answer) in cases.iter().zip(&answers) {
        let c = &answer.data()["check"];
        let what = format!("{code} {domain} as of {as_of}");
        assert_eq!(c["uscc"], code.as_str(), "{what}");
        assert_eq!(c["domain"], *domain, "{what}");
        assert_eq!(c["asOf"].as_str().map(at), Some(at(as_of)), "{what}");
        assert_eq!(c["decision"], *expected, "{what}");
        assert_eq!(c["hits"].as_array().map(Vec::len), Some(*hits), "{what}");
        let warned_unknown = c["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "UNKNOWN_OPERATOR");
        assert_eq!(warned_unknown, code == &unknown, "{what}");
        let name = c["operatorName"].as_str();
        assert_eq!(
            name,
            match code {
                c if c == &listed => Some("上榜公司"),
                c if c == &clear => Some("守信公司"),
                _ => None,
            },
            "{what}"
        );
    }
    assert_eq!(app.count("check_records").await, 48);
}

on_both_backends!(
    concurrent_checks_each_get_their_own_answer,
    concurrent_checks_are_all_recorded_before_they_answer,
    no_answer_without_its_record,
    each_effect_gives_its_decision,
    as_of_answers_from_the_listing_dates,
    unknown_and_check_digit_codes_answer_with_warnings,
    partners_check_only_their_domains,
    a_deactivated_partner_is_refused,
    a_batch_answers_in_order_each_place,
    a_batch_has_a_size_limit,
    a_malformed_code_refuses_the_whole_batch,
    check_records_are_visible_by_role,
);
