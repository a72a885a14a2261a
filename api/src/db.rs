//! Database connections and migrations.
//!
//! SQLite is the embedded default: a file under `data_dir`, in WAL mode with a busy
//! timeout and a pool of several connections (sea-orm's default for SQLite is one).
//! PostgreSQL is production: a statement timeout is set on every connection and pooled
//! connections are not pinged on every checkout (an extra round trip per query).

use crate::config::Settings;
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, TransactionTrait,
};
use std::time::Duration;

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Opens the pool described by the settings.
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    connect_url(&settings.database_url(), settings).await
}

/// The anonymous callers' pool (see `graphql::capacity`): same database, at most
/// `database.anonymous_max_connections` connections, a short wait for one and a shorter
/// PostgreSQL `statement_timeout`. An in-memory SQLite database has one private
/// connection, so there the main pool is shared.
pub async fn connect_anonymous(
    settings: &Settings,
    main: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    if is_sqlite(&url) && sqlite_file(&url).is_none() {
        return Ok(main.clone());
    }
    let db = &settings.database;
    let pool = PoolShape {
        max_connections: db.anonymous_max_connections.max(1),
        min_connections: 0,
        acquire_timeout_ms: db.anonymous_acquire_timeout_ms,
        statement_timeout_ms: db.anonymous_statement_timeout_ms,
        application_name: "credit-registry-anonymous",
    };
    open(&url, settings, &pool).await
}

/// A pool on the read standby (`database.replica_url`, see `replica`): the main pool's
/// shape, or the anonymous one's for `anonymous`, and opened lazily (no connection at
/// start: a standby that is down does not keep the instance from starting; it is just not
/// used). Both URLs must be PostgreSQL: a standby is a PostgreSQL notion.
pub async fn connect_replica(
    url: &str,
    settings: &Settings,
    anonymous: bool,
) -> anyhow::Result<DatabaseConnection> {
    let is_postgres = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
    if !is_postgres(&settings.database_url()) || !is_postgres(url) {
        anyhow::bail!(
            "database.replica_url needs PostgreSQL for both database_url and replica_url (a streaming standby of the primary)"
        );
    }
    let db = &settings.database;
    let pool = if anonymous {
        PoolShape {
            max_connections: db.anonymous_max_connections.max(1),
            min_connections: 0,
            acquire_timeout_ms: db.anonymous_acquire_timeout_ms,
            statement_timeout_ms: db.anonymous_statement_timeout_ms,
            application_name: "credit-registry-replica-anonymous",
        }
    } else {
        PoolShape {
            max_connections: db.max_connections,
            min_connections: 0,
            acquire_timeout_ms: db.acquire_timeout_ms,
            statement_timeout_ms: db.statement_timeout_ms,
            application_name: "credit-registry-replica",
        }
    };
    let mut opt = options(url, settings, &pool)?;
    opt.connect_lazy(true);
    Database::connect(opt)
        .await
        .with_context(|| format!("opening the replica pool ({})", redact_url(url)))
}

/// What differs between the main pool and the anonymous one.
struct PoolShape {
    max_connections: u32,
    min_connections: u32,
    acquire_timeout_ms: u64,
    statement_timeout_ms: u64,
    application_name: &'static str,
}

pub async fn connect_url(url: &str, settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let db = &settings.database;
    let pool = PoolShape {
        max_connections: db.max_connections,
        min_connections: db.min_connections,
        acquire_timeout_ms: db.acquire_timeout_ms,
        statement_timeout_ms: db.statement_timeout_ms,
        application_name: "credit-registry",
    };
    open(url, settings, &pool).await
}

async fn open(
    url: &str,
    settings: &Settings,
    pool: &PoolShape,
) -> anyhow::Result<DatabaseConnection> {
    let opt = options(url, settings, pool)?;
    Database::connect(opt)
        .await
        .with_context(|| format!("connecting to the database ({})", redact_url(url)))
}

fn options(url: &str, settings: &Settings, pool: &PoolShape) -> anyhow::Result<ConnectOptions> {
    let db = &settings.database;
    let mut opt = ConnectOptions::new(url.to_string());
    opt.max_connections(pool.max_connections)
        .min_connections(pool.min_connections)
        .acquire_timeout(Duration::from_millis(pool.acquire_timeout_ms))
        .connect_timeout(Duration::from_millis(db.connect_timeout_ms))
        .test_before_acquire(false)
        .sqlx_logging(false);
    if is_sqlite(url) {
        if let Some(path) = sqlite_file(url) {
            if let Some(dir) = std::path::Path::new(&path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        } else {
            // An in-memory database is private to its connection: keep exactly one.
            opt.max_connections(1).min_connections(1);
        }
        let busy = Duration::from_millis(db.sqlite_busy_timeout_ms);
        // FULL, not WAL's usual NORMAL: under NORMAL a commit is not synced to the disk,
        // so a power loss or OS crash rolls back transactions already answered. A check
        // is answered only once its record, its answer-log leaf and the checkpoint
        // covering it are durable; losing them would leave receipts naming a tree the
        // log no longer has, and the log's key would then sign a second checkpoint of
        // the same size (a fork every witness refuses). Commits are grouped, so the
        // sync is paid per group of checks, not per check.
        opt.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(busy)
                .foreign_keys(true)
                .create_if_missing(true)
        });
    } else {
        opt.statement_timeout(Duration::from_millis(pool.statement_timeout_ms))
            .set_application_name(pool.application_name)
            .map_sqlx_postgres_pool_opts(|o| {
                o.after_connect(|conn, _| Box::pin(tcp_nodelay::set_on(conn)))
            });
    }
    Ok(opt)
}

/// TCP_NODELAY on every PostgreSQL connection.
///
/// sqlx 0.9.0 opens its TCP sockets with Nagle's algorithm on (launchbadge/sqlx#4335: the
/// option was dropped in 0.9, the fix, #4336, is merged but not released). A statement
/// longer than one TCP segment then sends its last partial segment only when the server
/// acknowledges the ones before, and the server delays that acknowledgement by up to
/// 40 ms. Measured here on loopback: check-record groups of 20–64 checks (one statement
/// of 65 KB and more) took 25–50 ms instead of 2–5 ms, so 64 connections got 850 checks/s
/// at p50 87 ms on an idle machine. Until a release sets the option, each new connection
/// asks PostgreSQL which local port it came from and sets the option on this process's
/// socket bound to that port. Linux only (it reads `/proc/self/fd`); elsewhere, and over
/// a Unix socket (no Nagle there), nothing is done.
mod tcp_nodelay {
    use sea_orm::sqlx::{self, PgConnection};

    pub async fn set_on(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        // NULL over a Unix socket.
        let port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
            .fetch_one(&mut *conn)
            .await?;
        if let Some(port) = port.and_then(|p| u16::try_from(p).ok())
            && !set_on_local_port(port)
        {
            tracing::debug!(
                port,
                "no socket of this process on that local port: TCP_NODELAY not set"
            );
        }
        Ok(())
    }

    /// Sets TCP_NODELAY on the connected TCP socket of this process whose local port is
    /// `port`; whether one was found.
    #[cfg(target_os = "linux")]
    fn set_on_local_port(port: u16) -> bool {
        use std::os::fd::BorrowedFd;
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        for entry in fds.flatten() {
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if !is_socket {
                continue;
            }
            // SAFETY: the descriptor is only borrowed for the calls below. If another
            // thread closes it meanwhile, the calls fail with EBADF; if the number is
            // reused by then, the port and peer checks select only a connected socket on
            // this port, and TCP_NODELAY on any TCP socket is harmless.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&fd);
            let on_port = socket
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .is_some_and(|a| a.port() == port);
            if on_port && socket.peer_addr().is_ok() {
                return socket.set_tcp_nodelay(true).is_ok();
            }
        }
        false
    }

    #[cfg(not(target_os = "linux"))]
    fn set_on_local_port(_port: u16) -> bool {
        false
    }

    #[cfg(all(test, target_os = "linux"))]
    mod tests {
        #[test]
        fn finds_and_sets_the_socket_on_a_local_port() -> std::io::Result<()> {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let client = std::net::TcpStream::connect(listener.local_addr()?)?;
            let (_server, _) = listener.accept()?;
            assert!(!client.nodelay()?);
            assert!(super::set_on_local_port(client.local_addr()?.port()));
            assert!(client.nodelay()?);
            Ok(())
        }
    }
}

/// The file path of an `sqlite://path?...` URL; `None` for in-memory databases.
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        None
    } else {
        Some(path.to_string())
    }
}

/// A URL fit for logs: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Applies pending migrations, all in one transaction (each migration's own nests in it
/// as a savepoint), so that an upgrade that fails half-way leaves the schema as it was
/// (PostgreSQL's DDL is transactional, as SQLite's; no migration here needs to run
/// outside a transaction). What the transaction runs first is the backend's own
/// (`migration_prelude`): on PostgreSQL that takes the migration lock
/// (`cluster::locks`), so of several instances starting at once on an empty database
/// one migrates, the others wait for it and then find nothing to do.
pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    let txn = db.begin().await.context("beginning the migrations")?;
    migration_prelude(&txn).await?;
    if schema_is_newer(&txn).await? {
        // Nothing of this build's to apply: leave the schema to the newer build.
        return txn.commit().await.context("ending the migrations");
    }
    // `Migrator::up` reads `seaql_migrations` (after creating it if missing) on this
    // transaction, after the prelude: under the lock, and in READ COMMITTED with a fresh
    // snapshot per statement, so a waiter sees what the instance before it committed.
    Migrator::up(&txn, None)
        .await
        .context("running migrations")?;
    txn.commit().await.context("committing the migrations")
}

/// Whether the database holds migrations this build does not know (a newer build
/// migrated it: an older instance restarting during a rolling upgrade, or a rollback of
/// the binary) while none of this build's is pending: then this build starts on it,
/// warning once, instead of failing on sea-orm's "Migration file ... is missing". If
/// some of this build's are pending as well, the two builds' migrations have diverged,
/// and nothing is applied.
async fn schema_is_newer(txn: &DatabaseTransaction) -> anyhow::Result<bool> {
    let known: std::collections::HashSet<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let applied: std::collections::HashSet<String> = Migrator::get_migration_models(txn)
        .await
        .context("reading the applied migrations")?
        .into_iter()
        .map(|m| m.version)
        .collect();
    let mut unknown: Vec<&String> = applied.difference(&known).collect();
    if unknown.is_empty() {
        return Ok(false);
    }
    unknown.sort();
    let mut pending: Vec<&String> = known.difference(&applied).collect();
    pending.sort();
    let list = |names: &[&String]| {
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !pending.is_empty() {
        anyhow::bail!(
            "the database holds {} migration(s) this build does not know ({}) and lacks {} of its own ({}): it was migrated by a build whose migrations differ from this one's; start the build that migrated it",
            unknown.len(),
            list(&unknown),
            pending.len(),
            list(&pending)
        );
    }
    tracing::warn!(
        unknown = %list(&unknown),
        "the schema is newer than this build: {} migration(s) it does not know are applied; starting without migrating",
        unknown.len()
    );
    Ok(true)
}

/// What the migration transaction runs before `Migrator::up`.
async fn migration_prelude(txn: &DatabaseTransaction) -> anyhow::Result<()> {
    match txn.get_database_backend() {
        // The pool's connections carry the request's statement timeout (10 s by
        // default), and a migration of a large registry outlasts it: building an index
        // over tens of millions of check records was cancelled, the instance refused to
        // start, and so did every other one after it, each in turn. Lifted for the
        // transaction only (and with it the wait for the lock).
        //
        // The lock is a transaction lock on the connection that migrates: it lives and
        // dies with the migrations it protects. (A session lock on a second, idle
        // connection was freed by anything that ends idle sessions, while the
        // migrations went on, and the next instance migrated alongside them.)
        DatabaseBackend::Postgres => {
            txn.execute_unprepared("SET LOCAL statement_timeout = 0")
                .await
                .context("lifting the statement timeout for the migrations")?;
            crate::cluster::locks::take_migration_lock(txn).await
        }
        // SQLite: each connection keeps its own parsed copy of the schema and notices
        // another connection's change only when it next reads; the pool's migrations
        // otherwise run on whichever connection is free, and one that had not seen a
        // column dropped refuses to add it again ("duplicate column name"). A first read
        // refreshes the copy of the connection the transaction holds.
        DatabaseBackend::Sqlite => {
            txn.execute_unprepared("SELECT count(*) FROM sqlite_master")
                .await
                .context("reading the schema before the migrations")?;
            Ok(())
        }
        other => anyhow::bail!("no migrations for the {other:?} backend"),
    }
}

/// `(name, applied)` for every known migration.
pub async fn migration_status(db: &DatabaseConnection) -> anyhow::Result<Vec<(String, bool)>> {
    let applied: std::collections::HashSet<String> = Migrator::get_applied_migrations(db)
        .await?
        .into_iter()
        .map(|m| m.name().to_string())
        .collect();
    Ok(Migrator::migrations()
        .into_iter()
        .map(|m| {
            let name = m.name().to_string();
            let done = applied.contains(&name);
            (name, done)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_commits_are_synced_to_the_disk() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}/r.db?mode=rwc", dir.path().display());
        let settings = Settings::default();
        let db = connect_url(&url, &settings).await?;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                DatabaseBackend::Sqlite,
                "PRAGMA synchronous",
            ))
            .await?
            .context("PRAGMA synchronous answered no row")?;
        // 2 = FULL (1 would be NORMAL, which a power loss can roll back).
        assert_eq!(row.try_get_by_index::<i32>(0)?, 2);
        Ok(())
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file("sqlite://./data/r.db?mode=rwc").as_deref(),
            Some("./data/r.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }
}
