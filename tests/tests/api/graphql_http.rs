//! GraphQL over HTTP (the graphql-over-http specification): graphql-http's own audit
//! suite run with node against the real server, and the behaviours behind it one by one
//! (GET queries, media types and their statuses, 415 for non-JSON bodies, gzip, CORS).

use api::config::Settings;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use tests::{TestApp, on_both_backends, on_both_backends_with};

const GRJ: &str = "application/graphql-response+json";

fn audit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql-http-audit")
}

/// The audit sends ~60 anonymous requests in a few seconds: more than the public rate.
fn generous_public_rate(settings: &mut Settings) {
    settings.limits.public_rate_per_second = 1_000;
    settings.limits.public_rate_burst = 1_000;
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `npm ci` in the audit folder when its packages are missing (a fresh clone).
fn install_audit_packages(dir: &Path) {
    if dir.join("node_modules/graphql-http").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm runs (node is installed, so npm should be)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

async fn graphql_http_audit_passes(app: TestApp) {
    if !node_available() {
        eprintln!(
            "SKIPPED graphql-http audit: `node` is not installed (Debian: apt-get install nodejs npm)"
        );
        return;
    }
    let dir = audit_dir();
    install_audit_packages(&dir);
    let url = format!("{}/graphql", app.address);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("audit.mjs")
            .arg(url)
            .current_dir(dir)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "graphql-http audit failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" 0 warnings, 0 errors"),
        "unexpected summary: {summary}\n{stdout}"
    );
    // The audit really ran its suite (not an empty list).
    let ok = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(ok > 40, "only {ok} audits passed:\n{stdout}");
}

async fn get_runs_queries_but_never_mutations(app: TestApp) {
    let resp = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[
            (
                "query",
                "query Q($n: String!) { __type(name: $n) { name } }",
            ),
            ("variables", r#"{"n":"Operator"}"#),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["__type"]["name"], "Operator", "{body}");

    let resp = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[(
            "query",
            "mutation { upsertOperator(input: {uscc: \"91110000101623741K\", name: \"x\"}) { id } }",
        )])
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "METHOD_NOT_ALLOWED"
    );
    assert_eq!(app.count("operators").await, 0, "the mutation must not run");

    // Without `query` a client gets a request error; a browser gets GraphiQL.
    let resp = app.get("/graphql").await;
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn media_types_decide_status_and_shape(app: TestApp) {
    let invalid = json!({ "query": "{ noSuchField }" });
    // application/graphql-response+json: a request error is 400, with no `data` key.
    let answer = app.post_graphql(None, &invalid, &[("accept", GRJ)]).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.header("content-type").unwrap().starts_with(GRJ));
    assert!(answer.body.get("data").is_none(), "{}", answer.body);
    answer.gql().assert_error("GRAPHQL_VALIDATION_FAILED");
    // application/json (and no Accept): 200, still no `data`.
    for accept in ["application/json", "*/*"] {
        let answer = app
            .post_graphql(None, &invalid, &[("accept", accept)])
            .await;
        assert_eq!(answer.status, 200, "{accept}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert!(answer.body.get("data").is_none(), "{}", answer.body);
    }
    // A result is 200 in both.
    let ok = json!({ "query": "{ __typename }" });
    let answer = app.post_graphql(None, &ok, &[("accept", GRJ)]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").unwrap().starts_with(GRJ));
    assert_eq!(answer.body["data"]["__typename"], "QueryRoot");
    // A field error keeps `data`.
    let field_error = app
        .post_graphql(
            None,
            &json!({ "query": "{ __typename listing(id: \"1\") { id } }" }),
            &[("accept", GRJ)],
        )
        .await;
    assert_eq!(field_error.status, 200, "{}", field_error.body);
    assert!(
        field_error.body.get("data").is_some(),
        "{}",
        field_error.body
    );
}

async fn only_json_bodies_are_accepted(app: TestApp) {
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = app
            .client
            .post(format!("{}/graphql", app.address))
            .body(r#"{"query":"{ __typename }"}"#);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 415, "{content_type:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNSUPPORTED_MEDIA_TYPE",
            "{body}"
        );
    }
}

async fn answers_are_compressed_when_asked(app: TestApp) {
    // Introspection: a body large enough to be worth compressing.
    let body = json!({ "query": tests::INTROSPECTION_QUERY });
    let gzipped = app
        .post_graphql(None, &body, &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let plain = app.post_graphql(None, &body, &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
}

fn partner_origin(settings: &mut Settings) {
    settings.cors.allowed_origins = vec!["https://bid.example.gov.cn".into()];
}

async fn cors_only_for_allowed_origins(app: TestApp) {
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let allowed = preflight("https://bid.example.gov.cn").await.unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://bid.example.gov.cn"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let answer = app
        .post_graphql(
            None,
            &json!({ "query": "{ __typename }" }),
            &[("origin", "https://bid.example.gov.cn")],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://bid.example.gov.cn")
    );
    let answer = app
        .post_graphql(
            None,
            &json!({ "query": "{ __typename }" }),
            &[("origin", "https://evil.example.com")],
        )
        .await;
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

/// The default (no origin configured) allows none.
async fn cors_allows_no_origin_by_default(app: TestApp) {
    let answer = app
        .post_graphql(
            None,
            &json!({ "query": "{ __typename }" }),
            &[("origin", "https://bid.example.gov.cn")],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

/// GraphiQL works offline: the page names no external URL, and every script and
/// stylesheet it names is served by the registry, cacheable.
async fn graphiql_is_served_offline(app: TestApp) {
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("/graphiql/assets/"))
        .collect();
    assert_eq!(assets.len(), 5, "{page}");
    for asset in assets {
        let resp = app.get(asset).await;
        assert_eq!(resp.status().as_u16(), 200, "{asset}");
        assert!(
            resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000"),
            "{asset}"
        );
        assert!(!resp.bytes().await.unwrap().is_empty(), "{asset}");
    }
    assert_eq!(
        app.get("/graphiql/assets/0.0.0/graphiql.min.js")
            .await
            .status()
            .as_u16(),
        404
    );
}

on_both_backends!(
    graphiql_is_served_offline,
    get_runs_queries_but_never_mutations,
    media_types_decide_status_and_shape,
    only_json_bodies_are_accepted,
    answers_are_compressed_when_asked,
    cors_allows_no_origin_by_default,
);

on_both_backends_with!(
    graphql_http_audit_passes => generous_public_rate,
    cors_only_for_allowed_origins => partner_origin,
);
