//! The real binary under signals: SIGTERM lets an in-flight request finish, then the
//! server closes its pool and exits cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, admin_token, upsert_body};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_closes_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("registry.db");
    let url = format!("sqlite://{}?mode=rwc", db_path.display());
    let token = admin_token(dir.path());
    let mut server = Server::start(dir.path(), &url, &[], "server.log").await;

    // A request whose body arrives slowly: half now, the rest after SIGTERM.
    let body = serde_json::to_vec(&upsert_body(1)).unwrap();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first_half).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The server stopped accepting new connections but has not exited...
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight:\n{}",
        server.logs()
    );
    let refused = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    // ...and the in-flight request completes normally.
    stream.write_all(second_half).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the in-flight request was answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"version\":1"), "{answer}");

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.logs());
    let logs = server.logs();
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(logs.contains("database pool closed"), "{logs}");
    assert!(logs.contains("credit-registry stopped"), "{logs}");

    // What the in-flight request wrote is there, with its audit event.
    let db = sea_orm::Database::connect(&url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT (SELECT COUNT(*) FROM operators WHERE uscc = '{}') AS ops, (SELECT COUNT(*) FROM audit_events) AS events",
                common::code(1)
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "ops").unwrap(), 1);
    assert_eq!(row.try_get::<i64>("", "events").unwrap(), 1);
}

/// Logs go to standard error: in a fresh folder the first `token` generates a development
/// key and warns about it, and `TOKEN=$(credit-registry token …)` must still capture the
/// token alone.
#[test]
fn token_prints_only_the_token_on_stdout_and_logs_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(common::BINARY)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .args(["token", "--role", "admin", "--sub", "x"])
        .output()
        .expect("run credit-registry token");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}: {stderr}", output.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is not one line: {stdout:?}");
    assert!(stdout.ends_with('\n'));
    let parts: Vec<&str> = lines[0].split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {stdout:?}");
    use base64::Engine;
    for part in &parts {
        assert!(
            !part.is_empty()
                && base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(part)
                    .is_ok(),
            "not base64url: {part:?}"
        );
    }
    assert!(
        stderr.contains("generated a development signing key"),
        "the warning did not reach stderr: {stderr:?}"
    );
    assert!(dir.path().join("data/token-signing-key.pem").exists());
}

/// One JSON access line per request, written by the access middleware: method, matched
/// route pattern, status, duration, request id, and the caller's role and subject when a
/// token was verified (`anonymous` and no subject otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_writes_one_access_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    let token = admin_token(dir.path());
    let mut server = Server::start(dir.path(), &url, &[], "server.log").await;
    let client = reqwest::Client::new();
    let answer = client
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .header("x-request-id", "access-test-1")
        .json(&upsert_body(7))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let missing = client
        .get(server.url("/listings/42/nothing"))
        .header("x-request-id", "access-test-2")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10)).await;

    let logs = server.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let access = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["target"] == "access" && l["fields"]["request_id"] == id)
            .map(|l| &l["fields"])
            .collect()
    };
    let posted = access("access-test-1");
    assert_eq!(posted.len(), 1, "{logs}");
    let line = posted[0];
    assert_eq!(line["message"], "request");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/graphql");
    assert_eq!(line["status"], 200);
    assert_eq!(line["role"], "admin");
    assert_eq!(line["subject"], "fault-tester");
    assert!(
        line["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
        "{line}"
    );

    let missed = access("access-test-2");
    assert_eq!(missed.len(), 1, "{logs}");
    assert_eq!(missed[0]["method"], "GET");
    assert_eq!(
        missed[0]["route"], "default",
        "the path itself is not a route"
    );
    assert_eq!(missed[0]["status"], 404);
    assert_eq!(missed[0]["role"], "anonymous");
    assert!(missed[0].get("subject").is_none(), "{}", missed[0]);
}
