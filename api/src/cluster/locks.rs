//! Exactly one runner among instances, with PostgreSQL advisory locks (scoped to the
//! database, so other databases on the same server never contend).
//!
//! - Migrations: a **transaction** lock taken first in the one transaction that runs
//!   `Migrator::up` (`pg_advisory_xact_lock`, `db::migrate_up`). The first instance
//!   migrates; the others block on the lock and then read `seaql_migrations` and find
//!   nothing pending. The lock ends with the migrations' transaction, however it ends
//!   (a lost connection rolls the migrations back as it frees the lock).
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
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, Statement,
    TransactionTrait,
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

/// Takes the migration lock in `txn`, the transaction that runs the migrations
/// (PostgreSQL), waiting for another instance's migrations first. A transaction lock: it
/// is released when the migrations commit or roll back, and when their connection is
/// lost, which rolls them back too, so no instance can take it while another's
/// migrations are still running. The caller has lifted the statement timeout (the wait
/// lasts as long as the other instance's migrations).
pub async fn take_migration_lock(txn: &DatabaseTransaction) -> anyhow::Result<()> {
    let key = Lock::Migrations.key();
    let locked =
        |sql: &str| Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, [key.into()]);
    let row = txn
        .query_one_raw(locked("SELECT pg_try_advisory_xact_lock($1) AS locked"))
        .await
        .context("taking the migration lock")?;
    let got = match row {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    };
    if !got {
        tracing::info!("another instance is running the migrations; waiting for it");
        txn.execute_raw(locked("SELECT pg_advisory_xact_lock($1)"))
            .await
            .context("waiting for the migration lock")?;
    }
    Ok(())
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
