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
