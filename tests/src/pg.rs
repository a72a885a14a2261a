//! The PostgreSQL server of the tests, decided once per test process:
//!
//! 1. `TEST_DATABASE_URL` when it is set (and it must answer: if nothing listens there,
//!    every PostgreSQL test fails at once with one line saying so);
//! 2. otherwise the local default, `postgres://postgres@127.0.0.1:5432/postgres`, when
//!    the tests can log in there (a port that answers is not enough: Debian's packaged
//!    cluster wants a password over TCP);
//! 3. otherwise a throwaway cluster this process starts itself (`initdb` on a free port in
//!    a temporary folder, as the `postgres` user when running as root), shared by all of
//!    the process's tests and removed by a watchdog once the process has exited (Rust's
//!    test harness runs no static destructors). Without PostgreSQL's server binaries the
//!    tests fail within seconds, saying what to install.
//!
//! Only clusters started here are ever stopped: a server the tests found is left alone.
//! Shared by the black-box tests (`tests`) and the process tests (`api/tests/common`,
//! which include this file by path), so both find the server the same way.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Whether anything listens: a refused or silent port is known within this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connecting to a server that did answer the probe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin URL of this process's PostgreSQL server (see the module comment). Panics
/// with one line saying what is missing when there is none.
pub fn admin_url() -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    match SERVER.get_or_init(choose_server) {
        Ok(url) => url.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn choose_server() -> Result<String, String> {
    let why = match decide(std::env::var("TEST_DATABASE_URL").ok(), DEFAULT_URL)? {
        Choice::Use(url) => return Ok(url),
        Choice::Throwaway(why) => why,
    };
    let started = Instant::now();
    let cluster = Cluster::init("test-pg-").map_err(|e| {
        format!("the PostgreSQL tests found no server they can use ({why}) and TEST_DATABASE_URL is not set, and could not start one: {e}")
    })?;
    let url = cluster.admin_url();
    cluster.remove_when_process_exits()?;
    eprintln!(
        "tests: {why}; started a throwaway cluster at {url} in {:.1} s (removed when this test process exits)",
        started.elapsed().as_secs_f64()
    );
    Ok(url)
}

/// Which server the tests use.
#[derive(Debug, PartialEq)]
enum Choice {
    Use(String),
    /// Start a cluster of their own, for this reason.
    Throwaway(String),
}

/// `TEST_DATABASE_URL` (`env_url`) if set; else `default_url` if the tests can log in
/// there; else a throwaway cluster.
fn decide(env_url: Option<String>, default_url: &str) -> Result<Choice, String> {
    if let Some(url) = env_url {
        return answers(&url).map(|()| Choice::Use(url.clone())).map_err(|why| {
            format!(
                "TEST_DATABASE_URL={url}: {why}; start PostgreSQL there, or unset TEST_DATABASE_URL to let the tests start their own"
            )
        });
    }
    if let Err(why) = answers(default_url) {
        return Ok(Choice::Throwaway(why));
    }
    // An open port is not a usable server: Debian's packaged cluster listens on 5432 but
    // wants a password over TCP, and something else may listen there. Only a real login
    // tells; without it every PostgreSQL test would fail in `connect`.
    match logs_in(default_url) {
        Ok(()) => Ok(Choice::Use(default_url.to_string())),
        Err(why) => Ok(Choice::Throwaway(format!(
            "{default_url} answers but the tests cannot log in ({why})"
        ))),
    }
}

/// Connects to `url` and runs `SELECT 1`, within `CONNECT_TIMEOUT`. On a thread of its
/// own with its own runtime: the server is chosen from synchronous code that may run
/// inside a test's Tokio runtime, where blocking on another would panic.
fn logs_in(url: &str) -> Result<(), String> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("no runtime for the login probe: {e}"))?;
        runtime.block_on(async move {
            let mut options = ConnectOptions::new(url);
            options
                .max_connections(1)
                .min_connections(0)
                .connect_timeout(CONNECT_TIMEOUT)
                .acquire_timeout(CONNECT_TIMEOUT)
                .sqlx_logging(false);
            let db = Database::connect(options)
                .await
                .map_err(|e| e.to_string())?;
            let result = db
                .execute_unprepared("SELECT 1")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = db.close().await;
            result
        })
    })
    .join()
    .map_err(|_| "the login probe panicked".to_string())?
}

/// Whether something accepts TCP connections at the URL's host and port (a URL
/// without a host, for a Unix socket, is taken as answering).
fn answers(url: &str) -> Result<(), String> {
    let Some((host, port)) = host_and_port(url) else {
        return Ok(());
    };
    let addresses: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("nothing answers at {host}:{port} ({last})"))
}

/// `postgres://user:pw@host:port/db?…` → (host, port); None for a socket-only URL.
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let address = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if address.is_empty() {
        return None;
    }
    if let Some(v6) = address.strip_prefix('[') {
        let (host, port) = v6.split_once(']')?;
        let port = port.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host.to_string(), port.unwrap_or(5432)));
    }
    match address.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((address.to_string(), 5432)),
    }
}

/// A connection with short timeouts (sea-orm's default waits 30 s for a server that is
/// not there); panics with one line naming the URL.
pub async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(2)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    match Database::connect(options).await {
        Ok(db) => db,
        Err(e) => panic!("cannot connect to PostgreSQL at {url}: {e}"),
    }
}

/// Creates a database on the server behind `admin_url`; returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> String {
    let admin = connect(admin_url).await;
    if let Err(e) = admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
    {
        panic!("cannot create database {name} at {admin_url}: {e}");
    }
    admin.close().await.ok();
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    format!("{base}/{name}")
}

/// Best effort: drops a test database, disconnecting whoever still uses it.
pub async fn drop_database(admin_url: &str, name: &str) {
    let mut options = ConnectOptions::new(admin_url.to_string());
    options
        .max_connections(1)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    if let Ok(admin) = Database::connect(options).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
}

/// A free TCP port on the loopback interface (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A PostgreSQL cluster of the tests' own, in a temporary folder on a free port,
/// stopped and removed when dropped. Never the machine's shared server.
pub struct Cluster {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// A watchdog stops and removes it (see `remove_when_process_exits`), not `Drop`.
    handed_over: bool,
}

impl Cluster {
    /// `initdb` and start; the error is one line saying what went wrong.
    pub fn init(prefix: &str) -> Result<Cluster, String> {
        let bin = server_binaries().ok_or_else(|| {
            "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): install them (apt-get install postgresql) or set TEST_DATABASE_URL to a running server".to_string()
        })?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "cannot give {} to the postgres user (running as root needs one)",
                    dir.path().display()
                ));
            }
        }
        let cluster = Cluster {
            port: free_port(),
            dir,
            bin,
            handed_over: false,
        };
        cluster.run(&format!(
            "{} -D {} -U postgres -A trust --no-sync >{} 2>&1",
            cluster.bin.join("initdb").display(),
            cluster.data_dir().display(),
            cluster.dir.path().join("initdb.log").display(),
        ))?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start(&self) -> Result<(), String> {
        self.run(&format!(
            "{} -D {} -o '-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off' -l {} -w start >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display(),
            self.port,
            self.dir.path().display(),
            self.dir.path().join("server.log").display(),
        ))
    }

    /// `fast`: disconnect every client and shut down cleanly; `immediate`: like a crash.
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        self.run(&format!(
            "{} -D {} -m {mode} -w stop >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display(),
        ))
    }

    /// Hands the cluster to a watchdog that stops it and deletes its folder once this
    /// process has gone, however it ends (the watchdog has its own session, so a Ctrl-C
    /// to the test run does not reach it).
    pub fn remove_when_process_exits(mut self) -> Result<(), String> {
        const WATCHDOG: &str = r#"
            while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
            if [ "$4" = 1 ]; then
                su postgres -s /bin/sh -c "'$3' -D '$2/data' -m immediate stop"
            else
                "$3" -D "$2/data" -m immediate stop
            fi
            rm -rf "$2"
        "#;
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if Path::new("/usr/bin/setsid").exists() {
            let mut c = Command::new("/usr/bin/setsid");
            c.arg("sh");
            c
        } else {
            Command::new("sh")
        };
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(&pg_ctl)
            .arg(if is_root() { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
            .spawn()
            .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
        // From here on the watchdog owns the folder and the server.
        self.handed_over = true;
        self.dir.disable_cleanup(true);
        Ok(())
    }

    fn run(&self, command: &str) -> Result<(), String> {
        let status = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", command])
                .status()
        } else {
            Command::new("sh").args(["-c", command]).status()
        }
        .map_err(|e| format!("cannot run {command}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("failed ({status}): {command}"))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        let _ = self.run(&format!(
            "{} -D {} -m immediate stop >/dev/null 2>&1",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display()
        ));
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
fn server_binaries() -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::{Choice, decide, host_and_port};

    #[test]
    fn a_port_that_is_not_a_usable_postgresql_gets_a_throwaway_cluster() {
        // Something accepts TCP there, then closes at once: not a server to log in to.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        match decide(None, &url) {
            Ok(Choice::Throwaway(why)) => assert!(why.contains("cannot log in"), "{why}"),
            other => panic!("{url} was taken for a server: {other:?}"),
        }
        // Nothing listening at all.
        let port = super::free_port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        match decide(None, &url) {
            Ok(Choice::Throwaway(why)) => assert!(why.contains("nothing answers"), "{why}"),
            other => panic!("{url} was taken for a server: {other:?}"),
        }
        // TEST_DATABASE_URL is used as given.
        assert_eq!(
            decide(Some("postgres:///x?host=/run/postgresql".into()), &url),
            Ok(Choice::Use("postgres:///x?host=/run/postgresql".into()))
        );
    }

    #[test]
    fn the_probe_reads_host_and_port_from_the_url() {
        let hp = |u| host_and_port(u);
        assert_eq!(
            hp("postgres://postgres@127.0.0.1:5432/postgres"),
            Some(("127.0.0.1".into(), 5432))
        );
        assert_eq!(
            hp("postgres://u:p@db.example:6543/x?sslmode=disable"),
            Some(("db.example".into(), 6543))
        );
        assert_eq!(hp("postgres://db/x"), Some(("db".into(), 5432)));
        assert_eq!(hp("postgres://[::1]:5433/x"), Some(("::1".into(), 5433)));
        assert_eq!(hp("postgres:///x?host=/run/postgresql"), None);
    }
}
