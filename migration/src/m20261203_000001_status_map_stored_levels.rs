//! The status map keeps only every fourth level of its tree (`status_map_nodes` rows of
//! levels 16, 12, 8, 4 and 0; `api::tlog::status_map::STORED_EVERY` says why): the
//! levels between are hashes of the at most 16 stored nodes under them, recomputed when
//! a proof or an append needs them. The map's format and every root are unchanged.
//!
//! Up deletes the rows of the levels between. Down writes them back, at every log size
//! where one changes, from the stored levels: the build before this migration reads
//! every level from the table (and would build wrong roots on missing rows).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use sha2::{Digest, Sha256};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The levels kept, from the buckets (16) to the root (0).
const STORED: [u8; 5] = [16, 12, 8, 4, 0];
/// Nodes of one stored level hashed into one node of the stored level above.
const GROUP: usize = 16;
/// Rows per INSERT statement.
const PER_STATEMENT: usize = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DELETE FROM status_map_nodes WHERE level NOT IN (0, 4, 8, 12, 16)")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for window in STORED.windows(2) {
            rebuild_levels_above(db, window[0]).await?;
        }
        Ok(())
    }
}

/// Writes the three levels between stored level `level` and the stored level above it,
/// group by group: each time one of a group's 16 nodes changes (a row of a new
/// `from_size`), the nodes above it that change get a row of that size.
async fn rebuild_levels_above(db: &impl ConnectionTrait, level: u8) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT position, from_size, hash FROM status_map_nodes WHERE level = {level}"),
        ))
        .await?;
    // (group, from_size, slot in the group, hash), sorted below by group then size.
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let position: i32 = row.try_get_by_index(0)?;
        let from_size: i64 = row.try_get_by_index(1)?;
        let hash: Vec<u8> = row.try_get_by_index(2)?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| DbErr::Migration("a status-map hash is not 32 bytes".into()))?;
        let position = position as usize;
        changes.push((position / GROUP, from_size, position % GROUP, hash));
    }
    changes.sort_unstable_by_key(|&(group, size, slot, _)| (group, size, slot));
    // The empty subtree's hash at `level` and at the three levels above it.
    let empty: Vec<[u8; 32]> = (0..=3u8).map(|up| empty_hash(level - up)).collect();
    let mut out: Vec<(u8, usize, i64, [u8; 32])> = Vec::new();
    for group_changes in changes.chunk_by(|a, b| a.0 == b.0) {
        let group = group_changes[0].0;
        let mut children = [empty[0]; GROUP];
        // The levels between, nearest first: 8, 4 and 2 nodes of this group.
        let mut between: Vec<Vec<[u8; 32]>> = (1..=3usize)
            .map(|up| vec![empty[up]; GROUP >> up])
            .collect();
        for at_size in group_changes.chunk_by(|a, b| a.1 == b.1) {
            for &(_, _, slot, hash) in at_size {
                children[slot] = hash;
            }
            let mut below: Vec<[u8; 32]> = children.to_vec();
            for (up, nodes) in (1..=3u8).zip(between.iter_mut()) {
                let above: Vec<[u8; 32]> = below
                    .chunks(2)
                    .map(|pair| node_hash(&pair[0], &pair[1]))
                    .collect();
                for (i, hash) in above.iter().enumerate() {
                    if nodes[i] != *hash {
                        nodes[i] = *hash;
                        out.push((level - up, group * above.len() + i, at_size[0].1, *hash));
                    }
                }
                below = above;
            }
        }
    }
    for chunk in out.chunks(PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new("status_map_nodes")).columns([
            Alias::new("level"),
            Alias::new("position"),
            Alias::new("from_size"),
            Alias::new("hash"),
        ]);
        for &(level, position, from_size, hash) in chunk {
            stmt.values([
                i64::from(level).into(),
                (position as i64).into(),
                from_size.into(),
                hash.to_vec().into(),
            ])
            .map_err(|e| DbErr::Migration(e.to_string()))?;
        }
        db.execute_raw(backend.build(&stmt)).await?;
    }
    Ok(())
}

// The map's hashing (`api::tlog::status_map`), as of this migration: a migration stays
// as it was written, so it keeps its own copy.
fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x12]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

fn empty_hash(level: u8) -> [u8; 32] {
    let mut h: [u8; 32] = Sha256::digest([0x11]).into();
    for _ in level..16 {
        h = node_hash(&h, &h);
    }
    h
}
