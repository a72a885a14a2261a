//! The legal rules that used to be bypassable (issue: "one home for every rule"): each
//! test drives the service the way a partner, an admin or a subscriber would and fails
//! on the behaviour before the rule had one home.

use super::checks::check;
use super::listings::{LISTING_FIELDS, decide, propose};
use api::auth::Role;
use api::auth::tokens::TokenRequest;
use api::domain::measures::Domain;
use chrono::{Duration, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{Gql, TestApp, on_both_backends, valid_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const DECIDE: &str = "mutation($i: DecideListingInput!) { decideListing(input: $i) { id status version listedAt expiresAt } }";

fn reason(resp: &Gql) -> &str {
    resp.body["errors"][0]["extensions"]["details"]["reason"]
        .as_str()
        .unwrap_or_default()
}

fn receipt_payload(receipt: &str) -> Value {
    tests::receipt_payload(receipt)
}

async fn proposed(app: &TestApp, serial: u32, notice: &str) -> (String, String) {
    let code = valid_code("441802", serial);
    app.create_operator(&code, &format!("清远规则{serial}有限公司"))
        .await;
    let p = propose(app, &app.admin(), &code, notice).await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (code, id)
}

async fn decide_without_waiver(
    app: &TestApp,
    id: &str,
    decision_date: &str,
    effective_at: Option<&str>,
) -> Gql {
    app.gql(
        Some(&app.admin()),
        DECIDE,
        json!({"i": {"id": id, "expectedVersion": 1, "decisionDocNo": "清市监列〔2026〕3号",
                     "decisionDate": decision_date, "effectiveAt": effective_at}}),
    )
    .await
}

/// 1. A listing whose only measure for the domain supervises answers CLEAR with no hit,
///    in the answer, the receipt and the record.
async fn a_clear_answer_names_no_hits(app: TestApp) {
    let code = valid_code("441802", 501);
    app.create_operator(&code, "清远监管措施有限公司").await;
    app.insert_listing_in_force(&code, &["SAMR44_KEY_SUPERVISION", "PROCUREMENT_RESTRICT"])
        .await;
    let partner = app
        .partner("supervision-partner", &[Domain::Supervision])
        .await;
    let resp = check(&app, &partner, &code, "SUPERVISION", None).await;
    let answer = &resp.data()["check"];
    assert_eq!(answer["decision"], "CLEAR");
    assert_eq!(answer["hits"], json!([]));
    let payload = receipt_payload(answer["receipt"].as_str().unwrap());
    assert_eq!(payload["decision"], "CLEAR");
    assert_eq!(payload["hitListingIds"], json!([]), "{payload}");
    let records = app
        .gql(
            Some(&app.auditor()),
            "{ checkRecords(first: 5) { edges { node { decision hitListingIds } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        records.data()["checkRecords"]["edges"][0]["node"]["hitListingIds"],
        json!([])
    );
    // The same listing is a hit where it restricts.
    let admin = app.admin();
    let resp = check(&app, &admin, &code, "PROCUREMENT", None).await;
    assert_eq!(resp.data()["check"]["decision"], "RESTRICTED");
    let measures = &resp.data()["check"]["hits"][0]["measures"];
    assert_eq!(measures.as_array().unwrap().len(), 1, "{measures}");
    assert_eq!(measures[0]["code"], "PROCUREMENT_RESTRICT");
}

/// 2. `effectiveAt` may not be before the decision date (so it cannot get around the
///    defence period), and by default a listing runs from its decision date.
async fn a_listing_takes_effect_on_its_decision(app: TestApp) {
    // Notice Mon 2 March 2026: the defence runs to Mon 9 March (5 working days).
    let (code, id) = proposed(&app, 502, "2026-03-02").await;
    for back_dated in ["2026-02-02T00:00:00Z", "2026-03-05T00:00:00Z"] {
        let resp = decide_without_waiver(&app, &id, "2026-03-16", Some(back_dated)).await;
        resp.assert_error("BAD_USER_INPUT");
        assert_eq!(reason(&resp), "DATE_ORDER", "{}", resp.body);
    }
    // Nothing was written: the listing is still the proposal, and nobody is restricted.
    let l = app
        .gql(
            Some(&app.admin()),
            "query($id: ID!) { listing(id: $id) { status version listedAt } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(l.data()["listing"]["status"], "PROPOSED");
    assert_eq!(l.data()["listing"]["version"], 1);
    let admin = app.admin();
    let early = check(
        &app,
        &admin,
        &code,
        "PROCUREMENT",
        Some("2026-02-20T00:00:00Z"),
    )
    .await;
    assert_eq!(early.data()["check"]["decision"], "CLEAR");

    // Without effectiveAt: from the start of the decision date in Beijing, three years.
    let resp = decide_without_waiver(&app, &id, "2026-03-16", None).await;
    let d = &resp.data()["decideListing"];
    assert_eq!(d["status"], "LISTED");
    assert_eq!(d["listedAt"], "2026-03-15T16:00:00+00:00");
    assert_eq!(d["expiresAt"], "2029-03-15T16:00:00+00:00");
    let before = check(
        &app,
        &admin,
        &code,
        "PROCUREMENT",
        Some("2026-03-15T15:59:59Z"),
    )
    .await;
    assert_eq!(before.data()["check"]["decision"], "CLEAR");
    let on = check(
        &app,
        &admin,
        &code,
        "PROCUREMENT",
        Some("2026-03-15T16:00:00Z"),
    )
    .await;
    assert_eq!(on.data()["check"]["decision"], "RESTRICTED");
}

/// 3. Nothing leaves EXPIRED: revoking an expired listing is an invalid transition.
async fn an_expired_listing_cannot_be_revoked(app: TestApp) {
    // Decided 1 Feb 2023 for three years: expired on 1 Feb 2026.
    let (_, id) = proposed(&app, 503, "2023-01-12").await;
    let d = decide(&app, &app.admin(), &id, 1, "2023-02-01", None).await;
    let l = &d.data()["decideListing"];
    let version = l["version"].as_i64().unwrap();
    let listed = app
        .gql(
            Some(&app.admin()),
            &format!("query($id: ID!) {{ listing(id: $id) {{ {LISTING_FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await;
    assert_eq!(listed.data()["listing"]["status"], "EXPIRED");
    let resp = app
        .gql(
            Some(&app.admin()),
            "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { status } }",
            json!({"i": {"id": id, "expectedVersion": version, "ground": "PENALTY_REVOKED",
                         "revocationDocNo": "清市监撤〔2026〕1号", "reason": "行政复议撤销"}}),
        )
        .await;
    resp.assert_error("BAD_USER_INPUT");
    assert_eq!(reason(&resp), "INVALID_TRANSITION");
    assert_eq!(
        resp.body["errors"][0]["extensions"]["details"]["status"],
        "EXPIRED"
    );
    let after = app
        .gql(
            Some(&app.admin()),
            "query($id: ID!) { listing(id: $id) { status version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(after.data()["listing"]["status"], "EXPIRED");
    assert_eq!(after.data()["listing"]["version"], version);
}

const REPORT: &str = "mutation($r: String!, $m: String!) {
  reportMeasureApplied(receiptId: $r, measureCode: $m, context: \"投标被否决：QY-CG-2026-118\") { id } }";

/// 4. Feedback only for a measure among the check's hits: none for a CLEAR answer.
async fn feedback_needs_a_hit_measure(app: TestApp) {
    let clear = valid_code("441802", 504);
    let restricted = valid_code("441802", 505);
    app.create_operator(&clear, "清远无记录有限公司").await;
    app.create_operator(&restricted, "清远有记录有限公司").await;
    app.insert_listing_in_force(&restricted, &["PROCUREMENT_RESTRICT"])
        .await;
    let partner = app.partner("procurement-fb", &[Domain::Procurement]).await;
    let receipt_of = |resp: &Gql| {
        resp.data()["check"]["receiptId"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let c = check(&app, &partner, &clear, "PROCUREMENT", None).await;
    assert_eq!(c.data()["check"]["decision"], "CLEAR");
    let resp = app
        .gql(
            Some(&partner),
            REPORT,
            json!({"r": receipt_of(&c), "m": "PROCUREMENT_RESTRICT"}),
        )
        .await;
    resp.assert_error("BAD_USER_INPUT");
    assert_eq!(reason(&resp), "MEASURE_NOT_A_HIT");

    let r = check(&app, &partner, &restricted, "PROCUREMENT", None).await;
    assert_eq!(r.data()["check"]["decision"], "RESTRICTED");
    // A measure of the right domain that was not among the hits.
    let resp = app
        .gql(
            Some(&partner),
            REPORT,
            json!({"r": receipt_of(&r), "m": "SAMR44_FACTOR_PROCUREMENT"}),
        )
        .await;
    resp.assert_error("BAD_USER_INPUT");
    assert_eq!(reason(&resp), "MEASURE_NOT_A_HIT");
    assert_eq!(app.count("partner_feedback").await, 0);
    app.gql(
        Some(&partner),
        REPORT,
        json!({"r": receipt_of(&r), "m": "PROCUREMENT_RESTRICT"}),
    )
    .await
    .data();
    assert_eq!(app.count("partner_feedback").await, 1);
    // The yearly report counts the one real restriction only.
    let year = api::domain::china_date(Utc::now()).format("%Y").to_string();
    let report = app
        .gql(
            Some(&app.auditor()),
            "query($y: Int!) { report(year: $y) { totals { feedback { measureCode count } } } }",
            json!({"y": year.parse::<i32>().unwrap()}),
        )
        .await;
    assert_eq!(
        report.data()["report"]["totals"]["feedback"],
        json!([{"measureCode": "PROCUREMENT_RESTRICT", "count": 1}])
    );
}

const CHANGES: &str = "query($a: String) { changes(after: $a, first: 100) {
  edges { node { kind listingId } } pageInfo { endCursor } } }";

/// 5. A withdrawn proposal was never on a list: it never appears in the feed.
async fn withdrawn_proposals_are_not_in_the_feed(app: TestApp) {
    let (_, id) = proposed(&app, 506, "2026-03-02").await;
    app.gql(
        Some(&app.admin()),
        "mutation($i: WithdrawListingInput!) { withdrawListing(input: $i) { status } }",
        json!({"i": {"id": id, "expectedVersion": 1, "reason": "陈述申辩理由成立"}}),
    )
    .await
    .data();
    let partner = app.partner("mirror-1", &[Domain::Procurement]).await;
    let feed = app.gql(Some(&partner), CHANGES, json!({})).await;
    assert_eq!(feed.data()["changes"]["edges"], json!([]), "{}", feed.body);
    // A decided listing is in it.
    let (_, decided) = proposed(&app, 507, "2026-03-02").await;
    decide(&app, &app.admin(), &decided, 1, "2026-03-16", None)
        .await
        .data();
    let feed = app.gql(Some(&partner), CHANGES, json!({})).await;
    let edges = feed.data()["changes"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 1, "{edges:?}");
    assert_eq!(edges[0]["node"]["listingId"], decided);
}

/// 6. Approving a repair changes the list: subscribers hear of it at once, not at the
///    next poll (the poll is set to a minute here, so only the notification can deliver).
async fn repair_decisions_reach_subscribers_at_once(app: TestApp) {
    let code = valid_code("441802", 508);
    app.create_operator(&code, "清远修复有限公司").await;
    // Listed 13 months ago through the mutations, so the repair is eligible.
    let effective = Utc::now() - Duration::days(400);
    let date = api::domain::china_date(effective).to_string();
    let p = propose(&app, &app.admin(), &code, &date).await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    decide(&app, &app.admin(), &id, 1, &date, Some(effective))
        .await
        .data();
    let statement = json!({"affirmed": true, "note": "已履行"});
    let today = api::domain::china_date(Utc::now()).to_string();
    let doc = |kind: &str| json!({"kind": kind, "fileName": format!("{kind}.pdf"), "sha256": "a".repeat(64)});
    let submitted = app
        .gql(
            Some(&app.admin()),
            "mutation($i: SubmitRepairApplicationInput!) { submitRepairApplication(input: $i) { id status version } }",
            json!({"i": {"listingId": id, "receivedDate": today,
                "documents": [doc("REPAIR_APPLICATION"), doc("CREDIT_COMMITMENT"), doc("LEGAL_STATUS_PROOF"), doc("PERFORMANCE_PROOF")],
                "statements": {"obligationsPerformed": statement, "harmCorrected": statement, "statutoryRestrictionEnded": statement}}}),
        )
        .await;
    let application = &submitted.data()["submitRepairApplication"];
    assert_eq!(application["status"], "PENDING", "{}", submitted.body);

    let partner = app
        .partner("subscriber-repair", &[Domain::Procurement])
        .await;
    let mut request = app.ws_url("/graphql/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {partner}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe",
               "payload": {"query": "subscription { registryChanged { kind listingId inForce } }"}})
        .to_string(),
    ))
    .await
    .unwrap();
    // Let the subscription start before the change is committed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.gql(
        Some(&app.admin()),
        "mutation($id: ID!, $v: Int!) { decideRepairApplication(id: $id, expectedVersion: $v, approve: true, reason: \"符合提前移出条件\") { status } }",
        json!({"id": application["id"], "v": application["version"]}),
    )
    .await
    .data();
    // The first text message (pings and pongs are not events).
    let next_text = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("the subscription ended: {other:?}"),
            }
        }
    };
    let text = tokio::time::timeout(std::time::Duration::from_secs(5), next_text)
        .await
        .expect("the repair reaches the subscriber without waiting for the poll");
    let event: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["type"], "next", "{event}");
    let change = &event["payload"]["data"]["registryChanged"];
    assert_eq!(change["kind"], "REPAIRED");
    assert_eq!(change["listingId"], id);
    assert_eq!(change["inForce"], false);
}

fn slow_feed_poll(settings: &mut api::config::Settings) {
    settings.jobs.feed_poll_ms = 60_000;
}

/// 7. A correction obeys the date and period rules of proposing and deciding.
async fn corrections_obey_the_date_and_period_rules(app: TestApp) {
    let (_, id) = proposed(&app, 509, "2026-03-02").await;
    let d = decide_without_waiver(&app, &id, "2026-03-16", None).await;
    let version = d.data()["decideListing"]["version"].as_i64().unwrap();
    let correct = |changes: Value| {
        let mut input = json!({"id": id, "expectedVersion": version, "reason": "更正录入错误"});
        for (k, v) in changes.as_object().unwrap() {
            input[k] = v.clone();
        }
        let app = &app;
        async move {
            app.gql(
                Some(&app.admin()),
                "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version expiresAt } }",
                json!({"i": input}),
            )
            .await
        }
    };
    for (changes, expected) in [
        // Past the input guard's year range (OUT_OF_RANGE) or past the 240-month cap.
        (json!({"expiresAt": "9999-12-31T00:00:00Z"}), "OUT_OF_RANGE"),
        (
            json!({"expiresAt": "2100-01-01T00:00:00Z"}),
            "PERIOD_OUT_OF_RANGE",
        ),
        (json!({"decisionDate": "2030-01-01"}), "IN_FUTURE"),
        (json!({"penaltyDate": "2031-01-01"}), "IN_FUTURE"),
        (json!({"decisionDate": "2026-03-05"}), "DEFENCE_PERIOD_OPEN"),
        (json!({"decisionDate": "2026-04-01"}), "DATE_ORDER"),
        // An end before now takes a listing in force off the list: that is repair's or
        // revocation's to do.
        (
            json!({"expiresAt": "2026-06-01T00:00:00Z"}),
            "INVALID_TRANSITION",
        ),
    ] {
        let resp = correct(changes.clone()).await;
        resp.assert_error("BAD_USER_INPUT");
        assert_eq!(reason(&resp), expected, "{changes}: {}", resp.body);
    }
    let l = app
        .gql(
            Some(&app.admin()),
            "query($id: ID!) { listing(id: $id) { version expiresAt } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(l.data()["listing"]["version"], version);
    assert_eq!(
        l.data()["listing"]["expiresAt"],
        "2029-03-15T16:00:00+00:00"
    );
    // A longer statutory period is still a valid correction.
    let ok = correct(json!({"expiresAt": "2031-03-15T16:00:00Z"})).await;
    assert_eq!(
        ok.data()["correctListing"]["expiresAt"],
        "2031-03-15T16:00:00+00:00"
    );
}

/// 8. Only the city (441800) or no region administers the whole registry.
async fn only_the_city_administers_the_registry(app: TestApp) {
    let upsert = "mutation { upsertViolationCategory(code: \"RULES_TEST\", name: \"测试\", article: \"第五条\") { code } }";
    for region in ["441900", "000000", "441802"] {
        let token = app.token_for(TokenRequest {
            subject: format!("admin-{region}"),
            role: Role::Admin,
            domains: Vec::new(),
            region: Some(region.into()),
            ttl: chrono::Duration::hours(1),
        });
        app.gql(Some(&token), upsert, json!({}))
            .await
            .assert_error("FORBIDDEN");
        app.gql(
            Some(&token),
            "mutation { registerPartner(input: {subject: \"rules-p\", name: \"p\", domains: [BIDDING]}) { subject } }",
            json!({}),
        )
        .await
        .assert_error("FORBIDDEN");
    }
    assert_eq!(app.count("partners").await, 0);
    let city = app.region_admin("441800");
    app.gql(Some(&city), upsert, json!({})).await.data();
}

/// Reloading a year's notice replaces its exceptions whole: a day the corrected notice
/// drops is an ordinary day again, also where the notice reached into the next year; a
/// neighbouring notice's days stay.
async fn a_reloaded_calendar_year_replaces_its_notice(app: TestApp) {
    let load = |year: i32, days: Value| {
        let app = &app;
        async move {
            app.gql(
                Some(&app.admin()),
                "mutation($y: Int!, $d: [CalendarDayInput!]!) { loadCalendarYear(year: $y, source: \"国务院办公厅通知\", days: $d) { year } }",
                json!({"y": year, "d": days}),
            )
            .await
            .data();
        }
    };
    let after = |from: &'static str, days: i32| {
        let app = &app;
        async move {
            let r = app
                .gql(
                    Some(&app.admin()),
                    "query($f: NaiveDate!, $n: Int!) { addWorkingDays(from: $f, days: $n) }",
                    json!({"f": from, "n": days}),
                )
                .await;
            r.data()["addWorkingDays"].as_str().unwrap().to_string()
        }
    };
    let holiday = |d: &str| json!({"date": d, "kind": "HOLIDAY", "name": "国庆节"});
    let mut first: Vec<Value> = [
        "2030-10-01",
        "2030-10-02",
        "2030-10-03",
        "2030-10-04",
        "2030-10-07",
    ]
    .into_iter()
    .map(holiday)
    .collect();
    first.push(json!({"date": "2030-09-29", "kind": "WORKDAY", "name": "国庆节"}));
    // The 2030 notice reaches into 2031 (as the 2023 notice names 2022-12-31).
    first.push(json!({"date": "2031-01-01", "kind": "HOLIDAY", "name": "元旦"}));
    load(2030, Value::Array(first)).await;
    assert_eq!(after("2030-09-28", 1).await, "2030-09-29");
    assert_eq!(after("2030-09-30", 1).await, "2030-10-08");
    // The 2031 notice leaves the 2030 notice's day alone.
    load(
        2031,
        json!([{"date": "2031-01-02", "kind": "HOLIDAY", "name": "元旦"}]),
    )
    .await;
    assert_eq!(after("2030-12-31", 1).await, "2031-01-03");

    // The corrected 2030 notice: only 1 October.
    load(2030, json!([holiday("2030-10-01")])).await;
    assert_eq!(after("2030-09-30", 1).await, "2030-10-02");
    assert_eq!(after("2030-09-28", 1).await, "2030-09-30");
    assert_eq!(after("2030-12-31", 1).await, "2031-01-01");
    assert_eq!(after("2031-01-01", 1).await, "2031-01-03");
    assert_eq!(
        app.count_where("calendar_days", "notice_year = 2030").await,
        1
    );
    // The shipped calendar's days carry their notice's year, across the year's end too.
    assert_eq!(
        app.count_where("calendar_days", "day = '2022-12-31' AND notice_year = 2023")
            .await,
        1
    );
    assert_eq!(
        app.count_where("calendar_days", "notice_year IS NULL")
            .await,
        0
    );
}

/// 9. A corrected end may fix an over-long record, never cut a listing in force below
///    the list's period counted from its start (an early removal in all but name).
async fn a_correction_keeps_the_lists_period(app: TestApp) {
    let (_, id) = proposed(&app, 512, "2026-03-02").await;
    let d = decide_without_waiver(&app, &id, "2026-03-16", None).await;
    let mut version = d.data()["decideListing"]["version"].as_i64().unwrap();
    let correct = |version: i64, end: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.gql(
                Some(&app.admin()),
                "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version expiresAt } }",
                json!({"i": {"id": id, "expectedVersion": version, "reason": "期限更正", "expiresAt": end}}),
            )
            .await
        }
    };
    let a_minute_from_now = (app.state.clock.now() + Duration::minutes(1)).to_rfc3339();
    // 36 months from 2026-03-16 (Beijing) end at 2029-03-15T16:00Z.
    for end in [a_minute_from_now, "2029-03-14T16:00:00Z".to_string()] {
        let resp = correct(version, end.clone()).await;
        resp.assert_error("BAD_USER_INPUT");
        assert_eq!(reason(&resp), "PERIOD_OUT_OF_RANGE", "{end}: {}", resp.body);
        assert_eq!(
            resp.body["errors"][0]["extensions"]["details"]["field"],
            "expiresAt"
        );
    }
    for end in ["2031-03-15T16:00:00Z", "2029-03-15T16:00:00Z"] {
        let ok = correct(version, end.to_string()).await;
        assert_eq!(
            ok.data()["correctListing"]["expiresAt"],
            end.replace('Z', "+00:00")
        );
        version = ok.data()["correctListing"]["version"].as_i64().unwrap();
    }
}

/// `days` days after `from` that are Monday to Friday.
fn weekdays_after(from: chrono::NaiveDate, days: u32) -> chrono::NaiveDate {
    use chrono::{Datelike, Weekday};
    let mut day = from;
    let mut left = days;
    while left > 0 {
        day = day.succ_opt().unwrap();
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

/// 10. A revocation and a repair application are legal acts: recorded even when their
///     bookkeeping deadline reaches into a year whose holiday notice is not loaded yet.
///     The deadline is counted on the weekday rule there, and says so.
async fn legal_acts_do_not_wait_for_next_years_calendar(app: TestApp) {
    use chrono::{Datelike, TimeZone};
    let clock = &app.state.clock;
    let admin = app.admin();
    let since = clock.now() - Duration::days(400);
    let (code, revoked, version) = super::listings::listed(&app, "441802", 513, since).await;
    let (_, repaired, _) = super::listings::listed(&app, "441802", 514, since).await;
    let (_, later, later_version) = super::listings::listed(&app, "441802", 515, since).await;
    // A few days before the year's end, with no notice for the next year.
    let year = api::domain::china_date(clock.now()).year();
    app.sql(&format!("DELETE FROM calendar_years WHERE year > {year}"))
        .await;
    let dec_30 = Utc.with_ymd_and_hms(year, 12, 30, 2, 0, 0).unwrap();
    if dec_30 > clock.now() {
        clock.advance(dec_30 - clock.now());
    }
    let today = api::domain::china_date(clock.now());
    let revoke = |id: String, version: i64| {
        let app = &app;
        async move {
            app.gql(
                Some(&app.admin()),
                "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { status publicityStopDeadline publicityStopDeadlineProvisional } }",
                json!({"i": {"id": id, "expectedVersion": version, "ground": "PENALTY_REVOKED",
                             "revocationDocNo": "清市监撤〔2026〕9号", "reason": "行政复议撤销"}}),
            )
            .await
        }
    };
    let r = revoke(revoked.clone(), version).await;
    let r = &r.data()["revokeListing"];
    assert_eq!(r["status"], "REVOKED");
    assert_eq!(
        r["publicityStopDeadline"],
        weekdays_after(today, 3).to_string()
    );
    assert_eq!(r["publicityStopDeadlineProvisional"], true);
    let answer = check(&app, &admin, &code, "PROCUREMENT", None).await;
    assert_eq!(answer.data()["check"]["decision"], "CLEAR");

    let kinds = [
        "REPAIR_APPLICATION",
        "CREDIT_COMMITMENT",
        "LEGAL_STATUS_PROOF",
        "PERFORMANCE_PROOF",
    ];
    let documents: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| json!({"kind": k, "fileName": format!("{i}.pdf"), "sha256": format!("{:064x}", i + 1)}))
        .collect();
    let a = app
        .gql(
            Some(&admin),
            "mutation($i: SubmitRepairApplicationInput!) { submitRepairApplication(input: $i) { id status dueDate dueDateProvisional } }",
            json!({"i": {"listingId": repaired, "receivedDate": today, "documents": documents,
                         "statements": {"obligationsPerformed": {"affirmed": true}, "harmCorrected": {"affirmed": true},
                                        "statutoryRestrictionEnded": {"affirmed": true}}}}),
        )
        .await;
    let a = a.data()["submitRepairApplication"].clone();
    assert_eq!(a["status"], "PENDING", "{a}");
    assert_eq!(a["dueDate"], weekdays_after(today, 15).to_string());
    assert_eq!(a["dueDateProvisional"], true);

    // The notice arrives: the deadlines counted without it still say so; one counted
    // with it does not.
    app.gql(
        Some(&admin),
        "mutation($y: Int!, $d: [CalendarDayInput!]!) { loadCalendarYear(year: $y, source: \"国务院办公厅通知\", days: $d) { year } }",
        json!({"y": year + 1, "d": [{"date": format!("{}-01-01", year + 1), "kind": "HOLIDAY", "name": "元旦"}]}),
    )
    .await
    .data();
    let l = app
        .gql(
            Some(&admin),
            "query($id: ID!, $a: ID!) { listing(id: $id) { publicityStopDeadlineProvisional } repairApplication(id: $a) { dueDateProvisional } }",
            json!({"id": revoked, "a": a["id"]}),
        )
        .await;
    assert_eq!(
        l.data()["listing"]["publicityStopDeadlineProvisional"],
        true
    );
    assert_eq!(l.data()["repairApplication"]["dueDateProvisional"], true);
    let r = revoke(later, later_version).await;
    assert_eq!(
        r.data()["revokeListing"]["publicityStopDeadlineProvisional"],
        false
    );
}

on_both_backends!(
    legal_acts_do_not_wait_for_next_years_calendar,
    a_correction_keeps_the_lists_period,
    a_reloaded_calendar_year_replaces_its_notice,
    a_clear_answer_names_no_hits,
    a_listing_takes_effect_on_its_decision,
    an_expired_listing_cannot_be_revoked,
    feedback_needs_a_hit_measure,
    withdrawn_proposals_are_not_in_the_feed,
    corrections_obey_the_date_and_period_rules,
    only_the_city_administers_the_registry,
);

tests::on_both_backends_with!(repair_decisions_reach_subscribers_at_once => slow_feed_poll);
