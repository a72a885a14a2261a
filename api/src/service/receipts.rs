//! Check receipts. Since issue 17 a receipt is a C2SP `tlog-proof` of the answer's
//! entry in the answer log: the payload (JSON, in the proof's `extra` line, hashed as the
//! leaf), its index, the inclusion proof and the group's signed checkpoint; it verifies
//! offline with the answer log's verifier key (`/logs/answers/vkey`). Before, and with
//! `receipts.format = "jws"` during a transition, a receipt is a compact JWS (RFC 7515)
//! with EdDSA over Ed25519 (RFC 8037); those keep verifying for as long as their keys are
//! kept ([`verify_any`] tells the two apart).
//!
//! A receipt is what a partner files with its procurement record instead of a stamped
//! screenshot, so anyone must be able to verify it later without asking the registry:
//! the public keys are published as a JWK set, every receipt names its key (`kid`), and
//! keys are rotated by adding a new one. The key directory holds one PKCS#8 PEM file per
//! key, `<kid>.pem`; kids are creation instants (`20261128T101500123456Z`), so the key
//! whose kid sorts last is the newest and signs, and every key in the directory verifies.

use crate::auth::keys;
use crate::domain::decision::Decision;
use crate::domain::measures::Domain;
use crate::tlog::note::LogVerifier;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The only algorithm a receipt may name.
pub const ALGORITHM: &str = "EdDSA";
/// The media type in the header, so a receipt is not mistaken for an access token.
pub const RECEIPT_TYPE: &str = "credit-receipt+jwt";

/// What a receipt says. Instants are RFC 3339 in UTC with microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPayload {
    /// The registry that signed it (`auth.issuer`).
    pub iss: String,
    /// The check record's id (UUID v7).
    pub receipt_id: String,
    /// Who asked (token subject).
    pub sub: String,
    pub uscc: String,
    pub domain: Domain,
    pub as_of: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    pub decision: Decision,
    pub hit_listing_ids: Vec<i64>,
    /// The partner's own reference (tender number), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Warning codes (e.g. `UNKNOWN_OPERATOR`: a CLEAR for a code the registry does not know).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A reconstruction: the answer as the registry's records stood at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_at: Option<DateTime<Utc>>,
    /// The registry log's checkpoint (size and root) that the answer was computed
    /// against: the state of the list it answers for. Absent in receipts before issue 17.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_log: Option<RegistryLogHead>,
}

impl ReceiptPayload {
    /// The registry log's head the answer was computed from, or why there is none.
    pub fn registry_head(&self) -> Result<&RegistryLogHead, String> {
        self.registry_log.as_ref().ok_or_else(|| {
            "the receipt names no registry log head (issued before issue 17)".to_string()
        })
    }
}

/// A registry-log tree head named by a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryLogHead {
    pub size: u64,
    /// The RFC 6962 root, standard base64 (as in checkpoints).
    pub root: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// A receipt whose signature holds, and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedReceipt {
    /// The key that vouches for it: a JWS key's kid, or the answer log's key
    /// (`<name>+<key id>`) for a tlog-proof receipt.
    pub kid: String,
    pub payload: ReceiptPayload,
    /// A tlog-proof receipt: its entry's index and the size of the checkpoint proving it.
    pub log: Option<(u64, u64)>,
}

/// Why a receipt is not genuine. The message is what `verifyReceipt` and the CLI print.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    #[error("the receipt names algorithm '{0}'; only EdDSA receipts are issued")]
    Algorithm(String),
    #[error("the receipt names key '{0}', which is not among the registry's keys")]
    UnknownKey(String),
    #[error(
        "the signature does not match the receipt's content (altered, or signed by another key)"
    )]
    Signature,
    #[error("the signed content is not a receipt: {0}")]
    Payload(String),
    #[error("the receipt is a transparency-log proof, and no answer-log verifier key was given")]
    NoLogKey,
    #[error("the receipt's log proof does not hold: {0}")]
    Proof(String),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url: no padding, no stray characters, no non-zero trailing bits, so
/// each receipt has exactly one spelling and any changed character is caught.
fn unb64(part: &str, what: &str) -> Result<Vec<u8>, ReceiptError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ReceiptError::Malformed(format!("the {what} is not base64url")))
}

/// Signs `payload` with `key` under `kid`.
pub fn sign(kid: &str, key: &SigningKey, payload: &ReceiptPayload) -> anyhow::Result<String> {
    sign_with_header(&encoded_header(kid)?, key, payload)
}

/// The base64url JWS header naming `kid`: the same for every receipt a key signs.
fn encoded_header(kid: &str) -> anyhow::Result<String> {
    let header = Header {
        alg: ALGORITHM.into(),
        kid: kid.into(),
        typ: Some(RECEIPT_TYPE.into()),
    };
    Ok(b64(&serde_json::to_vec(&header)?))
}

fn sign_with_header(
    header_b64: &str,
    key: &SigningKey,
    payload: &ReceiptPayload,
) -> anyhow::Result<String> {
    let signing_input = format!("{header_b64}.{}", b64(&serde_json::to_vec(payload)?));
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!("{signing_input}.{}", b64(&signature.to_bytes())))
}

/// Receipts of at least this many checks are signed on several threads: an Ed25519
/// signature costs tens of microseconds, so a batch of 1,000 is tens of milliseconds of
/// one core, and the caller waits for all of them.
pub const PARALLEL_SIGNING_MIN: usize = 128;

/// Signs `payloads` in order, on up to `threads` threads (the caller's among them).
fn sign_many(
    kid: &str,
    key: &SigningKey,
    payloads: &[ReceiptPayload],
    threads: usize,
) -> anyhow::Result<Vec<String>> {
    let header = encoded_header(kid)?;
    let sign_chunk = |chunk: &[ReceiptPayload]| -> anyhow::Result<Vec<String>> {
        chunk
            .iter()
            .map(|p| sign_with_header(&header, key, p))
            .collect()
    };
    let threads = threads.clamp(1, payloads.len().max(1));
    if threads == 1 {
        return sign_chunk(payloads);
    }
    let chunk_len = payloads.len().div_ceil(threads);
    let mut chunks = payloads.chunks(chunk_len);
    let first = chunks.next().unwrap_or(&[]);
    std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || sign_chunk(chunk)))
            .collect();
        let mut signed = sign_chunk(first)?;
        for handle in others {
            let part = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a receipt-signing thread panicked"))??;
            signed.extend(part);
        }
        Ok(signed)
    })
}

/// Verifies a compact JWS receipt against a set of public keys by kid.
pub fn verify(
    receipt: &str,
    keys: &HashMap<String, VerifyingKey>,
) -> Result<VerifiedReceipt, ReceiptError> {
    let receipt = receipt.trim();
    let mut parts = receipt.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReceiptError::Malformed(
            "expected three base64url parts separated by dots".into(),
        ));
    };
    let header: Header = serde_json::from_slice(&unb64(header_b64, "header")?)
        .map_err(|_| ReceiptError::Malformed("the header is not a JWS header".into()))?;
    if header.alg != ALGORITHM {
        return Err(ReceiptError::Algorithm(header.alg));
    }
    let key = keys
        .get(&header.kid)
        .ok_or_else(|| ReceiptError::UnknownKey(header.kid.clone()))?;
    let signature = Signature::from_slice(&unb64(signature_b64, "signature")?)
        .map_err(|_| ReceiptError::Malformed("the signature is not 64 bytes".into()))?;
    let signing_input = &receipt[..header_b64.len() + 1 + payload_b64.len()];
    key.verify_strict(signing_input.as_bytes(), &signature)
        .map_err(|_| ReceiptError::Signature)?;
    let payload: ReceiptPayload = serde_json::from_slice(&unb64(payload_b64, "payload")?)
        .map_err(|e| ReceiptError::Payload(e.to_string()))?;
    Ok(VerifiedReceipt {
        kid: header.kid,
        payload,
        log: None,
    })
}

/// A tlog-proof receipt: the proof with the payload as its `extra` data.
pub fn tlog_receipt(
    payload_json: &[u8],
    index: u64,
    proof: Vec<crate::tlog::Hash>,
    checkpoint: &str,
) -> String {
    crate::tlog::proof::TlogProof {
        extra: Some(payload_json.to_vec()),
        index,
        proof,
        checkpoint: checkpoint.to_string(),
    }
    .to_text()
}

/// Verifies a receipt of either kind: a tlog proof against the answer log's key, a
/// compact JWS against the JWS keys by kid.
pub fn verify_any(
    receipt: &str,
    jws_keys: &HashMap<String, VerifyingKey>,
    answer_log: Option<&LogVerifier>,
) -> Result<VerifiedReceipt, ReceiptError> {
    if !crate::tlog::proof::is_tlog_proof(receipt) {
        return verify(receipt, jws_keys);
    }
    let verifier = answer_log.ok_or(ReceiptError::NoLogKey)?;
    // Pasted text may have lost its final newline or gained CRs; the signed note needs both back.
    let text = format!("{}\n", receipt.trim().replace("\r\n", "\n"));
    let proof = crate::tlog::proof::TlogProof::parse(&text)
        .map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    let entry = proof
        .extra
        .as_deref()
        .ok_or_else(|| ReceiptError::Malformed("the proof carries no receipt payload".into()))?;
    let checkpoint = proof
        .verify(entry, verifier)
        .map_err(|e| ReceiptError::Proof(e.to_string()))?;
    let payload: ReceiptPayload =
        serde_json::from_slice(entry).map_err(|e| ReceiptError::Payload(e.to_string()))?;
    Ok(VerifiedReceipt {
        kid: verifier.key_label(),
        payload,
        log: Some((proof.index, checkpoint.size)),
    })
}

/// One JWK (RFC 8037 OKP) for a public key.
pub fn jwk(kid: &str, key: &VerifyingKey) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64(key.as_bytes()),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    })
}

/// The Ed25519 keys of a JWK set (`{"keys": [...]}`), by kid; other key types are ignored.
pub fn parse_jwks(text: &str) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let set: Value = serde_json::from_str(text).context("the JWK set is not JSON")?;
    let Some(list) = set.get("keys").and_then(Value::as_array) else {
        bail!("the JWK set has no \"keys\" array");
    };
    let mut keys = HashMap::new();
    for jwk in list {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
            continue;
        }
        let (Some(kid), Some(x)) = (field("kid"), field("x")) else {
            bail!("an Ed25519 JWK lacks \"kid\" or \"x\"");
        };
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(x)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("key {kid}: \"x\" is not 32 base64url bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("key {kid}: not an Ed25519 public key: {e}"))?;
        keys.insert(kid.to_string(), key);
    }
    if keys.is_empty() {
        bail!("the JWK set has no Ed25519 keys");
    }
    Ok(keys)
}

/// A kid is a file name stem: letters, digits, `.`, `_`, `-`.
pub fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The kid of a key created at `at`: its creation instant, so kids sort by age.
pub fn kid_for(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%6fZ").to_string()
}

/// The keys of a key directory, by kid.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: BTreeMap<String, SigningKey>,
    public: HashMap<String, VerifyingKey>,
}

impl KeyRing {
    pub fn from_keys(keys: BTreeMap<String, SigningKey>) -> Self {
        let public = keys
            .iter()
            .map(|(kid, k)| (kid.clone(), k.verifying_key()))
            .collect();
        Self { keys, public }
    }

    /// Reads every `<kid>.pem` in `dir` (a missing directory holds no keys).
    pub fn read_dir(dir: &Path) -> anyhow::Result<Self> {
        let mut keys = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::from_keys(keys));
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pem") {
                continue;
            }
            let Some(kid) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !is_valid_kid(kid) {
                tracing::warn!(path = %path.display(), "skipping a receipt key whose file name is not a valid kid");
                continue;
            }
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("reading receipt key {}", path.display()))?;
            let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                anyhow::anyhow!("{}: not a PKCS#8 Ed25519 key: {e}", path.display())
            })?;
            keys.insert(kid.to_string(), key);
        }
        Ok(Self::from_keys(keys))
    }

    /// The newest key: the one that signs.
    pub fn signer(&self) -> Option<(&str, &SigningKey)> {
        self.keys.last_key_value().map(|(k, v)| (k.as_str(), v))
    }

    pub fn public_keys(&self) -> &HashMap<String, VerifyingKey> {
        &self.public
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// The JWK set served at `/.well-known/jwks.json`, oldest key first.
    pub fn jwks(&self) -> Value {
        json!({
            "keys": self
                .keys
                .iter()
                .map(|(kid, k)| jwk(kid, &k.verifying_key()))
                .collect::<Vec<_>>()
        })
    }
}

/// Adds a new key to `dir`, which becomes the signing key; returns its kid. Receipt and
/// token key directories alike (`rotate-receipt-key`, `rotate-token-key`).
pub fn add_key(dir: &Path) -> anyhow::Result<String> {
    let existing = KeyRing::read_dir(dir)?;
    // Wall time: the kid names when the key file was made, so that kids sort by age
    // across every process that reads the directory (none shares a test's clock).
    let kid = kid_for(crate::domain::truncate_instant(Utc::now()));
    if let Some((newest, _)) = existing.signer()
        && newest >= kid.as_str()
    {
        bail!(
            "the newest key in {} ({newest}) is not older than now ({kid}); check the clock before rotating",
            dir.display()
        );
    }
    keys::generate(&dir.join(format!("{kid}.pem")))?;
    Ok(kid)
}

/// The receipt keys of a running service. The ring is re-read by [`ReceiptService::reload`]
/// (at start, when a new key is announced by `rotate-receipt-key` on PostgreSQL, see
/// `cluster::notify`, and periodically as the fallback), so a new key is picked up
/// without a restart.
pub struct ReceiptService {
    dir: PathBuf,
    issuer: String,
    ring: RwLock<Arc<KeyRing>>,
    /// Verifies tlog-proof receipts (the answer log's key).
    answer_log: Option<LogVerifier>,
}

/// How often a running service re-reads its receipt key directory.
pub const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

impl ReceiptService {
    /// Loads the key directory; when it holds no key, creates one if `may_create`
    /// (development) and refuses otherwise (production).
    pub fn open(dir: PathBuf, issuer: String, may_create: bool) -> anyhow::Result<Self> {
        let mut ring = KeyRing::read_dir(&dir)?;
        if ring.signer().is_none() {
            if !may_create {
                bail!(
                    "no receipt signing key in {}; the production profile does not generate keys: create one with `credit-registry rotate-receipt-key`",
                    dir.display()
                );
            }
            let kid = add_key(&dir)?;
            tracing::warn!(dir = %dir.display(), kid, "generated a development receipt signing key; production must create its own");
            ring = KeyRing::read_dir(&dir)?;
        }
        Ok(Self {
            dir,
            issuer,
            ring: RwLock::new(Arc::new(ring)),
            answer_log: None,
        })
    }

    /// Receipts that are answer-log proofs verify against this verifier key.
    pub fn with_answer_log(mut self, vkey: &str) -> anyhow::Result<Self> {
        self.answer_log =
            Some(LogVerifier::parse(vkey).map_err(|e| anyhow::anyhow!("answer log key: {e}"))?);
        Ok(self)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the key directory. A directory that cannot be read, or that lost its
    /// keys, leaves the current ring in place: receipts keep being signed and verified.
    pub fn reload(&self) -> anyhow::Result<()> {
        let ring = KeyRing::read_dir(&self.dir)?;
        if ring.signer().is_none() {
            bail!("{} holds no receipt key", self.dir.display());
        }
        let mut current = self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.kids() != ring.kids() {
            tracing::info!(kids = ?ring.kids(), "receipt keys reloaded");
        }
        *current = Arc::new(ring);
        Ok(())
    }

    /// Verifies a receipt of either kind (tlog proof or JWS).
    pub fn verify(&self, receipt: &str) -> Result<VerifiedReceipt, ReceiptError> {
        verify_any(receipt, self.ring().public_keys(), self.answer_log.as_ref())
    }

    pub fn jwks(&self) -> Value {
        self.ring().jwks()
    }
}

/// Signs receipts with one snapshot of the ring (a batch is signed by one key).
pub struct ReceiptSigner {
    ring: Arc<KeyRing>,
}

impl ReceiptSigner {
    pub fn new(service: &ReceiptService) -> Self {
        Self {
            ring: service.ring(),
        }
    }

    pub fn sign(&self, payload: &ReceiptPayload) -> anyhow::Result<String> {
        let (kid, key) = self
            .ring
            .signer()
            .context("no receipt signing key is loaded")?;
        sign(kid, key, payload)
    }

    /// Signs every payload, in order; large sets on every core.
    pub fn sign_all(&self, payloads: &[ReceiptPayload]) -> anyhow::Result<Vec<String>> {
        let (kid, key) = self
            .ring
            .signer()
            .context("no receipt signing key is loaded")?;
        let threads = if payloads.len() >= PARALLEL_SIGNING_MIN {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            1
        };
        sign_many(kid, key, payloads, threads)
    }
}

/// Re-reads the key directory every [`RELOAD_INTERVAL`] while the service is alive.
pub fn spawn_reloader(service: &Arc<ReceiptService>) {
    let weak = Arc::downgrade(service);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let Some(service) = weak.upgrade() else {
                break;
            };
            if let Err(e) = service.reload() {
                tracing::warn!(error = %format!("{e:#}"), "receipt keys not reloaded; keeping the current ones");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn payload() -> ReceiptPayload {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap();
        ReceiptPayload {
            iss: "credit-registry".into(),
            receipt_id: "0192f0c4-0000-7000-8000-000000000001".into(),
            sub: "gov-procurement".into(),
            uscc: "91110000101623741K".into(),
            domain: Domain::Procurement,
            as_of: t,
            checked_at: t + chrono::Duration::microseconds(123_456),
            decision: Decision::Restricted,
            hit_listing_ids: vec![7, 9],
            reference: Some("QY-2026-001".into()),
            warnings: vec![],
            known_at: None,
            registry_log: None,
        }
    }

    fn ring(seeds: &[(&str, u8)]) -> KeyRing {
        KeyRing::from_keys(
            seeds
                .iter()
                .map(|(kid, seed)| (kid.to_string(), SigningKey::from_bytes(&[*seed; 32])))
                .collect(),
        )
    }

    fn signed(ring: &KeyRing) -> String {
        let (kid, key) = ring.signer().unwrap();
        sign(kid, key, &payload()).unwrap()
    }

    #[test]
    fn signing_on_several_threads_keeps_the_order_and_the_bytes() {
        let ring = ring(&[("a", 1)]);
        let (kid, key) = ring.signer().unwrap();
        let payloads: Vec<ReceiptPayload> = (0..7)
            .map(|i| ReceiptPayload {
                receipt_id: format!("receipt-{i}"),
                ..payload()
            })
            .collect();
        let one = sign_many(kid, key, &payloads, 1).unwrap();
        for threads in [2, 3, 16] {
            assert_eq!(sign_many(kid, key, &payloads, threads).unwrap(), one);
        }
        for (receipt, payload) in one.iter().zip(&payloads) {
            assert_eq!(receipt, &sign(kid, key, payload).unwrap());
            let verified = verify(receipt, ring.public_keys()).unwrap();
            assert_eq!(&verified.payload, payload);
        }
        assert!(sign_many(kid, key, &[], 4).unwrap().is_empty());
    }

    #[test]
    fn a_genuine_receipt_verifies_and_says_what_was_signed() {
        let ring = ring(&[("a", 1)]);
        let verified = verify(&signed(&ring), ring.public_keys()).unwrap();
        assert_eq!(verified.kid, "a");
        assert_eq!(verified.payload, payload());
    }

    #[test]
    fn changing_any_single_character_breaks_the_receipt() {
        let ring = ring(&[("a", 1)]);
        let receipt = signed(&ring);
        for (i, original) in receipt.char_indices() {
            // One neighbour in the base64url alphabet: the smallest possible change.
            let replacement = if original == 'A' { 'B' } else { 'A' };
            let mut tampered = receipt.clone();
            tampered.replace_range(i..i + 1, &replacement.to_string());
            assert!(
                verify(&tampered, ring.public_keys()).is_err(),
                "changing position {i} to '{replacement}' still verified"
            );
        }
        assert!(verify(&format!("{receipt}A"), ring.public_keys()).is_err());
        assert!(verify(&receipt[..receipt.len() - 1], ring.public_keys()).is_err());
    }

    #[test]
    fn a_receipt_signed_by_another_key_under_the_same_kid_fails() {
        let genuine = ring(&[("a", 1)]);
        let forger = ring(&[("a", 2)]);
        assert_eq!(
            verify(&signed(&forger), genuine.public_keys()),
            Err(ReceiptError::Signature)
        );
    }

    #[test]
    fn a_receipt_naming_an_unknown_key_fails() {
        let genuine = ring(&[("a", 1)]);
        let other = ring(&[("b", 1)]);
        assert_eq!(
            verify(&signed(&other), genuine.public_keys()),
            Err(ReceiptError::UnknownKey("b".into()))
        );
    }

    #[test]
    fn another_algorithm_is_refused() {
        let ring = ring(&[("a", 1)]);
        let receipt = signed(&ring);
        let (_, rest) = receipt.split_once('.').unwrap();
        let header = b64(br#"{"alg":"none","kid":"a"}"#);
        assert_eq!(
            verify(&format!("{header}.{rest}"), ring.public_keys()),
            Err(ReceiptError::Algorithm("none".into()))
        );
    }

    #[test]
    fn the_newest_kid_signs_and_every_kid_verifies() {
        let old = ring(&[("20260101T000000000000Z", 1)]);
        let old_receipt = signed(&old);
        let rotated = ring(&[("20260101T000000000000Z", 1), ("20260601T000000000000Z", 2)]);
        let new_receipt = signed(&rotated);
        assert_eq!(
            verify(&new_receipt, rotated.public_keys()).unwrap().kid,
            "20260601T000000000000Z"
        );
        assert!(verify(&old_receipt, rotated.public_keys()).is_ok());
    }

    #[test]
    fn the_published_jwks_verifies_offline() {
        let ring = ring(&[("k1", 1), ("k2", 2)]);
        let text = ring.jwks().to_string();
        let keys = parse_jwks(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(verify(&signed(&ring), &keys).is_ok());
        assert!(parse_jwks(r#"{"keys":[]}"#).is_err());
        assert!(
            parse_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"x","x":"AA"}]}"#).is_err()
        );
    }

    #[test]
    fn kids_are_sortable_instants_and_file_safe() {
        let a = kid_for(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let b = kid_for(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap());
        assert_eq!(a, "20260102T030405000000Z");
        assert!(a < b);
        assert!(is_valid_kid(&a));
        assert!(!is_valid_kid("../etc"));
        assert!(!is_valid_kid(""));
    }

    #[test]
    fn a_key_directory_rotates() {
        let dir = tempfile_dir();
        assert!(KeyRing::read_dir(&dir).unwrap().signer().is_none());
        let first = add_key(&dir).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = add_key(&dir).unwrap();
        let ring = KeyRing::read_dir(&dir).unwrap();
        assert_eq!(ring.kids(), vec![first, second.clone()]);
        assert_eq!(ring.signer().unwrap().0, second);
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join(format!("receipt-keys-{}", uuid::Uuid::new_v4().simple()))
    }
}
