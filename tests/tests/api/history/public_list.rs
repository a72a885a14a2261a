//! The public list (公示): listings in force only, searchable, and no personal field in
//! the answer or in the type.

use super::ids;
use crate::listings::{LISTING_FIELDS, decide, listed, propose};
use chrono::{Duration, Utc};
use serde_json::json;
use std::collections::BTreeSet;
use tests::{TestApp, on_both_backends, valid_code};

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

on_both_backends!(the_public_list_leaks_no_personal_field,);
