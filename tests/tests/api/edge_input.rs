//! Bad input refused at the edge (issue 13, rows 4, 5, 6, 9 and 10): control characters,
//! instants and dates outside the configured years, a repeated calendar date and a
//! token with critical header extensions are user errors, never INTERNAL, and nothing
//! is stored; one caller's bad `asOf` never fails another caller's check; LIKE
//! wildcards in search text match themselves; a body that trickles in is cut off.

use api::domain::measures::Domain;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tests::{Backend, TestApp, on_both_backends, on_both_backends_with, valid_code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROPOSE: &str =
    "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id status } }";
const UPSERT: &str = "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }";
const CHECK: &str = "query($u: String!, $t: DateTime) { check(uscc: $u, domain: PROCUREMENT, asOf: $t) { decision } }";

/// Everything a refused request could have written.
async fn stored(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "operators",
        "listings",
        "audit_events",
        "check_records",
        "calendar_days",
    ] {
        counts.push(app.count(table).await);
    }
    counts
}

fn assert_refused(answer: &tests::Gql, field: &str, reason: &str, what: &str) {
    assert_eq!(
        answer.error_code(),
        Some("BAD_USER_INPUT"),
        "{what}: {}",
        answer.body
    );
    let details = &answer.body["errors"][0]["extensions"]["details"];
    assert_eq!(details["field"], field, "{what}: {}", answer.body);
    assert_eq!(details["reason"], reason, "{what}: {}", answer.body);
    assert!(
        answer.error_message().contains(field),
        "{what}: the message names the field: {}",
        answer.body
    );
}

fn proposal(uscc: &str) -> Value {
    json!({
        "uscc": uscc, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
        "penaltyDocNo": "清市监罚〔2026〕12号", "penaltyDate": "2026-02-02",
        "violationCategory": "CONSUMER_HARM", "reason": "收取预付款后卷款跑路",
        "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": "2026-02-12",
    })
}

/// Row 5: a NUL byte or a year-0 instant in any input, given inline or as a variable,
/// is BAD_USER_INPUT on both backends and nothing is stored (PostgreSQL answered
/// INTERNAL, SQLite stored it).
async fn nul_bytes_and_year_zero_are_refused_everywhere_and_nothing_is_stored(app: TestApp) {
    let admin = app.admin();
    let partner = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let code = valid_code("441802", 1);
    app.create_operator(&code, "清远市某某食品有限公司").await;
    let before = stored(&app).await;

    // The public list, anonymously: inline and as a variable.
    let q = r#"{ publicListings(search: "a\u0000b") { edges { cursor } } }"#;
    let answer = app.gql(None, q, json!({})).await;
    assert_refused(
        &answer,
        "publicListings(search)",
        "CONTROL_CHARACTER",
        "inline search",
    );
    let q = "query($s: String) { publicListings(search: $s) { edges { cursor } } }";
    let answer = app.gql(None, q, json!({"s": "清远\u{0}"})).await;
    assert_refused(
        &answer,
        "publicListings(search)",
        "CONTROL_CHARACTER",
        "search variable",
    );

    // A check at year 0, inline and as a variable; a batch too.
    let q = format!(
        r#"{{ check(uscc: "{code}", domain: PROCUREMENT, asOf: "0000-01-01T00:00:00Z") {{ decision }} }}"#
    );
    let answer = app.gql(Some(&partner), &q, json!({})).await;
    assert_refused(&answer, "check(asOf)", "OUT_OF_RANGE", "inline asOf");
    let answer = app
        .gql(
            Some(&partner),
            CHECK,
            json!({"u": code, "t": "0000-01-01T00:00:00Z"}),
        )
        .await;
    assert_refused(&answer, "check(asOf)", "OUT_OF_RANGE", "asOf variable");
    // A leap second: chrono keeps it apart from the next minute, PostgreSQL stores that
    // minute, so its receipt would not match its record.
    let answer = app
        .gql(
            Some(&partner),
            CHECK,
            json!({"u": code, "t": "2026-01-15T10:20:60Z"}),
        )
        .await;
    assert_refused(&answer, "check(asOf)", "OUT_OF_RANGE", "leap-second asOf");
    let answer = app
        .gql(
            Some(&partner),
            CHECK,
            json!({"u": format!("{code}\u{0}"), "t": null}),
        )
        .await;
    assert_refused(&answer, "check(uscc)", "CONTROL_CHARACTER", "uscc with NUL");
    let q = "query($t: DateTime) { checkBatch(usccs: [\"91110000101623741K\"], domain: PROCUREMENT, asOf: $t) { decision } }";
    let answer = app
        .gql(Some(&partner), q, json!({"t": "0001-12-31T00:00:00Z"}))
        .await;
    assert_refused(&answer, "checkBatch(asOf)", "OUT_OF_RANGE", "batch asOf");

    // proposeListing: a NUL in a text field, a year-0 date, a date past the range.
    for (field, value, reason) in [
        (
            "authority",
            json!("清远市\u{0}市场监督管理局"),
            "CONTROL_CHARACTER",
        ),
        ("reason", json!("卷款\u{0}跑路"), "CONTROL_CHARACTER"),
        ("penaltyDate", json!("0000-01-01"), "OUT_OF_RANGE"),
        ("noticeDate", json!("2201-01-01"), "OUT_OF_RANGE"),
    ] {
        let mut input = proposal(&code);
        input[field] = value;
        let answer = app.gql(Some(&admin), PROPOSE, json!({"i": input})).await;
        assert_refused(
            &answer,
            &format!("proposeListing(input.{field})"),
            reason,
            field,
        );
    }

    // upsertOperator: a NUL in the name, a line break in a single-line field.
    let answer = app
        .gql(
            Some(&admin),
            UPSERT,
            json!({"i": {"uscc": valid_code("441802", 2), "name": "某某\u{0}公司"}}),
        )
        .await;
    assert_refused(
        &answer,
        "upsertOperator(input.name)",
        "CONTROL_CHARACTER",
        "name",
    );
    let answer = app
        .gql(
            Some(&admin),
            UPSERT,
            json!({"i": {"uscc": valid_code("441802", 2), "name": "某某公司", "address": "清远\n某路"}}),
        )
        .await;
    assert_refused(
        &answer,
        "upsertOperator(input.address)",
        "CONTROL_CHARACTER",
        "address",
    );

    // A date in loadCalendarYear's list, and an oversized string.
    let q = "mutation($d: [CalendarDayInput!]!) { loadCalendarYear(year: 2030, source: \"国务院办公厅通知\", days: $d) { year } }";
    let answer = app
        .gql(
            Some(&admin),
            q,
            json!({"d": [{"date": "2030-01-01", "kind": "HOLIDAY", "name": "元旦"},
                         {"date": "0000-01-02", "kind": "HOLIDAY", "name": "元旦"}]}),
        )
        .await;
    assert_refused(
        &answer,
        "loadCalendarYear(days[1].date)",
        "OUT_OF_RANGE",
        "calendar day",
    );
    let answer = app
        .gql(
            None,
            "query($s: String) { verifyReceipt(receipt: $s) { valid } }",
            // Past the receipt's own cap (a receipt is not held to max_string_chars:
            // input_guard::OWN_CAPS).
            json!({"s": "x".repeat(api::tlog::proof::MAX_PROOF_TEXT + 1)}),
        )
        .await;
    assert_refused(
        &answer,
        "verifyReceipt(receipt)",
        "TOO_LONG",
        "oversized receipt",
    );

    assert_eq!(
        stored(&app).await,
        before,
        "a refused request stores nothing"
    );

    // The controls: the same inputs without the bad value are accepted, and prose keeps
    // its line breaks.
    let mut input = proposal(&code);
    input["reason"] = json!("收取预付款后\n卷款跑路");
    app.gql(Some(&admin), PROPOSE, json!({"i": input}))
        .await
        .data();
    app.gql(
        Some(&partner),
        CHECK,
        json!({"u": code, "t": "2026-01-01T00:00:00Z"}),
    )
    .await
    .data();
    app.gql(
        None,
        "query($s: String) { publicListings(search: $s) { edges { cursor } } }",
        json!({"s": "清远市"}),
    )
    .await
    .data();
}

/// Row 4: while one partner loops `check(asOf: year 0)`, another partner's concurrent
/// checks all succeed (on PostgreSQL they share lookup statements), and the bad ones
/// are BAD_USER_INPUT, never INTERNAL.
async fn a_bad_as_of_never_fails_another_partners_check(app: TestApp) {
    let good = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let bad = app.partner("careless-system", &[Domain::Procurement]).await;
    let code = valid_code("441802", 3);
    app.create_operator(&code, "清远市守信有限公司").await;
    let app = &app;
    let (good, bad, code) = (&good, &bad, &code);
    for round in 0..4 {
        let goods = (0..24).map(|_| async move {
            app.gql(Some(good), CHECK, json!({"u": code, "t": null}))
                .await
        });
        let bads = (0..24).map(|_| async move {
            app.gql(
                Some(bad),
                CHECK,
                json!({"u": code, "t": "0000-01-01T00:00:00Z"}),
            )
            .await
        });
        let (goods, bads) = tokio::join!(join_all(goods), join_all(bads));
        for answer in goods {
            assert_eq!(
                answer.data()["check"]["decision"],
                "CLEAR",
                "round {round}: {}",
                answer.body
            );
        }
        for answer in bads {
            answer.assert_error("BAD_USER_INPUT");
        }
    }
    assert_eq!(
        app.count_where("check_records", "subject = 'gov-procurement'")
            .await,
        4 * 24
    );
    assert_eq!(
        app.count_where("check_records", "subject = 'careless-system'")
            .await,
        0
    );
}

/// Row 4, behind the edge: should a question that breaks the shared statement still
/// reach it, its group is answered one by one, so only that question fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_shared_lookup_is_answered_one_by_one() {
    let app = tests::spawn_app(Backend::Postgres).await;
    let lookups = app
        .state
        .check_lookups
        .as_ref()
        .expect("PostgreSQL shares lookups by default");
    let code = valid_code("441802", 4);
    app.create_operator(&code, "清远市守信有限公司").await;
    let now = chrono::Utc::now();
    // A year PostgreSQL refuses (0000 is 1 BC): the edge would refuse it, this does not.
    let year_zero = chrono::NaiveDate::from_ymd_opt(0, 6, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    for round in 0..3 {
        let asks = (0..96).map(|i| {
            let as_of = if i % 3 == 0 { year_zero } else { now };
            let code = &code;
            async move { (as_of, lookups.knows(code, as_of, Domain::Procurement).await) }
        });
        for (as_of, answer) in join_all(asks).await {
            if as_of == now {
                assert!(
                    matches!(answer, Ok(true)),
                    "round {round}: a good question failed: {:?}",
                    answer.err().map(|e| e.to_string())
                );
            } else {
                assert!(answer.is_err(), "round {round}: year 0 answered");
            }
        }
    }
}

/// Row 9: `%`, `_` and `\` in search text match only themselves.
async fn like_wildcards_in_search_text_match_themselves(app: TestApp) {
    let admin = app.admin();
    let start = chrono::Utc::now() - chrono::Duration::days(10);
    let end = chrono::Utc::now() + chrono::Duration::days(1000);
    let names = [
        (1, "百分之百%食品有限公司"),
        (2, "下划_线贸易有限公司"),
        (3, "反斜\\杠科技有限公司"),
        (4, "普通建材有限公司"),
    ];
    for (serial, name) in names {
        let code = valid_code("441802", 10 + serial);
        app.create_operator(&code, name).await;
        app.insert_listing(&code, "SAMR_SERIOUS_DISHONEST", start, end, None, &[])
            .await;
    }
    let public =
        "query($s: String) { publicListings(search: $s) { edges { node { operatorName } } } }";
    let staff = "query($s: String) { listings(filter: {operator: $s}) { edges { node { operator { name } } } } }";
    // Public searches need three characters (the name index works on trigrams, see
    // cost.rs); staff filters take shorter text too.
    for (search, expected) in [
        ("百%食", vec!["百分之百%食品有限公司"]),
        ("划_线", vec!["下划_线贸易有限公司"]),
        ("斜\\杠", vec!["反斜\\杠科技有限公司"]),
        ("%_%", vec![]),
        ("%", vec!["百分之百%食品有限公司"]),
        ("_", vec!["下划_线贸易有限公司"]),
        ("\\", vec!["反斜\\杠科技有限公司"]),
        ("%_", vec![]),
        ("有限公司", names.iter().map(|(_, n)| *n).collect()),
    ] {
        let answer = app.gql(None, public, json!({"s": search})).await;
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        if search.chars().count() < 3 {
            answer.assert_error("BAD_USER_INPUT");
            assert_eq!(
                answer.body["errors"][0]["extensions"]["details"]["reason"],
                "SEARCH_TOO_SHORT"
            );
        } else {
            let mut found: Vec<String> = answer.data()["publicListings"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["operatorName"].as_str().unwrap().to_string())
                .collect();
            found.sort();
            assert_eq!(found, want, "publicListings(search: {search:?})");
        }

        let answer = app.gql(Some(&admin), staff, json!({"s": search})).await;
        let mut found: Vec<String> = answer.data()["listings"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["operator"]["name"].as_str().unwrap().to_string())
            .collect();
        found.sort();
        assert_eq!(found, want, "listings(filter: {{operator: {search:?}}})");
    }
}

/// Row 10: the same date twice in loadCalendarYear is BAD_USER_INPUT naming the date.
async fn a_repeated_calendar_date_is_a_user_error(app: TestApp) {
    let before = stored(&app).await;
    let years = app.count("calendar_years").await;
    let q = "mutation($d: [CalendarDayInput!]!) { loadCalendarYear(year: 2030, source: \"国务院办公厅关于2030年部分节假日安排的通知\", days: $d) { year } }";
    let days = json!([
        {"date": "2030-01-01", "kind": "HOLIDAY", "name": "元旦"},
        {"date": "2030-02-04", "kind": "HOLIDAY", "name": "春节"},
        {"date": "2030-01-01", "kind": "HOLIDAY", "name": "元旦"},
    ]);
    let answer = app.gql(Some(&app.admin()), q, json!({"d": days})).await;
    answer.assert_error("BAD_USER_INPUT");
    assert!(
        answer.error_message().contains("2030-01-01"),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.body["errors"][0]["extensions"]["details"]["date"],
        "2030-01-01"
    );
    assert_eq!(stored(&app).await, before);
    assert_eq!(app.count("calendar_years").await, years);
    // The control: without the repetition the year loads.
    let days = json!([
        {"date": "2030-01-01", "kind": "HOLIDAY", "name": "元旦"},
        {"date": "2030-02-04", "kind": "HOLIDAY", "name": "春节"},
    ]);
    app.gql(Some(&app.admin()), q, json!({"d": days}))
        .await
        .data();
}

/// Row 10: a token whose header lists critical extensions is refused (RFC 7515 4.1.11).
async fn a_token_with_a_crit_header_is_refused(app: TestApp) {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let pem = std::fs::read_to_string(app.state.settings.signing_key_file()).unwrap();
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    let now = chrono::Utc::now().timestamp();
    let claims = api::auth::tokens::Claims {
        sub: "admin-city".into(),
        role: "admin".into(),
        domains: Vec::new(),
        region: None,
        jti: uuid::Uuid::new_v4().to_string(),
        iss: app.state.settings.auth.issuer.clone(),
        aud: app.state.settings.auth.audience.clone(),
        iat: now,
        nbf: Some(now),
        exp: now + 3600,
    };
    let token = |crit: Option<Vec<String>>| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.crit = crit;
        jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
    };
    let q = "{ partners { subject } }";
    // The control: the same token without `crit` is accepted.
    app.gql(Some(&token(None)), q, json!({})).await.data();
    for crit in [vec!["exp-v2".to_string()], Vec::new()] {
        let answer = app
            .gql(Some(&token(Some(crit.clone()))), q, json!({}))
            .await;
        assert_eq!(answer.status, 401, "crit {crit:?}: {}", answer.body);
        answer.assert_error("UNAUTHENTICATED");
    }
}

fn one_second_body_timeout(settings: &mut api::config::Settings) {
    settings.limits.body_read_timeout_ms = 1_000;
}

/// Row 6: a body sent a byte a second is answered 408 REQUEST_TIMEOUT within the
/// configured time (1 s here), and the connection is closed.
async fn a_trickling_body_is_cut_off(app: TestApp) {
    let address = app.address.trim_start_matches("http://").to_string();
    let body = br#"{"query":"{ publicListings(first: 1) { edges { cursor } } }"}"#;
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // One byte a second, for at most 8 s (the whole body would take a minute).
    let trickle = tokio::spawn(async move {
        for byte in body.iter().take(8) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    trickle.abort();
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "the server kept reading the body: {text:?}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("REQUEST_TIMEOUT"), "{text:?}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
    // A body that arrives in time is still answered.
    app.gql(
        None,
        "{ publicListings(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await
    .data();
}

/// A `checkRecords` cursor is base64, so the input guard never sees what it holds: a
/// forged one with a NUL in its id or an instant near year -5000 failed the page query on
/// PostgreSQL (INTERNAL). Every forged cursor is BAD_USER_INPUT with the message of any
/// other foreign cursor, on both backends, and a real cursor still pages on.
async fn forged_check_record_cursors_are_bad_input(app: TestApp) {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let partner = app.partner("gov-procurement", &[Domain::Procurement]).await;
    let code = valid_code("441802", 1);
    app.create_operator(&code, "清远市某某食品有限公司").await;
    for _ in 0..2 {
        let answer = app.gql(Some(&partner), CHECK, json!({"u": code})).await;
        answer.data();
    }
    let records = "query($a: String) { checkRecords(first: 1, after: $a) { edges { cursor } pageInfo { hasNextPage endCursor } } }";
    let first = app.gql(Some(&partner), records, json!({})).await;
    let end = first.data()["checkRecords"]["pageInfo"]["endCursor"]
        .as_str()
        .map(String::from)
        .expect("a cursor");
    let next = app.gql(Some(&partner), records, json!({"a": end})).await;
    assert_eq!(
        next.data()["checkRecords"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let id = uuid::Uuid::now_v7().to_string();
    for forged in [
        b64("1700000000000000:a\u{0}b"),
        b64(&format!("-220000000000000000:{id}")),
        b64(&format!("253402300800000000:{id}")),
        b64("1700000000000000:x"),
        b64(&format!("1700000000000000:{}", id.to_uppercase())),
    ] {
        let answer = app.gql(Some(&partner), records, json!({"a": forged})).await;
        assert_eq!(
            answer.error_code(),
            Some("BAD_USER_INPUT"),
            "{forged}: {}",
            answer.body
        );
        assert!(
            answer
                .error_message()
                .contains("not a cursor returned by checkRecords"),
            "{forged}: {}",
            answer.body
        );
    }
}

on_both_backends!(
    forged_check_record_cursors_are_bad_input,
    nul_bytes_and_year_zero_are_refused_everywhere_and_nothing_is_stored,
    a_bad_as_of_never_fails_another_partners_check,
    like_wildcards_in_search_text_match_themselves,
    a_repeated_calendar_date_is_a_user_error,
    a_token_with_a_crit_header_is_refused,
);

on_both_backends_with!(a_trickling_body_is_cut_off => one_second_body_timeout);
