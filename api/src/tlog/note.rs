//! Checkpoints as C2SP signed notes (`tlog-checkpoint`, `signed-note`) with Ed25519
//! log keys, and the verifier-key text a log publishes (`<name>+<id>+<key>`).

use super::{Hash, TlogError, hash_b64, parse_hash_b64};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use signed_note::{Note, StandardSigner, StandardVerifier, Verifier, VerifierList};

/// The Ed25519 signature type byte of a signed-note key.
const ED25519: u8 = 0x01;

/// A log's signing key and its name (the checkpoint's origin).
#[derive(Clone)]
pub struct LogKey {
    name: String,
    signer: StandardSigner,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey").field("name", &self.name).finish()
    }
}

/// A key name (and origin) is non-empty, has no spaces and no `+`.
pub fn is_valid_name(name: &str) -> bool {
    signed_note::is_key_name_valid(name) && name.chars().all(|c| !c.is_control())
}

impl LogKey {
    pub fn new(name: &str, key: &SigningKey) -> Result<Self, TlogError> {
        if !is_valid_name(name) {
            return Err(TlogError::Malformed(format!(
                "'{name}' cannot name a log: it must be non-empty, without spaces or '+'"
            )));
        }
        let verifying = key.verifying_key();
        let public = [&[ED25519], verifying.as_bytes().as_slice()].concat();
        let id = signed_note::key_id(name, &public);
        // The crate's private-key text: PRIVATE+KEY+<name>+<id>+base64(type || seed).
        let secret = [&[ED25519], key.to_bytes().as_slice()].concat();
        let text = format!("PRIVATE+KEY+{name}+{id:08x}+{}", STANDARD.encode(&secret));
        let signer = StandardSigner::new(&text)
            .map_err(|e| TlogError::Malformed(format!("log key {name}: {e}")))?;
        Ok(Self {
            name: name.to_string(),
            signer,
            verifying,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key text (`<name>+<hex id>+<base64(0x01 || key)>`).
    pub fn vkey(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.verifying)
    }

    /// The verifier of this key's checkpoints (from its verifier-key text, the form the
    /// crate's verifier is built from).
    pub fn verifier(&self) -> Result<LogVerifier, TlogError> {
        LogVerifier::parse(&self.vkey())
    }

    /// Signs the checkpoint of a tree of `size` leaves with root `root`.
    pub fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, TlogError> {
        self.sign_checkpoint_with(size, root, None)
    }

    /// Signs a checkpoint that carries one extension line after the root (the registry
    /// log's status-map root, `tlog::status_map`).
    pub fn sign_checkpoint_with(
        &self,
        size: u64,
        root: &Hash,
        extension: Option<&str>,
    ) -> Result<String, TlogError> {
        let mut body = checkpoint_body(&self.name, size, root);
        if let Some(line) = extension {
            if line.is_empty() || line.contains('\n') {
                return Err(TlogError::Checkpoint(
                    "an extension line must be one non-empty line".into(),
                ));
            }
            body.push_str(line);
            body.push('\n');
        }
        let mut note =
            Note::new(body.as_bytes(), &[]).map_err(|e| TlogError::Checkpoint(e.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| TlogError::Checkpoint(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| TlogError::Checkpoint(e.to_string()))
    }
}

/// The note text of a checkpoint: origin, size, root, each on its line.
pub fn checkpoint_body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", hash_b64(root))
}

/// A checkpoint whose signature by the log's key holds.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The signed note as received.
    pub note: String,
}

/// A verifier-key text parsed: who it names and the key.
#[derive(Clone)]
pub struct LogVerifier {
    inner: StandardVerifier,
}

impl LogVerifier {
    pub fn parse(vkey: &str) -> Result<Self, TlogError> {
        let inner = StandardVerifier::new(vkey.trim())
            .map_err(|e| TlogError::Malformed(format!("not a signed-note verifier key: {e}")))?;
        Ok(Self { inner })
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// `<name>+<key id>`: how receipts and reports name the key.
    pub fn key_label(&self) -> String {
        format!("{}+{:08x}", self.inner.name(), self.inner.key_id())
    }

    /// Verifies a checkpoint: the note carries a valid signature of this key (other
    /// signatures, e.g. witnesses', are ignored), the origin is the key's name, and the
    /// body is a well-formed checkpoint.
    pub fn verify_checkpoint(&self, note: &str) -> Result<VerifiedCheckpoint, TlogError> {
        let parsed = Note::from_bytes(note.as_bytes())
            .map_err(|_| TlogError::Checkpoint("the checkpoint is not a signed note".into()))?;
        let verifiers = VerifierList::new(vec![Box::new(self.inner.clone())]);
        parsed.verify(&verifiers).map_err(|_| {
            TlogError::Checkpoint(format!(
                "the checkpoint carries no valid signature of the log key {}",
                self.name()
            ))
        })?;
        let body = std::str::from_utf8(parsed.text())
            .map_err(|_| TlogError::Checkpoint("the checkpoint is not UTF-8".into()))?;
        let (origin, size, root) = parse_checkpoint_body(body)?;
        if origin != self.name() {
            return Err(TlogError::Checkpoint(format!(
                "the checkpoint's origin '{origin}' is not the log '{}'",
                self.name()
            )));
        }
        Ok(VerifiedCheckpoint {
            origin,
            size,
            root,
            note: note.to_string(),
        })
    }
}

impl LogVerifier {
    /// The note with only this key's signature: what a witness cosigns and posts, so
    /// that other witnesses' lines on the served checkpoint are neither repeated nor
    /// taken for its own.
    pub fn log_signed_only(&self, note: &str) -> Result<String, TlogError> {
        let parsed = Note::from_bytes(note.as_bytes())
            .map_err(|_| TlogError::Checkpoint("the checkpoint is not a signed note".into()))?;
        let verifiers = VerifierList::new(vec![Box::new(self.inner.clone())]);
        let (mine, _) = parsed.verify(&verifiers).map_err(|_| {
            TlogError::Checkpoint(format!(
                "the checkpoint carries no valid signature of the log key {}",
                self.name()
            ))
        })?;
        let bare =
            Note::new(parsed.text(), &mine).map_err(|e| TlogError::Checkpoint(e.to_string()))?;
        String::from_utf8(bare.to_bytes()).map_err(|e| TlogError::Checkpoint(e.to_string()))
    }
}

/// The origin, size and root of a checkpoint's note text (extension lines are allowed
/// and ignored, as the specification says).
pub fn parse_checkpoint_body(body: &str) -> Result<(String, u64, Hash), TlogError> {
    let bad = |why: &str| TlogError::Checkpoint(format!("malformed checkpoint: {why}"));
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(body.as_bytes())
        .map_err(|_| bad("not origin, size and root hash lines"))?;
    let root = parse_hash_b64(&hash_b64(checkpoint.hash())).map_err(|_| bad("root hash"))?;
    Ok((checkpoint.origin().to_string(), checkpoint.size(), root))
}

/// The body of a signed note (the text before the blank line and signatures), unverified.
pub fn note_text(note: &str) -> Option<&str> {
    let at = note.rfind("\n\n")?;
    Some(&note[..at + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_note_specification_example_verifies() {
        // From C2SP signed-note, "Example".
        let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let verifier = LogVerifier::parse(vkey).unwrap();
        let parsed = Note::from_bytes(note.as_bytes()).unwrap();
        let list = VerifierList::new(vec![Box::new(verifier.inner.clone())]);
        assert!(parsed.verify(&list).is_ok());
        let tampered = note.replace("example message", "example massage");
        let parsed = Note::from_bytes(tampered.as_bytes()).unwrap();
        assert!(parsed.verify(&list).is_err());
        // Not a checkpoint, so the checkpoint check refuses it after the signature.
        assert!(verifier.verify_checkpoint(note).is_err());
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_the_published_vkey_only() {
        let key = LogKey::new(
            "registry.example/logs/answers",
            &SigningKey::from_bytes(&[7; 32]),
        )
        .unwrap();
        let root = tlog_tiles::record_hash(b"x");
        let note = key.sign_checkpoint(42, &root).unwrap();
        assert!(note.starts_with("registry.example/logs/answers\n42\n"));
        assert!(note.contains("\n\n\u{2014} registry.example/logs/answers "));
        let verifier = LogVerifier::parse(&key.vkey()).unwrap();
        let checkpoint = verifier.verify_checkpoint(&note).unwrap();
        assert_eq!((checkpoint.size, checkpoint.root), (42, root));

        // Another key under the same name, a changed size, a changed signature: refused.
        let other = LogKey::new(
            "registry.example/logs/answers",
            &SigningKey::from_bytes(&[8; 32]),
        )
        .unwrap();
        let forged = other.sign_checkpoint(42, &root).unwrap();
        assert!(verifier.verify_checkpoint(&forged).is_err());
        assert!(
            verifier
                .verify_checkpoint(&note.replacen("\n42\n", "\n43\n", 1))
                .is_err()
        );
        for i in 0..note.len() {
            if !note.is_char_boundary(i) || !note.is_char_boundary(i + 1) {
                continue;
            }
            let mut bytes = note.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            if let Ok(changed) = String::from_utf8(bytes) {
                assert!(verifier.verify_checkpoint(&changed).is_err(), "byte {i}");
            }
        }
        // Another log's key does not verify this log's checkpoints.
        let registry = LogKey::new(
            "registry.example/logs/registry",
            &SigningKey::from_bytes(&[7; 32]),
        )
        .unwrap();
        let verifier = LogVerifier::parse(&registry.vkey()).unwrap();
        assert!(verifier.verify_checkpoint(&note).is_err());
    }

    #[test]
    fn key_names_are_checked() {
        let key = SigningKey::from_bytes(&[1; 32]);
        assert!(LogKey::new("", &key).is_err());
        assert!(LogKey::new("a b", &key).is_err());
        assert!(LogKey::new("a+b", &key).is_err());
    }
}
