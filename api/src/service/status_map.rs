//! The registry log's status map as the service keeps it (`tlog::status_map` has the
//! format): updated by the registry-log appender in the transaction of each append, and
//! read back as a status proof for a check's answer.

use crate::error::{AppError, AppResult};
use crate::store::status_map_store;
use crate::store::tlog_store::{self, Head, LogName};
use crate::tlog::note::note_text;
use crate::tlog::status_map::{
    self, EntryRef, Leaf, PROOF_FORMAT, ProofLeaf, StatusMap, StatusProof,
};
use crate::tlog::{Hash, hash_b64};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::{ConnectionTrait, DbErr};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Entries read per statement when the map is built over a log that had none.
const BACKFILL_PAGE: u64 = 1_000;

fn map_err(e: crate::tlog::TlogError) -> DbErr {
    DbErr::Custom(format!("status map: {e}"))
}

/// The stored node hashes of the map of one log size that an appender has read or
/// written: nodes are read from the database once per position, not once per append (an
/// append reads the groups of 16 its changed nodes are hashed in, at four levels). Valid
/// only for `size`; an append by another instance (a head of another size) empties it.
#[derive(Default)]
pub struct NodeCache {
    size: u64,
    nodes: HashMap<status_map::Position, Hash>,
}

impl NodeCache {
    /// After a committed append: the nodes it read and wrote, at its size. (It holds at
    /// most the 69,905 stored positions.)
    pub fn committed(&mut self, update: &MapUpdate) {
        if self.size != update.base_size {
            self.nodes.clear();
        }
        self.nodes.extend(update.nodes.iter().copied());
        self.size = update.size;
    }
}

/// What an append wrote to the map: the new root and nodes, and the sizes.
pub struct MapUpdate {
    pub root: Hash,
    base_size: u64,
    size: u64,
    nodes: Vec<status_map::NodeRow>,
}

/// Writes the map of the log after `entries` are appended to `head` (locked in `tx`)
/// and returns its root, for the new checkpoint's extension line. `cache` is read, not
/// changed: pass the update to [`NodeCache::committed`] once the transaction commits.
///
/// A log whose head checkpoint carries no map (written before the map existed) first
/// gets the map of its current size, built from its entries.
pub async fn update_status_map(
    tx: &impl ConnectionTrait,
    head: &Head,
    entries: &[Vec<u8>],
    cache: &NodeCache,
) -> Result<MapUpdate, DbErr> {
    let text = note_text(&head.checkpoint).unwrap_or_default();
    if status_map::root_in_checkpoint(text)
        .map_err(map_err)?
        .is_none()
    {
        backfill(tx, head.size).await?;
    }
    let refs = entries
        .iter()
        .enumerate()
        .map(|(i, e)| EntryRef::of(head.size + i as u64, e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    let buckets: BTreeSet<u32> = refs
        .iter()
        .map(|r| status_map::bucket_of(&status_map::key(&r.uscc)))
        .collect();
    // Every code of the touched buckets, by bucket and key.
    let mut by_bucket: BTreeMap<u32, BTreeMap<[u8; 32], (String, Leaf)>> = BTreeMap::new();
    for (uscc, bucket, leaf) in status_map_store::leaves_in_buckets(tx, &buckets, head.size).await?
    {
        by_bucket
            .entry(bucket)
            .or_default()
            .insert(status_map::key(&uscc).0, (uscc, leaf));
    }
    let mut changed: BTreeSet<(u32, [u8; 32])> = BTreeSet::new();
    for r in &refs {
        let key = status_map::key(&r.uscc);
        let bucket = status_map::bucket_of(&key);
        by_bucket
            .entry(bucket)
            .or_default()
            .entry(key.0)
            .or_insert_with(|| (r.uscc.clone(), Leaf::default()))
            .1
            .record(r);
        changed.insert((bucket, key.0));
    }
    let bucket_hashes: BTreeMap<u32, Hash> = buckets
        .iter()
        .map(|b| {
            let leaves = by_bucket.get(b).into_iter().flatten();
            let hash = status_map::bucket_hash(
                leaves.map(|(k, (_, leaf))| (Hash(*k), leaf.hash(&Hash(*k)))),
            );
            (*b, hash)
        })
        .collect();
    // The siblings, from the cache when it is of this size, else from the database.
    let cached = (cache.size == head.size).then_some(&cache.nodes);
    let mut known = HashMap::new();
    let mut missing = BTreeSet::new();
    for p in status_map::positions_to_read(&buckets) {
        match cached.and_then(|nodes| nodes.get(&p)) {
            Some(hash) => {
                known.insert(p, *hash);
            }
            None => {
                missing.insert(p);
            }
        }
    }
    if !missing.is_empty() {
        known.extend(status_map_store::nodes_at(tx, &missing, head.size).await?);
    }
    let (nodes, root) = status_map::update_nodes(&bucket_hashes, &known);
    let leaves: Vec<status_map::CodeLeaf> = changed
        .iter()
        .filter_map(|(bucket, key)| {
            by_bucket
                .get(bucket)
                .and_then(|b| b.get(key))
                .map(|(uscc, leaf)| (uscc.clone(), *bucket, leaf.clone()))
        })
        .collect();
    let size = head.size + entries.len() as u64;
    status_map_store::insert(tx, size, &leaves, &nodes).await?;
    // What the cache may keep: the siblings read (unchanged at the new size) and the
    // nodes written.
    let mut kept: Vec<status_map::NodeRow> = known.into_iter().collect();
    kept.extend(nodes);
    Ok(MapUpdate {
        root,
        base_size: head.size,
        size,
        nodes: kept,
    })
}

/// Builds the map of the log's first `size` entries from the entries and writes it (a
/// log that predates the map; once, in the first append after the upgrade).
async fn backfill(tx: &impl ConnectionTrait, size: u64) -> Result<(), DbErr> {
    if size == 0 {
        return Ok(());
    }
    let mut map = StatusMap::default();
    let mut at = 0;
    while at < size {
        let end = (at + BACKFILL_PAGE).min(size);
        let entries = tlog_store::read_entries(tx, LogName::Registry, at..end).await?;
        if entries.len() as u64 != end - at {
            return Err(DbErr::Custom(format!(
                "status map: registry log entries {at}..{end} are missing"
            )));
        }
        for (i, e) in entries.iter().enumerate() {
            map.apply(at + i as u64, e).map_err(map_err)?;
        }
        at = end;
    }
    let (leaves, nodes) = map.rows();
    tracing::info!(
        entries = size,
        codes = leaves.len(),
        "status map: built over the registry log's existing entries"
    );
    status_map_store::insert(tx, size, &leaves, &nodes).await
}

/// The status proof of `uscc` in the map of the registry log's checkpoint of `size`
/// (whose root must be `root`, the tree head a receipt names). `None` when that
/// checkpoint carries no map: a checkpoint from before the map, or a tree head that is
/// no checkpoint (an answer read at a state inside an append).
pub async fn status_proof(
    db: &impl ConnectionTrait,
    uscc: &str,
    size: u64,
    root: &str,
) -> AppResult<Option<StatusProof>> {
    let Some(checkpoint) = tlog_store::checkpoint_at(db, LogName::Registry, size).await? else {
        return Ok(None);
    };
    let text = note_text(&checkpoint).unwrap_or_default();
    let (_, _, log_root) =
        crate::tlog::note::parse_checkpoint_body(text).map_err(AppError::internal)?;
    if hash_b64(&log_root) != root {
        return Ok(None);
    }
    let Some(map_root) = status_map::root_in_checkpoint(text).map_err(AppError::internal)? else {
        return Ok(None);
    };
    let key = status_map::key(uscc);
    let bucket = status_map::bucket_of(&key);
    let mut leaves: Vec<(String, Leaf)> =
        status_map_store::leaves_in_buckets(db, &BTreeSet::from([bucket]), size)
            .await?
            .into_iter()
            .map(|(code, _, leaf)| (code, leaf))
            .collect();
    leaves.sort_by_key(|(code, _)| status_map::key(code).0);
    // The stored nodes the 16 siblings are hashed from (levels between stored ones are
    // not kept: `status_map::STORED_EVERY`).
    let stored = status_map_store::nodes_at(
        db,
        &status_map::positions_to_read(&BTreeSet::from([bucket])),
        size,
    )
    .await?;
    let siblings = status_map::proof_siblings(bucket, &stored);
    // The code's entries, in one read, in the leaf's (listing) order.
    let mut entries = Vec::new();
    if let Some((_, leaf)) = leaves.iter().find(|(code, _)| code == uscc) {
        let indexes: Vec<u64> = leaf.listings.values().map(|l| l.index).collect();
        let mut read = tlog_store::read_entries_at(db, LogName::Registry, &indexes).await?;
        for index in indexes {
            let entry = read.remove(&index).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("registry log entry {index} is missing"))
            })?;
            entries.push(STANDARD.encode(entry));
        }
    }
    let proof = StatusProof {
        format: PROOF_FORMAT.into(),
        uscc: uscc.to_string(),
        bucket,
        leaves: leaves
            .iter()
            .map(|(code, leaf)| {
                let key = status_map::key(code);
                ProofLeaf {
                    key,
                    hash: leaf.hash(&key),
                }
            })
            .collect(),
        entries,
        siblings,
        checkpoint,
    };
    // A proof that does not hold is a fault of the map's rows, never an answer to send.
    proof
        .verify_path(&map_root)
        .map_err(|e| AppError::internal(anyhow::anyhow!("a status proof built here: {e}")))?;
    Ok(Some(proof))
}
