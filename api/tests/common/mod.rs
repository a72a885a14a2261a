//! Process-level test support: runs the real `credit-registry` binary as a child process
//! (so signals and `kill -9` hit a real server) and issues tokens with its key; `pg`
//! finds the tests' PostgreSQL server and makes throwaway clusters.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use api::auth::Role;
use api::auth::tokens::TokenRequest;
use api::config::Settings;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_credit-registry");

/// One run of the service binary.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary on a port of its own with `data_dir`, `database_url` and extra
    /// environment, and waits until `/healthz` answers.
    ///
    /// The server binds port 0 and the port is read from its log line "credit-registry
    /// listening": a port picked here and bound by the child later could be taken in
    /// between by another test's server, whose `/healthz` would then answer for it.
    pub async fn start(
        data_dir: &Path,
        database_url: &str,
        extra_env: &[(&str, &str)],
        log_name: &str,
    ) -> Server {
        let log = data_dir.join(log_name);
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(BINARY);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REGISTRY_DATA_DIR", data_dir)
            .env("DATABASE_URL", database_url)
            .env("REGISTRY_BIND", "127.0.0.1:0")
            .env("REGISTRY_WORKERS", "2")
            .env("REGISTRY_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.arg("serve").spawn().expect("start credit-registry");
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        server.wait_healthy(Duration::from_secs(60)).await;
        server
    }

    /// The port the server logged it listens on, once it has.
    fn logged_port(&self) -> Option<u16> {
        self.logs().lines().find_map(|line| {
            let event: Value = serde_json::from_str(line).ok()?;
            let fields = event.get("fields")?;
            if fields.get("message")?.as_str()? != "credit-registry listening" {
                return None;
            }
            u16::try_from(fields.get("port")?.as_u64()?).ok()
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_healthy(&mut self, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "credit-registry exited with {status} at start:\n{}",
                    self.logs()
                );
            }
            if self.port == 0 {
                self.port = self.logged_port().unwrap_or(0);
            }
            if self.port != 0
                && let Ok(resp) = client.get(self.url("/healthz")).send().await
                && resp.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "credit-registry did not become healthy:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (TERM, KILL, ...) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; panics after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "credit-registry did not exit:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Never leave a server behind a failed test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the token-signing key the server will load from `data_dir`, and returns a
/// token for `role`/`subject` signed with it.
pub fn admin_token(data_dir: &Path) -> String {
    let mut settings = Settings::default();
    settings.data_dir = data_dir.to_path_buf();
    let tokens = api::startup::token_service(&settings).unwrap();
    tokens
        .issue(&TokenRequest {
            subject: "fault-tester".into(),
            role: Role::Admin,
            domains: Vec::new(),
            region: None,
            ttl: chrono::Duration::hours(1),
        })
        .unwrap()
}

pub const UPSERT: &str =
    "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id uscc version } }";

/// A valid code in 清城区 for serial `n`.
pub fn code(n: u32) -> String {
    api::domain::uscc::complete_code(&format!("91441802{n:08}"))
        .unwrap()
        .into_string()
}

pub fn upsert_body(n: u32) -> Value {
    json!({ "query": UPSERT, "variables": { "i": { "uscc": code(n), "name": format!("故障测试{n}") } } })
}

// The PostgreSQL server of the tests and throwaway clusters: the black-box tests'
// module, included by path so both test suites find (or start) the server the same way.
#[path = "../../../tests/src/pg.rs"]
pub mod pg;
