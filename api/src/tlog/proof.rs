//! C2SP `tlog-proof`: an entry's index, its inclusion proof and the checkpoint that
//! covers it, as one text that verifies offline with the log's verifier key.

use super::note::{LogVerifier, VerifiedCheckpoint};
use super::{Hash, TlogError, hash_b64, parse_hash_b64, record_hash, verify_inclusion};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The first line of every tlog proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// A proof (and so a receipt) longer than this is refused unread.
pub const MAX_PROOF_TEXT: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct TlogProof {
    /// Opaque extra data (for receipts: the logged payload itself).
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(256 + self.proof.len() * 45 + self.checkpoint.len());
        out.push_str(HEADER);
        out.push('\n');
        if let Some(extra) = &self.extra {
            out.push_str("extra ");
            out.push_str(&STANDARD.encode(extra));
            out.push('\n');
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            out.push_str(&hash_b64(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses a proof exactly as the specification lays it out.
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let bad = |why: &str| TlogError::Malformed(format!("not a tlog proof: {why}"));
        if text.len() > MAX_PROOF_TEXT {
            return Err(bad("longer than 64 KiB"));
        }
        let (header, mut rest) = text.split_once('\n').ok_or_else(|| bad("no header line"))?;
        if header != HEADER {
            return Err(bad("the first line is not c2sp.org/tlog-proof@v1"));
        }
        let next_line = |rest: &mut &str| -> Result<String, TlogError> {
            let (line, after) = rest.split_once('\n').ok_or_else(|| bad("it ends early"))?;
            *rest = after;
            Ok(line.to_string())
        };
        let mut line = next_line(&mut rest)?;
        let mut extra = None;
        if let Some(data) = line.strip_prefix("extra ") {
            extra = Some(
                STANDARD
                    .decode(data)
                    .map_err(|_| bad("the extra line is not base64"))?,
            );
            line = next_line(&mut rest)?;
        }
        let index_text = line
            .strip_prefix("index ")
            .ok_or_else(|| bad("no index line"))?;
        let index: u64 = index_text
            .parse()
            .map_err(|_| bad("the index is not a number"))?;
        if index.to_string() != index_text {
            return Err(bad("the index has leading zeroes or a sign"));
        }
        let mut proof = Vec::new();
        loop {
            let line = next_line(&mut rest)?;
            if line.is_empty() {
                break;
            }
            if proof.len() >= 64 {
                return Err(bad("more than 64 proof hashes"));
            }
            proof.push(parse_hash_b64(&line).map_err(|_| bad("a proof line is not a hash"))?);
        }
        if rest.is_empty() {
            return Err(bad("no checkpoint"));
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: rest.to_string(),
        })
    }

    /// Verifies that `entry` is the logged entry at the proof's index under a checkpoint
    /// signed by `verifier`'s key.
    pub fn verify(
        &self,
        entry: &[u8],
        verifier: &LogVerifier,
    ) -> Result<VerifiedCheckpoint, TlogError> {
        let checkpoint = verifier.verify_checkpoint(&self.checkpoint)?;
        verify_inclusion(
            &self.proof,
            checkpoint.size,
            checkpoint.root,
            self.index,
            record_hash(entry),
        )?;
        Ok(checkpoint)
    }
}

/// Whether `text` looks like a tlog proof (rather than, say, a JWS).
pub fn is_tlog_proof(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::note::LogKey;
    use crate::tlog::{HashMemo, prove_inclusion, stored_hashes_for_leaves};
    use ed25519_dalek::SigningKey;

    fn logged() -> (TlogProof, LogVerifier, Vec<u8>) {
        let entries: Vec<Vec<u8>> = (0..11u8).map(|i| vec![i; 20]).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| record_hash(e)).collect();
        let mut memo = HashMemo::default();
        let (_, root) = stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
        let key = LogKey::new("example.org/answers", &SigningKey::from_bytes(&[3; 32])).unwrap();
        let checkpoint = key.sign_checkpoint(11, &root).unwrap();
        let proof = TlogProof {
            extra: Some(entries[6].clone()),
            index: 6,
            proof: prove_inclusion(11, 6, &memo).unwrap(),
            checkpoint,
        };
        let verifier = LogVerifier::parse(&key.vkey()).unwrap();
        (proof, verifier, entries[6].clone())
    }

    #[test]
    fn a_proof_round_trips_and_verifies() {
        let (proof, verifier, entry) = logged();
        let text = proof.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        assert!(text.contains("\nindex 6\n"));
        let parsed = TlogProof::parse(&text).unwrap();
        assert_eq!(parsed, proof);
        assert_eq!(parsed.verify(&entry, &verifier).unwrap().size, 11);
        assert!(parsed.verify(b"another entry", &verifier).is_err());
    }

    #[test]
    fn changing_any_byte_of_a_proof_fails_it() {
        let (proof, verifier, _) = logged();
        let text = proof.to_text();
        let verify = |t: &str| -> Result<(), TlogError> {
            let p = TlogProof::parse(t)?;
            let entry = p.extra.clone().unwrap_or_default();
            p.verify(&entry, &verifier).map(|_| ())
        };
        verify(&text).unwrap();
        for i in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(
                verify(&changed).is_err(),
                "changing byte {i} still verified"
            );
        }
    }

    #[test]
    fn malformed_proofs_are_refused_with_a_reason() {
        for bad in [
            "",
            "c2sp.org/tlog-proof@v2\nindex 0\n\nx\n",
            "c2sp.org/tlog-proof@v1\nindex 01\n\nx\n",
            "c2sp.org/tlog-proof@v1\nindex 1\nnot-a-hash\n\nx\n",
            "c2sp.org/tlog-proof@v1\nindex 1\n",
            "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\nx\n",
        ] {
            assert!(TlogProof::parse(bad).is_err(), "{bad:?}");
        }
    }
}
