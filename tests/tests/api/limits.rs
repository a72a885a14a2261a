//! Query limits: every refusal has its own code and a fitting HTTP status, none is a 500.

use api::config::{Profile, Settings};
use serde_json::{Value, json};
use tests::{
    Backend, INTROSPECTION_QUERY, TestApp, on_both_backends, on_both_backends_with, spawn_app_with,
};

/// Asserts a whole-request refusal: status, code, and no data.
fn assert_refused(answer: &tests::HttpAnswer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    answer.gql().assert_error(code);
    assert!(
        answer.body.get("data").is_none_or(Value::is_null),
        "{}",
        answer.body
    );
}

/// The media type whose status says whether the request failed as a whole (an
/// `application/json` client gets 200 for a request error: see `graphql_http.rs`).
const GRJ: (&str, &str) = ("accept", "application/graphql-response+json");

async fn query(app: &TestApp, token: Option<&str>, q: &str) -> tests::HttpAnswer {
    app.post_graphql(token, &json!({ "query": q }), &[GRJ])
        .await
}

/// GraphiQL is a browser's page.
async fn graphiql_page(app: &TestApp) -> reqwest::Response {
    app.client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

async fn oversized_bodies_are_refused(app: TestApp) {
    let padding = "x".repeat(300 * 1024);
    let body = json!({ "query": "{ __typename }", "variables": { "pad": padding } });
    let answer = app.post_graphql(None, &body, &[]).await;
    assert_refused(&answer, 413, "PAYLOAD_TOO_LARGE");
    // Chunked (no Content-Length): the cap holds while reading.
    assert_eq!(chunked_post_status(&app, 40, 8 * 1024).await, 413);
    assert_eq!(chunked_post_status(&app, 1, 64).await, 400);
}

/// Sends `chunks` chunks of `size` spaces to /graphql without a Content-Length (a
/// "body" of spaces is not a GraphQL request, so a small one gets 400); returns the status.
async fn chunked_post_status(app: &TestApp, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
        // The server may stop reading (and answer) before every chunk is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

async fn batches_are_bounded(app: TestApp) {
    let one = json!({ "query": "{ __typename }" });
    let ok = app
        .post_graphql(Some(&app.admin()), &json!([one.clone(), one.clone()]), &[])
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body[1]["data"]["__typename"], "QueryRoot");
    let too_many: Vec<Value> = (0..11).map(|_| one.clone()).collect();
    let refused = app
        .post_graphql(Some(&app.admin()), &json!(too_many), &[])
        .await;
    assert_refused(&refused, 400, "BATCH_TOO_LARGE");
}

async fn deep_queries_are_refused(app: TestApp) {
    // Thirteen levels of real fields (introspection is the only recursive part of the schema).
    let mut inner = String::from("name");
    for _ in 0..6 {
        inner = format!("fields {{ type {{ {inner} }} }}");
    }
    let q = format!("{{ __type(name: \"Operator\") {{ {inner} }} }}");
    let answer = query(&app, None, &q).await;
    assert_refused(&answer, 400, "QUERY_TOO_DEEP");
    assert!(answer.gql().error_message().contains("at most 12"));

    // Beyond the parser's recursion bound: refused before validation, same code.
    let q = format!("{}{}", "{ a ".repeat(40), "}".repeat(40));
    assert_refused(&query(&app, None, &q).await, 400, "QUERY_TOO_DEEP");
}

async fn complex_queries_are_refused(app: TestApp) {
    // No aliases and shallow, but 20 full pages of a three-field selection (the cost
    // counts rows: see cost.rs for the calibration).
    let q = format!(
        "{{ {} }}",
        "...on QueryRoot { listings(first: 500) { edges { node { id } } } } ".repeat(20)
    );
    let answer = query(&app, Some(&app.admin()), &q).await;
    assert_refused(&answer, 400, "QUERY_TOO_COMPLEX");
}

async fn aliases_are_limited(app: TestApp) {
    let aliased = |n: usize| {
        format!(
            "{{ {} }}",
            (0..n)
                .map(|i| format!("a{i}: __typename"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let ok = query(&app, None, &aliased(30)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["data"]["a29"], "QueryRoot");
    let answer = query(&app, None, &aliased(31)).await;
    assert_refused(&answer, 400, "TOO_MANY_ALIASES");
    // Aliases hidden in a fragment spread many times count once per spread.
    let q = "{ ...F ...F ...F ...F } fragment F on QueryRoot { a: __typename b: __typename c: __typename d: __typename e: __typename f: __typename g: __typename h: __typename }";
    assert_refused(&query(&app, None, q).await, 400, "TOO_MANY_ALIASES");
}

async fn invalid_documents_have_codes(app: TestApp) {
    assert_refused(
        &query(&app, None, "{ operator(").await,
        400,
        "GRAPHQL_PARSE_FAILED",
    );
    assert_refused(
        &query(&app, None, "{ noSuchField }").await,
        400,
        "GRAPHQL_VALIDATION_FAILED",
    );
    let unknown_op = app
        .post_graphql(
            None,
            &json!({ "query": "query A { __typename }", "operationName": "B" }),
            &[GRJ],
        )
        .await;
    assert_refused(&unknown_op, 400, "GRAPHQL_VALIDATION_FAILED");
    let two_ops = query(&app, None, "query A { __typename } query B { __typename }").await;
    assert_refused(&two_ops, 400, "GRAPHQL_VALIDATION_FAILED");
    // A variable of the wrong type.
    let wrong_var = app
        .post_graphql(
            Some(&app.admin()),
            &json!({
                "query": "query($u: String!) { operator(uscc: $u) { id } }",
                "variables": { "u": 5 }
            }),
            &[GRJ],
        )
        .await;
    assert_refused(&wrong_var, 400, "GRAPHQL_VALIDATION_FAILED");
    // Development keeps suggestions.
    let typo = query(&app, Some(&app.admin()), "{ operatr(uscc: \"x\") { id } }").await;
    assert!(
        typo.gql().error_message().contains("Did you mean"),
        "{}",
        typo.body
    );
}

/// GraphiQL's own introspection query nests `ofType` nine levels deep; it still works in
/// development with the default depth limit.
async fn graphiql_introspection_works_in_development(app: TestApp) {
    let page = graphiql_page(&app).await;
    assert_eq!(page.status().as_u16(), 200);
    let answer = app
        .post_graphql(
            None,
            &json!({ "query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery" }),
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let types = answer.gql().data()["__schema"]["types"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(types.iter().any(|t| t["name"] == "Operator"));
}

fn production(settings: &mut Settings) {
    let key = settings.data_dir.join("configured-key.pem");
    api::auth::keys::generate(&key).unwrap();
    settings.auth.signing_key_file = Some(key);
    api::service::receipts::add_key(&settings.receipt_key_dir()).unwrap();
    for log in ["registry", "answers"] {
        api::auth::keys::generate(&settings.log_key_dir().join(format!("{log}.pem"))).unwrap();
    }
    settings.profile = Profile::Production;
}

async fn production_hides_the_schema(app: TestApp) {
    assert_eq!(graphiql_page(&app).await.status().as_u16(), 404);
    let answer = app
        .post_graphql(
            None,
            &json!({ "query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery" }),
            &[GRJ],
        )
        .await;
    assert_refused(&answer, 400, "INTROSPECTION_DISABLED");
    let shallow = query(&app, None, "{ __schema { types { name } } }").await;
    assert_refused(&shallow, 400, "INTROSPECTION_DISABLED");
    let by_type = query(
        &app,
        None,
        "{ ...T } fragment T on QueryRoot { __type(name: \"Operator\") { name } }",
    )
    .await;
    assert_refused(&by_type, 400, "INTROSPECTION_DISABLED");
    let typo = query(&app, Some(&app.admin()), "{ operatr(uscc: \"x\") { id } }").await;
    typo.gql().assert_error("GRAPHQL_VALIDATION_FAILED");
    assert!(
        !typo.gql().error_message().contains("Did you mean"),
        "{}",
        typo.body
    );
    // The API itself still works.
    let ok = query(&app, Some(&app.admin()), "{ __typename }").await;
    assert_eq!(ok.body["data"]["__typename"], "QueryRoot");
}

fn tiny_timeout(settings: &mut Settings) {
    settings.limits.request_timeout_ms = 1;
}

/// A request that runs past the timeout is stopped with 504 TIMEOUT, and whatever it was
/// doing is rolled back whole: every operator still has its audit event.
async fn slow_requests_time_out(app: TestApp) {
    let batch: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "query": "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }",
                "variables": { "i": { "uscc": tests::valid_code("441802", i), "name": format!("公司{i}") } }
            })
        })
        .collect();
    let answer = app
        .post_graphql(Some(&app.admin()), &json!(batch), &[])
        .await;
    assert_refused(&answer, 504, "TIMEOUT");
    // Let a rollback that the drop of the transaction started finish.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let operators = app.count("operators").await;
    assert!(operators < 10, "the batch ran to the end: {operators}");
    assert_eq!(app.count("audit_events").await, operators);
}

/// PostgreSQL cancels a statement past `database.statement_timeout_ms`; the service
/// reports it as TIMEOUT, not as an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_cancels_slow_statements() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database.statement_timeout_ms = 200;
    })
    .await;
    use sea_orm::ConnectionTrait;
    let started = std::time::Instant::now();
    let err = app
        .state
        .db
        .execute_unprepared("SELECT pg_sleep(3)")
        .await
        .expect_err("the statement timeout must cancel pg_sleep(3)");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let app_err = api::error::AppError::from(err);
    assert_eq!(app_err.code().as_str(), "TIMEOUT");
}

on_both_backends!(
    oversized_bodies_are_refused,
    batches_are_bounded,
    deep_queries_are_refused,
    complex_queries_are_refused,
    aliases_are_limited,
    invalid_documents_have_codes,
    graphiql_introspection_works_in_development,
);

on_both_backends_with!(
    production_hides_the_schema => production,
    slow_requests_time_out => tiny_timeout,
    check_record_exports_are_admitted_for_as_long_as_they_stream => one_export_each,
    every_list_pages_within_the_page_size => small_pages,
);

fn small_pages(settings: &mut Settings) {
    settings.limits.max_page_size = 20;
}

/// checkRecords and partnerFeedback page like every other list: their default page fits a
/// smaller limits.max_page_size (a fixed 50 refused a request without `first`), and a
/// `first` past it is PAGE_TOO_LARGE with `details.max`.
async fn every_list_pages_within_the_page_size(app: TestApp) {
    let auditor = app.auditor();
    for list in ["checkRecords", "partnerFeedback"] {
        app.gql(
            Some(&auditor),
            &format!("{{ {list} {{ edges {{ cursor }} }} }}"),
            json!({}),
        )
        .await
        .data();
        let big = app
            .gql(
                Some(&auditor),
                &format!("{{ {list}(first: 21) {{ edges {{ cursor }} }} }}"),
                json!({}),
            )
            .await;
        big.assert_error("BAD_USER_INPUT");
        let details = &big.body["errors"][0]["extensions"]["details"];
        assert_eq!(details["reason"], "PAGE_TOO_LARGE", "{list}: {}", big.body);
        assert_eq!(details["max"], 20, "{list}: {}", big.body);
    }
}

fn one_export_each(settings: &mut Settings) {
    settings.limits.max_concurrent_audit_requests = 1;
    settings.limits.max_concurrent_exports_per_subject = 1;
    settings.limits.capacity_wait_ms = 100;
}

/// Writes `rows` check records of `subject` (a partner's), each with a reference of 4 KiB,
/// so that an export of them is far larger than the sockets' buffers and stays open while
/// its client does not read.
async fn large_check_history(app: &TestApp, subject: &str, rows: usize) {
    use entity::check_record;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let at = chrono::Utc::now();
    let reference: String = "r".repeat(4096);
    let models: Vec<check_record::ActiveModel> = (0..rows)
        .map(|i| check_record::ActiveModel {
            id: Set(format!("00000000-0000-0000-0000-{i:012}")),
            subject: Set(subject.to_string()),
            role: Set("partner".into()),
            domain: Set(entity::measure::Domain::Procurement),
            uscc: Set("91441802MA000000XX".into()),
            operator_id: Set(None),
            as_of: Set(at),
            checked_at: Set(at),
            reference: Set(Some(reference.clone())),
            decision: Set(check_record::Decision::Clear),
            hit_listing_ids: Set(json!([])),
            warnings: Set(json!([])),
            request_id: Set("large-history".into()),
            batch_id: Set(None),
            hit_measure_codes: Set(Some(json!([]))),
            known_at: Set(None),
        })
        .collect();
    for chunk in models.chunks(500) {
        check_record::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
}

/// Starts a check-records export and reads its first chunk, then stops reading: the
/// export stays open (its stream is held back by the client).
async fn open_export(app: &TestApp, token: &str) -> reqwest::Response {
    let mut response = app
        .client
        .get(format!("{}/exports/check-records.csv", app.address))
        .bearer_auth(token)
        // Uncompressed: the test needs the body larger than the sockets' buffers.
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());
    response
}

async fn export_status(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .get(format!("{}/exports/check-records.csv", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = if status == 200 {
        Value::Null
    } else {
        response.json().await.unwrap_or(Value::Null)
    };
    (status, retry, body)
}

/// An export is admitted like the GraphQL reads it duplicates, for as long as it streams:
/// an auditor's holds one of the auditors' permits (here the only one: a second export and
/// a GraphQL audit read are refused with 503), and a partner's exports are bounded per
/// subject. A finished export gives its place back.
async fn check_record_exports_are_admitted_for_as_long_as_they_stream(app: TestApp) {
    use api::domain::measures::Domain;
    let partner = app.partner("partner-x", &[Domain::Procurement]).await;
    large_check_history(&app, "partner-x", 6_000).await;
    let auditor = app.auditor();

    let open = open_export(&app, &auditor).await;
    let (status, retry, body) = export_status(&app, &auditor).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    let audit = query(
        &app,
        Some(&auditor),
        "{ auditEvents(first: 1) { edges { cursor } } }",
    )
    .await;
    assert_refused(&audit, 503, "SERVICE_UNAVAILABLE");
    // Another auditor is in the same class.
    let other = app.token(api::auth::Role::Auditor, "auditor-2");
    assert_eq!(export_status(&app, &other).await.0, 503);
    // A partner is not an auditor: its own place, one of them.
    let partners = open_export(&app, &partner).await;
    let (status, _, body) = export_status(&app, &partner).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    drop(partners);

    // The clients went away: the permits come back once the server notices.
    drop(open);
    let audit_read = || {
        query(
            &app,
            Some(&auditor),
            "{ auditEvents(first: 1) { edges { cursor } } }",
        )
    };
    assert!(
        eventually(|| async { audit_read().await.status == 200 }).await,
        "the auditor's export kept its permit"
    );
    // The partner's place too; and a whole export, read to the end, gives it back.
    let whole = || async {
        let response = app
            .client
            .get(format!("{}/exports/check-records.csv", app.address))
            .bearer_auth(&partner)
            .send()
            .await
            .unwrap();
        response.status() == 200 && response.text().await.unwrap().lines().count() == 6_001
    };
    assert!(
        eventually(whole).await,
        "the partner's export kept its place"
    );
    assert!(
        eventually(|| async { export_status(&app, &partner).await.0 == 200 }).await,
        "a finished export kept its place"
    );
}

/// Whether `f` comes true within five seconds (asked every 100 ms).
async fn eventually<F, Fut>(f: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
