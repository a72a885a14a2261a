//! Process-level test support: runs the real `credit-registry` binary as a child process
//! (so signals and `kill -9` hit a real server), issues tokens with its key, and manages
//! throwaway PostgreSQL clusters of the tests' own.
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

/// A free TCP port on the loopback interface (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One run of the service binary.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary on a free port with `data_dir`, `database_url` and extra
    /// environment, and waits until `/healthz` answers.
    pub async fn start(
        data_dir: &Path,
        database_url: &str,
        extra_env: &[(&str, &str)],
        log_name: &str,
    ) -> Server {
        let port = free_port();
        let log = data_dir.join(log_name);
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(BINARY);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REGISTRY_DATA_DIR", data_dir)
            .env("DATABASE_URL", database_url)
            .env("REGISTRY_BIND", format!("127.0.0.1:{port}"))
            .env("REGISTRY_WORKERS", "2")
            .env("REGISTRY_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.arg("serve").spawn().expect("start credit-registry");
        let mut server = Server { child, port, log };
        server.wait_healthy(Duration::from_secs(60)).await;
        server
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
            if let Ok(resp) = client.get(self.url("/healthz")).send().await
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

/// The server's PostgreSQL admin URL for tests (the shared server; never stopped here).
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Creates a database on the server behind `admin_url`; returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> String {
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await.ok();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    format!("{base}/{name}")
}

pub async fn drop_database(admin_url: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    if let Ok(admin) = sea_orm::Database::connect(admin_url).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
}

/// A PostgreSQL cluster of the test's own, in a temporary directory on a free port.
/// Only this cluster is ever stopped: the machine's shared server is left alone.
pub struct ThrowawayCluster {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl ThrowawayCluster {
    pub fn init() -> ThrowawayCluster {
        let bin = postgres_bin().expect("PostgreSQL server binaries under /usr/lib/postgresql");
        let dir = tempfile::Builder::new()
            .prefix("fault-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let cluster = ThrowawayCluster {
            port: free_port(),
            dir,
            bin,
        };
        let data = cluster.data_dir();
        cluster.run(&format!(
            "{} -D {} -U postgres -A trust --no-sync >/dev/null",
            cluster.bin.join("initdb").display(),
            data.display()
        ));
        cluster.start();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start(&self) {
        self.run(&format!(
            "{} -D {} -o '-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off' -l {} -w start >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display(),
            self.port,
            self.dir.path().display(),
            self.dir.path().join("server.log").display(),
        ));
    }

    /// `fast`: disconnect every client and shut down cleanly; `immediate`: like a crash.
    pub fn stop(&self, mode: &str) {
        self.run(&format!(
            "{} -D {} -m {mode} -w stop >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display(),
        ));
    }

    fn run(&self, command: &str) {
        let status = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", command])
                .status()
        } else {
            Command::new("sh").args(["-c", command]).status()
        }
        .unwrap();
        assert!(status.success(), "failed: {command}");
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let command = format!(
            "{} -D {} -m immediate stop >/dev/null 2>&1",
            pg_ctl.display(),
            self.data_dir().display()
        );
        let _ = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &command])
                .status()
        } else {
            Command::new("sh").args(["-c", &command]).status()
        };
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
