//! Transparency-log storage: append-only entries and stored hashes per log, the head
//! row that serialises appenders, and the tiles and entry bundles read back from them.
//!
//! An append runs inside the caller's transaction (the answer log's in the same one as
//! the check records it covers), so a leaf, its hashes, the new head and the checkpoint
//! that covers it commit together or not at all.

use crate::tlog::note::LogKey;
use crate::tlog::{self, Hash, HashMemo, TilePath, TlogError};
use chrono::{DateTime, Utc};
use entity::{tlog_checkpoint, tlog_cosignature, tlog_entry, tlog_hash, tlog_head};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::OnConflict,
};

/// The registry's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogName {
    /// Every change of the list (the events of `changes`); public.
    Registry,
    /// Every check answered (receipt payloads); hashes public, entries private.
    Answers,
}

impl LogName {
    pub fn as_str(self) -> &'static str {
        match self {
            LogName::Registry => "registry",
            LogName::Answers => "answers",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "registry" => Some(LogName::Registry),
            "answers" => Some(LogName::Answers),
            _ => None,
        }
    }

    /// Whether anyone may read the log's entries.
    pub fn entries_are_public(self) -> bool {
        self == LogName::Registry
    }
}

/// Rows per INSERT: three columns each stays well under SQLite's bind limit.
const ROWS_PER_STATEMENT: usize = 1_000;

fn db_err(e: TlogError) -> DbErr {
    DbErr::Custom(format!("transparency log: {e}"))
}

fn hash_of(bytes: &[u8]) -> Result<Hash, DbErr> {
    let b: [u8; 32] = bytes
        .try_into()
        .map_err(|_| DbErr::Custom("transparency log: a stored hash is not 32 bytes".into()))?;
    Ok(Hash(b))
}

/// A log's head as read under its lock.
#[derive(Clone, Debug)]
pub struct Head {
    pub log: LogName,
    pub size: u64,
    pub root: Hash,
    /// The complete subtrees of the tree, largest first.
    pub edge: Vec<Hash>,
    pub position: i64,
    pub checkpoint: String,
}

impl Head {
    fn from_row(log: LogName, row: tlog_head::Model) -> Result<Self, DbErr> {
        let edge = row
            .edge
            .chunks(32)
            .map(hash_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            log,
            size: u64::try_from(row.size).map_err(|_| DbErr::Custom("negative log size".into()))?,
            root: hash_of(&row.root)?,
            edge,
            position: row.position,
            checkpoint: row.checkpoint,
        })
    }

    /// The stored hashes of the edge, by index: what an append or a proof starts from.
    fn memo(&self) -> Result<HashMemo, DbErr> {
        let indexes = tlog::edge_indexes(self.size);
        if indexes.len() != self.edge.len() {
            return Err(DbErr::Custom(
                "transparency log: the head's edge does not match its size".into(),
            ));
        }
        Ok(HashMemo {
            hashes: indexes.into_iter().zip(self.edge.iter().copied()).collect(),
        })
    }
}

/// Creates the log's head (an empty tree with its signed checkpoint) if it has none.
pub async fn ensure_head(
    db: &impl ConnectionTrait,
    log: LogName,
    key: &LogKey,
    extension: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let checkpoint = key
        .sign_checkpoint_with(0, &tlog::EMPTY_HASH, extension)
        .map_err(db_err)?;
    tlog_head::Entity::insert(tlog_head::ActiveModel {
        log: Set(log.as_str().into()),
        size: Set(0),
        root: Set(tlog::EMPTY_HASH.0.to_vec()),
        edge: Set(Vec::new()),
        position: Set(0),
        checkpoint: Set(checkpoint),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(tlog_head::Column::Log)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The head, unlocked (for readers).
pub async fn head(db: &impl ConnectionTrait, log: LogName) -> Result<Option<Head>, DbErr> {
    tlog_head::Entity::find_by_id(log.as_str())
        .one(db)
        .await?
        .map(|row| Head::from_row(log, row))
        .transpose()
}

/// The head, locked until the transaction ends (PostgreSQL `FOR UPDATE`; an SQLite
/// write transaction holds the database's one write lock already).
pub async fn lock_head(tx: &impl ConnectionTrait, log: LogName) -> Result<Head, DbErr> {
    let mut query = tlog_head::Entity::find_by_id(log.as_str());
    if tx.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    let row = query
        .one(tx)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("the {} log has no head row", log.as_str())))?;
    Head::from_row(log, row)
}

/// What an append wrote: where its entries are, the new tree and its checkpoint, and
/// the hashes needed to prove the new entries' inclusion.
#[derive(Clone, Debug)]
pub struct Appended {
    pub first_index: u64,
    pub size: u64,
    pub root: Hash,
    pub checkpoint: String,
    pub memo: HashMemo,
}

impl Appended {
    /// The inclusion proof of entry `index` (one of this append's) in the new tree.
    pub fn proof(&self, index: u64) -> Result<Vec<Hash>, TlogError> {
        tlog::prove_inclusion(self.size, index, &self.memo)
    }
}

/// An append computed from a head but not yet written: the new stored hashes and
/// entries, the signed checkpoint, and the head that writing it makes.
#[derive(Clone, Debug)]
pub struct PreparedAppend {
    /// The stored hashes the append adds, by index.
    pub hashes: Vec<(u64, Hash)>,
    /// The size and root of the head the append starts from (what the write expects
    /// to find).
    pub base_size: u64,
    pub base_root: Hash,
    /// The head after the append (what the next append of this process may start from).
    pub next: Head,
    pub appended: Appended,
}

/// Computes the append of `entries` after `head` and signs one checkpoint for the new
/// tree (with `extension` as its extension line, if any); nothing is written.
pub fn prepare_append(
    head: &Head,
    entries: &[Vec<u8>],
    position: i64,
    key: &LogKey,
    extension: Option<&str>,
) -> Result<PreparedAppend, DbErr> {
    let mut memo = head.memo()?;
    let leaves: Vec<Hash> = entries.iter().map(|e| tlog::record_hash(e)).collect();
    if let Some(long) = entries.iter().find(|e| e.len() > tlog::MAX_ENTRY_LEN) {
        return Err(DbErr::Custom(format!(
            "transparency log: an entry of {} bytes is longer than an entry bundle allows",
            long.len()
        )));
    }
    let (hashes, root) =
        tlog::stored_hashes_for_leaves(head.size, &leaves, &mut memo).map_err(db_err)?;
    let size = head.size + entries.len() as u64;
    let checkpoint = key
        .sign_checkpoint_with(size, &root, extension)
        .map_err(db_err)?;
    let edge = tlog::edge_indexes(size)
        .iter()
        .map(|i| memo.hashes.get(i).copied())
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| db_err(TlogError::MissingHash(size)))?;
    Ok(PreparedAppend {
        hashes,
        base_size: head.size,
        base_root: head.root,
        next: Head {
            log: head.log,
            size,
            root,
            edge,
            position,
            checkpoint: checkpoint.clone(),
        },
        appended: Appended {
            first_index: head.size,
            size,
            root,
            checkpoint,
            memo,
        },
    })
}

impl PreparedAppend {
    /// The new head's edge as stored (the hashes concatenated).
    pub fn edge_bytes(&self) -> Vec<u8> {
        self.next.edge.iter().flat_map(|h| h.0).collect()
    }
}

/// `n` as a column value (sizes and indexes are `bigint`).
pub fn as_i64(n: u64) -> Result<i64, DbErr> {
    i64::try_from(n).map_err(|_| DbErr::Custom("log too large".into()))
}

/// Appends `entries` after `head` (locked in `tx`), signs one checkpoint for the new
/// tree, and moves the head (and its feed `position`).
pub async fn append(
    tx: &impl ConnectionTrait,
    head: &Head,
    entries: &[Vec<u8>],
    position: i64,
    key: &LogKey,
    extension: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Appended, DbErr> {
    let prepared = prepare_append(head, entries, position, key, extension)?;
    let log = head.log.as_str();
    let mut hash_rows = Vec::with_capacity(prepared.hashes.len());
    for (idx, hash) in &prepared.hashes {
        hash_rows.push(tlog_hash::ActiveModel {
            log: Set(log.into()),
            idx: Set(as_i64(*idx)?),
            hash: Set(hash.0.to_vec()),
        });
    }
    let mut entry_rows = Vec::with_capacity(entries.len());
    for (offset, data) in entries.iter().enumerate() {
        entry_rows.push(tlog_entry::ActiveModel {
            log: Set(log.into()),
            idx: Set(as_i64(head.size + offset as u64)?),
            data: Set(data.clone()),
        });
    }
    insert_chunked::<tlog_hash::Entity, _>(tx, hash_rows).await?;
    insert_chunked::<tlog_entry::Entity, _>(tx, entry_rows).await?;
    let size = prepared.next.size;
    let checkpoint = prepared.next.checkpoint.clone();
    if !entries.is_empty() {
        tlog_checkpoint::Entity::insert(tlog_checkpoint::ActiveModel {
            log: Set(log.into()),
            size: Set(as_i64(size)?),
            note: Set(checkpoint.clone()),
            signed_at: Set(now),
        })
        .exec_without_returning(tx)
        .await?;
    }
    tlog_head::Entity::update_many()
        .col_expr(tlog_head::Column::Size, as_i64(size)?.into())
        .col_expr(
            tlog_head::Column::Root,
            prepared.next.root.0.to_vec().into(),
        )
        .col_expr(tlog_head::Column::Edge, prepared.edge_bytes().into())
        .col_expr(tlog_head::Column::Position, position.into())
        .col_expr(tlog_head::Column::Checkpoint, checkpoint.into())
        .col_expr(tlog_head::Column::UpdatedAt, now.into())
        .filter(tlog_head::Column::Log.eq(log))
        .exec(tx)
        .await?;
    Ok(prepared.appended)
}

async fn insert_chunked<E, A>(tx: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), DbErr>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E>,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        E::insert_many(chunk).exec_without_returning(tx).await?;
    }
    Ok(())
}

/// Stored hashes by index.
pub async fn read_hashes(
    db: &impl ConnectionTrait,
    log: LogName,
    indexes: &[u64],
) -> Result<HashMemo, DbErr> {
    let mut memo = HashMemo::default();
    for chunk in indexes.chunks(ROWS_PER_STATEMENT) {
        let wanted: Vec<i64> = chunk
            .iter()
            .filter_map(|i| i64::try_from(*i).ok())
            .collect();
        let rows = tlog_hash::Entity::find()
            .filter(tlog_hash::Column::Log.eq(log.as_str()))
            .filter(tlog_hash::Column::Idx.is_in(wanted))
            .all(db)
            .await?;
        for row in rows {
            memo.hashes.insert(row.idx as u64, hash_of(&row.hash)?);
        }
    }
    Ok(memo)
}

/// A hash tile's bytes, if a tree of `size` leaves has it.
pub async fn read_tile(
    db: &impl ConnectionTrait,
    log: LogName,
    tile: &TilePath,
    size: u64,
) -> Result<Option<Vec<u8>>, DbErr> {
    if tile.level.is_none() || !tile.exists_in(size) {
        return Ok(None);
    }
    let indexes = tile.hash_indexes();
    let memo = read_hashes(db, log, &indexes).await?;
    let mut out = Vec::with_capacity(indexes.len() * 32);
    for i in indexes {
        let hash = memo
            .hashes
            .get(&i)
            .ok_or_else(|| db_err(TlogError::MissingHash(i)))?;
        out.extend_from_slice(&hash.0);
    }
    Ok(Some(out))
}

/// Entries `range` of a log, in order.
pub async fn read_entries(
    db: &impl ConnectionTrait,
    log: LogName,
    range: std::ops::Range<u64>,
) -> Result<Vec<Vec<u8>>, DbErr> {
    let (Ok(start), Ok(end)) = (i64::try_from(range.start), i64::try_from(range.end)) else {
        return Ok(Vec::new());
    };
    let rows = tlog_entry::Entity::find()
        .filter(tlog_entry::Column::Log.eq(log.as_str()))
        .filter(tlog_entry::Column::Idx.gte(start))
        .filter(tlog_entry::Column::Idx.lt(end))
        .order_by_asc(tlog_entry::Column::Idx)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.data).collect())
}

/// The entries at `indexes` of a log, by index (those the log holds).
pub async fn read_entries_at(
    db: &impl ConnectionTrait,
    log: LogName,
    indexes: &[u64],
) -> Result<std::collections::HashMap<u64, Vec<u8>>, DbErr> {
    let indexes = indexes
        .iter()
        .map(|&i| as_i64(i))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = tlog_entry::Entity::find()
        .filter(tlog_entry::Column::Log.eq(log.as_str()))
        .filter(tlog_entry::Column::Idx.is_in(indexes))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.idx as u64, r.data)).collect())
}

/// An entry bundle's bytes, if a tree of `size` leaves has it.
pub async fn read_entry_bundle(
    db: &impl ConnectionTrait,
    log: LogName,
    tile: &TilePath,
    size: u64,
) -> Result<Option<Vec<u8>>, DbErr> {
    if tile.level.is_some() || !tile.exists_in(size) {
        return Ok(None);
    }
    let range = tile.entry_range();
    let entries = read_entries(db, log, range.clone()).await?;
    if entries.len() as u64 != range.end - range.start {
        return Err(db_err(TlogError::MissingHash(range.start)));
    }
    tlog::entry_bundle(entries.iter().map(Vec::as_slice))
        .map(Some)
        .map_err(db_err)
}

/// The checkpoint the log signed for `size`, if it signed one: the head's when the head
/// is of that size (the empty tree's, and the answer log's latest, are kept only
/// there), else the stored one.
pub async fn checkpoint_at(
    db: &impl ConnectionTrait,
    log: LogName,
    size: u64,
) -> Result<Option<String>, DbErr> {
    if let Some(head) = head(db, log).await?
        && head.size == size
    {
        return Ok(Some(head.checkpoint));
    }
    let Ok(size) = i64::try_from(size) else {
        return Ok(None);
    };
    Ok(
        tlog_checkpoint::Entity::find_by_id((log.as_str().to_string(), size))
            .one(db)
            .await?
            .map(|c| c.note),
    )
}

/// Stores a witness's cosignature of the log's checkpoint of `size` (a later one of the
/// same witness for the same size replaces it).
pub async fn save_cosignature(
    db: &impl ConnectionTrait,
    log: LogName,
    size: u64,
    cosignature: &crate::tlog::cosignature::Cosignature,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    tlog_cosignature::Entity::insert(tlog_cosignature::ActiveModel {
        log: Set(log.as_str().into()),
        size: Set(i64::try_from(size).map_err(|_| DbErr::Custom("log too large".into()))?),
        witness: Set(cosignature.witness.clone()),
        line: Set(cosignature.line.clone()),
        cosigned_at: Set(i64::try_from(cosignature.timestamp).unwrap_or(i64::MAX)),
        received_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            tlog_cosignature::Column::Log,
            tlog_cosignature::Column::Size,
            tlog_cosignature::Column::Witness,
        ])
        .update_columns([
            tlog_cosignature::Column::Line,
            tlog_cosignature::Column::CosignedAt,
            tlog_cosignature::Column::ReceivedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The cosignature lines stored for the log's checkpoint of `size`, by witness.
pub async fn cosignature_lines(
    db: &impl ConnectionTrait,
    log: LogName,
    size: u64,
) -> Result<Vec<String>, DbErr> {
    let Ok(size) = i64::try_from(size) else {
        return Ok(Vec::new());
    };
    Ok(tlog_cosignature::Entity::find()
        .filter(tlog_cosignature::Column::Log.eq(log.as_str()))
        .filter(tlog_cosignature::Column::Size.eq(size))
        .order_by_asc(tlog_cosignature::Column::Witness)
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.line)
        .collect())
}
