//! Idempotency-Key: a retried mutation returns the first answer and changes nothing twice.

use serde_json::{Value, json};
use tests::{HttpAnswer, TestApp, on_both_backends};

const UPSERT: &str =
    "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id uscc name version } }";

fn upsert(uscc: &str, name: &str) -> Value {
    json!({ "query": UPSERT, "variables": { "i": { "uscc": uscc, "name": name } } })
}

async fn send(app: &TestApp, token: &str, body: &Value, key: &str) -> HttpAnswer {
    app.post_graphql(Some(token), body, &[("idempotency-key", key)])
        .await
}

async fn a_retry_returns_the_first_answer(app: TestApp) {
    let admin = app.admin();
    let code = tests::valid_code("441802", 11);
    let body = upsert(&code, "清远甲公司");
    let first = send(&app, &admin, &body, "key-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["data"]["upsertOperator"]["version"], 1);
    assert!(first.header("idempotent-replayed").is_none());

    // The same request again (re-serialised with its keys in another order).
    let reordered: Value = serde_json::from_str(&format!(
        r#"{{"variables": {{"i": {{"name": "清远甲公司", "uscc": "{code}"}}}}, "query": {}}}"#,
        serde_json::to_string(UPSERT).unwrap()
    ))
    .unwrap();
    for _ in 0..3 {
        let again = send(&app, &admin, &reordered, "key-1").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, first.body, "the first answer, unchanged");
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(app.count("operators").await, 1);
    assert_eq!(
        app.count("audit_events").await,
        1,
        "the mutation ran more than once"
    );

    // Without the key the same mutation runs again (an update: version 2).
    let unkeyed = app.post_graphql(Some(&admin), &body, &[]).await;
    assert_eq!(unkeyed.body["data"]["upsertOperator"]["version"], 2);
    assert_eq!(app.count("audit_events").await, 2);

    // Another key is another request.
    let other = send(&app, &admin, &body, "key-2").await;
    assert_eq!(other.body["data"]["upsertOperator"]["version"], 3);
}

async fn a_key_reused_for_another_request_is_refused(app: TestApp) {
    let admin = app.admin();
    let first = send(
        &app,
        &admin,
        &upsert(&tests::valid_code("441802", 12), "甲"),
        "k",
    )
    .await;
    assert_eq!(first.status, 200);
    let other = send(
        &app,
        &admin,
        &upsert(&tests::valid_code("441802", 13), "乙"),
        "k",
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.body);
    other.gql().assert_error("IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.count("operators").await, 1);
    assert_eq!(app.count("audit_events").await, 1);
}

async fn keys_belong_to_their_caller(app: TestApp) {
    let body = upsert(&tests::valid_code("441802", 14), "丙");
    let a = send(&app, &app.admin(), &body, "shared").await;
    assert_eq!(a.body["data"]["upsertOperator"]["version"], 1);
    // Another admin using the same key string runs its own request.
    let other_admin = app.token(api::auth::Role::Admin, "admin-2");
    let b = send(&app, &other_admin, &body, "shared").await;
    assert_eq!(b.status, 200);
    assert_eq!(b.body["data"]["upsertOperator"]["version"], 2);
    assert!(b.header("idempotent-replayed").is_none());
    // Each caller's retry gets its own first answer.
    let a_again = send(&app, &app.admin(), &body, "shared").await;
    assert_eq!(a_again.body, a.body);
    let b_again = send(&app, &other_admin, &body, "shared").await;
    assert_eq!(b_again.body, b.body);
    assert_eq!(app.count("audit_events").await, 2);
}

async fn refusals_are_replayed_too_and_bad_keys_refused(app: TestApp) {
    let admin = app.admin();
    // A definite refusal (bad input) is the answer for that key.
    let bad = upsert("91310115MA1H8R7C6D", "坏码");
    let first = send(&app, &admin, &bad, "bad-1").await;
    first.gql().assert_error("BAD_USER_INPUT");
    let again = send(&app, &admin, &bad, "bad-1").await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    for key in ["has space", &"k".repeat(256)] {
        let answer = send(
            &app,
            &admin,
            &upsert(&tests::valid_code("441802", 15), "丁"),
            key,
        )
        .await;
        assert_eq!(answer.status, 400, "{key}: {}", answer.body);
        answer.gql().assert_error("IDEMPOTENCY_KEY_INVALID");
    }
    assert_eq!(app.count("operators").await, 0);

    // Queries ignore the key (nothing to protect), and nothing is stored for them.
    let read = app
        .post_graphql(
            Some(&admin),
            &json!({ "query": "{ __typename }" }),
            &[("idempotency-key", "q-1")],
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(app.count_where("idempotency_keys", "key = 'q-1'").await, 0);
}

/// Two identical keyed requests at once: exactly one runs; the other gets its answer or
/// is told to retry (409 IDEMPOTENCY_KEY_IN_PROGRESS), and its retry gets the answer.
async fn concurrent_duplicates_run_once(app: TestApp) {
    let admin = app.admin();
    for round in 0..5u32 {
        let body = upsert(&tests::valid_code("441802", 100 + round), "并发公司");
        let key = format!("concurrent-{round}");
        let (a, b) = tokio::join!(
            send(&app, &admin, &body, &key),
            send(&app, &admin, &body, &key)
        );
        let mut answers = vec![a, b];
        for answer in &mut answers {
            if answer.status == 409 {
                answer.gql().assert_error("IDEMPOTENCY_KEY_IN_PROGRESS");
                assert_eq!(answer.header("retry-after"), Some("1"));
                // Real time: the other attempt is still running; this is the client's retry-after.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                *answer = send(&app, &admin, &body, &key).await;
            }
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        assert_eq!(answers[0].body, answers[1].body);
        assert_eq!(answers[0].body["data"]["upsertOperator"]["version"], 1);
    }
    assert_eq!(app.count("operators").await, 5);
    assert_eq!(app.count("audit_events").await, 5, "a duplicate ran twice");
}

/// A first attempt that died (its pending row outlived any request) and committed nothing
/// is run afresh by the retry; one that committed is reported, never run again.
async fn abandoned_attempts_are_recovered(app: TestApp) {
    let admin = app.admin();
    let subject = "admin:admin-city";
    let stale = chrono::Utc::now() - chrono::Duration::minutes(30);
    let stale = stale.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string();

    // (1) Died before committing: the retry runs it.
    let body = upsert(&tests::valid_code("441802", 21), "恢复甲");
    let hash = api::domain::idempotency::fingerprint(&body);
    app.sql(&format!(
        "INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at) VALUES ('{subject}', 'dead-1', '{hash}', '{{\"state\":\"pending\",\"request_id\":\"req-never-committed\"}}', '{stale}')"
    ))
    .await;
    let retry = send(&app, &admin, &body, "dead-1").await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["data"]["upsertOperator"]["version"], 1);
    let again = send(&app, &admin, &body, "dead-1").await;
    assert_eq!(again.body, retry.body);
    assert_eq!(app.count("audit_events").await, 1);

    // (2) Committed, then died before storing its answer: never run again.
    let body = upsert(&tests::valid_code("441802", 22), "恢复乙");
    let first = app.post_graphql(Some(&admin), &body, &[]).await;
    assert_eq!(first.status, 200);
    let request_id = first.header("x-request-id").unwrap().to_string();
    let hash = api::domain::idempotency::fingerprint(&body);
    app.sql(&format!(
        "INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at) VALUES ('{subject}', 'dead-2', '{hash}', '{{\"state\":\"pending\",\"request_id\":\"{request_id}\"}}', '{stale}')"
    ))
    .await;
    let events = app.count("audit_events").await;
    let retry = send(&app, &admin, &body, "dead-2").await;
    assert_eq!(retry.status, 409, "{}", retry.body);
    retry.gql().assert_error("IDEMPOTENCY_ANSWER_LOST");
    assert_eq!(app.count("audit_events").await, events, "it ran twice");

    // (3) Still running (young pending row): the retry is told to wait.
    let body = upsert(&tests::valid_code("441802", 23), "恢复丙");
    let hash = api::domain::idempotency::fingerprint(&body);
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00");
    app.sql(&format!(
        "INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at) VALUES ('{subject}', 'live-1', '{hash}', '{{\"state\":\"pending\",\"request_id\":\"req-running\"}}', '{now}')"
    ))
    .await;
    let retry = send(&app, &admin, &body, "live-1").await;
    assert_eq!(retry.status, 409);
    retry.gql().assert_error("IDEMPOTENCY_KEY_IN_PROGRESS");
}

/// Keys past their 24-hour retention are deleted; younger ones, answered or pending, stay.
async fn expired_keys_are_purged(app: TestApp) {
    let admin = app.admin();
    let body = upsert(&tests::valid_code("441802", 31), "清除甲");
    assert_eq!(send(&app, &admin, &body, "fresh").await.status, 200);
    // Written as the service writes instants (RFC 3339), so that SQLite, which compares
    // them as text, orders them as the service's own rows.
    let ago = |hours: i64| {
        (chrono::Utc::now() - chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    };
    let (old, young) = (ago(25), ago(23));
    for (key, at) in [("old-1", &old), ("old-2", &old), ("young", &young)] {
        app.sql(&format!(
            "INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at) VALUES ('admin:admin-city', '{key}', 'h', '{{\"state\":\"pending\",\"request_id\":\"r\"}}', '{at}')"
        ))
        .await;
    }
    let deleted = api::service::idempotency::purge_expired(&app.db, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(
        app.count("idempotency_keys").await,
        2,
        "fresh and young stay"
    );
    // The answered key still replays.
    let again = send(&app, &admin, &body, "fresh").await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

on_both_backends!(
    expired_keys_are_purged,
    a_retry_returns_the_first_answer,
    a_key_reused_for_another_request_is_refused,
    keys_belong_to_their_caller,
    refusals_are_replayed_too_and_bad_keys_refused,
    concurrent_duplicates_run_once,
    abandoned_attempts_are_recovered,
);
