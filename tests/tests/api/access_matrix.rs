//! The access matrix: every query and mutation of the schema, run by every kind of
//! caller, with the answer each cell must get. An operation without a row fails the
//! test, so a new operation cannot ship without a decision on who may call it.
//!
//! A cell is `A` (allowed: the answer is not an authentication or authorisation
//! refusal — it may still be BAD_USER_INPUT, NOT_FOUND or CONFLICT because of the
//! fixture state), `U` (UNAUTHENTICATED) or `F` (FORBIDDEN).

use api::config::Settings;
use api::domain::measures::Domain;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tests::{TestApp, on_both_backends_with, valid_code};

/// The callers, in the order of each row's cells.
const CALLERS: [&str; 8] = [
    "anonymous",
    "admin",
    "county admin (own region)",
    "county admin (other region)",
    "partner (own domain)",
    "partner (other domain)",
    "deactivated partner",
    "auditor",
];

struct Fixture {
    tokens: Vec<Option<String>>,
    uscc: String,
    listed_id: String,
    proposed_id: String,
    receipt_id: String,
    receipt: String,
    repair_id: String,
}

fn generous_limits(settings: &mut Settings) {
    settings.limits.public_rate_per_second = 10_000;
    settings.limits.public_rate_burst = 10_000;
}

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.admin();
    let uscc = valid_code("441802", 4242);
    app.create_operator(&uscc, "清城区矩阵测试有限公司").await;
    let effective = Utc::now() - Duration::days(400);
    let date = api::domain::china_date(effective).to_string();
    let p = crate::listings::propose(app, &admin, &uscc, &date).await;
    let listed_id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::listings::decide(app, &admin, &listed_id, 1, &date, Some(effective))
        .await
        .data();
    let other = valid_code("441802", 4243);
    app.create_operator(&other, "清城区矩阵测试二号公司").await;
    let p = crate::listings::propose(
        app,
        &admin,
        &other,
        &api::domain::china_date(Utc::now()).to_string(),
    )
    .await;
    let proposed_id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let partner_own = app
        .partner("matrix-procurement", &[Domain::Procurement])
        .await;
    let partner_other = app.partner("matrix-bidding", &[Domain::Bidding]).await;
    let deactivated = app.partner("matrix-retired", &[Domain::Procurement]).await;
    app.register_partner("matrix-spare", &[Domain::Honors])
        .await;
    app.gql(
        Some(&admin),
        "mutation { deactivatePartner(subject: \"matrix-retired\", reason: \"system retired\") { active } }",
        json!({}),
    )
    .await
    .data();
    let check = app
        .gql(
            Some(&partner_own),
            "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { receiptId receipt } }",
            json!({ "u": uscc }),
        )
        .await;
    let receipt_id = check.data()["check"]["receiptId"]
        .as_str()
        .unwrap()
        .to_string();
    let receipt = check.data()["check"]["receipt"]
        .as_str()
        .unwrap()
        .to_string();
    let repair = app
        .gql(
            Some(&admin),
            "mutation($i: SubmitRepairApplicationInput!) { submitRepairApplication(input: $i) { id } }",
            json!({ "i": repair_input(&listed_id) }),
        )
        .await;
    let repair_id = repair.data()["submitRepairApplication"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let tokens = vec![
        None,
        Some(admin),
        Some(app.region_admin("441802")),
        Some(app.region_admin("441881")),
        Some(partner_own),
        Some(partner_other),
        Some(deactivated),
        Some(app.auditor()),
    ];
    Fixture {
        tokens,
        uscc,
        listed_id,
        proposed_id,
        receipt_id,
        receipt,
        repair_id,
    }
}

fn repair_input(listing_id: &str) -> Value {
    let doc = |kind: &str| json!({ "kind": kind, "fileName": format!("{kind}.pdf"), "sha256": "a".repeat(64) });
    let yes = json!({ "affirmed": true });
    json!({
        "listingId": listing_id,
        "receivedDate": api::domain::china_date(Utc::now()).to_string(),
        "documents": [doc("REPAIR_APPLICATION"), doc("CREDIT_COMMITMENT"), doc("LEGAL_STATUS_PROOF"), doc("PERFORMANCE_PROOF")],
        "statements": { "obligationsPerformed": yes, "harmCorrected": yes, "statutoryRestrictionEnded": yes },
    })
}

/// (operation, document, variables, expected cells in `CALLERS` order)
fn rows(f: &Fixture) -> Vec<(&'static str, String, Value, &'static str)> {
    let u = &f.uscc;
    let listed = &f.listed_id;
    let proposed = &f.proposed_id;
    let today = api::domain::china_date(Utc::now()).to_string();
    vec![
        // Queries.
        ("operator", "query($u: String!) { operator(uscc: $u) { id } }".into(), json!({"u": u}), "UAAAAAFA"),
        ("listing", "query($id: ID!) { listing(id: $id) { id } }".into(), json!({"id": listed}), "UAAAFFFA"),
        ("listings", "{ listings(first: 5) { edges { cursor } } }".into(), json!({}), "UAAAFFFA"),
        ("measures", "{ measures { code } }".into(), json!({}), "UAAAAAFA"),
        ("lists", "{ lists { code } }".into(), json!({}), "UAAAAAFA"),
        ("violationCategories", "{ violationCategories { code } }".into(), json!({}), "UAAAAAFA"),
        ("calendarYears", "{ calendarYears { year } }".into(), json!({}), "UAAAAAFA"),
        ("addWorkingDays", "{ addWorkingDays(from: \"2026-02-12\", days: 5) }".into(), json!({}), "UAAAAAFA"),
        ("partners", "{ partners { subject } }".into(), json!({}), "UAAAFFFA"),
        ("check", "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { decision } }".into(), json!({"u": u}), "UAAAAFFA"),
        ("checkBatch", "query($u: String!) { checkBatch(usccs: [$u], domain: PROCUREMENT) { decision } }".into(), json!({"u": u}), "UAAAAFFA"),
        ("checkRecords", "{ checkRecords(first: 5) { edges { cursor } } }".into(), json!({}), "UAAAAAFA"),
        ("verifyReceipt", "query($r: String!) { verifyReceipt(receipt: $r) { valid } }".into(), json!({"r": f.receipt}), "AAAAAAFA"),
        ("partnerFeedback", "{ partnerFeedback(first: 5) { edges { cursor } } }".into(), json!({}), "UAAAAAFA"),
        ("repairApplication", "query($id: ID!) { repairApplication(id: $id) { id } }".into(), json!({"id": f.repair_id}), "UAAAFFFA"),
        ("repairApplications", "{ repairApplications(first: 5) { edges { cursor } } }".into(), json!({}), "UAAAFFFA"),
        ("repairOnTimeRate", "{ repairOnTimeRate(from: \"2026-01-01\", to: \"2026-12-31\") { decided } }".into(), json!({}), "UAAAFFFA"),
        ("auditEvents", "{ auditEvents(first: 5) { edges { cursor } } }".into(), json!({}), "UAAAFFFA"),
        ("verifyAuditChain", "{ verifyAuditChain { ok } }".into(), json!({}), "UAAAFFFA"),
        ("changes", "{ changes(first: 5) { edges { cursor } } }".into(), json!({}), "UAAAAAFA"),
        ("publicListings", "{ publicListings(first: 5) { edges { cursor } } }".into(), json!({}), "AAAAAAFA"),
        ("typicalCases", "{ typicalCases(year: 2026) { id } }".into(), json!({}), "AAAAAAFA"),
        ("report", "{ report(year: 2026) { region } }".into(), json!({}), "UAAAFFFA"),
        // Mutations on one operator: admins of its region (or the whole registry) only.
        ("upsertOperator", "mutation($u: String!) { upsertOperator(input: {uscc: $u, name: \"清城区矩阵测试有限公司\"}) { id } }".into(), json!({"u": u}), "UAAFFFFF"),
        ("proposeListing",
         "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id } }".into(),
         json!({"i": {"uscc": u, "list": "TAX_MAJOR_VIOLATION", "authority": "国家税务总局清远市税务局", "penaltyDocNo": "清税罚〔2026〕1号",
                       "penaltyDate": today, "violationCategory": "UNFAIR_COMPETITION", "reason": "偷税", "legalBasis": "税收征收管理法", "noticeDate": today}}),
         "UAAFFFFF"),
        ("decideListing",
         "mutation($id: ID!) { decideListing(input: {id: $id, expectedVersion: 1, decisionDocNo: \"D\", decisionDate: \"2026-01-01\", defenceWaived: true}) { id } }".into(),
         json!({"id": proposed}), "UAAFFFFF"),
        ("withdrawListing", "mutation($id: ID!) { withdrawListing(input: {id: $id, expectedVersion: 99, reason: \"r\"}) { id } }".into(), json!({"id": proposed}), "UAAFFFFF"),
        ("revokeListing",
         "mutation($id: ID!) { revokeListing(input: {id: $id, expectedVersion: 99, ground: PENALTY_REVOKED, revocationDocNo: \"R\", reason: \"r\"}) { id } }".into(),
         json!({"id": listed}), "UAAFFFFF"),
        ("correctListing", "mutation($id: ID!) { correctListing(input: {id: $id, expectedVersion: 99, reason: \"r\", authority: \"x\"}) { id } }".into(), json!({"id": listed}), "UAAFFFFF"),
        ("markTypicalCase",
         "mutation($id: ID!) { markTypicalCase(listingId: $id, year: 2026, commentary: \"预付卡跑路典型案例\") { id } }".into(),
         json!({"id": listed}), "UAAFFFFF"),
        // Sent as a multipart request with the listing template (a dry run).
        ("importListings",
         "mutation($file: Upload!) { importListings(file: $file, dryRun: true) { rows } }".into(),
         json!({"file": null}), "UAAAFFFF"),
        ("unmarkTypicalCase", "mutation($id: ID!) { unmarkTypicalCase(listingId: $id, year: 2025) }".into(), json!({"id": listed}), "UAAFFFFF"),
        ("submitRepairApplication",
         "mutation($i: SubmitRepairApplicationInput!) { submitRepairApplication(input: $i) { id } }".into(),
         json!({"i": repair_input(listed)}), "UAAFFFFF"),
        ("decideRepairApplication",
         "mutation($id: ID!) { decideRepairApplication(id: $id, expectedVersion: 99, approve: false, reason: \"r\") { id } }".into(),
         json!({"id": f.repair_id}), "UAAFFFFF"),
        ("revokeRepair", "mutation($id: ID!) { revokeRepair(id: $id, reason: \"r\", expectedVersion: 99) { id } }".into(), json!({"id": f.repair_id}), "UAAFFFFF"),
        // Registry-wide administration: unscoped or city-level admins only.
        ("upsertMeasure",
         "mutation { upsertMeasure(input: {code: \"MATRIX_MEASURE\", name: \"m\", domain: HONORS, effect: CONSIDER, legalBasis: \"b\"}) { code } }".into(),
         json!({}), "UAFFFFFF"),
        ("upsertList", "mutation { upsertList(input: {code: \"SAMR_SERIOUS_DISHONEST\", defenceWorkingDays: 5}) { code } }".into(), json!({}), "UAFFFFFF"),
        ("upsertViolationCategory", "mutation { upsertViolationCategory(code: \"MATRIX\", name: \"n\", article: \"a\") { code } }".into(), json!({}), "UAFFFFFF"),
        ("loadCalendarYear",
         "mutation { loadCalendarYear(year: 2030, source: \"test\", days: [{date: \"2030-01-01\", kind: HOLIDAY, name: \"元旦\"}]) { year } }".into(),
         json!({}), "UAFFFFFF"),
        ("registerPartner", "mutation { registerPartner(input: {subject: \"matrix-new\", name: \"n\", domains: [HONORS]}) { subject } }".into(), json!({}), "UAFFFFFF"),
        ("deactivatePartner", "mutation { deactivatePartner(subject: \"matrix-spare\", reason: \"r\") { subject } }".into(), json!({}), "UAFFFFFF"),
        ("reactivatePartner", "mutation { reactivatePartner(subject: \"matrix-spare\", reason: \"r\") { subject } }".into(), json!({}), "UAFFFFFF"),
        ("updatePartner", "mutation { updatePartner(input: {subject: \"matrix-spare\", name: \"spare\", expectedVersion: 99}) { subject } }".into(), json!({}), "UAFFFFFF"),
        // Execution feedback: only the partner that made the check.
        ("reportMeasureApplied",
         "mutation($r: String!) { reportMeasureApplied(receiptId: $r, measureCode: \"PROCUREMENT_RESTRICT\", context: \"tender QY-2026-1\") { id } }".into(),
         json!({"r": f.receipt_id}), "UFFFAFFF"),
    ]
}

/// Names of the fields of a root type in the SDL.
fn root_fields(sdl: &str, root: &str) -> BTreeSet<String> {
    let Some(start) = sdl.find(&format!("type {root} {{")) else {
        return BTreeSet::new();
    };
    let body = &sdl[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    let mut names = BTreeSet::new();
    let mut in_doc = false;
    for line in body.lines().skip(1) {
        // Fields sit one level in; a multi-line argument list sits deeper.
        if line.starts_with("\t\t") || line.starts_with("    ") {
            continue;
        }
        let t = line.trim();
        if t.starts_with("\"\"\"") {
            // A one-line description opens and closes on the same line.
            if !(t.len() > 3 && t.ends_with("\"\"\"")) {
                in_doc = !in_doc;
            }
            continue;
        }
        if in_doc || t.is_empty() {
            continue;
        }
        let name: String = t
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && t[name.len()..].starts_with(['(', ':']) {
            names.insert(name);
        }
    }
    names
}

fn classify(status: u16, body: &Value) -> Result<char, String> {
    let code = body["errors"][0]["extensions"]["code"].as_str();
    match code {
        Some("UNAUTHENTICATED") => Ok('U'),
        Some("FORBIDDEN") => Ok('F'),
        Some("INTERNAL") => Err(format!("INTERNAL error: {body}")),
        Some("GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED") => {
            Err(format!("the test's document is invalid: {body}"))
        }
        _ if status >= 500 => Err(format!("HTTP {status}: {body}")),
        _ => Ok('A'),
    }
}

async fn every_operation_answers_every_caller_as_specified(app: TestApp) {
    let f = fixture(&app).await;
    let table = rows(&f);

    // Completeness: every operation of the schema has a row, and no row is stale.
    let sdl = api::graphql::sdl();
    let mut in_schema = root_fields(&sdl, "QueryRoot");
    in_schema.extend(root_fields(&sdl, "MutationRoot"));
    let in_table: BTreeSet<String> = table.iter().map(|r| r.0.to_string()).collect();
    let missing: Vec<_> = in_schema.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&in_schema).collect();
    assert!(
        missing.is_empty(),
        "operations without a row in the access matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for operations the schema no longer has: {stale:?}"
    );

    let mut wrong = Vec::new();
    for (name, query, vars, expected) in &table {
        assert_eq!(expected.len(), CALLERS.len(), "row {name}");
        for ((caller, token), want) in CALLERS.iter().zip(&f.tokens).zip(expected.chars()) {
            let answer = if *name == "importListings" {
                app.post_graphql_upload(
                    token.as_deref(),
                    &json!({ "query": query, "variables": vars }),
                    "listings-template.csv",
                    include_bytes!("../../../docs/examples/listings-template.csv"),
                )
                .await
            } else {
                app.post_graphql(
                    token.as_deref(),
                    &json!({ "query": query, "variables": vars }),
                    &[],
                )
                .await
            };
            match classify(answer.status, &answer.body) {
                Ok(got) if got == want => {}
                Ok(got) => wrong.push(format!(
                    "{name} as {caller}: expected {want}, got {got}: {}",
                    answer.body
                )),
                Err(problem) => wrong.push(format!("{name} as {caller}: {problem}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

on_both_backends_with!(every_operation_answers_every_caller_as_specified => generous_limits);
