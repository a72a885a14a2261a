//! Many rows in few statements: an import writes a chunk's rows of each table with one
//! multi-row `INSERT … RETURNING *` (split only where the bind-parameter limit requires),
//! instead of one round trip per row. `RETURNING` is PostgreSQL's and SQLite's (3.35+)
//! own; the statement is built by sea-query and run as is, so sea-orm's per-backend
//! `RETURNING` switch does not matter.

use crate::error::AppResult;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, FromQueryResult, Iterable, QueryTrait,
};

/// Bind parameters per statement: below SQLite's limit (32,766 since 3.32) and
/// PostgreSQL's (65,535).
const MAX_BINDS: usize = 30_000;

/// Rows of `columns` values each that one statement may carry.
pub fn rows_per_statement(columns: usize) -> usize {
    (MAX_BINDS / columns.max(1)).max(1)
}

/// Inserts `models` (all setting the same columns) and returns the stored rows, in the
/// order the database returns them; callers that need to pair a returned row with its
/// input match it by a key of their own rather than by position.
pub async fn insert_returning<A, C>(
    db: &C,
    models: Vec<A>,
) -> AppResult<Vec<<A::Entity as EntityTrait>::Model>>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
    <A::Entity as EntityTrait>::Model: FromQueryResult,
{
    let per_statement = rows_per_statement(<A::Entity as EntityTrait>::Column::iter().count());
    let mut stored = Vec::with_capacity(models.len());
    let mut rest = models.into_iter().peekable();
    while rest.peek().is_some() {
        let batch: Vec<A> = rest.by_ref().take(per_statement).collect();
        let mut insert = <A::Entity as EntityTrait>::insert_many(batch).into_query();
        insert.returning_all();
        let statement = db.get_database_backend().build(&insert);
        for row in db.query_all_raw(statement).await? {
            stored.push(<A::Entity as EntityTrait>::Model::from_query_result(
                &row, "",
            )?);
        }
    }
    Ok(stored)
}

/// [`insert_returning`] for rows nobody needs back (link tables, periods).
pub async fn insert_all<A, C>(db: &C, models: Vec<A>) -> AppResult<u64>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    let per_statement = rows_per_statement(<A::Entity as EntityTrait>::Column::iter().count());
    let mut written = 0;
    let mut rest = models.into_iter().peekable();
    while rest.peek().is_some() {
        let batch: Vec<A> = rest.by_ref().take(per_statement).collect();
        let insert = <A::Entity as EntityTrait>::insert_many(batch).into_query();
        let statement = db.get_database_backend().build(&insert);
        written += db.execute_raw(statement).await?.rows_affected();
    }
    Ok(written)
}
