//! The registry log's status map: for every operator code the log names, the latest
//! entry of each of its listings, committed in each registry checkpoint, so that an
//! answer for one code can be proved from a few hashes instead of a replay of the log.
//!
//! A check's receipt names the registry log's tree head it was computed from. The map
//! at that head says, for the code asked about, which entries describe its listings
//! (or that the log holds none): a *status proof* carries those entries and the path
//! from them to the map root in the signed checkpoint, so a verifier recomputes a CLEAR
//! or a RESTRICTED offline, with the registry log's verifier key alone.
//!
//! # The map (version 1)
//!
//! Everything is SHA-256; `||` is concatenation; hashes are 32 bytes.
//!
//! - **key**(code) = SHA-256(code as UTF-8). Its first two bytes, big-endian, are the
//!   code's **bucket** (0..65536).
//! - A code's **leaf**: the latest entry (highest index) of each listing the log names
//!   for the code (`listing.uscc`, `listing.id`), ordered by listing id (as a number).
//!   leaf hash = SHA-256(0x10 || key || h(e₁) || … || h(eₙ)), where h(e) is the RFC 6962
//!   leaf hash of the entry's bytes, SHA-256(0x00 || e).
//! - A **bucket**'s hash = SHA-256(0x11 || k₁ || l₁ || … || kₘ || lₘ) over the bucket's
//!   codes ordered by key (kᵢ the key, lᵢ the leaf hash); an empty bucket hashes
//!   SHA-256(0x11).
//! - The map is a complete binary tree of depth 16 over the 65,536 buckets (bucket b is
//!   leaf b, left to right): a node hashes SHA-256(0x12 || left || right). The root is
//!   the **map root**.
//! - The registry checkpoint of size N carries the map of the log's first N entries as
//!   the extension line `status-map/v1 <base64 map root>` (C2SP tlog-checkpoint allows
//!   extension lines; verifiers of the log itself ignore it).
//!
//! # A status proof
//!
//! JSON: `format` = `credit-registry/status-proof@v1`, `uscc`, `bucket`, `leaves` (every
//! code of the bucket as `{key, hash}`, base64, ordered by key), `entries` (the code's
//! leaf: its entries, base64, ordered by listing id; empty when the code has no leaf),
//! `siblings` (16 base64 hashes, the bucket's sibling first, up to the root's child),
//! and `checkpoint` (the signed registry checkpoint, verbatim). It verifies when the
//! checkpoint is signed by the registry log's key and carries a map root, the leaves
//! are strictly ordered and all in the code's bucket, the code's key is among them
//! exactly when entries are given (and then its hash is the leaf hash of those entries,
//! each naming the code, with strictly increasing listing ids), and the bucket hash
//! folded with the siblings by the bucket's bits (lowest bit first: 0 = left) is the map
//! root. A code absent from a bucket whose every code is shown is absent from the log.
//!
//! Why a fixed-depth tree of buckets rather than a sparse Merkle tree over 256-bit
//! keys: the absence of a code is shown by the whole bucket, so there is no compression
//! rule for a verifier to get wrong; the depth is fixed, so a proof has no shape to
//! choose; and an append changes one bucket and 16 nodes per code changed (of which a
//! store keeps every fourth level: [`STORED_EVERY`]). A bucket holds about one code per
//! 65,536 in the log (15 at a million codes).

use super::{Hash, TlogError, hash_b64, parse_hash_b64, record_hash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Levels of the tree: 2^16 buckets.
pub const DEPTH: u8 = 16;
/// The buckets' level (the tree's leaves).
pub const BUCKET_LEVEL: u8 = DEPTH;
/// The checkpoint extension line's prefix.
pub const EXTENSION_PREFIX: &str = "status-map/v1 ";
/// A status proof's `format`.
pub const PROOF_FORMAT: &str = "credit-registry/status-proof@v1";

const LEAF_PREFIX: u8 = 0x10;
const BUCKET_PREFIX: u8 = 0x11;
const NODE_PREFIX: u8 = 0x12;

/// A code's key: SHA-256 of the code.
pub fn key(uscc: &str) -> Hash {
    Hash(Sha256::digest(uscc.as_bytes()).into())
}

/// The bucket of a key: its first two bytes.
pub fn bucket_of(key: &Hash) -> u32 {
    u32::from(u16::from_be_bytes([key.0[0], key.0[1]]))
}

/// The node hash of two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// A bucket's hash from its codes' `(key, leaf hash)`, which must be ordered by key.
pub fn bucket_hash(leaves: impl IntoIterator<Item = (Hash, Hash)>) -> Hash {
    let mut h = Sha256::new();
    h.update([BUCKET_PREFIX]);
    for (key, leaf) in leaves {
        h.update(key.0);
        h.update(leaf.0);
    }
    Hash(h.finalize().into())
}

/// The hash of an empty subtree at `level` (16: an empty bucket; 0: the empty map).
pub fn empty_hash(level: u8) -> Hash {
    static EMPTY: std::sync::OnceLock<Vec<Hash>> = std::sync::OnceLock::new();
    let table = EMPTY.get_or_init(|| {
        let mut by_level = vec![bucket_hash(std::iter::empty()); usize::from(DEPTH) + 1];
        for level in (0..usize::from(DEPTH)).rev() {
            by_level[level] = node_hash(&by_level[level + 1], &by_level[level + 1]);
        }
        by_level
    });
    table[usize::from(level.min(DEPTH))]
}

/// The root of the map with no code.
pub fn empty_root() -> Hash {
    empty_hash(0)
}

/// One listing of a code's leaf: its latest entry's index and leaf hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeafListing {
    pub listing: i64,
    pub index: u64,
    #[serde(with = "hash_text")]
    pub hash: Hash,
}

/// A code's leaf: the latest entry of each of its listings, by listing id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Leaf {
    pub listings: BTreeMap<i64, LeafListing>,
}

impl Leaf {
    /// The leaf hash under `key`.
    pub fn hash(&self, key: &Hash) -> Hash {
        leaf_hash(key, self.listings.values().map(|l| &l.hash))
    }

    /// Records `entry` as its listing's latest.
    pub fn record(&mut self, entry: &EntryRef) {
        self.listings.insert(
            entry.listing,
            LeafListing {
                listing: entry.listing,
                index: entry.index,
                hash: entry.hash,
            },
        );
    }

    /// The listings as stored (JSON, by listing id).
    pub fn to_json(&self) -> String {
        let listings: Vec<&LeafListing> = self.listings.values().collect();
        // A list of plain structs always serialises.
        serde_json::to_string(&listings).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, TlogError> {
        let listings: Vec<LeafListing> = serde_json::from_str(text)
            .map_err(|e| TlogError::Malformed(format!("a stored status-map leaf: {e}")))?;
        Ok(Self {
            listings: listings.into_iter().map(|l| (l.listing, l)).collect(),
        })
    }
}

/// The leaf hash of a code's entries (their RFC 6962 leaf hashes, by listing id).
pub fn leaf_hash<'a>(key: &Hash, entry_hashes: impl IntoIterator<Item = &'a Hash>) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(key.0);
    for e in entry_hashes {
        h.update(e.0);
    }
    Hash(h.finalize().into())
}

/// What the map needs of a registry-log entry: where it is, which listing of which code
/// it describes, and its leaf hash.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryRef {
    pub index: u64,
    pub uscc: String,
    pub listing: i64,
    pub hash: Hash,
}

impl EntryRef {
    /// Reads the code and listing of the entry at `index` from its bytes.
    pub fn of(index: u64, entry: &[u8]) -> Result<Self, TlogError> {
        #[derive(Deserialize)]
        struct Entry {
            listing: Listing,
        }
        #[derive(Deserialize)]
        struct Listing {
            id: String,
            uscc: String,
        }
        let e: Entry = serde_json::from_slice(entry).map_err(|e| {
            TlogError::Malformed(format!("registry log entry {index} names no listing: {e}"))
        })?;
        let listing = e.listing.id.parse().map_err(|_| {
            TlogError::Malformed(format!(
                "registry log entry {index}: listing id '{}' is not a number",
                e.listing.id
            ))
        })?;
        Ok(Self {
            index,
            uscc: e.listing.uscc,
            listing,
            hash: record_hash(entry),
        })
    }
}

/// A node position: level (0 the root, 16 the buckets) and index within the level.
pub type Position = (u8, u32);

/// A code's leaf as stored: the code, its bucket, the leaf.
pub type CodeLeaf = (String, u32, Leaf);

/// A node as stored: its position and hash.
pub type NodeRow = (Position, Hash);

/// Every how many levels nodes are stored: levels 16 (the buckets), 12, 8, 4 and 0 (the
/// root). A node between two stored levels is a hash of the at most 16 stored nodes
/// under it, recomputed when needed (at most 15 hashes), instead of a row written at
/// every append that changes it: an append writes 5 node rows per bucket it changes,
/// not 17, and a proof reads 60 rows instead of 16 (a proof is asked for; appends are
/// what every change pays).
pub const STORED_EVERY: u8 = 4;

/// Whether nodes of `level` are stored (see [`STORED_EVERY`]).
pub fn is_stored(level: u8) -> bool {
    level.is_multiple_of(STORED_EVERY)
}

/// The hash of the subtree at `position`, from the stored nodes `stored` answers (a
/// stored level is read; a level between is hashed up from the stored level below).
pub fn subtree_hash(position: Position, stored: &impl Fn(Position) -> Hash) -> Hash {
    if is_stored(position.0) {
        return stored(position);
    }
    children_hash(position, stored)
}

/// The hash of the node at `position` from its two children's subtrees.
fn children_hash(position: Position, stored: &impl Fn(Position) -> Hash) -> Hash {
    let (level, p) = position;
    node_hash(
        &subtree_hash((level + 1, p << 1), stored),
        &subtree_hash((level + 1, (p << 1) | 1), stored),
    )
}

/// The stored nodes that are hashed into one stored node: the 16 at the stored level
/// below it. `child` is one of them; the group is the one it is in.
fn stored_group(child: Position) -> impl Iterator<Item = Position> {
    let (level, p) = child;
    let width = 1u32 << STORED_EVERY;
    let first = p & !(width - 1);
    (first..first + width).map(move |q| (level, q))
}

/// The stored nodes a change of `buckets` changes, by stored level from the buckets'
/// (16) to the root's (0).
fn changed_stored_nodes(buckets: impl IntoIterator<Item = u32>) -> Vec<(u8, BTreeSet<u32>)> {
    let mut levels = vec![(BUCKET_LEVEL, buckets.into_iter().collect::<BTreeSet<u32>>())];
    while let Some((level, changed)) = levels.last().filter(|(level, _)| *level > 0) {
        let parents = changed.iter().map(|p| p >> STORED_EVERY).collect();
        levels.push((level - STORED_EVERY, parents));
    }
    levels
}

/// The stored positions whose hashes an update of `buckets` reads: at each stored level
/// but the root's, the group of every node the update changes (the 16 stored nodes its
/// stored ancestor is hashed from), less the changed nodes themselves.
pub fn positions_to_read(buckets: &BTreeSet<u32>) -> BTreeSet<Position> {
    let mut read = BTreeSet::new();
    for (level, changed) in changed_stored_nodes(buckets.iter().copied()) {
        if level == 0 {
            break;
        }
        for &p in &changed {
            read.extend(stored_group((level, p)).filter(|&(_, q)| !changed.contains(&q)));
        }
    }
    read
}

/// The path of a bucket to the root: its sibling at each level, bucket level first.
pub fn proof_positions(bucket: u32) -> Vec<Position> {
    (1..=DEPTH)
        .rev()
        .map(|level| (level, (bucket >> (DEPTH - level)) ^ 1))
        .collect()
}

/// A bucket's 16 siblings (bucket level first) from the stored nodes of
/// [`positions_to_read`] of that bucket alone (a missing one is an empty subtree).
/// Every sibling is off the bucket's path, so the path's own nodes are never needed.
pub fn proof_siblings(bucket: u32, stored: &HashMap<Position, Hash>) -> Vec<Hash> {
    let at = |p: Position| stored.get(&p).copied().unwrap_or_else(|| empty_hash(p.0));
    proof_positions(bucket)
        .into_iter()
        .map(|p| subtree_hash(p, &at))
        .collect()
}

/// Recomputes the stored nodes above changed buckets. `buckets`: the new hash of each
/// changed bucket; `known`: the current hash of every position in
/// [`positions_to_read`] (a missing one is an empty subtree). Returns every new stored
/// node (buckets included) and the new root.
pub fn update_nodes(
    buckets: &BTreeMap<u32, Hash>,
    known: &HashMap<Position, Hash>,
) -> (Vec<NodeRow>, Hash) {
    let mut fresh: HashMap<Position, Hash> = buckets
        .iter()
        .map(|(&b, &h)| ((BUCKET_LEVEL, b), h))
        .collect();
    // Level by level upwards: each changed node is hashed from the (fresh or known)
    // stored level below it, which the previous round completed.
    for (level, changed) in changed_stored_nodes(buckets.keys().copied())
        .into_iter()
        .skip(1)
    {
        let at = |p: Position| {
            fresh
                .get(&p)
                .or_else(|| known.get(&p))
                .copied()
                .unwrap_or_else(|| empty_hash(p.0))
        };
        let next: Vec<NodeRow> = changed
            .iter()
            .map(|&p| ((level, p), children_hash((level, p), &at)))
            .collect();
        fresh.extend(next);
    }
    let root = fresh
        .get(&(0, 0))
        .or_else(|| known.get(&(0, 0)))
        .copied()
        .unwrap_or_else(empty_root);
    (fresh.into_iter().collect(), root)
}

/// The whole map in memory, folded entry by entry: what a verifier of the public log
/// (and the tests) compute the map root with.
#[derive(Default)]
pub struct StatusMap {
    leaves: HashMap<String, (Hash, Leaf)>,
    by_bucket: BTreeMap<u32, BTreeMap<[u8; 32], Hash>>,
    /// The stored levels' nodes, as a store holds them.
    nodes: HashMap<Position, Hash>,
    dirty: BTreeSet<u32>,
}

impl StatusMap {
    /// Folds in the entry at `index`.
    pub fn apply(&mut self, index: u64, entry: &[u8]) -> Result<(), TlogError> {
        let e = EntryRef::of(index, entry)?;
        let (key, leaf) = self
            .leaves
            .entry(e.uscc.clone())
            .or_insert_with(|| (key(&e.uscc), Leaf::default()));
        leaf.record(&e);
        let bucket = bucket_of(key);
        self.by_bucket
            .entry(bucket)
            .or_default()
            .insert(key.0, leaf.hash(key));
        self.dirty.insert(bucket);
        Ok(())
    }

    /// The bucket of `uscc` as a proof shows it (every code's key and leaf hash) and
    /// its siblings up to the root, from the map as folded so far.
    pub fn path(&mut self, uscc: &str) -> (u32, Vec<ProofLeaf>, Vec<Hash>) {
        self.root();
        let bucket = bucket_of(&key(uscc));
        let leaves = self
            .by_bucket
            .get(&bucket)
            .into_iter()
            .flatten()
            .map(|(k, h)| ProofLeaf {
                key: Hash(*k),
                hash: *h,
            })
            .collect();
        let siblings = proof_siblings(bucket, &self.nodes);
        (bucket, leaves, siblings)
    }

    /// Every code's leaf (with its bucket) and every stored node of the map as folded so
    /// far: what a store writes to hold this map.
    pub fn rows(&mut self) -> (Vec<CodeLeaf>, Vec<NodeRow>) {
        self.root();
        let leaves = self
            .leaves
            .iter()
            .map(|(uscc, (key, leaf))| (uscc.clone(), bucket_of(key), leaf.clone()))
            .collect();
        let nodes = self.nodes.iter().map(|(p, h)| (*p, *h)).collect();
        (leaves, nodes)
    }

    /// The latest entry index of each listing of `uscc`, by listing id.
    pub fn leaf(&self, uscc: &str) -> Option<&Leaf> {
        self.leaves.get(uscc).map(|(_, leaf)| leaf)
    }

    /// The map root of everything folded in so far.
    pub fn root(&mut self) -> Hash {
        if self.dirty.is_empty() {
            return self.nodes.get(&(0, 0)).copied().unwrap_or_else(empty_root);
        }
        let changed: BTreeMap<u32, Hash> = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|b| {
                let leaves = self.by_bucket.get(&b);
                (
                    b,
                    bucket_hash(leaves.into_iter().flatten().map(|(k, h)| (Hash(*k), *h))),
                )
            })
            .collect();
        let (nodes, root) = update_nodes(&changed, &self.nodes);
        self.nodes.extend(nodes);
        root
    }
}

/// The map root a checkpoint's note text carries, if it carries one.
pub fn root_in_checkpoint(note_text: &str) -> Result<Option<Hash>, TlogError> {
    let mut found = None;
    for line in note_text.lines().skip(3) {
        if let Some(root) = line.strip_prefix(EXTENSION_PREFIX) {
            if found.is_some() {
                return Err(TlogError::Malformed(
                    "the checkpoint carries two status-map lines".into(),
                ));
            }
            found = Some(parse_hash_b64(root)?);
        }
    }
    Ok(found)
}

/// The checkpoint extension line for a map root.
pub fn extension_line(root: &Hash) -> String {
    format!("{EXTENSION_PREFIX}{}", hash_b64(root))
}

/// A status proof, as served and filed (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusProof {
    pub format: String,
    pub uscc: String,
    pub bucket: u32,
    pub leaves: Vec<ProofLeaf>,
    /// The code's entries (base64 of their bytes), by listing id.
    pub entries: Vec<String>,
    #[serde(with = "hash_list")]
    pub siblings: Vec<Hash>,
    pub checkpoint: String,
}

/// One code of a proof's bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofLeaf {
    #[serde(with = "hash_text")]
    pub key: Hash,
    #[serde(with = "hash_text")]
    pub hash: Hash,
}

/// A status proof longer than this is refused unread (a code with a few hundred
/// listings fits).
pub const MAX_PROOF_TEXT: usize = 1024 * 1024;

/// What a status proof shows once its map path holds: the code's entries in the map of
/// the log's first `size` entries. The checkpoint's signature is checked by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenStatus {
    pub uscc: String,
    pub map_root: Hash,
    /// The code's entries, parsed, by listing id (empty: the log names no listing of it).
    pub entries: Vec<serde_json::Value>,
}

impl StatusProof {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(text: &str) -> Result<Self, TlogError> {
        if text.len() > MAX_PROOF_TEXT {
            return Err(TlogError::Malformed(
                "the status proof is longer than 1 MiB".into(),
            ));
        }
        let proof: Self = serde_json::from_str(text)
            .map_err(|e| TlogError::Malformed(format!("not a status proof: {e}")))?;
        if proof.format != PROOF_FORMAT {
            return Err(TlogError::Malformed(format!(
                "the status proof's format is '{}', not {PROOF_FORMAT}",
                proof.format
            )));
        }
        Ok(proof)
    }

    /// Checks the path from the code's entries (or its absence) to `map_root`, the map
    /// root of the checkpoint (verified by the caller).
    pub fn verify_path(&self, map_root: &Hash) -> Result<ProvenStatus, TlogError> {
        let bad = |why: String| TlogError::Malformed(format!("the status proof: {why}"));
        let code_key = key(&self.uscc);
        if self.bucket != bucket_of(&code_key) {
            return Err(bad(format!(
                "bucket {} is not the bucket of {} ({})",
                self.bucket,
                self.uscc,
                bucket_of(&code_key)
            )));
        }
        if self.siblings.len() != usize::from(DEPTH) {
            return Err(bad(format!(
                "{} sibling hashes, not {DEPTH}",
                self.siblings.len()
            )));
        }
        for pair in self.leaves.windows(2) {
            if pair[0].key.0 >= pair[1].key.0 {
                return Err(bad("the bucket's codes are not in strict key order".into()));
            }
        }
        if let Some(stray) = self
            .leaves
            .iter()
            .find(|l| bucket_of(&l.key) != self.bucket)
        {
            return Err(bad(format!(
                "key {} is not in bucket {}",
                hash_b64(&stray.key),
                self.bucket
            )));
        }
        let mut entries = Vec::with_capacity(self.entries.len());
        let mut hashes = Vec::with_capacity(self.entries.len());
        let mut last_listing = None;
        for text in &self.entries {
            let bytes = STANDARD
                .decode(text)
                .map_err(|_| bad("an entry is not base64".into()))?;
            let e = EntryRef::of(0, &bytes)?;
            if e.uscc != self.uscc {
                return Err(bad(format!(
                    "an entry describes a listing of {}, not {}",
                    e.uscc, self.uscc
                )));
            }
            if last_listing.is_some_and(|last| e.listing <= last) {
                return Err(bad("the entries are not in strict listing order".into()));
            }
            last_listing = Some(e.listing);
            hashes.push(e.hash);
            entries.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("an entry is not JSON: {e}")))?,
            );
        }
        let own = self.leaves.iter().find(|l| l.key.0 == code_key.0);
        match (own, hashes.is_empty()) {
            (None, true) => {}
            (None, false) => {
                return Err(bad(format!(
                    "entries are given, but {} is not in its bucket",
                    self.uscc
                )));
            }
            (Some(_), true) => {
                return Err(bad(format!(
                    "{} is in its bucket, but its entries are not given",
                    self.uscc
                )));
            }
            (Some(leaf), false) => {
                if leaf_hash(&code_key, &hashes) != leaf.hash {
                    return Err(bad(format!(
                        "the entries given are not the leaf of {} in the map",
                        self.uscc
                    )));
                }
            }
        }
        let mut hash = bucket_hash(self.leaves.iter().map(|l| (l.key, l.hash)));
        let mut position = self.bucket;
        for sibling in &self.siblings {
            hash = if position & 1 == 0 {
                node_hash(&hash, sibling)
            } else {
                node_hash(sibling, &hash)
            };
            position >>= 1;
        }
        if hash != *map_root {
            return Err(bad(
                "its path does not lead to the checkpoint's map root".into()
            ));
        }
        Ok(ProvenStatus {
            uscc: self.uscc.clone(),
            map_root: *map_root,
            entries,
        })
    }
}

mod hash_text {
    use super::{Hash, hash_b64, parse_hash_b64};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hash_b64(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        parse_hash_b64(&text).map_err(serde::de::Error::custom)
    }
}

mod hash_list {
    use super::{Hash, hash_b64, parse_hash_b64};
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for h in hashes {
            seq.serialize_element(&hash_b64(h))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| parse_hash_b64(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, uscc: &str, version: u32) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "revisionId": id * 10 + i64::from(version),
            "version": version,
            "listing": {"id": id.to_string(), "uscc": uscc},
        }))
        .unwrap()
    }

    const CODES: [&str; 4] = [
        "91110000101623741K",
        "91310115MA1H8R7C67",
        "914418020000000017",
        "92441802MA00000005",
    ];

    fn folded(entries: &[Vec<u8>]) -> StatusMap {
        let mut map = StatusMap::default();
        for (i, e) in entries.iter().enumerate() {
            map.apply(i as u64, e).unwrap();
        }
        map
    }

    fn log() -> Vec<Vec<u8>> {
        vec![
            entry(1, CODES[0], 1),
            entry(2, CODES[1], 1),
            entry(1, CODES[0], 2),
            entry(3, CODES[0], 1),
            entry(4, CODES[2], 1),
        ]
    }

    fn proof(map: &mut StatusMap, entries: &[Vec<u8>], uscc: &str) -> StatusProof {
        let (bucket, leaves, siblings) = map.path(uscc);
        let own = map
            .leaf(uscc)
            .map(|leaf| {
                leaf.listings
                    .values()
                    .map(|l| STANDARD.encode(&entries[l.index as usize]))
                    .collect()
            })
            .unwrap_or_default();
        StatusProof {
            format: PROOF_FORMAT.into(),
            uscc: uscc.into(),
            bucket,
            leaves,
            entries: own,
            siblings,
            checkpoint: String::new(),
        }
    }

    #[test]
    fn the_empty_map_is_the_empty_bucket_hashed_up_sixteen_levels() {
        let mut h = Hash(Sha256::digest([BUCKET_PREFIX]).into());
        for _ in 0..DEPTH {
            h = node_hash(&h, &h);
        }
        assert_eq!(empty_root(), h);
        assert_eq!(StatusMap::default().root(), h);
    }

    #[test]
    fn folding_in_pages_gives_the_root_of_folding_at_once() {
        let entries = log();
        let mut at_once = folded(&entries);
        let mut paged = StatusMap::default();
        for (i, e) in entries.iter().enumerate() {
            paged.apply(i as u64, e).unwrap();
            if i % 2 == 1 {
                paged.root();
            }
        }
        assert_eq!(paged.root(), at_once.root());
        assert_ne!(at_once.root(), empty_root());
    }

    #[test]
    fn a_leaf_is_the_latest_entry_of_each_listing() {
        let map = folded(&log());
        let leaf = map.leaf(CODES[0]).unwrap();
        let indexes: Vec<(i64, u64)> = leaf
            .listings
            .values()
            .map(|l| (l.listing, l.index))
            .collect();
        assert_eq!(indexes, vec![(1, 2), (3, 3)]);
        // The root is the root a leaf-by-leaf computation gives.
        let key0 = key(CODES[0]);
        let entries = log();
        let expected = leaf_hash(
            &key0,
            [&record_hash(&entries[2]), &record_hash(&entries[3])],
        );
        assert_eq!(leaf.hash(&key0), expected);
    }

    #[test]
    fn proofs_of_a_listed_and_an_unlisted_code_verify() {
        let entries = log();
        let mut map = folded(&entries);
        let root = map.root();
        let listed = proof(&mut map, &entries, CODES[0])
            .verify_path(&root)
            .unwrap();
        assert_eq!(listed.entries.len(), 2);
        let unlisted = proof(&mut map, &entries, CODES[3])
            .verify_path(&root)
            .unwrap();
        assert!(unlisted.entries.is_empty());
    }

    #[test]
    fn a_proof_that_hides_or_alters_anything_fails() {
        let entries = log();
        let mut map = folded(&entries);
        let root = map.root();
        let good = proof(&mut map, &entries, CODES[0]);

        let mut hidden = good.clone();
        hidden.entries.clear();
        assert!(
            hidden.verify_path(&root).is_err(),
            "a listed code claimed absent"
        );

        let mut stale = good.clone();
        stale.entries[0] = STANDARD.encode(&entries[0]);
        assert!(
            stale.verify_path(&root).is_err(),
            "an older entry of the listing"
        );

        let mut dropped = good.clone();
        dropped.entries.pop();
        assert!(dropped.verify_path(&root).is_err(), "one listing left out");

        let mut sibling = good.clone();
        sibling.siblings[7].0[0] ^= 1;
        assert!(sibling.verify_path(&root).is_err());

        let mut other_root = root;
        other_root.0[31] ^= 1;
        assert!(good.verify_path(&other_root).is_err());

        // An unlisted code's proof cannot drop a code of its bucket, nor claim a
        // listed code absent by leaving the code's own leaf out of the bucket.
        let mut emptied = good.clone();
        emptied.entries.clear();
        emptied.leaves.retain(|l| l.key.0 != key(CODES[0]).0);
        assert!(emptied.verify_path(&root).is_err());

        let mut wrong_code = good;
        wrong_code.uscc = CODES[3].into();
        assert!(wrong_code.verify_path(&root).is_err());
    }

    #[test]
    fn the_extension_line_round_trips_and_is_not_repeated() {
        let root = Hash([7; 32]);
        let text = format!(
            "origin\n3\n{}\n{}\n",
            hash_b64(&Hash([1; 32])),
            extension_line(&root)
        );
        assert_eq!(root_in_checkpoint(&text).unwrap(), Some(root));
        let plain = format!("origin\n3\n{}\n", hash_b64(&Hash([1; 32])));
        assert_eq!(root_in_checkpoint(&plain).unwrap(), None);
        let twice = format!("{text}{}\n", extension_line(&root));
        assert!(root_in_checkpoint(&twice).is_err());
    }

    /// Every node of the tree over `buckets` (missing buckets empty), all 17 levels,
    /// computed the plain way: what the stored levels must agree with.
    fn every_node(buckets: &BTreeMap<u32, Hash>) -> HashMap<Position, Hash> {
        let mut nodes: HashMap<Position, Hash> = HashMap::new();
        let mut level_nodes: BTreeMap<u32, Hash> = buckets.clone();
        nodes.extend(level_nodes.iter().map(|(&p, &h)| ((BUCKET_LEVEL, p), h)));
        for level in (1..=DEPTH).rev() {
            let parents: BTreeSet<u32> = level_nodes.keys().map(|p| p >> 1).collect();
            let at = |p: u32| {
                level_nodes
                    .get(&p)
                    .copied()
                    .unwrap_or_else(|| empty_hash(level))
            };
            level_nodes = parents
                .into_iter()
                .map(|q| (q, node_hash(&at(q << 1), &at((q << 1) | 1))))
                .collect();
            nodes.extend(level_nodes.iter().map(|(&p, &h)| ((level - 1, p), h)));
        }
        nodes
    }

    fn some_buckets(seed: u8, count: u32) -> BTreeMap<u32, Hash> {
        (0..count)
            .map(|i| {
                let h = Hash(Sha256::digest([seed, (i % 251) as u8, (i / 251) as u8]).into());
                (bucket_of(&h), h)
            })
            .collect()
    }

    #[test]
    fn an_update_reads_the_groups_of_what_it_changes() {
        // One bucket: at each of the four stored levels below the root, the 15 other
        // nodes of its group of 16.
        assert_eq!(positions_to_read(&[12345].into()).len(), 4 * 15);
        // Buckets 0 and 1 share every group: 14 others at the bucket level, then 15.
        let both = positions_to_read(&[0, 1].into());
        assert_eq!(both.len(), 14 + 3 * 15);
        assert!(!both.contains(&(BUCKET_LEVEL, 0)) && !both.contains(&(BUCKET_LEVEL, 1)));
        assert!(both.iter().all(|&(level, _)| is_stored(level) && level > 0));
    }

    #[test]
    fn stored_levels_updated_in_steps_give_the_whole_tree_root() {
        let mut stored: HashMap<Position, Hash> = HashMap::new();
        let mut all: BTreeMap<u32, Hash> = BTreeMap::new();
        for (seed, count) in [(1, 1), (2, 40), (3, 700), (4, 1)] {
            let changed = some_buckets(seed, count);
            let reads = positions_to_read(&changed.keys().copied().collect());
            let known: HashMap<Position, Hash> = reads
                .iter()
                .filter_map(|p| stored.get(p).map(|h| (*p, *h)))
                .collect();
            let (rows, root) = update_nodes(&changed, &known);
            assert!(rows.iter().all(|((level, _), _)| is_stored(*level)));
            stored.extend(rows);
            all.extend(changed);
            let whole = every_node(&all);
            assert_eq!(root, whole[&(0, 0)]);
            // Every stored row holds what the whole tree has there.
            for (p, h) in &stored {
                assert_eq!(whole.get(p).copied().unwrap_or_else(|| empty_hash(p.0)), *h);
            }
            // A bucket's siblings, recomputed from the stored levels, are the tree's.
            for &bucket in all.keys().take(5) {
                let want: Vec<Hash> = proof_positions(bucket)
                    .iter()
                    .map(|p| whole.get(p).copied().unwrap_or_else(|| empty_hash(p.0)))
                    .collect();
                assert_eq!(proof_siblings(bucket, &stored), want);
            }
        }
    }
}
