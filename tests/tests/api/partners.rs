//! Partner systems: registration, listing, deactivation and the registration cache.

use super::checks::check;
use api::domain::measures::Domain;
use serde_json::json;
use tests::{Backend, TestApp, on_both_backends, spawn_app_with, valid_code};

const REGISTER: &str = "mutation($i: RegisterPartnerInput!) { registerPartner(input: $i) { id subject name domains active version } }";
const PARTNERS: &str =
    "query($a: Boolean) { partners(active: $a) { subject domains active deactivatedAt } }";

async fn admins_register_partners_and_auditors_see_them(app: TestApp) {
    let admin = app.admin();
    let resp = app
        .gql(
            Some(&admin),
            REGISTER,
            json!({"i": {"subject": " gov-procurement ", "name": "清远市政府采购平台", "domains": ["BIDDING", "PROCUREMENT", "BIDDING"]}}),
        )
        .await;
    let partner = &resp.data()["registerPartner"];
    assert_eq!(partner["subject"], "gov-procurement");
    assert_eq!(partner["domains"], json!(["PROCUREMENT", "BIDDING"]));
    assert_eq!(partner["active"], true);
    assert_eq!(app.count("audit_events").await, 1);

    // The same subject twice is a conflict; nothing more is written.
    app.gql(
        Some(&admin),
        REGISTER,
        json!({"i": {"subject": "gov-procurement", "name": "x", "domains": ["HONORS"]}}),
    )
    .await
    .assert_error("CONFLICT");
    for bad in [
        json!({"subject": "two words", "name": "x", "domains": ["HONORS"]}),
        json!({"subject": "p2", "name": " ", "domains": ["HONORS"]}),
        json!({"subject": "p2", "name": "x", "domains": []}),
    ] {
        app.gql(Some(&admin), REGISTER, json!({ "i": bad }))
            .await
            .assert_error("BAD_USER_INPUT");
    }
    assert_eq!(app.count("partners").await, 1);
    assert_eq!(app.count("audit_events").await, 1);

    // Only admins register; admins and auditors list.
    let partner_token = app.partner_token("gov-procurement", &[]);
    app.gql(
        Some(&app.auditor()),
        REGISTER,
        json!({"i": {"subject": "p3", "name": "x", "domains": ["HONORS"]}}),
    )
    .await
    .assert_error("FORBIDDEN");
    let resp = app.gql(Some(&app.auditor()), PARTNERS, json!({})).await;
    assert_eq!(resp.data()["partners"][0]["subject"], "gov-procurement");
    app.gql(Some(&partner_token), PARTNERS, json!({}))
        .await
        .assert_error("FORBIDDEN");
    app.gql(None, PARTNERS, json!({}))
        .await
        .assert_error("UNAUTHENTICATED");

    // Deactivation is audited with its reason and shows in the list.
    app.gql(
        Some(&admin),
        "mutation { deactivatePartner(subject: \"gov-procurement\", reason: \"contract ended\") { active } }",
        json!({}),
    )
    .await
    .data();
    let resp = app.gql(Some(&admin), PARTNERS, json!({"a": false})).await;
    assert_eq!(resp.data()["partners"][0]["active"], false);
    assert!(resp.data()["partners"][0]["deactivatedAt"].is_string());
    let resp = app.gql(Some(&admin), PARTNERS, json!({"a": true})).await;
    assert_eq!(resp.data()["partners"], json!([]));
    assert_eq!(app.count("audit_events").await, 2);
}

const REACTIVATE: &str = "mutation($s: String!, $r: String!) { reactivatePartner(subject: $s, reason: $r) { subject active deactivatedAt version } }";
const UPDATE: &str = "mutation($i: UpdatePartnerInput!) { updatePartner(input: $i) { subject name domains active version } }";

/// A partner deactivated by mistake or during an incident comes back under its own
/// subject: `registerPartner` refuses a known subject, so before `reactivatePartner` the
/// only way back was a new subject (new tokens, a history split in two) or editing the
/// database. Its old token is refused while it is deactivated and accepted after.
async fn a_deactivated_partner_is_reactivated_and_its_old_token_works_again(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 41);
    let token = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let audited = app.count("audit_events").await;
    assert_eq!(
        check(&app, &token, &code, "PROCUREMENT", None).await.data()["check"]["decision"],
        "CLEAR"
    );
    let vars = |reason: &str| json!({"s": "gov-procurement", "r": reason});
    // Reactivating an active partner is a conflict.
    app.gql(Some(&admin), REACTIVATE, vars("back"))
        .await
        .assert_error("CONFLICT");
    app.gql(
        Some(&admin),
        "mutation { deactivatePartner(subject: \"gov-procurement\", reason: \"incident\") { active } }",
        json!({}),
    )
    .await
    .data();
    check(&app, &token, &code, "PROCUREMENT", None)
        .await
        .assert_error("FORBIDDEN");

    // Only registry-wide admins reactivate, and only with a reason.
    for who in [app.auditor(), app.region_admin("441802"), token.clone()] {
        app.gql(Some(&who), REACTIVATE, vars("back"))
            .await
            .assert_error("FORBIDDEN");
    }
    app.gql(Some(&admin), REACTIVATE, vars("  "))
        .await
        .assert_error("BAD_USER_INPUT");
    app.gql(
        Some(&admin),
        REACTIVATE,
        json!({"s": "nobody", "r": "back"}),
    )
    .await
    .assert_error("NOT_FOUND");
    check(&app, &token, &code, "PROCUREMENT", None)
        .await
        .assert_error("FORBIDDEN");

    let resp = app
        .gql(Some(&admin), REACTIVATE, vars("deactivated by mistake"))
        .await;
    let back = &resp.data()["reactivatePartner"];
    assert_eq!(back["active"], true);
    assert_eq!(back["deactivatedAt"], serde_json::Value::Null);
    assert_eq!(back["version"], 3);
    assert_eq!(app.count("audit_events").await, audited + 2);
    // The same token, with no new registration.
    assert_eq!(
        check(&app, &token, &code, "PROCUREMENT", None).await.data()["check"]["decision"],
        "CLEAR"
    );
    let resp = app.gql(Some(&admin), PARTNERS, json!({"a": true})).await;
    assert_eq!(resp.data()["partners"][0]["subject"], "gov-procurement");
}

/// A partner's name and domains can change (they never could): audited, with its
/// version, and its next check is judged on the new domains.
async fn a_partners_domains_and_name_change(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 42);
    let token = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let audited = app.count("audit_events").await;
    let change = |version: i64, domains: serde_json::Value| json!({"i": {"subject": "gov-procurement", "name": "清远市公共资源交易平台", "domains": domains, "expectedVersion": version}});
    app.gql(Some(&admin), UPDATE, change(7, json!(["BIDDING"])))
        .await
        .assert_error("CONFLICT");
    app.gql(Some(&app.auditor()), UPDATE, change(1, json!(["BIDDING"])))
        .await
        .assert_error("FORBIDDEN");
    app.gql(Some(&admin), UPDATE, change(1, json!([])))
        .await
        .assert_error("BAD_USER_INPUT");
    app.gql(
        Some(&admin),
        UPDATE,
        json!({"i": {"subject": "gov-procurement", "expectedVersion": 1}}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
    assert_eq!(app.count("audit_events").await, audited);

    let resp = app
        .gql(
            Some(&admin),
            UPDATE,
            change(1, json!(["BIDDING", "PROCUREMENT"])),
        )
        .await;
    let p = &resp.data()["updatePartner"];
    assert_eq!(p["name"], "清远市公共资源交易平台");
    assert_eq!(p["domains"], json!(["PROCUREMENT", "BIDDING"]));
    assert_eq!(p["version"], 2);
    assert_eq!(app.count("audit_events").await, audited + 1);
    assert_eq!(
        check(&app, &token, &code, "BIDDING", None).await.data()["check"]["decision"],
        "CLEAR"
    );
    // Narrowed: the next check in the dropped domain is refused.
    let resp = app
        .gql(Some(&admin), UPDATE, change(2, json!(["BIDDING"])))
        .await;
    assert_eq!(resp.data()["updatePartner"]["version"], 3);
    check(&app, &token, &code, "PROCUREMENT", None)
        .await
        .assert_error("FORBIDDEN");
    // A change to nothing writes nothing.
    let resp = app
        .gql(Some(&admin), UPDATE, change(3, json!(["BIDDING"])))
        .await;
    assert_eq!(resp.data()["updatePartner"]["version"], 3);
    assert_eq!(app.count("audit_events").await, audited + 2);
}

on_both_backends!(
    admins_register_partners_and_auditors_see_them,
    a_deactivated_partner_is_reactivated_and_its_old_token_works_again,
    a_partners_domains_and_name_change,
);

/// Another instance deactivates the partner (here: straight in the database, which this
/// instance's cache does not see): the partner is refused once the cache expires.
async fn deactivation_elsewhere_takes_effect_within_the_cache_time(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.auth.partner_cache_seconds = 1).await;
    let code = valid_code("441802", 40);
    let token = app.partner("honors-office", &[Domain::Honors]).await;
    assert_eq!(
        check(&app, &token, &code, "HONORS", None).await.data()["check"]["decision"],
        "CLEAR"
    );
    app.sql("UPDATE partners SET active = false WHERE subject = 'honors-office'")
        .await;
    // Real time: the partner cache (`auth.partner_cache_seconds`) expires by the monotonic clock.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    check(&app, &token, &code, "HONORS", None)
        .await
        .assert_error("FORBIDDEN");
}

mod deactivation_elsewhere_takes_effect_within_the_cache_time {
    use tests::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::deactivation_elsewhere_takes_effect_within_the_cache_time(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::deactivation_elsewhere_takes_effect_within_the_cache_time(Backend::Postgres).await
    }
}
