//! Receipts as C2SP `tlog-proof`s of the answer's entry in the registry's answer log,
//! verified with the answer log's signed-note verifier key (`/logs/answers/vkey`), and
//! the signed checkpoints of either log (`status` checks registry checkpoints with them).
//!
//! A receipt is, line by line: `c2sp.org/tlog-proof@v1`, `extra <base64 payload>`,
//! `index <n>`, the inclusion proof (one base64 SHA-256 hash a line), a blank line, and
//! the signed checkpoint of the log. It is genuine when the checkpoint carries a valid
//! signature of the log's key, names the log as its origin, and the payload's leaf hash
//! (RFC 6962: SHA-256 of 0x00 || payload) leads up the proof to the checkpoint's root.
//! The signed-note and Merkle arithmetic come from Cloudflare's `signed_note` and
//! `tlog_tiles` crates; only the proof's few lines are read here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use signed_note::{Note, StandardVerifier, Verifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

/// The first line of every tlog proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// A proof needs at most one hash a tree level; a tree of 2^64 leaves has 64 levels.
const MAX_PROOF_HASHES: usize = 64;
/// A receipt longer than this is refused unread.
const MAX_RECEIPT_LEN: usize = 64 * 1024;

/// Whether a receipt is a tlog proof (rather than a compact JWS).
pub fn is_tlog_proof(receipt: &str) -> bool {
    receipt.trim_start().starts_with(HEADER)
}

/// A receipt's text as it is filed: LF line ends, one final newline (the signed note
/// ends with one; a copy may have lost it or gained CRs).
pub fn normalized(receipt: &str) -> String {
    format!("{}\n", receipt.trim().replace("\r\n", "\n"))
}

/// The answer log's verifier key (`<name>+<hex key id>+<base64 key>`), parsed.
pub struct LogKey {
    verifier: StandardVerifier,
}

impl LogKey {
    pub fn parse(vkey: &str) -> Result<Self, String> {
        let verifier = StandardVerifier::new(vkey.trim())
            .map_err(|e| format!("not a signed-note verifier key: {e}"))?;
        Ok(Self { verifier })
    }

    /// `<name>+<key id>`: how the table names the key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.verifier.name(), self.verifier.key_id())
    }
}

/// A genuine tlog-proof receipt.
pub struct Verified {
    pub payload: Value,
    /// The entry's index in the answer log.
    pub index: u64,
    /// The size of the log at the checkpoint that proves it.
    pub size: u64,
}

/// Verifies a tlog-proof receipt against the answer log's key; the reason when it is not
/// genuine.
pub fn verify(receipt: &str, key: &LogKey) -> Result<Verified, String> {
    let text = normalized(receipt);
    if text.len() > MAX_RECEIPT_LEN {
        return Err("the receipt is longer than 64 KiB".into());
    }
    let Parsed {
        payload,
        index,
        proof,
        checkpoint,
    } = parse(&text)?;

    let checkpoint = verify_checkpoint(checkpoint, key)?;

    // The inclusion proof, from the payload's leaf up to the signed root.
    let size = checkpoint.size();
    if index >= size {
        return Err(format!(
            "entry {index} is outside the checkpoint's log of {size} entries"
        ));
    }
    tlog_tiles::check_record(
        &proof,
        size,
        *checkpoint.hash(),
        index,
        tlog_tiles::record_hash(&payload),
    )
    .map_err(|_| "the inclusion proof does not lead to the checkpoint's root".to_string())?;

    let payload: Value =
        serde_json::from_slice(&payload).map_err(|_| "the payload is not JSON".to_string())?;
    Ok(Verified {
        payload,
        index,
        size,
    })
}

/// A checkpoint of the key's log: a signed note with a valid signature of that key (other
/// signatures, a witness's say, are not needed), whose text is a checkpoint (origin, size,
/// root and any extension lines) of the log the key names.
pub fn verify_checkpoint(checkpoint: &str, key: &LogKey) -> Result<Checkpoint, String> {
    let note = Note::from_bytes(checkpoint.as_bytes())
        .map_err(|_| "the checkpoint is not a signed note".to_string())?;
    let known = VerifierList::new(vec![Box::new(key.verifier.clone())]);
    note.verify(&known).map_err(|_| {
        format!(
            "the checkpoint carries no valid signature of the log key {}",
            key.label()
        )
    })?;
    let checkpoint = Checkpoint::from_bytes(note.text())
        .map_err(|_| "the signed checkpoint is not origin, size and root lines".to_string())?;
    if checkpoint.origin() != key.verifier.name() {
        return Err(format!(
            "the checkpoint is of log '{}', not of '{}'",
            checkpoint.origin(),
            key.verifier.name()
        ));
    }
    Ok(checkpoint)
}

/// A receipt's lines, read but not verified.
struct Parsed<'a> {
    /// The `extra` data: the payload JSON, the logged entry.
    payload: Vec<u8>,
    index: u64,
    proof: Vec<Hash>,
    /// The signed note, verbatim.
    checkpoint: &'a str,
}

/// A receipt read exactly as the tlog-proof specification lays it out.
fn parse(text: &str) -> Result<Parsed<'_>, String> {
    let bad = |why: &str| format!("not a tlog proof: {why}");
    let mut rest = text;
    let mut next_line = || -> Result<&str, String> {
        let (line, after) = rest.split_once('\n').ok_or_else(|| bad("it ends early"))?;
        rest = after;
        Ok(line)
    };
    if next_line()? != HEADER {
        return Err(bad("the first line is not c2sp.org/tlog-proof@v1"));
    }
    let payload = next_line()?
        .strip_prefix("extra ")
        .ok_or_else(|| bad("no extra line (the receipt's payload)"))?;
    let payload = STANDARD
        .decode(payload)
        .map_err(|_| bad("the extra line is not base64"))?;
    let index_text = next_line()?
        .strip_prefix("index ")
        .ok_or_else(|| bad("no index line"))?;
    let index: u64 = index_text
        .parse()
        .map_err(|_| bad("the index is not a number"))?;
    // One spelling per index: no sign, no leading zero.
    if index.to_string() != index_text {
        return Err(bad("the index is not written in plain decimal"));
    }
    let mut proof = Vec::new();
    loop {
        let line = next_line()?;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_HASHES {
            return Err(bad("more than 64 proof hashes"));
        }
        let hash: [u8; 32] = STANDARD
            .decode(line)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| bad("a proof line is not a base64 SHA-256 hash"))?;
        proof.push(Hash(hash));
    }
    if rest.is_empty() {
        return Err(bad("no checkpoint"));
    }
    Ok(Parsed {
        payload,
        index,
        proof,
        checkpoint: rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_receipts_are_refused_with_a_reason() {
        // The signed-note specification's example key: well-formed, so parsing is reached.
        let key =
            LogKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .unwrap_or_else(|e| panic!("{e}"));
        for (receipt, reason) in [
            (
                "c2sp.org/tlog-proof@v2\nextra e30=\nindex 0\n\nx\n",
                "first line",
            ),
            ("c2sp.org/tlog-proof@v1\nindex 0\n\nx\n", "no extra line"),
            (
                "c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\nx\n",
                "not base64",
            ),
            (
                "c2sp.org/tlog-proof@v1\nextra e30=\nindex 01\n\nx\n",
                "plain decimal",
            ),
            (
                "c2sp.org/tlog-proof@v1\nextra e30=\nindex 1\nAAAA\n\nx\n",
                "SHA-256",
            ),
            (
                "c2sp.org/tlog-proof@v1\nextra e30=\nindex 1\n",
                "ends early",
            ),
            (
                "c2sp.org/tlog-proof@v1\nextra e30=\nindex 1\n\nnot a note\n",
                "not a signed note",
            ),
        ] {
            let why = verify(receipt, &key).err().unwrap_or_default();
            assert!(why.contains(reason), "{receipt:?}: {why}");
        }
        assert!(LogKey::parse("no key here").is_err());
    }
}
