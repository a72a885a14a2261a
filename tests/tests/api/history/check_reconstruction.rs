//! A check reconstructed: `asOf` + `knownAt` reproduce an earlier answer after a
//! retroactive change, with a receipt that says it is a reconstruction.

use crate::listings::listed;
use api::domain::measures::Domain;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tests::{TestApp, on_both_backends};

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
    let payload: Value = tests::receipt_payload(r["receipt"].as_str().unwrap());
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

on_both_backends!(a_check_as_of_known_at_reproduces_an_earlier_answer,);
