//! The status map's rows (`tlog::status_map`), versioned by registry-log size: reading
//! the map of size N takes, for each leaf or node, its row with the largest
//! `from_size` ≤ N. Rows are only inserted, by the append that makes their size. Nodes
//! are stored on every fourth level only (`status_map::STORED_EVERY`).
//!
//! The reads put numbers (sizes, buckets, positions) into the SQL text, never a string
//! from outside: they are computed here, and this keeps one statement for any number of
//! positions on both backends.

use crate::tlog::Hash;
use crate::tlog::status_map::{CodeLeaf, Leaf, NodeRow, Position, empty_hash};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use std::collections::{BTreeSet, HashMap};

/// Positions (or buckets) per statement.
const PER_STATEMENT: usize = 500;

fn size_value(size: u64) -> Result<i64, DbErr> {
    i64::try_from(size).map_err(|_| DbErr::Custom("status map: log too large".into()))
}

/// Every code's leaf in `buckets`, in the map of size `size`: `(uscc, bucket, leaf)`.
pub async fn leaves_in_buckets(
    db: &impl ConnectionTrait,
    buckets: &BTreeSet<u32>,
    size: u64,
) -> Result<Vec<CodeLeaf>, DbErr> {
    let size = size_value(size)?;
    let buckets: Vec<u32> = buckets.iter().copied().collect();
    let mut out = Vec::new();
    for chunk in buckets.chunks(PER_STATEMENT) {
        let list = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT l.uscc, l.bucket, l.listings FROM status_map_leaves l \
             WHERE l.bucket IN ({list}) AND l.from_size <= {size} \
             AND l.from_size = (SELECT MAX(m.from_size) FROM status_map_leaves m \
                                WHERE m.uscc = l.uscc AND m.from_size <= {size})"
        );
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?;
        for row in rows {
            let uscc: String = row.try_get_by_index(0)?;
            let bucket: i32 = row.try_get_by_index(1)?;
            let listings: String = row.try_get_by_index(2)?;
            let leaf = Leaf::from_json(&listings).map_err(|e| DbErr::Custom(e.to_string()))?;
            out.push((uscc, bucket as u32, leaf));
        }
    }
    Ok(out)
}

/// The hash of each of `positions` in the map of size `size` (a position with no row is
/// an empty subtree: [`empty_hash`] of its level).
pub async fn nodes_at(
    db: &impl ConnectionTrait,
    positions: &BTreeSet<Position>,
    size: u64,
) -> Result<HashMap<Position, Hash>, DbErr> {
    let size = size_value(size)?;
    let positions: Vec<Position> = positions.iter().copied().collect();
    let mut out = HashMap::with_capacity(positions.len());
    for chunk in positions.chunks(PER_STATEMENT) {
        let values = chunk
            .iter()
            .map(|(level, p)| format!("({level},{p})"))
            .collect::<Vec<_>>()
            .join(",");
        // A VALUES list's columns are column1, column2 on both backends.
        let sql = format!(
            "SELECT w.column1, w.column2, \
               (SELECT n.hash FROM status_map_nodes n \
                 WHERE n.level = w.column1 AND n.position = w.column2 AND n.from_size <= {size} \
                 ORDER BY n.from_size DESC LIMIT 1) \
             FROM (VALUES {values}) AS w"
        );
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?;
        for row in rows {
            let level: i32 = row.try_get_by_index(0)?;
            let position: i32 = row.try_get_by_index(1)?;
            let hash: Option<Vec<u8>> = row.try_get_by_index(2)?;
            let level = level as u8;
            let hash = match hash {
                Some(hash) => Hash(hash.try_into().map_err(|_| {
                    DbErr::Custom("status map: a stored hash is not 32 bytes".into())
                })?),
                None => empty_hash(level),
            };
            out.insert((level, position as u32), hash);
        }
    }
    Ok(out)
}

/// Writes the leaves and nodes of the map of size `size`.
pub async fn insert(
    db: &impl ConnectionTrait,
    size: u64,
    leaves: &[CodeLeaf],
    nodes: &[NodeRow],
) -> Result<(), DbErr> {
    let size = size_value(size)?;
    let backend = db.get_database_backend();
    for chunk in leaves.chunks(PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new("status_map_leaves")).columns([
            Alias::new("uscc"),
            Alias::new("from_size"),
            Alias::new("bucket"),
            Alias::new("listings"),
        ]);
        for (uscc, bucket, leaf) in chunk {
            stmt.values([
                uscc.clone().into(),
                size.into(),
                i64::from(*bucket).into(),
                leaf.to_json().into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        db.execute_raw(backend.build(&stmt)).await?;
    }
    for chunk in nodes.chunks(PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new("status_map_nodes")).columns([
            Alias::new("level"),
            Alias::new("position"),
            Alias::new("from_size"),
            Alias::new("hash"),
        ]);
        for ((level, position), hash) in chunk {
            stmt.values([
                i64::from(*level).into(),
                i64::from(*position).into(),
                size.into(),
                hash.0.to_vec().into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        db.execute_raw(backend.build(&stmt)).await?;
    }
    Ok(())
}
