//! Many rows in few statements: an import writes a chunk's rows of each table in one
//! statement instead of one round trip per row.
//!
//! - **PostgreSQL**: the chunk's rows travel as one JSON array in a single text
//!   parameter, `INSERT … SELECT … FROM jsonb_populate_recordset(NULL::table, $1::jsonb)`,
//!   the table's own row type giving every column its type (`jsonb`, not `json`: the
//!   snapshots of `listing_revisions` and `audit_events` are then parsed once, not
//!   re-parsed per column; measured 3.5 times faster for `listing_revisions`). A
//!   multi-row `VALUES` with one bind parameter per value spent 40-60 % of a chunk's
//!   `audit_events` and `listing_revisions` time parsing and binding tens of thousands
//!   of parameters, and had to be split at the protocol's 65,535-parameter limit.
//! - **SQLite** (and any value the JSON path cannot carry exactly): one multi-row
//!   `INSERT … RETURNING *` built by sea-query, split only where the bind-parameter limit
//!   requires. `RETURNING` is PostgreSQL's and SQLite's (3.35+) own; the statement is run
//!   as is, so sea-orm's per-backend `RETURNING` switch does not matter.

use crate::error::AppResult;
use sea_orm::sea_query::{OptionEnum, Value};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DbBackend, EntityName, EntityTrait,
    FromQueryResult, IdenStatic, Iterable, QueryResult, QueryTrait, Statement,
};
use std::io::Write as _;

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
    let mut stored = Vec::with_capacity(models.len());
    for row in insert(db, models, Returning::All).await? {
        stored.push(<A::Entity as EntityTrait>::Model::from_query_result(
            &row, "",
        )?);
    }
    Ok(stored)
}

/// [`insert_returning`] answering only `columns` of each stored row (read them with
/// `QueryResult::try_get("", name)`): the audit chain needs an event's id and hash back,
/// not its snapshot, which PostgreSQL would otherwise print as text and the client parse
/// again, two events per imported listing.
pub async fn insert_returning_columns<A, C>(
    db: &C,
    models: Vec<A>,
    columns: &[<A::Entity as EntityTrait>::Column],
) -> AppResult<Vec<QueryResult>>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    insert(db, models, Returning::Columns(columns)).await
}

/// [`insert_returning`] for rows nobody needs back (link tables, periods).
pub async fn insert_all<A, C>(db: &C, models: Vec<A>) -> AppResult<u64>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    let n = models.len() as u64;
    insert(db, models, Returning::Nothing).await?;
    Ok(n)
}

/// What an insert answers of the stored rows.
enum Returning<'a, C> {
    Nothing,
    All,
    Columns(&'a [C]),
}

/// Inserts `models`; answers the stored rows (or the `returning` columns of them).
async fn insert<A, C>(
    db: &C,
    models: Vec<A>,
    returning: Returning<'_, <A::Entity as EntityTrait>::Column>,
) -> AppResult<Vec<QueryResult>>
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    if models.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let models = if backend == DbBackend::Postgres {
        match as_json_rows(models) {
            Ok((sql, rows)) => {
                let sql = match &returning {
                    Returning::Nothing => sql,
                    Returning::All => format!("{sql} RETURNING *"),
                    Returning::Columns(columns) => {
                        let names: Vec<String> =
                            columns.iter().map(|c| quoted(c.as_str())).collect();
                        format!("{sql} RETURNING {}", names.join(", "))
                    }
                };
                let statement = Statement::from_sql_and_values(backend, sql, [Value::from(rows)]);
                return Ok(match returning {
                    Returning::Nothing => {
                        db.execute_raw(statement).await?;
                        Vec::new()
                    }
                    _ => db.query_all_raw(statement).await?,
                });
            }
            Err(models) => models,
        }
    } else {
        models
    };
    let per_statement = rows_per_statement(<A::Entity as EntityTrait>::Column::iter().count());
    let mut stored = Vec::new();
    let mut rest = models.into_iter().peekable();
    while rest.peek().is_some() {
        let batch: Vec<A> = rest.by_ref().take(per_statement).collect();
        let mut insert = <A::Entity as EntityTrait>::insert_many(batch).into_query();
        match &returning {
            Returning::Nothing => {}
            Returning::All => {
                insert.returning_all();
            }
            Returning::Columns(columns) => {
                insert.returning(
                    sea_orm::sea_query::Query::returning().columns(columns.iter().copied()),
                );
            }
        }
        let statement = backend.build(&insert);
        if matches!(returning, Returning::Nothing) {
            db.execute_raw(statement).await?;
        } else {
            stored.extend(db.query_all_raw(statement).await?);
        }
    }
    Ok(stored)
}

/// The PostgreSQL statement (without `RETURNING`) and its one parameter, the rows as a
/// JSON array of objects keyed by column name; or the models back when a value cannot be
/// carried exactly as JSON, or the models do not all set the same columns (then the
/// `VALUES` path writes them, defaults included).
///
/// The rows are read `WITH ORDINALITY` and inserted in that order, so identity columns
/// number them as the caller ordered them (the audit chain depends on it, and checks it).
fn as_json_rows<A: ActiveModelTrait>(models: Vec<A>) -> Result<(String, String), Vec<A>> {
    let set = |m: &A, c: <A::Entity as EntityTrait>::Column| !m.is_not_set(c);
    let columns: Vec<<A::Entity as EntityTrait>::Column> =
        <A::Entity as EntityTrait>::Column::iter()
            .filter(|c| set(&models[0], *c))
            .collect();
    let same_columns = models.iter().all(|m| {
        <A::Entity as EntityTrait>::Column::iter().all(|c| set(m, c) == set(&models[0], c))
    });
    if columns.is_empty() || !same_columns {
        return Err(models);
    }
    // Each column's JSON key (`"name":`), written once and copied into every row.
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(columns.len());
    for c in &columns {
        let mut key = Vec::new();
        if push_json(&mut key, &serde_json::Value::from(c.as_str())).is_err() {
            return Err(models);
        }
        key.push(b':');
        keys.push(key);
    }
    let mut rows: Vec<u8> = Vec::with_capacity(models.len() * 64);
    rows.push(b'[');
    for (i, model) in models.iter().enumerate() {
        rows.extend_from_slice(if i == 0 { b"{" } else { b",{" });
        for (j, (c, key)) in columns.iter().zip(&keys).enumerate() {
            if j > 0 {
                rows.push(b',');
            }
            // Every column of `columns` is set in every model (checked above).
            let value = match model.get(*c) {
                ActiveValue::Set(v) | ActiveValue::Unchanged(v) => v,
                ActiveValue::NotSet => return Err(models),
            };
            rows.extend_from_slice(key);
            if !matches!(push_json_value(&mut rows, &value), Ok(true)) {
                return Err(models);
            }
        }
        rows.push(b'}');
    }
    rows.push(b']');
    let Ok(rows) = String::from_utf8(rows) else {
        return Err(models);
    };
    let table = quoted(A::Entity::default().table_name());
    let names: Vec<String> = columns.iter().map(|c| quoted(c.as_str())).collect();
    let selected: Vec<String> = names.iter().map(|n| format!("r.{n}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT {} FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb) \
         WITH ORDINALITY AS r ORDER BY r.ordinality",
        names.join(", "),
        selected.join(", "),
    );
    Ok((sql, rows))
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn push_json(out: &mut Vec<u8>, value: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer(out, value).map_err(std::io::Error::other)
}

/// Appends `value` as the JSON that `jsonb_populate_recordset` reads back as the same
/// value; `Ok(false)` for a value it would not read back exactly (the caller falls back).
fn push_json_value(out: &mut Vec<u8>, value: &Value) -> std::io::Result<bool> {
    match value {
        Value::Bool(None)
        | Value::TinyInt(None)
        | Value::SmallInt(None)
        | Value::Int(None)
        | Value::BigInt(None)
        | Value::String(None)
        | Value::Json(None)
        | Value::Enum(OptionEnum::None(_))
        | Value::ChronoDate(None)
        | Value::ChronoDateTimeUtc(None)
        | Value::ChronoDateTimeWithTimeZone(None) => out.write_all(b"null")?,
        Value::Bool(Some(b)) => write!(out, "{b}")?,
        Value::TinyInt(Some(v)) => write!(out, "{v}")?,
        Value::SmallInt(Some(v)) => write!(out, "{v}")?,
        Value::Int(Some(v)) => write!(out, "{v}")?,
        Value::BigInt(Some(v)) => write!(out, "{v}")?,
        Value::String(Some(s)) => {
            serde_json::to_writer(&mut *out, s).map_err(std::io::Error::other)?
        }
        Value::Enum(OptionEnum::Some(e)) => {
            serde_json::to_writer(&mut *out, e.value.as_ref() as &str)
                .map_err(std::io::Error::other)?
        }
        // A JSON null in a json(b) column would be read back as SQL NULL: not the same.
        Value::Json(Some(j)) if j.is_null() => return Ok(false),
        Value::Json(Some(j)) => push_json(out, j)?,
        Value::ChronoDate(Some(d)) => write!(out, "\"{}\"", d.format("%Y-%m-%d"))?,
        // Microseconds, cut as sqlx cuts a bound timestamp (PostgreSQL would round more
        // digits): the stored instant is the one the audit hash was computed over.
        Value::ChronoDateTimeUtc(Some(t)) => {
            write!(out, "\"{}\"", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))?
        }
        Value::ChronoDateTimeWithTimeZone(Some(t)) => {
            write!(out, "\"{}\"", t.format("%Y-%m-%dT%H:%M:%S%.6f%:z"))?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Inserts `(listing_id, measure_id)` links. On PostgreSQL one fixed-text statement
/// takes the two columns as two integer arrays (`unnest`): an imported listing has about
/// 11 links, and reading them as two `int8[]` literals cost a fifth of what
/// `jsonb_populate_recordset` cost to parse the same rows as JSON objects. Elsewhere the
/// generic multi-row `INSERT`.
pub async fn insert_listing_measures<C: ConnectionTrait>(
    db: &C,
    links: &[(i64, i64)],
) -> AppResult<u64> {
    if links.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        let models =
            links.iter().map(
                |(listing_id, measure_id)| entity::listing_measure::ActiveModel {
                    listing_id: ActiveValue::Set(*listing_id),
                    measure_id: ActiveValue::Set(*measure_id),
                },
            );
        return insert_all(db, models.collect()).await;
    }
    let array = |pick: fn(&(i64, i64)) -> i64| {
        let mut text = String::with_capacity(links.len() * 8 + 2);
        text.push('{');
        for (i, link) in links.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&pick(link).to_string());
        }
        text.push('}');
        text
    };
    let statement = Statement::from_sql_and_values(
        backend,
        "INSERT INTO listing_measures (listing_id, measure_id) \
         SELECT * FROM unnest($1::text::int8[], $2::text::int8[])",
        [Value::from(array(|l| l.0)), Value::from(array(|l| l.1))],
    );
    db.execute_raw(statement).await?;
    Ok(links.len() as u64)
}
