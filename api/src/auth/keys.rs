//! Ed25519 key files (PKCS#8 PEM): loaded when configured, generated for development.

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding,
};
use std::path::Path;

/// Loads the key at `path`; when it does not exist and `may_create` is set, generates
/// one, writes it with owner-only permissions and says so.
pub fn load_or_create(path: &Path, may_create: bool) -> anyhow::Result<SigningKey> {
    if path.exists() {
        return load(path);
    }
    if !may_create {
        bail!(
            "signing key {} does not exist; the production profile does not generate keys: create one (credit-registry keygen) and configure it",
            path.display()
        );
    }
    let key = match generate(path) {
        Ok(key) => key,
        // Another instance sharing this directory, started at the same moment, wrote it
        // first (a key file appears whole, see `write_private`): every instance uses that one.
        Err(_) if path.exists() => return load(path),
        Err(e) => return Err(e),
    };
    tracing::warn!(
        path = %path.display(),
        "generated a development signing key; production must configure its own key"
    );
    Ok(key)
}

fn load(path: &Path) -> anyhow::Result<SigningKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{}: not a PKCS#8 Ed25519 key: {e}", path.display()))
}

/// Generates a new key and writes it to `path` (parent directories created).
pub fn generate(path: &Path) -> anyhow::Result<SigningKey> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding key: {e}"))?;
    write_private(path, pem.as_bytes())?;
    Ok(key)
}

/// Writes a new key file that must not exist yet. It appears whole or not at all: the
/// bytes go to a temporary file beside it, which is then hard-linked to `path` (which
/// fails if `path` exists), so instances starting at once over one shared directory
/// never read a half-written key nor overwrite each other's.
#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let tmp = path.with_file_name(name);
    let written = (|| -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path).with_context(|| format!("creating {}", path.display()))
    })();
    let _ = std::fs::remove_file(&tmp);
    written
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn private_pem(key: &SigningKey) -> anyhow::Result<String> {
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding key: {e}"))?
        .to_string())
}

pub fn public_pem(key: &SigningKey) -> anyhow::Result<String> {
    verifying_pem(&key.verifying_key())
}

/// A public key as SPKI PEM.
pub fn verifying_pem(key: &ed25519_dalek::VerifyingKey) -> anyhow::Result<String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding public key: {e}"))
}
