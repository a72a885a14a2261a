//! Status proofs (`credit-registry/status-proof@v1`): evidence, from a few kilobytes and
//! the registry log's verifier key (`/logs/registry/vkey`) alone, that the registry's
//! published list gave the answer a receipt states. A CLEAR answer is shown by the code's
//! absence (or its listings' state) in the status map committed by a signed registry
//! checkpoint; a RESTRICTED one by the listing entries that restrict it.
//!
//! Written from the registry's README ("Status proofs") and the map's specification at the
//! top of its `tlog/status_map.rs`: the checkpoint's `status-map/v1 <root>` extension line;
//! a code's key is SHA-256 of the code, its bucket the key's first two bytes; a code's
//! leaf is SHA-256(0x10 ‖ key ‖ the RFC 6962 leaf hashes of its listings' latest entries,
//! in listing order); a bucket's hash SHA-256(0x11 ‖ each key ‖ leaf, in key order); a
//! node SHA-256(0x12 ‖ left ‖ right), 16 levels from bucket to root. The answer rule is
//! the registry's: a listing counts while its latest entry is in force and it has not
//! expired at the answer's `asOf`; the strictest effect of its measures in the answer's
//! domain decides (PROHIBIT restricts, CONSIDER asks for review, SUPERVISE leaves it clear).

use crate::tlog::{self, LogKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

pub const FORMAT: &str = "credit-registry/status-proof@v1";
const MAP_EXTENSION: &str = "status-map/v1 ";
const FIELDS: [&str; 7] = [
    "format",
    "uscc",
    "bucket",
    "leaves",
    "entries",
    "siblings",
    "checkpoint",
];
const DEPTH: usize = 16;
const LEAF: u8 = 0x10;
const BUCKET: u8 = 0x11;
const NODE: u8 = 0x12;
/// A proof longer than this is refused unread (a bucket holds a few dozen codes).
const MAX_PROOF_LEN: usize = 1024 * 1024;

/// What checking a status proof against a genuine receipt's payload found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The committed list gives the receipt's decision and hits.
    Proven { decision: String, size: u64 },
    /// The proof does not hold, or gives another answer.
    Invalid(String),
    /// The entries cannot say (an `asOf` before the latest of them, entries logged before
    /// they named their measures, or an answer that names no registry log head).
    NotRecomputed(String),
}

impl Outcome {
    pub fn verdict(&self) -> String {
        match self {
            Self::Proven { decision, size } => {
                format!("PROVEN ({decision} in the map of registry log size {size})")
            }
            Self::Invalid(why) => format!("INVALID: {why}"),
            Self::NotRecomputed(why) => format!("NOT RECOMPUTED: {why}"),
        }
    }
}

enum Failure {
    Invalid(String),
    CannotSay(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Self::Invalid(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Self {
        Self::Invalid(why.to_string())
    }
}

/// Checks `proof` (the JSON text the registry gave as `statusProof`) against `payload`,
/// the payload of the answer's receipt, already verified.
pub fn verify(proof: &str, key: &LogKey, payload: &Value) -> Outcome {
    match prove(proof, key, payload) {
        Ok((decision, size)) => Outcome::Proven { decision, size },
        Err(Failure::Invalid(why)) => Outcome::Invalid(why),
        Err(Failure::CannotSay(why)) => Outcome::NotRecomputed(why),
    }
}

fn prove(text: &str, key: &LogKey, payload: &Value) -> Result<(String, u64), Failure> {
    if text.len() > MAX_PROOF_LEN {
        return Err(Failure::Invalid("the proof is longer than 1 MiB".into()));
    }
    let proof: Value =
        serde_json::from_str(text).map_err(|_| "the proof is not JSON".to_string())?;
    let Some(fields) = proof.as_object() else {
        return Err(Failure::Invalid("the proof is not a JSON object".into()));
    };
    if fields.len() != FIELDS.len() || FIELDS.iter().any(|f| !fields.contains_key(*f)) {
        return Err(Failure::Invalid(format!(
            "the proof's fields are not {}",
            FIELDS.join(", ")
        )));
    }
    if proof["format"] != FORMAT {
        return Err(Failure::Invalid(format!(
            "the proof's format is {}, not {FORMAT}",
            proof["format"]
        )));
    }
    let checkpoint = tlog::verify_checkpoint(
        proof["checkpoint"]
            .as_str()
            .ok_or("the proof's checkpoint is not a text")?,
        key,
    )?;
    let map_root = map_root(checkpoint.extension())?;
    let uscc = proof["uscc"]
        .as_str()
        .ok_or("the proof's uscc is not a text")?;
    let entries = entries_on_the_path(&proof, uscc, &map_root)?;

    // The proof is of the receipt's code and of the head its answer was read from.
    if payload["uscc"] != uscc {
        return Err(Failure::Invalid(format!(
            "the receipt is for {}, the proof for {uscc}",
            payload["uscc"]
        )));
    }
    let head = &payload["registryLog"];
    if head.is_null() {
        return Err(Failure::CannotSay(
            "the receipt names no registry log head".into(),
        ));
    }
    let root = STANDARD.encode(checkpoint.hash().0);
    if head["size"].as_u64() != Some(checkpoint.size()) || head["root"] != root.as_str() {
        return Err(Failure::Invalid(format!(
            "the receipt names the registry log head ({}, {}), the proof's checkpoint ({}, {root})",
            head["size"],
            head["root"],
            checkpoint.size()
        )));
    }
    let (decision, hits) = decide(payload, &entries)?;
    let stated: BTreeSet<i64> = payload["hitListingIds"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    if payload["decision"] != decision.as_str() || stated != hits {
        return Err(Failure::Invalid(format!(
            "the map at that head answers {decision} with hits {hits:?}; the receipt says {} with hits {stated:?}",
            payload["decision"]
        )));
    }
    Ok((decision, checkpoint.size()))
}

/// The map root of a registry checkpoint's extension lines: exactly one `status-map/v1`.
fn map_root(extension: &str) -> Result<[u8; 32], String> {
    let roots: Vec<&str> = extension
        .lines()
        .filter_map(|l| l.strip_prefix(MAP_EXTENSION))
        .collect();
    match roots.as_slice() {
        [root] => hash32(root, "the checkpoint's map root"),
        [] => Err("the checkpoint carries no status map".into()),
        _ => Err("the checkpoint carries two status-map lines".into()),
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

fn hash32(text: &str, what: &str) -> Result<[u8; 32], String> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} is not a base64 SHA-256 hash"))
}

fn bucket_of(key: &[u8; 32]) -> u64 {
    u64::from(u16::from_be_bytes([key[0], key[1]]))
}

/// The code's entries (JSON events, in listing order), once the path from its bucket leads
/// to `map_root`.
fn entries_on_the_path(
    proof: &Value,
    uscc: &str,
    map_root: &[u8; 32],
) -> Result<Vec<Value>, String> {
    let key = sha256(&[uscc.as_bytes()]);
    let bucket = proof["bucket"]
        .as_u64()
        .ok_or("the proof's bucket is not a number")?;
    if bucket != bucket_of(&key) {
        return Err(format!(
            "bucket {bucket} is not the bucket of {uscc} ({})",
            bucket_of(&key)
        ));
    }
    let text_list = |name: &str| -> Result<Vec<&str>, String> {
        proof[name]
            .as_array()
            .ok_or(format!("the proof's {name} are not a list"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or(format!("one of the proof's {name} is not a text"))
            })
            .collect()
    };
    let siblings = text_list("siblings")?
        .into_iter()
        .map(|s| hash32(s, "a sibling"))
        .collect::<Result<Vec<_>, _>>()?;
    if siblings.len() != DEPTH {
        return Err(format!(
            "the proof has {} siblings, not {DEPTH}",
            siblings.len()
        ));
    }
    let mut leaves = Vec::new();
    for leaf in proof["leaves"]
        .as_array()
        .ok_or("the proof's leaves are not a list")?
    {
        let (Some(k), Some(h), Some(2)) = (
            leaf["key"].as_str(),
            leaf["hash"].as_str(),
            leaf.as_object().map(|o| o.len()),
        ) else {
            return Err("a leaf is not {key, hash}".into());
        };
        let k = hash32(k, "a leaf's key")?;
        if bucket_of(&k) != bucket {
            return Err(format!("a leaf's key is not in bucket {bucket}"));
        }
        leaves.push((k, hash32(h, "a leaf's hash")?));
    }
    if leaves.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("the bucket's codes are not in strict key order".into());
    }

    let mut events = Vec::new();
    let mut entry_hashes = Vec::new();
    let mut last_id = None;
    for text in text_list("entries")? {
        let raw = STANDARD
            .decode(text)
            .map_err(|_| "an entry is not base64".to_string())?;
        let event: Value =
            serde_json::from_slice(&raw).map_err(|_| "an entry is not JSON".to_string())?;
        let listing = &event["listing"];
        if listing["uscc"] != uscc {
            return Err(format!(
                "an entry describes a listing of {}, not of {uscc}",
                listing["uscc"]
            ));
        }
        let id = listing_id(listing)?;
        if last_id.is_some_and(|last| id <= last) {
            return Err("the entries are not in strict listing order".into());
        }
        last_id = Some(id);
        entry_hashes.push(sha256(&[&[0x00], &raw]));
        events.push(event);
    }

    let shown: Vec<&[u8; 32]> = leaves
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, h)| h)
        .collect();
    match (shown.first(), events.is_empty()) {
        (None, false) => {
            return Err(format!(
                "entries are given, but {uscc} is not in its bucket"
            ));
        }
        (Some(_), true) => {
            return Err(format!(
                "{uscc} is in its bucket, but its entries are not given"
            ));
        }
        (Some(leaf), false) => {
            let mut parts: Vec<&[u8]> = vec![&[LEAF], &key];
            parts.extend(entry_hashes.iter().map(|h| h.as_slice()));
            if **leaf != sha256(&parts) {
                return Err(format!(
                    "the entries given are not the leaf of {uscc} in the map"
                ));
            }
        }
        (None, true) => {}
    }

    let mut bucket_parts: Vec<&[u8]> = vec![&[BUCKET]];
    for (k, h) in &leaves {
        bucket_parts.push(k);
        bucket_parts.push(h);
    }
    let mut hash = sha256(&bucket_parts);
    let mut position = bucket;
    // The bucket's sibling first; the lowest bit of the position says left (0) or right.
    for sibling in &siblings {
        hash = if position & 1 == 0 {
            sha256(&[&[NODE], &hash, sibling])
        } else {
            sha256(&[&[NODE], sibling, &hash])
        };
        position >>= 1;
    }
    if hash != *map_root {
        return Err("the proof's path does not lead to the checkpoint's map root".into());
    }
    Ok(events)
}

/// A listing id as the log writes it: a decimal text.
fn listing_id(listing: &Value) -> Result<i64, String> {
    let text = listing["id"].as_str().unwrap_or_default();
    text.parse::<i64>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| {
            format!(
                "an entry's listing id {} is not a decimal number",
                listing["id"]
            )
        })
}

fn instant(value: &Value, what: &str) -> Result<DateTime<Utc>, String> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{what} {value} is not an RFC 3339 instant"))
}

/// The decision and hit listing ids the entries give for the payload's code and domain
/// at its `asOf` (the strictest effect of the listings in force and not expired).
fn decide(payload: &Value, entries: &[Value]) -> Result<(String, BTreeSet<i64>), Failure> {
    let as_of = instant(&payload["asOf"], "the receipt's asOf")?;
    for event in entries {
        let logged = instant(&event["occurredAt"], "an entry's occurredAt")?;
        if as_of < logged {
            return Err(Failure::CannotSay(format!(
                "the receipt's asOf is before the latest entry of the code's listings ({logged})"
            )));
        }
    }
    let domain = &payload["domain"];
    let mut strictest = 0;
    let mut hits = BTreeSet::new();
    for event in entries {
        let listing = &event["listing"];
        if event["inForce"] != true {
            continue;
        }
        if !listing["expires_at"].is_null()
            && instant(&listing["expires_at"], "a listing's expires_at")? <= as_of
        {
            continue;
        }
        let Some(measures) = event["measures"].as_array() else {
            return Err(Failure::CannotSay(format!(
                "listing {} was logged before entries named their measures' effects",
                listing["id"]
            )));
        };
        for measure in measures.iter().filter(|m| m["domain"] == *domain) {
            let strictness = match measure["effect"].as_str() {
                Some("PROHIBIT") => 2,
                Some("CONSIDER") => 1,
                Some("SUPERVISE") => 0,
                _ => {
                    return Err(Failure::Invalid(format!(
                        "an unknown effect {}",
                        measure["effect"]
                    )));
                }
            };
            if strictness > 0 {
                hits.insert(listing_id(listing)?);
                strictest = strictest.max(strictness);
            }
        }
    }
    let decision = ["CLEAR", "REVIEW", "RESTRICTED"][strictest];
    Ok((decision.to_string(), hits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, in_force: bool, expires: Option<&str>, effects: &[(&str, &str)]) -> Value {
        json!({
            "occurredAt": "2026-01-01T00:00:00Z",
            "inForce": in_force,
            "listing": {"id": id, "uscc": "91441802MA4W7K3Q8P", "expires_at": expires},
            "measures": effects.iter().map(|(d, e)| json!({"domain": d, "effect": e})).collect::<Vec<_>>(),
        })
    }

    fn decided(entries: &[Value]) -> (String, Vec<i64>) {
        let payload = json!({"asOf": "2026-06-01T00:00:00Z", "domain": "BIDDING"});
        match decide(&payload, entries) {
            Ok((d, hits)) => (d, hits.into_iter().collect()),
            Err(Failure::Invalid(why) | Failure::CannotSay(why)) => (why, vec![]),
        }
    }

    #[test]
    fn the_strictest_effect_in_the_domain_decides() {
        let consider = entry("3", true, None, &[("BIDDING", "CONSIDER")]);
        let prohibit = entry(
            "7",
            true,
            None,
            &[("BIDDING", "PROHIBIT"), ("HONORS", "PROHIBIT")],
        );
        let supervise = entry("9", true, None, &[("BIDDING", "SUPERVISE")]);
        let elsewhere = entry("11", true, None, &[("HONORS", "PROHIBIT")]);
        assert_eq!(decided(&[]), ("CLEAR".into(), vec![]));
        assert_eq!(
            decided(&[supervise.clone(), elsewhere]),
            ("CLEAR".into(), vec![])
        );
        assert_eq!(
            decided(std::slice::from_ref(&consider)),
            ("REVIEW".into(), vec![3])
        );
        assert_eq!(
            decided(&[consider, prohibit, supervise]),
            ("RESTRICTED".into(), vec![3, 7])
        );
    }

    #[test]
    fn listings_out_of_force_or_expired_do_not_count() {
        let removed = entry("3", false, None, &[("BIDDING", "PROHIBIT")]);
        let expired = entry(
            "5",
            true,
            Some("2026-05-31T16:00:00Z"),
            &[("BIDDING", "PROHIBIT")],
        );
        let running = entry(
            "6",
            true,
            Some("2026-06-01T00:00:01Z"),
            &[("BIDDING", "PROHIBIT")],
        );
        assert_eq!(decided(&[removed, expired]), ("CLEAR".into(), vec![]));
        assert_eq!(decided(&[running]), ("RESTRICTED".into(), vec![6]));
    }

    #[test]
    fn entries_cannot_speak_for_an_instant_before_them_or_without_measures() {
        let payload = json!({"asOf": "2025-12-31T23:59:59Z", "domain": "BIDDING"});
        let later = entry("3", true, None, &[]);
        assert!(matches!(
            decide(&payload, &[later]),
            Err(Failure::CannotSay(_))
        ));
        let mut old = entry("4", true, None, &[]);
        old.as_object_mut().map(|o| o.remove("measures"));
        assert!(matches!(decided(&[old]), (why, _) if why.contains("before entries named")));
    }

    #[test]
    fn malformed_proofs_are_refused_with_a_reason() {
        let key =
            LogKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .unwrap_or_else(|e| panic!("{e}"));
        let payload = json!({});
        for (proof, reason) in [
            ("not json", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"format": "x"}"#, "fields are not"),
            (
                r#"{"format": "x", "uscc": "", "bucket": 0, "leaves": [], "entries": [], "siblings": [], "checkpoint": ""}"#,
                "format is",
            ),
            (
                r#"{"format": "credit-registry/status-proof@v1", "uscc": "", "bucket": 0, "leaves": [], "entries": [], "siblings": [], "checkpoint": "no note"}"#,
                "not a signed note",
            ),
        ] {
            let verdict = verify(proof, &key, &payload).verdict();
            assert!(verdict.contains(reason), "{proof}: {verdict}");
        }
        assert_eq!(
            map_root(""),
            Err("the checkpoint carries no status map".into())
        );
        assert!(map_root("status-map/v1 AAAA\n").is_err());
    }
}
