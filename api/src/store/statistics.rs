//! The planner's statistics of tables a bulk job grows (PostgreSQL).
//!
//! An import looks up each chunk's operators, listings, periods and measures with
//! `IN (…)` lists of up to a thousand keys. PostgreSQL plans those from the tables'
//! statistics; statistics taken when a table was small (or never, on a fresh database)
//! make it expect most of the table to match, and it scans the whole table instead of
//! probing the index. Measured on a database of one million imported listings whose
//! tables had never been analysed (autovacuum off, as on this machine): the measures
//! lookup of one chunk took 780 ms by sequential scan, the listings lookup 150 ms, and
//! a no-op re-import of the million slowed to a few hundred rows a second, slower at
//! every chunk. Autovacuum's own analysis, when it is on, follows a fast import minutes
//! late. So the import refreshes what its lookups rely on itself, as bulk loaders do
//! (`pg_restore` leaves it to the operator; a library cannot).
//!
//! A table is stale when the rows changed since its last analysis exceed half its live
//! rows plus [`MIN_CHANGED_ROWS`]: growing a table from nothing to a million rows costs
//! about seven analyses (each samples 30,000 rows, a fraction of a second), and a table
//! that is not changing is never analysed again.

use crate::error::AppResult;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

/// Changed rows below which a table is never re-analysed.
pub const MIN_CHANGED_ROWS: i64 = 10_000;

/// The tables an import's lookups read.
pub const IMPORT_LOOKUPS: &[&str] = &[
    "operators",
    "listings",
    "listing_periods",
    "listing_measures",
];

/// Analyses those of `tables` whose statistics are stale; returns their names. Does
/// nothing on SQLite (its planner does not mislead these lookups: it has no statistics
/// unless asked and always probes the index). A refusal (a role that may not analyse)
/// is logged and the job goes on: stale statistics make it slower, not wrong.
pub async fn refresh_stale<C: ConnectionTrait>(db: &C, tables: &[&str]) -> AppResult<Vec<String>> {
    refresh_stale_beyond(db, tables, MIN_CHANGED_ROWS).await
}

/// [`refresh_stale`] with its own floor of changed rows (tests use a small one).
pub async fn refresh_stale_beyond<C: ConnectionTrait>(
    db: &C,
    tables: &[&str],
    min_changed_rows: i64,
) -> AppResult<Vec<String>> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Vec::new());
    }
    let names: Vec<String> = tables.iter().map(|t| (*t).to_string()).collect();
    let stale: Vec<String> = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT relname::text AS name FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = ANY($1) \
             AND n_mod_since_analyze > $2 + n_live_tup / 2 ORDER BY relname",
            [names.into(), min_changed_rows.into()],
        ))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "name"))
        .collect::<Result<_, _>>()?;
    let mut analysed = Vec::new();
    for table in stale {
        // The name came from the catalogue and is one of `tables`: quoting is enough.
        let sql = format!("ANALYZE \"{}\"", table.replace('"', "\"\""));
        let started = std::time::Instant::now();
        match db.execute_unprepared(&sql).await {
            Ok(_) => {
                tracing::info!(table = %table, seconds = started.elapsed().as_secs_f64(), "statistics refreshed");
                analysed.push(table);
            }
            Err(e) => {
                tracing::warn!(table = %table, error = %e, "the table's statistics could not be refreshed")
            }
        }
    }
    Ok(analysed)
}
