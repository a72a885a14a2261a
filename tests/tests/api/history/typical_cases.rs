//! Typical cases: marked and unmarked by admins, public while the listing is in force,
//! audited.

use super::audit_log::verify;
use crate::listings::{listed, propose};
use chrono::{Duration, Utc};
use serde_json::json;
use tests::{TestApp, on_both_backends, valid_code};

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

on_both_backends!(typical_cases_are_marked_by_admins_and_public,);
