use api::auth::Role;
use api::domain::measures::Domain;
use serde_json::json;
use tests::{TestApp, on_both_backends};

const UPSERT: &str = "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id uscc name formerNames regionCode version checkDigitOverride } }";

async fn admin_upserts_a_valid_code(app: TestApp) {
    let resp = app
        .gql(
            Some(&app.admin()),
            UPSERT,
            json!({"i": {"uscc": " 91110000101623741k ", "name": "北京某某有限公司"}}),
        )
        .await;
    let op = &resp.data()["upsertOperator"];
    assert_eq!(op["uscc"], "91110000101623741K");
    assert_eq!(op["regionCode"], "110000");
    assert_eq!(op["version"], 1);
    assert_eq!(app.count("audit_events").await, 1);

    // Renaming keeps the former name and bumps the version.
    let resp = app
        .gql(Some(&app.admin()), UPSERT, json!({"i": {"uscc": "91110000101623741K", "name": "北京新名有限公司", "expectedVersion": 1}}))
        .await;
    let op = &resp.data()["upsertOperator"];
    assert_eq!(op["version"], 2);
    assert_eq!(op["formerNames"], json!(["北京某某有限公司"]));

    // A stale version loses, and nothing is written.
    let resp = app
        .gql(Some(&app.admin()), UPSERT, json!({"i": {"uscc": "91110000101623741K", "name": "第三个名字", "expectedVersion": 1}}))
        .await;
    resp.assert_error("CONFLICT");
    assert_eq!(app.count("audit_events").await, 2);

    let read = app
        .gql(
            Some(&app.auditor()),
            "query { operator(uscc: \"91110000101623741K\") { name version } }",
            json!({}),
        )
        .await;
    assert_eq!(read.data()["operator"]["name"], "北京新名有限公司");
}

async fn bad_check_digit_is_refused_naming_it(app: TestApp) {
    let resp = app
        .gql(
            Some(&app.admin()),
            UPSERT,
            json!({"i": {"uscc": "91310115MA1H8R7C6D", "name": "x"}}),
        )
        .await;
    resp.assert_error("BAD_USER_INPUT");
    assert!(
        resp.error_message().contains("check digit"),
        "{}",
        resp.body
    );
    assert_eq!(app.count("operators").await, 0);
    assert_eq!(app.count("audit_events").await, 0);

    // An admin may accept it with a reason, which is kept and audited.
    let resp = app
        .gql(
            Some(&app.admin()),
            UPSERT,
            json!({"i": {"uscc": "91310115MA1H8R7C6D", "name": "x", "checkDigitOverrideReason": "code printed on the 2015 licence"}}),
        )
        .await;
    assert_eq!(
        resp.data()["upsertOperator"]["checkDigitOverride"],
        "code printed on the 2015 licence"
    );
}

async fn format_errors_are_distinct(app: TestApp) {
    for (code, needle) in [
        ("9111000010162374", "18 characters"),
        ("9111000010162374IK", "position 17"),
        ("", "18 characters"),
    ] {
        let resp = app
            .gql(
                Some(&app.admin()),
                UPSERT,
                json!({"i": {"uscc": code, "name": "x"}}),
            )
            .await;
        resp.assert_error("BAD_USER_INPUT");
        assert!(
            resp.error_message().contains(needle),
            "{code}: {}",
            resp.body
        );
    }
}

async fn only_admins_may_upsert(app: TestApp) {
    let vars = json!({"i": {"uscc": "91110000101623741K", "name": "x"}});
    app.gql(None, UPSERT, vars.clone())
        .await
        .assert_error("UNAUTHENTICATED");
    let partner = app.partner("gov-procurement", &[Domain::Procurement]).await;
    app.gql(Some(&partner), UPSERT, vars.clone())
        .await
        .assert_error("FORBIDDEN");
    app.gql(Some(&app.token(Role::Auditor, "a")), UPSERT, vars)
        .await
        .assert_error("FORBIDDEN");
    assert_eq!(app.count("operators").await, 0);
}

async fn region_admins_act_in_their_region_only(app: TestApp) {
    let qingcheng = tests::valid_code("441802", 1);
    let yingde = tests::valid_code("441881", 2);
    let admin = app.region_admin("441802");
    app.gql(
        Some(&admin),
        UPSERT,
        json!({"i": {"uscc": qingcheng, "name": "清城公司"}}),
    )
    .await
    .data();
    app.gql(
        Some(&admin),
        UPSERT,
        json!({"i": {"uscc": yingde, "name": "英德公司"}}),
    )
    .await
    .assert_error("FORBIDDEN");
    // The city admin covers every county.
    let city = app.region_admin("441800");
    app.gql(
        Some(&city),
        UPSERT,
        json!({"i": {"uscc": yingde, "name": "英德公司"}}),
    )
    .await
    .data();
}

async fn personal_data_is_masked_by_role(app: TestApp) {
    let code = tests::valid_code("441802", 7);
    app.gql(
        Some(&app.admin()),
        UPSERT,
        json!({"i": {"uscc": code, "name": "个体户", "legalRepresentative": "张三丰", "legalRepIdNumber": "441802199001011234", "address": "广东省清远市清城区某路1号", "addressIsPersonal": true}}),
    )
    .await
    .data();
    let q = format!(
        "query {{ operator(uscc: \"{code}\") {{ legalRepresentative legalRepIdNumber address }} }}"
    );
    let full = app.gql(Some(&app.auditor()), &q, json!({})).await;
    assert_eq!(full.data()["operator"]["legalRepresentative"], "张三丰");
    let partner = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let masked = app.gql(Some(&partner), &q, json!({})).await;
    assert_eq!(masked.data()["operator"]["legalRepresentative"], "张**");
    assert_eq!(
        masked.data()["operator"]["legalRepIdNumber"],
        "441802********1234"
    );
    assert_eq!(
        masked.data()["operator"]["address"],
        "广东省清远市清城区****"
    );
}

/// Addresses are stored as entered, so the partner's form is built from the operator's
/// division, never from the text: an address without the province once came out as
/// `清城区某路1****` and a short one whole.
async fn a_partner_sees_only_the_division_of_a_personal_address(app: TestApp) {
    let partner = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let cases = [
        ("441802", 11, "清城区某路1号", "广东省清远市清城区****"),
        ("441802", 12, "某路1号", "广东省清远市清城区****"),
        ("441881", 13, "凤城街道XX村3号", "广东省清远市英德市****"),
        ("440103", 14, "某路1号", "广东省****"),
    ];
    for (region, n, address, expected) in cases {
        let code = tests::valid_code(region, n);
        app.gql(
            Some(&app.admin()),
            UPSERT,
            json!({"i": {"uscc": code, "name": "个体户", "address": address, "addressIsPersonal": true}}),
        )
        .await
        .data();
        let q = format!("query {{ operator(uscc: \"{code}\") {{ address }} }}");
        let masked = app.gql(Some(&partner), &q, json!({})).await;
        let shown = masked.data()["operator"]["address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(shown, expected, "{address}");
        assert!(!shown.contains("某路") && !shown.contains("村"), "{shown}");
        let full = app.gql(Some(&app.auditor()), &q, json!({})).await;
        assert_eq!(full.data()["operator"]["address"], address);
    }
}

/// An update that does not restate the division or the override keeps them: the
/// division defaulted to the code's, which moved an operator registered elsewhere to
/// another county (or refused its own county's admin), and an operator accepted with an
/// override had to repeat the reason on every update.
async fn an_update_keeps_the_recorded_division_and_override(app: TestApp) {
    let city = app.region_admin("441800");
    let yingde = app.region_admin("441881");
    // Code of 清城 (441802), registered in 英德 (441881).
    let moved = tests::valid_code("441802", 31);
    let created = app
        .gql(
            Some(&city),
            UPSERT,
            json!({"i": {"uscc": moved, "name": "迁入公司", "regionCode": "441881"}}),
        )
        .await;
    assert_eq!(created.data()["upsertOperator"]["regionCode"], "441881");
    for (who, name) in [(&yingde, "迁入公司（英德）"), (&city, "迁入公司（改名）")]
    {
        let renamed = app
            .gql(
                Some(who),
                UPSERT,
                json!({"i": {"uscc": moved, "name": name}}),
            )
            .await;
        assert_eq!(
            renamed.data()["upsertOperator"]["regionCode"],
            "441881",
            "{}",
            renamed.body
        );
    }
    // A code accepted with an override is updated without restating it.
    let admin = app.admin();
    app.gql(
        Some(&admin),
        UPSERT,
        json!({"i": {"uscc": "91310115MA1H8R7C6D", "name": "x", "checkDigitOverrideReason": "code printed on the 2015 licence"}}),
    )
    .await
    .data();
    let updated = app
        .gql(
            Some(&admin),
            UPSERT,
            json!({"i": {"uscc": "91310115MA1H8R7C6D", "name": "y"}}),
        )
        .await;
    assert_eq!(
        updated.data()["upsertOperator"]["checkDigitOverride"],
        "code printed on the 2015 licence",
        "{}",
        updated.body
    );
}

on_both_backends!(
    an_update_keeps_the_recorded_division_and_override,
    admin_upserts_a_valid_code,
    bad_check_digit_is_refused_naming_it,
    format_errors_are_distinct,
    only_admins_may_upsert,
    region_admins_act_in_their_region_only,
    personal_data_is_masked_by_role,
    a_partner_sees_only_the_division_of_a_personal_address,
);
