//! Transparency logs: the formats, without I/O.
//!
//! The registry keeps two append-only Merkle logs (issue 17): the registry log (every
//! change of the list, public) and the answer log (every check answered; only its hashes
//! are public). Everything here follows the specifications, so that anybody can check
//! the registry with tools that are not its own:
//!
//! - hashing, proofs and the stored-hash layout: RFC 6962 / RFC 9162 §2, through the
//!   `tlog_tiles` crate (Cloudflare's port of Go's `sumdb/tlog`, the reference
//!   implementation behind the Go checksum database);
//! - tiles and entry bundles: C2SP `tlog-tiles` (the crate's own tile paths are the older
//!   Go `tile/H/L/...` layout, so the C2SP paths are [`TilePath`] here);
//! - checkpoints and signatures: C2SP `tlog-checkpoint` and `signed-note` ([`note`],
//!   over the `signed_note` crate);
//! - receipts: C2SP `tlog-proof` ([`proof`]).
//!
//! Hashes are stored in the `tlog_tiles` layout: [`stored_hash_index`] numbers every
//! complete subtree's hash, and appending leaf `n` stores the hashes that leaf completes
//! ([`stored_hashes_for_leaves`]). Tiles are read back from those hashes.

pub mod client;
pub mod cosignature;
pub mod note;
pub mod proof;
pub mod status_map;
pub mod witness;

use std::collections::HashMap;
pub use tlog_tiles::{EMPTY_HASH, Hash, HashReader, node_hash, record_hash, stored_hash_index};

/// Levels of the tree one tile spans (C2SP tlog-tiles: 8, so 256 hashes).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// The longest entry an entry bundle can carry (a big-endian uint16 length).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Why a proof, a tile or a log's answer does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("{0}")]
    Malformed(String),
    #[error("the inclusion proof does not lead to the checkpoint's root")]
    Inclusion,
    #[error("the consistency proof does not hold: the newer tree does not extend the older one")]
    Consistency,
    #[error("{0}")]
    Checkpoint(String),
    #[error("a hash the computation needs is missing: {0}")]
    MissingHash(u64),
}

/// Hashes by stored-hash index, read from the database before a computation: the
/// `tlog_tiles` functions read through the synchronous [`HashReader`].
#[derive(Clone, Debug, Default)]
pub struct HashMemo {
    pub hashes: HashMap<u64, Hash>,
}

impl HashReader for HashMemo {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.hashes
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// The stored-hash indexes of the complete subtrees that make up a tree of `size`
/// leaves, largest first: the right edge every append and every tree hash starts from.
pub fn edge_indexes(size: u64) -> Vec<u64> {
    let mut indexes = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            indexes.push(stored_hash_index(level, start >> level));
            start += width;
        }
    }
    indexes
}

/// Appends the leaves `hashes` (leaf hashes, [`record_hash`] of each entry) after `size`
/// leaves: returns the new stored hashes, by index, and the new root. `memo` must hold
/// the [`edge_indexes`] of `size`; it receives the new hashes too, so that proofs for the
/// new leaves can be computed from it afterwards.
pub fn stored_hashes_for_leaves(
    size: u64,
    hashes: &[Hash],
    memo: &mut HashMemo,
) -> Result<(Vec<(u64, Hash)>, Hash), TlogError> {
    let mut stored = Vec::with_capacity(hashes.len() * 2);
    for (offset, leaf) in hashes.iter().enumerate() {
        let n = size + offset as u64;
        let new = tlog_tiles::stored_hashes_for_record_hash(n, *leaf, memo)
            .map_err(|_| TlogError::MissingHash(n))?;
        let first = stored_hash_index(0, n);
        for (i, h) in new.into_iter().enumerate() {
            memo.hashes.insert(first + i as u64, h);
            stored.push((first + i as u64, h));
        }
    }
    let new_size = size + hashes.len() as u64;
    let root = tree_hash(new_size, memo)?;
    Ok((stored, root))
}

/// The root of the tree of `size` leaves.
pub fn tree_hash(size: u64, memo: &impl HashReader) -> Result<Hash, TlogError> {
    tlog_tiles::tree_hash(size, memo).map_err(|_| TlogError::MissingHash(size))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, leaf sibling first.
pub fn prove_inclusion(
    size: u64,
    index: u64,
    memo: &impl HashReader,
) -> Result<Vec<Hash>, TlogError> {
    tlog_tiles::prove_record(size, index, memo).map_err(|_| TlogError::MissingHash(index))
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::Malformed(format!(
            "leaf index {index} is not in a tree of {size} leaves"
        )));
    }
    // A proof longer than the tree is deep is refused before the crate recurses over it.
    if proof.len() > 64 {
        return Err(TlogError::Inclusion);
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf)
        .map_err(|_| TlogError::Inclusion)
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves.
pub fn prove_consistency(
    new: u64,
    old: u64,
    memo: &impl HashReader,
) -> Result<Vec<Hash>, TlogError> {
    tlog_tiles::prove_tree(new, old, memo).map_err(|_| TlogError::MissingHash(old))
}

/// Checks that the tree (`new`, `new_root`) extends the tree (`old`, `old_root`).
pub fn verify_consistency(
    proof: &[Hash],
    new: u64,
    new_root: Hash,
    old: u64,
    old_root: Hash,
) -> Result<(), TlogError> {
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(TlogError::Consistency)
        };
    }
    if old == 0 {
        // Every tree extends the empty tree.
        return Ok(());
    }
    if old > new || proof.len() > 128 {
        return Err(TlogError::Consistency);
    }
    tlog_tiles::check_tree(&proof.to_vec(), new, new_root, old, old_root)
        .map_err(|_| TlogError::Consistency)
}

/// A C2SP tlog-tiles resource: a hash tile (`tile/<L>/<N>[.p/<W>]`) or an entry bundle
/// (`tile/entries/<N>[.p/<W>]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePath {
    /// `None`: the entry bundle.
    pub level: Option<u8>,
    pub index: u64,
    /// 1..=256; 256 is a full tile.
    pub width: u64,
}

impl TilePath {
    /// Parses the part of a path after `tile/`, exactly as the specification spells it
    /// (no leading zeroes in `L` and `W`, `x` on every index element but the last), so
    /// that each resource has one path.
    pub fn parse(rest: &str) -> Result<Self, TlogError> {
        let bad = || TlogError::Malformed(format!("'{rest}' is not a tlog-tiles tile path"));
        if rest.len() > 64 {
            return Err(bad());
        }
        let mut parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 {
            return Err(bad());
        }
        let level = match parts[0] {
            "entries" => None,
            l => {
                let n: u8 = l.parse().map_err(|_| bad())?;
                if n > 63 || n.to_string() != l {
                    return Err(bad());
                }
                Some(n)
            }
        };
        parts.remove(0);
        let mut width = TILE_WIDTH;
        if parts.len() >= 2
            && let Some(last_index) = parts[parts.len() - 2].strip_suffix(".p")
        {
            let w = parts[parts.len() - 1];
            let n: u64 = w.parse().map_err(|_| bad())?;
            if !(1..TILE_WIDTH).contains(&n) || n.to_string() != w {
                return Err(bad());
            }
            width = n;
            let at = parts.len() - 2;
            parts[at] = last_index;
            parts.pop();
        }
        let mut index: u64 = 0;
        for (i, part) in parts.iter().enumerate() {
            let digits = if i + 1 < parts.len() {
                part.strip_prefix('x').ok_or_else(bad)?
            } else {
                part
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|v| v.checked_add(n))
                .ok_or_else(bad)?;
        }
        let tile = Self {
            level,
            index,
            width,
        };
        if tile.path() != rest {
            return Err(bad());
        }
        Ok(tile)
    }

    /// The path after `tile/`.
    pub fn path(&self) -> String {
        let mut n = self.index;
        let mut encoded = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            encoded = format!("x{:03}/{encoded}", n % 1000);
        }
        let level = self
            .level
            .map_or_else(|| "entries".to_string(), |l| l.to_string());
        let partial = if self.width == TILE_WIDTH {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("{level}/{encoded}{partial}")
    }

    /// The tree level of the tile's hashes (entry bundles: the leaves).
    fn tree_level(&self) -> u32 {
        u32::from(self.level.unwrap_or(0)) * u32::from(TILE_HEIGHT)
    }

    /// Whether a tree of `size` leaves has this tile: every hash (or entry) it lists exists.
    pub fn exists_in(&self, size: u64) -> bool {
        let level = self.tree_level();
        if level >= 64 {
            return false;
        }
        let hashes_at_level = size >> level;
        self.index
            .checked_mul(TILE_WIDTH)
            .and_then(|start| start.checked_add(self.width))
            .is_some_and(|end| end <= hashes_at_level)
    }

    /// The stored-hash indexes of the tile's hashes, in order.
    pub fn hash_indexes(&self) -> Vec<u64> {
        let level = self.tree_level() as u8;
        let start = self.index * TILE_WIDTH;
        (start..start + self.width)
            .map(|n| stored_hash_index(level, n))
            .collect()
    }

    /// The leaf indexes of an entry bundle.
    pub fn entry_range(&self) -> std::ops::Range<u64> {
        let start = self.index * TILE_WIDTH;
        start..start + self.width
    }
}

/// An entry bundle: each entry as a big-endian uint16 length and its bytes.
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, TlogError> {
    let mut out = Vec::new();
    for entry in entries {
        let len = u16::try_from(entry.len())
            .map_err(|_| TlogError::Malformed("an entry is longer than 65,535 bytes".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// The entries of an entry bundle.
pub fn parse_entry_bundle(mut bundle: &[u8]) -> Result<Vec<Vec<u8>>, TlogError> {
    let mut entries = Vec::new();
    while !bundle.is_empty() {
        let (len, rest) = bundle
            .split_first_chunk::<2>()
            .ok_or_else(|| TlogError::Malformed("an entry bundle ends mid-length".into()))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(TlogError::Malformed(
                "an entry bundle ends mid-entry".into(),
            ));
        }
        entries.push(rest[..len].to_vec());
        bundle = &rest[len..];
    }
    Ok(entries)
}

/// The hashes of a hash tile.
pub fn parse_tile(data: &[u8]) -> Result<Vec<Hash>, TlogError> {
    if data.is_empty() || !data.len().is_multiple_of(32) || data.len() as u64 > TILE_WIDTH * 32 {
        return Err(TlogError::Malformed(
            "a tile is a whole number (1 to 256) of 32-byte hashes".into(),
        ));
    }
    Ok(data
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect())
}

/// Standard base64 (RFC 4648 §4) of a hash, as checkpoints and proofs spell it.
pub fn hash_b64(hash: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hash.0)
}

/// A hash from its standard base64.
pub fn parse_hash_b64(text: &str) -> Result<Hash, TlogError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| TlogError::Malformed(format!("'{text}' is not a base64 hash")))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| TlogError::Malformed(format!("'{text}' is not a 32-byte hash")))?;
    Ok(Hash(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn h(s: &str) -> Hash {
        Hash(unhex(s).try_into().unwrap())
    }

    /// RFC 6962 reference leaves and the root of each tree size 0..=8 (the Certificate
    /// Transparency test vectors, also used by transparency-dev/merkle).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_tree() -> (HashMemo, Vec<Hash>) {
        let mut memo = HashMemo::default();
        let leaves: Vec<Hash> = LEAVES.iter().map(|l| record_hash(&unhex(l))).collect();
        stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
        (memo, leaves)
    }

    #[test]
    fn roots_are_rfc_6962s_for_every_size() {
        assert_eq!(EMPTY_HASH, h(ROOTS[0]));
        let (memo, _) = reference_tree();
        for (size, root) in ROOTS.iter().enumerate() {
            assert_eq!(
                tree_hash(size as u64, &memo).unwrap(),
                h(root),
                "size {size}"
            );
        }
    }

    #[test]
    fn appending_in_groups_gives_the_same_hashes_as_one_by_one() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| record_hash(&i.to_be_bytes())).collect();
        let mut one = HashMemo::default();
        for (size, leaf) in leaves.iter().enumerate() {
            stored_hashes_for_leaves(size as u64, std::slice::from_ref(leaf), &mut one).unwrap();
        }
        // Groups starting from only the right edge of the tree before them, as the
        // database append does.
        let mut grouped = HashMemo::default();
        let mut size = 0u64;
        for group in leaves.chunks(37) {
            let mut memo = HashMemo::default();
            for i in edge_indexes(size) {
                memo.hashes.insert(i, grouped.hashes[&i]);
            }
            let (stored, root) = stored_hashes_for_leaves(size, group, &mut memo).unwrap();
            grouped.hashes.extend(stored);
            size += group.len() as u64;
            assert_eq!(root, tree_hash(size, &one).unwrap());
        }
        assert_eq!(one.hashes, grouped.hashes);
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let (memo, leaves) = reference_tree();
        let root = h(ROOTS[8]);
        let expected: [(u64, [&str; 3]); 2] = [
            (
                0,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, path) in expected {
            let proof = prove_inclusion(8, index, &memo).unwrap();
            assert_eq!(proof, path.map(h).to_vec(), "leaf {index}");
            verify_inclusion(&proof, 8, root, index, leaves[index as usize]).unwrap();
            // Another leaf, another index, another root: all refused.
            assert!(verify_inclusion(&proof, 8, root, index, leaves[7]).is_err());
            assert!(verify_inclusion(&proof, 8, root, index ^ 1, leaves[index as usize]).is_err());
            assert!(
                verify_inclusion(&proof, 8, h(ROOTS[7]), index, leaves[index as usize]).is_err()
            );
            assert!(verify_inclusion(&proof[..2], 8, root, index, leaves[index as usize]).is_err());
        }
        for size in 1..=8u64 {
            for index in 0..size {
                let proof = prove_inclusion(size, index, &memo).unwrap();
                verify_inclusion(
                    &proof,
                    size,
                    h(ROOTS[size as usize]),
                    index,
                    leaves[index as usize],
                )
                .unwrap();
            }
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let (memo, _) = reference_tree();
        let proof = prove_consistency(8, 2, &memo).unwrap();
        assert_eq!(
            proof,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ]
        );
        for old in 0..=8u64 {
            for new in old..=8u64 {
                let proof = if old == 0 || old == new {
                    vec![]
                } else {
                    prove_consistency(new, old, &memo).unwrap()
                };
                verify_consistency(
                    &proof,
                    new,
                    h(ROOTS[new as usize]),
                    old,
                    h(ROOTS[old as usize]),
                )
                .unwrap();
            }
        }
        // A forged history: the old root of another tree.
        let forged = h(ROOTS[3]);
        assert_eq!(
            verify_consistency(&proof, 8, h(ROOTS[8]), 2, forged),
            Err(TlogError::Consistency)
        );
    }

    #[test]
    fn tile_paths_are_c2sps() {
        let cases = [
            ("0/000", Some(0), 0, 256),
            ("0/x001/x234/067", Some(0), 1_234_067, 256),
            ("2/x001/x234/067.p/8", Some(2), 1_234_067, 8),
            ("entries/005.p/17", None, 5, 17),
            ("entries/x001/000", None, 1000, 256),
        ];
        for (path, level, index, width) in cases {
            let t = TilePath::parse(path).unwrap();
            assert_eq!(
                t,
                TilePath {
                    level,
                    index,
                    width
                },
                "{path}"
            );
            assert_eq!(t.path(), path);
        }
        for bad in [
            "0/1",
            "00/000",
            "0/001/002",
            "0/x000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/08",
            "64/000",
            "data/000",
            "0/000/",
            "0",
            "0/x1000/000",
            "0/-01",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tiles_of_a_tree_are_those_the_specification_lists() {
        // 70,000 leaves: 273 full level-0 tiles, a partial one of 112, a full level-1
        // tile, a partial one of 17 and a partial level-2 tile of 1.
        let size = 70_000;
        let t = |level, index, width| TilePath {
            level: Some(level),
            index,
            width,
        };
        assert!(t(0, 272, 256).exists_in(size));
        assert!(!t(0, 273, 256).exists_in(size));
        assert!(t(0, 273, 112).exists_in(size));
        assert!(!t(0, 273, 113).exists_in(size));
        assert!(t(1, 0, 256).exists_in(size));
        assert!(t(1, 1, 17).exists_in(size));
        assert!(!t(1, 1, 18).exists_in(size));
        assert!(t(2, 0, 1).exists_in(size));
        assert!(!t(2, 0, 2).exists_in(size));
        assert!(!t(63, u64::MAX, 255).exists_in(u64::MAX));
    }

    #[test]
    fn a_level_one_hash_is_the_root_of_a_full_level_zero_tile() {
        let leaves: Vec<Hash> = (0..512u32).map(|i| record_hash(&i.to_be_bytes())).collect();
        let mut memo = HashMemo::default();
        stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
        let level1 = TilePath {
            level: Some(1),
            index: 0,
            width: 2,
        };
        let hashes = memo.read_hashes(&level1.hash_indexes()).unwrap();
        assert_eq!(
            node_hash(hashes[0], hashes[1]),
            tree_hash(512, &memo).unwrap()
        );
        let first_tile = TilePath {
            level: Some(0),
            index: 0,
            width: 256,
        };
        let tile0 = memo.read_hashes(&first_tile.hash_indexes()).unwrap();
        assert_eq!(tile0, leaves[..256].to_vec());
        assert_eq!(hashes[0], tree_hash(256, &memo).unwrap());
    }

    #[test]
    fn entry_bundles_round_trip() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[7u8; 300]];
        let bundle = entry_bundle(entries.iter().copied()).unwrap();
        assert_eq!(&bundle[..4], &[0, 0, 0, 1]);
        assert_eq!(parse_entry_bundle(&bundle).unwrap(), entries);
        assert!(parse_entry_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(entry_bundle([vec![0u8; 70_000].as_slice()]).is_err());
    }
}
