//! Witness cosignatures of checkpoints: C2SP `tlog-cosignature`, the Ed25519 type
//! (`cosignature/v1`, signature type 0x04).
//!
//! A cosignature is one more signature line on the checkpoint's signed note:
//! `— <witness name> base64(key ID || timestamp || Ed25519 signature)`, where the key ID is
//! `SHA-256(<name> || "\n" || 0x04 || public key)[:4]`, the timestamp a big-endian u64 of
//! POSIX seconds, and the signature is over `cosignature/v1\ntime <timestamp>\n` followed
//! by the checkpoint's note text. The `signed_note` crate knows only type 0x01, so the
//! type is implemented here behind its `Signer` and `Verifier` traits, and notes are still
//! parsed, signed and verified by the crate.

use super::TlogError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, NoteError, VerifierList};

/// The signed-note signature type of Ed25519 cosignatures.
pub const COSIGNATURE_V1: u8 = 0x04;
/// Timestamp (8 bytes) and Ed25519 signature (64 bytes).
const TIMESTAMPED_LEN: usize = 72;

/// The message a `cosignature/v1` signs for a note text at `timestamp`.
pub fn signed_message(text: &[u8], timestamp: u64) -> Vec<u8> {
    let mut message = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    message.extend_from_slice(text);
    message
}

fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let public = [&[COSIGNATURE_V1], key.as_bytes().as_slice()].concat();
    signed_note::key_id(name, &public)
}

/// A witness's signing key and name.
pub struct WitnessKey {
    name: String,
    key: SigningKey,
    id: u32,
}

impl WitnessKey {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, TlogError> {
        if !super::note::is_valid_name(name) {
            return Err(TlogError::Malformed(format!(
                "'{name}' cannot name a witness: it must be non-empty, without spaces or '+'"
            )));
        }
        let id = key_id(name, &key.verifying_key());
        Ok(Self {
            name: name.to_string(),
            key,
            id,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key id>`, as the registry names the witnesses it accepted.
    pub fn key_label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// The verifier key a log is configured with (`logs.witnesses`):
    /// `<name>+<hex key ID>+base64(0x04 || public key)`.
    pub fn vkey(&self) -> String {
        let public = [
            &[COSIGNATURE_V1],
            self.key.verifying_key().as_bytes().as_slice(),
        ]
        .concat();
        format!("{}+{:08x}+{}", self.name, self.id, STANDARD.encode(public))
    }

    /// The note with this witness's cosignature at `timestamp` added after its other
    /// signatures (replacing an earlier one of the same key).
    pub fn cosign(&self, note: &str, timestamp: u64) -> Result<String, TlogError> {
        if timestamp > i64::MAX as u64 {
            return Err(TlogError::Malformed("a timestamp beyond 2^63 - 1".into()));
        }
        let mut parsed = Note::from_bytes(note.as_bytes())
            .map_err(|_| TlogError::Checkpoint("the checkpoint is not a signed note".into()))?;
        let signer = TimedSigner {
            key: self,
            timestamp,
        };
        parsed
            .add_sigs(&[&signer])
            .map_err(|e| TlogError::Checkpoint(e.to_string()))?;
        String::from_utf8(parsed.to_bytes()).map_err(|e| TlogError::Checkpoint(e.to_string()))
    }
}

/// A [`WitnessKey`] signing at one timestamp (the crate's `Signer` signs a text only).
struct TimedSigner<'a> {
    key: &'a WitnessKey,
    timestamp: u64,
}

impl signed_note::Signer for TimedSigner<'_> {
    fn name(&self) -> &str {
        &self.key.name
    }

    fn key_id(&self) -> u32 {
        self.key.id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        let signature = self.key.key.sign(&signed_message(msg, self.timestamp));
        Ok([
            self.timestamp.to_be_bytes().as_slice(),
            signature.to_bytes().as_slice(),
        ]
        .concat())
    }
}

/// A witness's verifier key, parsed.
#[derive(Clone, Debug)]
pub struct WitnessVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl WitnessVerifier {
    /// Parses `<name>+<hex key ID>+base64(0x04 || 32-byte key)`.
    pub fn parse(vkey: &str) -> Result<Self, TlogError> {
        let bad =
            |why: &str| TlogError::Malformed(format!("not a cosignature/v1 verifier key: {why}"));
        let vkey = vkey.trim();
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        if !super::note::is_valid_name(name) {
            return Err(bad("the name must be non-empty, without spaces or '+'"));
        }
        if id.len() != 8 {
            return Err(bad("the key ID must be 8 hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("the key ID is not hex"))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let Some((&COSIGNATURE_V1, public)) = key.split_first() else {
            return Err(bad("the key's type is not 0x04 (cosignature/v1, Ed25519)"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 key"))?;
        if key_id(name, &key) != id {
            return Err(bad("the key ID does not match the name and key"));
        }
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key id>`: how a witness is named in reports and storage.
    pub fn key_label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }
}

impl signed_note::Verifier for WitnessVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != TIMESTAMPED_LEN {
            return false;
        }
        let (timestamp, signature) = sig.split_at(8);
        let Ok(timestamp) = <[u8; 8]>::try_from(timestamp).map(u64::from_be_bytes) else {
            return false;
        };
        if timestamp > i64::MAX as u64 {
            return false;
        }
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key
            .verify_strict(&signed_message(msg, timestamp), &signature)
            .is_ok()
    }
}

/// One valid cosignature on a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// `<name>+<key id>` of the witness.
    pub witness: String,
    /// When the witness signed (POSIX seconds).
    pub timestamp: u64,
    /// The signature line as it appears in the note (`— name base64…\n`).
    pub line: String,
}

/// Why a note's cosignatures were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("the note is not a signed note")]
    Malformed,
    #[error("the note carries no cosignature of a known witness")]
    NoKnownWitness,
    #[error("the cosignature of {0} does not verify")]
    Invalid(String),
}

/// The valid cosignatures of `witnesses` on `note` (other signatures, such as the log's,
/// are ignored). A line of a known witness that does not verify refuses the whole note.
pub fn verify_cosignatures(
    note: &str,
    witnesses: &[WitnessVerifier],
) -> Result<Vec<Cosignature>, CosignatureError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|_| CosignatureError::Malformed)?;
    let list = VerifierList::new(
        witnesses
            .iter()
            .map(|w| Box::new(w.clone()) as Box<dyn signed_note::Verifier>)
            .collect(),
    );
    let (verified, _) = parsed.verify(&list).map_err(|e| match e {
        NoteError::InvalidSignature { name, id } => {
            CosignatureError::Invalid(format!("{name}+{id:08x}"))
        }
        NoteError::UnverifiedNote => CosignatureError::NoKnownWitness,
        _ => CosignatureError::Malformed,
    })?;
    Ok(verified
        .iter()
        .map(|sig| {
            let timestamp = sig
                .signature()
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Cosignature {
                witness: format!("{}+{:08x}", sig.name(), sig.id()),
                timestamp,
                line: String::from_utf8_lossy(&sig.to_bytes()).into_owned(),
            }
        })
        .collect())
}

/// `note` with `lines` (signature lines, each ending in a newline) added after its
/// signatures, skipping any it already carries.
pub fn with_signature_lines(note: &str, lines: &[String]) -> String {
    let mut out = note.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for line in lines {
        if !note.contains(line.as_str()) {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tlog::note::LogKey;

    fn checkpoint() -> String {
        let key = LogKey::new("example.com/log", &SigningKey::from_bytes(&[3; 32])).unwrap();
        key.sign_checkpoint(7, &tlog_tiles::record_hash(b"x"))
            .unwrap()
    }

    #[test]
    fn a_cosignature_verifies_with_the_witness_vkey_and_only_on_its_checkpoint() {
        let witness =
            WitnessKey::new("witness.example/w1", SigningKey::from_bytes(&[9; 32])).unwrap();
        let note = checkpoint();
        let cosigned = witness.cosign(&note, 1_679_315_147).unwrap();
        assert!(cosigned.starts_with(&note));
        let line = cosigned.strip_prefix(note.as_str()).unwrap();
        assert!(line.starts_with("\u{2014} witness.example/w1 "), "{line}");
        let verifier = WitnessVerifier::parse(&witness.vkey()).unwrap();
        let found = verify_cosignatures(&cosigned, std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].timestamp, 1_679_315_147);
        assert_eq!(found[0].line, line);
        assert_eq!(found[0].witness, verifier.key_label());
        // The log's own signature is still there and still verifies.
        let log = LogKey::new("example.com/log", &SigningKey::from_bytes(&[3; 32])).unwrap();
        let log_verifier = crate::tlog::note::LogVerifier::parse(&log.vkey()).unwrap();
        assert!(log_verifier.verify_checkpoint(&cosigned).is_ok());

        // Moved onto another checkpoint: refused.
        let other = LogKey::new("example.com/log", &SigningKey::from_bytes(&[3; 32]))
            .unwrap()
            .sign_checkpoint(8, &tlog_tiles::record_hash(b"y"))
            .unwrap();
        let moved = with_signature_lines(&other, &[line.to_string()]);
        assert_eq!(
            verify_cosignatures(&moved, std::slice::from_ref(&verifier)),
            Err(CosignatureError::Invalid(verifier.key_label()))
        );
        // Another witness's key: not a known witness.
        let stranger = WitnessKey::new("witness.example/w1", SigningKey::from_bytes(&[10; 32]))
            .unwrap()
            .cosign(&note, 5)
            .unwrap();
        assert_eq!(
            verify_cosignatures(&stranger, std::slice::from_ref(&verifier)),
            Err(CosignatureError::NoKnownWitness)
        );
    }

    #[test]
    fn the_signed_message_is_the_specifications() {
        // C2SP tlog-cosignature, "Ed25519 signed message".
        let text = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let message = signed_message(text, 1_679_315_147);
        assert_eq!(
            String::from_utf8(message).unwrap(),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        // The key ID commits to the type byte 0x04, unlike the log key's 0x01.
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let log_id = signed_note::key_id("w", &[&[1u8], key.as_bytes().as_slice()].concat());
        assert_ne!(key_id("w", &key), log_id);
    }

    #[test]
    fn verifier_keys_are_checked() {
        let witness = WitnessKey::new("w.example/1", SigningKey::from_bytes(&[9; 32])).unwrap();
        assert!(WitnessVerifier::parse(&witness.vkey()).is_ok());
        // A log's (type 0x01) key is not a witness key.
        let log = LogKey::new("w.example/1", &SigningKey::from_bytes(&[9; 32])).unwrap();
        assert!(WitnessVerifier::parse(&log.vkey()).is_err());
        assert!(WitnessVerifier::parse("nonsense").is_err());
        let wrong_id = witness.vkey().replacen('+', "+0", 1);
        assert!(WitnessVerifier::parse(&wrong_id).is_err());
        assert!(WitnessKey::new("a b", SigningKey::from_bytes(&[1; 32])).is_err());
    }
}
