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

on_both_backends!(admins_register_partners_and_auditors_see_them);

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
