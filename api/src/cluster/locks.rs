//! Exactly one runner among instances, with PostgreSQL advisory locks (scoped to the
//! database, so other databases on the same server never contend).
//!
//! - Migrations: a **session** lock held on one connection around `Migrator::up`. The
//!   first instance migrates; the others block on the lock and then find nothing
//!   pending. A migrating instance that dies ends its session, which frees the lock.
//! - Background jobs: a **transaction** lock per tick (`pg_try_advisory_xact_lock`). The
//!   instance that gets it runs the tick, the others skip theirs; it is released when the
//!   tick's transaction ends, or with the session if the instance dies mid-tick, so
//!   whichever instance ticks next runs the job. Jobs are idempotent (a tick of another
//!   instance right after this one finds nothing to do); the lock keeps them from running
//!   at once, over the same rows.
//!
//! On SQLite (one process) both simply run.

use crate::error::AppResult;
use anyhow::Context;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait,
    sqlx::{self, Connection},
};

/// The advisory locks the registry takes. The keys are arbitrary but fixed: every
/// instance (and every version) must use the same key for the same lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Migrations,
    ExpiryRecorder,
    IdempotencyPurge,
}

impl Lock {
    /// `0x4352_4547` is "CREG"; the low half numbers the lock.
    pub fn key(self) -> i64 {
        const BASE: i64 = 0x4352_4547 << 32;
        BASE | match self {
            Lock::Migrations => 1,
            Lock::ExpiryRecorder => 2,
            Lock::IdempotencyPurge => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lock::Migrations => "migrations",
            Lock::ExpiryRecorder => "expiry recorder",
            Lock::IdempotencyPurge => "idempotency purge",
        }
    }
}

/// Runs `migrate` holding the migration lock (PostgreSQL), waiting for another
/// instance's migrations first. The lock's connection is taken from the pool, its
/// statement timeout lifted (migrations of a large database may outlast it, and so may
/// the wait), and closed afterwards rather than returned with that setting.
pub async fn with_migration_lock<T>(
    db: &DatabaseConnection,
    migrate: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return migrate.await;
    }
    let key = Lock::Migrations.key();
    let mut conn = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .context("a connection for the migration lock")?
        .detach();
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await
        .context("lifting the migration lock's statement timeout")?;
    let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut conn)
        .await
        .context("taking the migration lock")?;
    if !got {
        tracing::info!("another instance is running the migrations; waiting for it");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut conn)
            .await
            .context("waiting for the migration lock")?;
    }
    let result = migrate.await;
    // Closing the session releases the lock whatever happened; unlocking first says so
    // at once even if the close is slow.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

/// Runs one tick of a background job if no other instance is running it now:
/// `Some(result)` when it ran here, `None` when another instance holds the lock.
///
/// The lock's transaction writes nothing and holds no snapshot between statements (read
/// committed), so keeping it open for the tick costs one pooled connection and holds back
/// nothing; the job does its own work in its own transactions.
pub async fn run_exclusive<T>(
    db: &DatabaseConnection,
    lock: Lock,
    job: impl Future<Output = AppResult<T>>,
) -> AppResult<Option<T>> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return job.await.map(Some);
    }
    let tx = db.begin().await?;
    let row = tx
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [lock.key().into()],
        ))
        .await?;
    let locked = match row {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    };
    if !locked {
        tx.rollback().await?;
        tracing::debug!(job = lock.name(), "another instance runs this tick");
        return Ok(None);
    }
    let result = job.await;
    // Ending the (empty) transaction releases the lock.
    tx.rollback().await?;
    result.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lock_has_its_own_key() {
        let all = [
            Lock::Migrations,
            Lock::ExpiryRecorder,
            Lock::IdempotencyPurge,
        ];
        let keys: std::collections::HashSet<i64> = all.iter().map(|l| l.key()).collect();
        assert_eq!(keys.len(), all.len());
        // The keys are part of the contract between versions running side by side.
        assert_eq!(Lock::Migrations.key(), 0x4352_4547_0000_0001);
    }
}
