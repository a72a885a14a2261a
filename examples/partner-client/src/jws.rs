//! Receipts as compact JWS (RFC 7515) signed with Ed25519 (`alg` `EdDSA`, RFC 8037),
//! verified by their header's `kid` against the registry's JWK set
//! (`/.well-known/jwks.json`, OKP/Ed25519 keys): what the registry issues with
//! `receipts.format = "jws"`, and what it issued before its transparency log.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use std::collections::HashMap;

/// A JWS receipt whose signature holds: its key and what it says.
pub struct Verified {
    pub kid: String,
    pub payload: Value,
}

/// The Ed25519 keys of a JWK set, by `kid` (other key types are skipped).
pub fn parse_jwks(text: &str) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let set: Value = serde_json::from_str(text).context("the JWK set is not JSON")?;
    let mut keys = HashMap::new();
    for jwk in set["keys"].as_array().into_iter().flatten() {
        if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
            continue;
        }
        let (Some(kid), Some(x)) = (jwk["kid"].as_str(), jwk["x"].as_str()) else {
            bail!("an Ed25519 key of the set has no kid or x");
        };
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(x)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("key {kid}: x is not 32 bytes of base64url"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("key {kid} is not an Ed25519 public key: {e}"))?;
        keys.insert(kid.to_string(), key);
    }
    if keys.is_empty() {
        bail!("the JWK set holds no Ed25519 key");
    }
    Ok(keys)
}

/// Verifies a compact JWS receipt by its header's `kid`; the reason when it is not genuine.
pub fn verify(receipt: &str, keys: &HashMap<String, VerifyingKey>) -> Result<Verified, String> {
    let receipt = receipt.trim();
    let parts: Vec<&str> = receipt.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err("not a compact JWS (three parts)".into());
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("the {what} is not base64url"))
    };
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| "the header is not JSON".to_string())?;
    if header["alg"] != "EdDSA" {
        return Err(format!("unexpected algorithm {}", header["alg"]));
    }
    let kid = header["kid"].as_str().ok_or("the header has no kid")?;
    let key = keys
        .get(kid)
        .ok_or_else(|| format!("no key {kid} in the JWK set"))?;
    let signature = Signature::from_slice(&decode(signature, "signature")?)
        .map_err(|_| "the signature is not 64 bytes".to_string())?;
    // The signing input is the first two parts exactly as sent.
    let signed = &receipt[..receipt.len() - parts[2].len() - 1];
    key.verify_strict(signed.as_bytes(), &signature)
        .map_err(|_| "the signature does not match".to_string())?;
    let payload: Value = serde_json::from_slice(&decode(payload, "payload")?)
        .map_err(|_| "the payload is not JSON".to_string())?;
    Ok(Verified {
        kid: kid.to_string(),
        payload,
    })
}
