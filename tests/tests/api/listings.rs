use api::domain::measures::Domain;
use chrono::{DateTime, Duration, Months, Utc};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{Gql, TestApp, on_both_backends, valid_code};

pub const LISTING_FIELDS: &str = "id status version defenceDeadline publicityStopDeadline listedAt expiresAt removedAt \
    decisionDocNo removalReason measures { code effect domain } list { code } operator { uscc }";

const PROPOSE: &str = "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id status version defenceDeadline } }";

pub async fn propose(app: &TestApp, token: &str, uscc: &str, notice_date: &str) -> Gql {
    app.gql(
        Some(token),
        PROPOSE,
        json!({"i": {
            "uscc": uscc, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
            "penaltyDocNo": format!("清市监罚〔2023〕{}号", uscc), "penaltyDate": "2023-01-10",
            "violationCategory": "CONSUMER_HARM", "reason": "收取预付款后卷款跑路",
            "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": notice_date,
        }}),
    )
    .await
}

pub async fn decide(
    app: &TestApp,
    token: &str,
    id: &str,
    version: i64,
    date: &str,
    effective_at: Option<DateTime<Utc>>,
) -> Gql {
    app.gql(
        Some(token),
        &format!("mutation($i: DecideListingInput!) {{ decideListing(input: $i) {{ {LISTING_FIELDS} }} }}"),
        json!({"i": {"id": id, "expectedVersion": version, "decisionDocNo": format!("清市监列〔{date}〕1号"),
                      "decisionDate": date, "effectiveAt": effective_at, "defenceWaived": true}}),
    )
    .await
}

/// An operator listed (in force) since `effective_at`; returns the listing's id and version.
pub async fn listed(
    app: &TestApp,
    division: &str,
    serial: u32,
    effective_at: DateTime<Utc>,
) -> (String, String, i64) {
    let code = valid_code(division, serial);
    app.create_operator(&code, &format!("清远测试{serial}有限公司"))
        .await;
    let date = api::domain::china_date(effective_at).to_string();
    let p = propose(app, &app.admin(), &code, &date).await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = decide(app, &app.admin(), &id, 1, &date, Some(effective_at)).await;
    let version = d.data()["decideListing"]["version"].as_i64().unwrap();
    (code, id, version)
}

fn listing_of<'a>(resp: &'a Gql, field: &str) -> &'a Value {
    &resp.data()[field]
}

async fn the_whole_lifecycle(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 1);
    app.create_operator(&code, "清远市某某食品有限公司").await;
    let p = propose(&app, &admin, &code, "2026-02-12").await;
    let l = listing_of(&p, "proposeListing");
    assert_eq!(l["status"], "PROPOSED");
    // 5 working days from Thu 12 Feb 2026: Fri 13, Sat 14 (swapped), then Spring
    // Festival 15-23 Feb, Tue 24, Wed 25, Thu 26.
    assert_eq!(l["defenceDeadline"], "2026-02-26");
    let id = l["id"].as_str().unwrap().to_string();

    // Deciding before the defence deadline needs a waiver.
    let early = app
        .gql(
            Some(&admin),
            "mutation($i: DecideListingInput!) { decideListing(input: $i) { id } }",
            json!({"i": {"id": id, "expectedVersion": 1, "decisionDocNo": "D-1", "decisionDate": "2026-02-25"}}),
        )
        .await;
    early.assert_error("BAD_USER_INPUT");
    assert!(
        early.error_message().contains("2026-02-26"),
        "{}",
        early.body
    );

    let d = decide(&app, &admin, &id, 1, "2026-03-02", None).await;
    let l = listing_of(&d, "decideListing");
    assert_eq!(l["status"], "LISTED");
    assert_eq!(l["version"], 2);
    let codes: Vec<&str> = l["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"PROCUREMENT_RESTRICT"), "{codes:?}");
    let listed_at: DateTime<Utc> = l["listedAt"].as_str().unwrap().parse().unwrap();
    let expires_at: DateTime<Utc> = l["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires_at,
        listed_at.checked_add_months(Months::new(36)).unwrap()
    );

    let r = app
        .gql(
            Some(&admin),
            &format!("mutation($i: RevokeListingInput!) {{ revokeListing(input: $i) {{ {LISTING_FIELDS} }} }}"),
            json!({"i": {"id": id, "expectedVersion": 2, "ground": "PENALTY_REVOKED", "revocationDocNo": "R-1", "reason": "行政复议撤销原处罚决定"}}),
        )
        .await;
    let l = listing_of(&r, "revokeListing");
    assert_eq!(l["status"], "REVOKED");
    assert!(l["removedAt"].is_string());
    assert!(l["publicityStopDeadline"].is_string());
    // Every change: an audit event and a revision.
    assert_eq!(app.count("listing_revisions").await, 3);
    assert_eq!(app.count("audit_events").await, 4); // operator + 3 listing changes
}

async fn refused_transitions_name_the_state(app: TestApp) {
    let admin = app.admin();
    let now = Utc::now();
    let (_, listed_id, v) = listed(&app, "441802", 2, now - Duration::days(10)).await;

    // LISTED cannot be decided or withdrawn again.
    let again = decide(&app, &admin, &listed_id, v, "2026-03-02", None).await;
    again.assert_error("BAD_USER_INPUT");
    assert!(
        again.error_message().contains("state LISTED"),
        "{}",
        again.body
    );
    assert!(
        again.error_message().contains("revokeListing"),
        "{}",
        again.body
    );
    let w = app
        .gql(
            Some(&admin),
            "mutation($i: WithdrawListingInput!) { withdrawListing(input: $i) { id } }",
            json!({"i": {"id": listed_id, "expectedVersion": v, "reason": "x"}}),
        )
        .await;
    w.assert_error("BAD_USER_INPUT");

    // A withdrawn proposal cannot be decided or revoked.
    let code = valid_code("441802", 3);
    app.create_operator(&code, "另一家公司").await;
    let p = propose(&app, &admin, &code, "2026-03-02").await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoke_proposed = app
        .gql(Some(&admin), "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { id } }",
             json!({"i": {"id": id, "expectedVersion": 1, "ground": "CONFIRMED_VOID", "revocationDocNo": "R", "reason": "x"}}))
        .await;
    revoke_proposed.assert_error("BAD_USER_INPUT");
    assert!(revoke_proposed.error_message().contains("state PROPOSED"));
    let w = app
        .gql(
            Some(&admin),
            "mutation($i: WithdrawListingInput!) { withdrawListing(input: $i) { status version } }",
            json!({"i": {"id": id, "expectedVersion": 1, "reason": "申辩理由成立"}}),
        )
        .await;
    assert_eq!(w.data()["withdrawListing"]["status"], "WITHDRAWN");
    let d = decide(&app, &admin, &id, 2, "2026-03-20", None).await;
    d.assert_error("BAD_USER_INPUT");
    assert!(d.error_message().contains("state WITHDRAWN"), "{}", d.body);
    let r = app
        .gql(Some(&admin), "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { id } }",
             json!({"i": {"id": id, "expectedVersion": 2, "ground": "CONFIRMED_VOID", "revocationDocNo": "R", "reason": "x"}}))
        .await;
    r.assert_error("BAD_USER_INPUT");
    // Nor can a correction give the withdrawn proposal a decision or measures.
    for changes in [
        json!({"decisionDocNo": "清市监列〔2026〕99号", "decisionDate": "2026-03-20"}),
        json!({"measureCodes": ["SAMR44_FACTOR_PROCUREMENT"]}),
    ] {
        let mut input = json!({"id": id, "expectedVersion": 2, "reason": "补录"});
        for (k, v) in changes.as_object().unwrap() {
            input[k] = v.clone();
        }
        let c = app
            .gql(
                Some(&admin),
                "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
                json!({"i": input}),
            )
            .await;
        c.assert_error("BAD_USER_INPUT");
        assert!(c.error_message().contains("never decided"), "{}", c.body);
    }

    // A revoked listing cannot be revoked again.
    let r1 = app
        .gql(Some(&admin), "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { version } }",
             json!({"i": {"id": listed_id, "expectedVersion": v, "ground": "CONFIRMED_ILLEGAL", "revocationDocNo": "R", "reason": "x"}}))
        .await;
    let v2 = r1.data()["revokeListing"]["version"].as_i64().unwrap();
    let r2 = app
        .gql(Some(&admin), "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { id } }",
             json!({"i": {"id": listed_id, "expectedVersion": v2, "ground": "CONFIRMED_ILLEGAL", "revocationDocNo": "R", "reason": "x"}}))
        .await;
    r2.assert_error("BAD_USER_INPUT");
    assert!(r2.error_message().contains("state REVOKED"));

    // Unknown listing, operator and list.
    let missing = decide(&app, &admin, "999999", 1, "2026-03-02", None).await;
    missing.assert_error("NOT_FOUND");
    propose(&app, &admin, &valid_code("441802", 99), "2026-03-02")
        .await
        .assert_error("NOT_FOUND");
}

async fn expiry_is_computed_at_the_three_year_boundary(app: TestApp) {
    let start: DateTime<Utc> = "2023-03-01T02:00:00Z".parse().unwrap();
    let (code, id, _) = listed(&app, "441803", 1, start).await;
    let end = start.checked_add_months(Months::new(36)).unwrap();
    let q = "query($f: ListingFilter, $b: DateTime!, $a: DateTime!) { listings(filter: $f) { edges { node { id status before: inForce(at: $b) after: inForce(at: $a) } } } }";
    let resp = app
        .gql(Some(&app.auditor()), q, json!({"f": {"operator": code}, "b": end - Duration::seconds(1), "a": end + Duration::seconds(1)}))
        .await;
    let node = &resp.data()["listings"]["edges"][0]["node"];
    assert_eq!(node["id"], id.as_str());
    assert_eq!(node["before"], true);
    assert_eq!(node["after"], false);
    assert_eq!(node["status"], "EXPIRED");
    for (at, expected) in [
        (end - Duration::seconds(1), 1),
        (end, 0),
        (end + Duration::seconds(1), 0),
    ] {
        let r = app
            .gql(Some(&app.auditor()), "query($t: DateTime!) { listings(filter: {inForceAt: $t}) { edges { node { id } } } }", json!({"t": at}))
            .await;
        assert_eq!(
            r.data()["listings"]["edges"].as_array().unwrap().len(),
            expected,
            "at {at}"
        );
    }

    // A listing that expires two seconds from now turns EXPIRED by itself: no job runs.
    let soon = Utc::now() + Duration::seconds(2);
    let start = soon.checked_sub_months(Months::new(36)).unwrap();
    let (code, _, _) = listed(&app, "441803", 2, start).await;
    let status =
        "query($f: ListingFilter) { listings(filter: $f) { edges { node { status inForce } } } }";
    let before = app
        .gql(
            Some(&app.auditor()),
            status,
            json!({"f": {"operator": code}}),
        )
        .await;
    assert_eq!(
        before.data()["listings"]["edges"][0]["node"]["status"],
        "LISTED"
    );
    // Time moves on (the registry's clock, not a sleep).
    app.state.clock.advance(Duration::seconds(3));
    let after = app
        .gql(
            Some(&app.auditor()),
            status,
            json!({"f": {"operator": code}}),
        )
        .await;
    assert_eq!(
        after.data()["listings"]["edges"][0]["node"]["status"],
        "EXPIRED"
    );
    assert_eq!(
        after.data()["listings"]["edges"][0]["node"]["inForce"],
        false
    );
    let expired = app
        .gql(
            Some(&app.auditor()),
            "{ listings(filter: {status: EXPIRED}) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        expired.data()["listings"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

async fn a_stale_version_loses_to_a_concurrent_edit(app: TestApp) {
    let (_, id, v) = listed(&app, "441821", 1, Utc::now() - Duration::days(3)).await;
    let audit_before = app.count("audit_events").await;
    let revisions_before = app.count("listing_revisions").await;
    let correct = |reason: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            app.gql(
                Some(&app.admin()),
                "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version authority } }",
                json!({"i": {"id": id, "expectedVersion": v, "reason": reason, "authority": reason}}),
            )
            .await
        }
    };
    let (a, b) = tokio::join!(
        correct("清远市市场监督管理局（更正甲）"),
        correct("清远市市场监督管理局（更正乙）")
    );
    let results = [a, b];
    let ok: Vec<&Gql> = results
        .iter()
        .filter(|r| r.error_code().is_none())
        .collect();
    let conflicts: Vec<&Gql> = results
        .iter()
        .filter(|r| r.error_code() == Some("CONFLICT"))
        .collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    assert_eq!(conflicts.len(), 1, "{results:?}");
    // Nothing of the loser was written.
    assert_eq!(app.count("audit_events").await, audit_before + 1);
    assert_eq!(app.count("listing_revisions").await, revisions_before + 1);
    let winner = ok[0].data()["correctListing"]["authority"].clone();
    let now = app
        .gql(
            Some(&app.auditor()),
            "query($id: ID!) { listing(id: $id) { authority version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(now.data()["listing"]["authority"], winner);
    assert_eq!(now.data()["listing"]["version"], v + 1);
}

async fn corrections_need_a_reason_and_keep_history(app: TestApp) {
    let (_, id, v) = listed(&app, "441823", 1, Utc::now() - Duration::days(30)).await;
    let no_reason = app
        .gql(
            Some(&app.admin()),
            "mutation($i: CorrectListingInput!) { correctListing(input: $i) { id } }",
            json!({"i": {"id": id, "expectedVersion": v, "reason": "  ", "penaltyDocNo": "X"}}),
        )
        .await;
    no_reason.assert_error("BAD_USER_INPUT");
    let fixed = app
        .gql(Some(&app.admin()), "mutation($i: CorrectListingInput!) { correctListing(input: $i) { penaltyDocNo measures(domain: PROCUREMENT) { code } } }",
             json!({"i": {"id": id, "expectedVersion": v, "reason": "文号录入错误", "penaltyDocNo": "清市监罚〔2023〕88号", "measureCodes": ["SAMR44_FACTOR_PROCUREMENT"]}}))
        .await;
    assert_eq!(
        fixed.data()["correctListing"]["penaltyDocNo"],
        "清市监罚〔2023〕88号"
    );
    assert_eq!(
        fixed.data()["correctListing"]["measures"],
        json!([{"code": "SAMR44_FACTOR_PROCUREMENT"}])
    );
    let audit = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT action, reason FROM audit_events ORDER BY id DESC LIMIT 1".to_string(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        audit.try_get::<String>("", "action").unwrap(),
        "listing.measures_changed"
    );
    assert_eq!(
        audit.try_get::<String>("", "reason").unwrap(),
        "文号录入错误"
    );
    // Unknown measures are refused whole.
    let bad = app
        .gql(Some(&app.admin()), "mutation($i: CorrectListingInput!) { correctListing(input: $i) { id } }",
             json!({"i": {"id": id, "expectedVersion": v + 1, "reason": "x", "measureCodes": ["NO_SUCH_MEASURE"]}}))
        .await;
    bad.assert_error("BAD_USER_INPUT");
    assert!(bad.error_message().contains("NO_SUCH_MEASURE"));
}

async fn region_admins_act_on_their_own_region(app: TestApp) {
    let qingcheng = valid_code("441802", 11);
    let yingde = valid_code("441881", 12);
    app.create_operator(&qingcheng, "清城公司").await;
    app.create_operator(&yingde, "英德公司").await;
    let county = app.region_admin("441802");
    propose(&app, &county, &qingcheng, "2026-03-02")
        .await
        .data();
    propose(&app, &county, &yingde, "2026-03-02")
        .await
        .assert_error("FORBIDDEN");
    let p = propose(&app, &app.region_admin("441800"), &yingde, "2026-03-02").await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let w = app
        .gql(
            Some(&county),
            "mutation($i: WithdrawListingInput!) { withdrawListing(input: $i) { id } }",
            json!({"i": {"id": id, "expectedVersion": 1, "reason": "x"}}),
        )
        .await;
    w.assert_error("FORBIDDEN");
}

async fn working_days_and_missing_calendars(app: TestApp) {
    let code = valid_code("441825", 1);
    app.create_operator(&code, "连山公司").await;
    // Wed 25 Feb 2026 + 5 working days: Thu 26, Fri 27, Sat 28 (swapped working day), Mon 2, Tue 3.
    let p = propose(&app, &app.admin(), &code, "2026-02-25").await;
    assert_eq!(p.data()["proposeListing"]["defenceDeadline"], "2026-03-03");
    let add = app
        .gql(
            Some(&app.auditor()),
            "{ addWorkingDays(from: \"2026-09-30\", days: 3) }",
            json!({}),
        )
        .await;
    assert_eq!(add.data()["addWorkingDays"], "2026-10-10");
    // A year without a loaded notice is refused, never guessed. Far-future years: the
    // harness loads plain fixture years up to next year (see tests/src/lib.rs).
    let load = |year: i32, holiday: &'static str| {
        let admin = app.admin();
        let app = &app;
        async move {
            app.gql(
                Some(&admin),
                "mutation($y: Int!, $d: [CalendarDayInput!]!) { loadCalendarYear(year: $y, source: \"国务院办公厅通知（测试）\", days: $d) { year } }",
                json!({"y": year, "d": [{"date": holiday, "kind": "HOLIDAY", "name": "元旦"}]}),
            )
            .await
            .data();
        }
    };
    load(2098, "2098-01-01").await;
    let missing = app
        .gql(
            Some(&app.auditor()),
            "{ addWorkingDays(from: \"2098-12-30\", days: 5) }",
            json!({}),
        )
        .await;
    missing.assert_error("BAD_USER_INPUT");
    assert!(missing.error_message().contains("2099"), "{}", missing.body);
    // Admins load the next year's notice, and the arithmetic goes on: Tue 30 Dec 2098
    // + 2 working days = Wed 31, (Thu 1 Jan holiday), Fri 2 Jan 2099.
    load(2099, "2099-01-01").await;
    let add = app
        .gql(
            Some(&app.auditor()),
            "{ addWorkingDays(from: \"2098-12-30\", days: 2) }",
            json!({}),
        )
        .await;
    assert_eq!(add.data()["addWorkingDays"], "2099-01-02");
    // A count of no days is the caller's input, not a missing calendar.
    let none = app
        .gql(
            Some(&app.auditor()),
            "{ addWorkingDays(from: \"2098-12-30\", days: 0) }",
            json!({}),
        )
        .await;
    none.assert_error("BAD_USER_INPUT");
    assert_eq!(
        none.body["errors"][0]["extensions"]["details"]["field"], "days",
        "{}",
        none.body
    );
    assert_ne!(
        none.body["errors"][0]["extensions"]["details"]["reason"], "CALENDAR_MISSING",
        "{}",
        none.body
    );
}

async fn a_page_of_listings_costs_a_bounded_number_of_queries(app: TestApp) {
    let admin = app.admin();
    let effective = Utc::now() - Duration::days(5);
    let date = api::domain::china_date(effective).to_string();
    for n in 0..100u32 {
        let code = valid_code("441881", 1000 + n);
        app.create_operator(&code, &format!("英德{n}号公司")).await;
        let p = propose(&app, &admin, &code, &date).await;
        let id = p.data()["proposeListing"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        decide(&app, &admin, &id, 1, &date, Some(effective))
            .await
            .data();
    }
    // The registry log's appender follows these changes in the background: let it
    // catch up first, so that its statements are not counted as the page's.
    app.state.logs.append_registry(&app.db).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The counter is the pool's: a background job's statement (expiry recorder, purge,
    // log appender) may land in a window. The page's own cost is the same every time, so
    // the least of three windows is it; an N+1 would cost over a hundred in each.
    let mut cost = u64::MAX;
    let mut page = None;
    for _ in 0..3 {
        let before = app.state.queries.load(std::sync::atomic::Ordering::SeqCst);
        let answer = app
            .gql(
                Some(&app.auditor()),
                "{ listings(first: 100) { edges { node { id status expiresAt operator { uscc name } list { code } measures { code effect } periods { startsAt } } } pageInfo { hasNextPage } } }",
                json!({}),
            )
            .await;
        let after = app.state.queries.load(std::sync::atomic::Ordering::SeqCst);
        cost = cost.min(after - before);
        page = Some(answer);
    }
    let page = page.unwrap();
    let edges = page.data()["listings"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 100);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["operator"]["uscc"].is_string()
                && e["node"]["measures"].as_array().unwrap().len() > 3)
    );
    // 1 page + operators + lists + periods + measure links + measures = 6.
    assert!(cost <= 8, "a page of 100 cost {cost} queries");
    assert_eq!(page.data()["listings"]["pageInfo"]["hasNextPage"], false);
}

async fn pagination_and_filters(app: TestApp) {
    let effective = Utc::now() - Duration::days(2);
    for n in 0..5 {
        listed(&app, "441882", 200 + n, effective).await;
    }
    let first = app
        .gql(Some(&app.auditor()), "{ listings(first: 2) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }", json!({}))
        .await;
    assert_eq!(first.data()["listings"]["pageInfo"]["hasNextPage"], true);
    let cursor = first.data()["listings"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = app
        .gql(Some(&app.auditor()), "query($c: String) { listings(first: 10, after: $c) { edges { node { id } } pageInfo { hasNextPage } } }", json!({"c": cursor}))
        .await;
    assert_eq!(
        rest.data()["listings"]["edges"].as_array().unwrap().len(),
        3
    );
    let by_region = app
        .gql(Some(&app.auditor()), "{ listings(filter: {region: \"441882\", list: \"SAMR_SERIOUS_DISHONEST\", status: LISTED, category: \"CONSUMER_HARM\"}) { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(
        by_region.data()["listings"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let by_name = app
        .gql(Some(&app.auditor()), "{ listings(filter: {operator: \"清远测试202\"}) { edges { node { operator { name } } } } }", json!({}))
        .await;
    assert_eq!(
        by_name.data()["listings"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.gql(
        Some(&app.auditor()),
        "{ listings(first: 100000) { edges { cursor } } }",
        json!({}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
    app.gql(
        Some(&app.auditor()),
        "{ listings(after: \"garbage\") { edges { cursor } } }",
        json!({}),
    )
    .await
    .assert_error("BAD_USER_INPUT");
    let partner = app.partner_token("p", &[]);
    app.gql(
        Some(&partner),
        "{ listings { edges { cursor } } }",
        json!({}),
    )
    .await
    .assert_error("FORBIDDEN");
}

async fn catalogue_edits_are_audited(app: TestApp) {
    let lists = app
        .gql(
            Some(&app.auditor()),
            "{ lists { code defaultPeriodMonths defaultMeasures { code } } }",
            json!({}),
        )
        .await;
    let lists = lists.data()["lists"].as_array().unwrap().clone();
    assert_eq!(lists.len(), 3);
    assert_eq!(lists[0]["code"], "SAMR_SERIOUS_DISHONEST");
    assert_eq!(lists[0]["defaultPeriodMonths"], 36);
    let before = app.count("audit_events").await;
    let m = app
        .gql(Some(&app.admin()), "mutation { upsertMeasure(input: {code: \"HONORS_REVIEW\", name: \"评优评先审慎考虑\", domain: HONORS, effect: CONSIDER, legalBasis: \"测试依据\"}) { code effect } }", json!({}))
        .await;
    assert_eq!(m.data()["upsertMeasure"]["effect"], "CONSIDER");
    let l = app
        .gql(Some(&app.admin()), "mutation { upsertList(input: {code: \"TAX_MAJOR_VIOLATION\", defaultPeriodMonths: 48, defaultMeasureCodes: [\"HONORS_REVIEW\"], repairRevocationPolicy: RESUME}) { defaultPeriodMonths repairRevocationPolicy defaultMeasures { code } version } }", json!({}))
        .await;
    assert_eq!(l.data()["upsertList"]["defaultPeriodMonths"], 48);
    assert_eq!(
        l.data()["upsertList"]["defaultMeasures"],
        json!([{"code": "HONORS_REVIEW"}])
    );
    assert_eq!(app.count("audit_events").await, before + 2);
    let measures = app
        .gql(
            Some(&app.auditor()),
            "{ measures(domain: LAND_TRANSFER) { code effect } }",
            json!({}),
        )
        .await;
    assert_eq!(
        measures.data()["measures"],
        json!([{"code": "LAND_TRANSFER_RESTRICT", "effect": "PROHIBIT"}])
    );
    app.gql(
        Some(&app.auditor()),
        "mutation { upsertViolationCategory(code: \"X\", name: \"x\", article: \"y\") { code } }",
        json!({}),
    )
    .await
    .assert_error("FORBIDDEN");
}

/// Once a listing uses a measure, its domain and effect are fixed (a check's decision
/// depends on them and the registry log carries them with each listing); its name and
/// legal basis stay editable. An unused measure may change freely.
async fn a_measure_in_use_keeps_its_domain_and_effect(app: TestApp) {
    let admin = app.admin();
    let upsert = "mutation($i: MeasureInput!) { upsertMeasure(input: $i) { code name domain effect version firstUsedAt } }";
    let measure = |name: &str, domain: &str, effect: &str| json!({"i": {"code": "HONORS_SUSPEND", "name": name, "domain": domain, "effect": effect, "legalBasis": "测试依据"}});
    let added = app
        .gql(
            Some(&admin),
            upsert,
            measure("评优暂缓", "HONORS", "CONSIDER"),
        )
        .await;
    assert_eq!(added.data()["upsertMeasure"]["firstUsedAt"], Value::Null);
    // Not used yet: the effect may still change.
    let edited = app
        .gql(
            Some(&admin),
            upsert,
            measure("评优暂缓", "HONORS", "PROHIBIT"),
        )
        .await;
    assert_eq!(edited.data()["upsertMeasure"]["effect"], "PROHIBIT");
    assert_eq!(edited.data()["upsertMeasure"]["version"], 2);

    let start = app.state.clock.now() - Duration::days(10);
    let (code, id, v) = listed(&app, "441802", 7, start).await;
    let correct = "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }";
    app.gql(
        Some(&admin),
        correct,
        json!({"i": {"id": id, "expectedVersion": v, "reason": "措施更正", "measureCodes": ["HONORS_SUSPEND"]}}),
    )
    .await
    .data();
    let ours = app
        .measure_as_read("HONORS", "HONORS_SUSPEND", "effect version firstUsedAt")
        .await;
    assert!(ours["firstUsedAt"].is_string(), "{ours}");

    // Used: a new effect or a new domain is refused, and nothing is written.
    let events = app.count("audit_events").await;
    for (domain, effect) in [("HONORS", "CONSIDER"), ("PROCUREMENT", "PROHIBIT")] {
        let refused = app
            .gql(Some(&admin), upsert, measure("评优暂缓", domain, effect))
            .await;
        refused.assert_error("CONFLICT");
        assert!(
            refused.error_message().contains("new code"),
            "{}",
            refused.body
        );
    }
    assert_eq!(app.count("audit_events").await, events);
    let partner = app.partner("honors-office", &[Domain::Honors]).await;
    let check = app
        .gql(
            Some(&partner),
            "query($u: String!) { check(uscc: $u, domain: HONORS) { decision } }",
            json!({"u": code}),
        )
        .await;
    assert_eq!(check.data()["check"]["decision"], "RESTRICTED");

    // Its name and legal basis may still be corrected.
    let renamed = app
        .gql(
            Some(&admin),
            upsert,
            measure("评优评先暂缓", "HONORS", "PROHIBIT"),
        )
        .await;
    let renamed = &renamed.data()["upsertMeasure"];
    assert_eq!(renamed["name"], "评优评先暂缓");
    assert_eq!(renamed["version"], 3);
    assert_eq!(renamed["firstUsedAt"], ours["firstUsedAt"]);
}

/// A decided listing always applies at least one measure: an empty set would leave it
/// LISTED and public while every check answers CLEAR. Refused at decision (explicitly,
/// or because the list's defaults are all inactive) and at correction.
async fn a_decided_listing_keeps_a_measure(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 61);
    app.create_operator(&code, "清远措施61有限公司").await;
    let p = propose(&app, &admin, &code, "2026-03-02").await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decide_with = |id: String, measures: Option<Value>| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let mut input = json!({"id": id, "expectedVersion": 1, "decisionDocNo": "清市监列〔2026〕61号",
                                   "decisionDate": "2026-03-16", "defenceWaived": true});
            if let Some(m) = measures {
                input["measureCodes"] = m;
            }
            app.gql(
                Some(&admin),
                &format!("mutation($i: DecideListingInput!) {{ decideListing(input: $i) {{ {LISTING_FIELDS} }} }}"),
                json!({"i": input}),
            )
            .await
        }
    };
    let details = |r: &Gql| r.body["errors"][0]["extensions"]["details"].clone();
    let empty = decide_with(id.clone(), Some(json!([]))).await;
    empty.assert_error("BAD_USER_INPUT");
    assert_eq!(details(&empty)["reason"], "NO_MEASURES", "{}", empty.body);
    assert_eq!(details(&empty)["field"], "measureCodes");
    // Omitted: the list's defaults.
    let d = decide_with(id.clone(), None).await;
    let version = d.data()["decideListing"]["version"].as_i64().unwrap();
    assert!(
        !d.data()["decideListing"]["measures"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let restricted = |r: Gql| r.data()["check"]["decision"].clone();
    assert_eq!(
        restricted(crate::checks::check(&app, &admin, &code, "PROCUREMENT", None).await),
        "RESTRICTED"
    );
    let c = app
        .gql(
            Some(&admin),
            "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
            json!({"i": {"id": id, "expectedVersion": version, "reason": "措施更正", "measureCodes": []}}),
        )
        .await;
    c.assert_error("BAD_USER_INPUT");
    assert_eq!(details(&c)["reason"], "NO_MEASURES", "{}", c.body);
    assert_eq!(
        restricted(crate::checks::check(&app, &admin, &code, "PROCUREMENT", None).await),
        "RESTRICTED"
    );

    // A list whose only default measure was deactivated since.
    app.gql(Some(&admin), "mutation { upsertMeasure(input: {code: \"ONLY_DEFAULT\", name: \"唯一默认措施\", domain: HONORS, effect: CONSIDER, legalBasis: \"测试依据\"}) { code } }", json!({}))
        .await
        .data();
    app.gql(Some(&admin), "mutation { upsertList(input: {code: \"TAX_MAJOR_VIOLATION\", defaultMeasureCodes: [\"ONLY_DEFAULT\"]}) { code } }", json!({}))
        .await
        .data();
    app.gql(Some(&admin), "mutation { upsertMeasure(input: {code: \"ONLY_DEFAULT\", name: \"唯一默认措施\", domain: HONORS, effect: CONSIDER, legalBasis: \"测试依据\", active: false}) { code } }", json!({}))
        .await
        .data();
    let p = app
        .gql(
            Some(&admin),
            PROPOSE,
            json!({"i": {"uscc": code, "list": "TAX_MAJOR_VIOLATION", "authority": "国家税务总局清远市税务局",
                "penaltyDocNo": "清税罚〔2026〕61号", "penaltyDate": "2026-02-10", "violationCategory": "CONSUMER_HARM",
                "reason": "虚开发票", "legalBasis": "《重大税收违法失信主体信息公布管理办法》", "noticeDate": "2026-03-02"}}),
        )
        .await;
    let tax = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let none_active = decide_with(tax, None).await;
    none_active.assert_error("BAD_USER_INPUT");
    assert_eq!(
        details(&none_active)["reason"],
        "NO_MEASURES",
        "{}",
        none_active.body
    );
}

/// One penalty decision typed another way (other brackets, full-width digits, a
/// zero-width space pasted along) is the same decision: a second listing on it for the
/// same operator and list is refused (the import matches penalty decisions by the same
/// key, `DocumentNumber::matching_key`).
async fn a_penalty_decision_typed_another_way_is_the_same_decision(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 77);
    app.create_operator(&code, "清远市某某商贸有限公司").await;
    let notice = api::domain::china_date(Utc::now() - Duration::days(3)).to_string();
    propose(&app, &admin, &code, &notice).await.data();
    for spelling in [
        format!("清市监罚[2023]{code}号"),
        format!("清市监罚（２０２３）{code}号"),
        format!("清市监罚〔2023〕\u{200B}{code}号"),
    ] {
        let again = app
            .gql(
                Some(&admin),
                PROPOSE,
                json!({"i": {
                    "uscc": code, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
                    "penaltyDocNo": spelling, "penaltyDate": "2023-01-10",
                    "violationCategory": "CONSUMER_HARM", "reason": "收取预付款后卷款跑路",
                    "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": notice,
                }}),
            )
            .await;
        again.assert_error("CONFLICT");
        assert!(
            again
                .error_message()
                .contains(&format!("清市监罚〔2023〕{code}号")),
            "names the recorded spelling: {}",
            again.body
        );
    }
    assert_eq!(app.count("listings").await, 1);
}

/// A decision number names one listing of an operator on a list (the import's natural
/// key): a second decision, or a correction, giving another listing the same number is
/// refused.
async fn a_decision_number_names_one_listing(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 78);
    app.create_operator(&code, "清远市某某建材有限公司").await;
    let date = api::domain::china_date(Utc::now() - Duration::days(2)).to_string();
    let first = propose(&app, &admin, &code, &date).await;
    let first = first.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    decide(&app, &admin, &first, 1, &date, None).await.data();
    let second = app
        .gql(
            Some(&admin),
            PROPOSE,
            json!({"i": {
                "uscc": code, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
                "penaltyDocNo": "清市监罚〔2023〕第二号", "penaltyDate": "2023-01-10",
                "violationCategory": "CONSUMER_HARM", "reason": "收取预付款后卷款跑路",
                "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": date,
            }}),
        )
        .await;
    let second = second.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // decide() numbers a decision by its date: the first listing's number.
    let same = decide(&app, &admin, &second, 1, &date, None).await;
    same.assert_error("CONFLICT");
    assert!(
        same.error_message().contains("decision number"),
        "{}",
        same.body
    );
    let other = app
        .gql(
            Some(&admin),
            &format!("mutation($i: DecideListingInput!) {{ decideListing(input: $i) {{ {LISTING_FIELDS} }} }}"),
            json!({"i": {"id": second, "expectedVersion": 1, "decisionDocNo": "清市监列〔2026〕2号",
                          "decisionDate": date, "defenceWaived": true}}),
        )
        .await;
    let version = other.data()["decideListing"]["version"].as_i64().unwrap();
    let corrected = app
        .gql(
            Some(&admin),
            "mutation($i: CorrectListingInput!) { correctListing(input: $i) { id } }",
            json!({"i": {"id": second, "expectedVersion": version, "reason": "文号更正",
                          "decisionDocNo": format!("清市监列〔{date}〕1号")}}),
        )
        .await;
    corrected.assert_error("CONFLICT");
}

on_both_backends!(
    a_decision_number_names_one_listing,
    a_penalty_decision_typed_another_way_is_the_same_decision,
    a_decided_listing_keeps_a_measure,
    the_whole_lifecycle,
    refused_transitions_name_the_state,
    expiry_is_computed_at_the_three_year_boundary,
    a_stale_version_loses_to_a_concurrent_edit,
    corrections_need_a_reason_and_keep_history,
    region_admins_act_on_their_own_region,
    working_days_and_missing_calendars,
    a_page_of_listings_costs_a_bounded_number_of_queries,
    pagination_and_filters,
    catalogue_edits_are_audited,
    a_measure_in_use_keeps_its_domain_and_effect,
);
