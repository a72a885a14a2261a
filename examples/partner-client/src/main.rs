//! An example partner system (a tender platform) calling the registry.
//!
//! `partner-client check` asks about every bidder of one tender with a single
//! `checkBatch`, files each receipt in a folder as
//! `<reference>_<uscc>_<receiptId>.jws` (the names a clerk searches by), fetches the
//! registry's public keys once (kept as `jwks.json` next to the receipts), verifies every
//! receipt offline by its `kid`, and prints a table.
//!
//! `partner-client verify` re-verifies filed receipts later, with the saved keys only
//! and no network: exit status 0 when every receipt is genuine, 1 when one is not.
//!
//! Receipts are compact JWS (RFC 7515) signed with Ed25519 (`alg` `EdDSA`, RFC 8037);
//! the keys are a JWK set of OKP/Ed25519 keys at `/.well-known/jwks.json`.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use unicode_width::UnicodeWidthStr;

#[derive(Parser)]
#[command(
    name = "partner-client",
    about = "Checks a tender's bidders against the credit registry and files the signed receipts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every bidder of a tender, file and verify the receipts.
    Check {
        /// The registry, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        /// The partner token (a partner-role token of a registered partner).
        #[arg(long, env = "PARTNER_TOKEN", hide_env_values = true)]
        token: String,
        /// The tender reference, recorded with each check and in each receipt.
        #[arg(long)]
        reference: String,
        /// A file with one bidder's USCC a line (blank lines and `#` comments ignored).
        #[arg(long)]
        bidders: PathBuf,
        /// Where the receipts are filed (created when missing).
        #[arg(long)]
        out: PathBuf,
        /// The domain of the procedure.
        #[arg(long, default_value = "BIDDING")]
        domain: String,
    },
    /// Verify filed receipts offline against a saved JWK set.
    Verify {
        /// The JWK set saved by `check` (`<out>/jwks.json`).
        #[arg(long)]
        jwks: PathBuf,
        /// Receipt files, or folders whose `*.jws` files are verified.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

const CHECK_BATCH: &str = "query TenderCheck($u: [String!]!, $d: Domain!, $r: String!) { \
     checkBatch(usccs: $u, domain: $d, reference: $r) { \
       receiptId uscc operatorName decision asOf \
       hits { listCode authority measures { code effect } } \
       warnings { code } receipt } }";

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Check {
            url,
            token,
            reference,
            bidders,
            out,
            domain,
        } => check(&url, &token, &reference, &bidders, &out, &domain).await,
        Command::Verify { jwks, paths } => verify_files(&jwks, &paths),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("partner-client: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Checks, files, verifies and prints; `Ok(false)` when a receipt did not verify.
async fn check(
    url: &str,
    token: &str,
    reference: &str,
    bidders: &Path,
    out: &Path,
    domain: &str,
) -> anyhow::Result<bool> {
    let codes = read_bidders(bidders)?;
    if codes.is_empty() {
        bail!("{} lists no bidder", bidders.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');

    // The public keys, once: every receipt of this run is verified with them, offline.
    let jwks_text = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("fetching the registry's JWK set")?
        .text()
        .await?;
    let keys = parse_jwks(&jwks_text)?;
    let jwks_file = out.join("jwks.json");
    std::fs::write(&jwks_file, &jwks_text)
        .with_context(|| format!("writing {}", jwks_file.display()))?;

    let body = json!({
        "query": CHECK_BATCH,
        "operationName": "TenderCheck",
        "variables": {"u": codes, "d": domain, "r": reference},
    });
    let answer: Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .context("calling checkBatch")?
        .json()
        .await
        .context("reading the checkBatch answer")?;
    if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
        let described: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "{} ({})",
                    e["message"].as_str().unwrap_or("?"),
                    e["extensions"]["code"].as_str().unwrap_or("no code")
                )
            })
            .collect();
        bail!("the registry refused the check: {}", described.join("; "));
    }
    let Some(results) = answer["data"]["checkBatch"].as_array() else {
        bail!("the answer has no checkBatch results: {answer}");
    };

    let mut rows = Vec::new();
    let mut all_genuine = true;
    for result in results {
        let field = |name: &str| result[name].as_str().unwrap_or_default().to_string();
        let (uscc, receipt_id, receipt) = (field("uscc"), field("receiptId"), field("receipt"));
        let file = out.join(receipt_file_name(reference, &uscc, &receipt_id));
        std::fs::write(&file, format!("{receipt}\n"))
            .with_context(|| format!("filing {}", file.display()))?;
        // The receipt must be genuine and say what the answer said.
        let verdict = match verify(&receipt, &keys) {
            Ok(verified) => match mismatch(&verified.payload, result, reference) {
                None => format!("VALID ({})", verified.kid),
                Some(field) => format!("INVALID: the receipt's {field} differs from the answer"),
            },
            Err(why) => format!("INVALID: {why}"),
        };
        all_genuine &= verdict.starts_with("VALID");
        let warnings: Vec<&str> = result["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(|w| w["code"].as_str()).collect())
            .unwrap_or_default();
        rows.push(vec![
            uscc,
            field("operatorName"),
            field("decision"),
            warnings.join(","),
            receipt_id,
            verdict,
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ]);
    }
    println!(
        "tender {reference}, domain {domain}: {} bidders",
        rows.len()
    );
    print_table(
        &[
            "USCC",
            "operator",
            "decision",
            "warnings",
            "receipt id",
            "signature",
            "file",
        ],
        &rows,
    );
    println!("keys: {}", jwks_file.display());
    Ok(all_genuine)
}

/// The bidders' codes: one a line, trimmed; blank lines and `#` comments skipped.
fn read_bidders(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// `<reference>_<uscc>_<receiptId>.jws`, with anything a file system may not take in a
/// name (separators, reserved punctuation, control and space characters) as `-`.
fn receipt_file_name(reference: &str, uscc: &str, receipt_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_control() || c.is_whitespace() || "/\\:*?\"<>|".contains(c) {
                    '-'
                } else {
                    c
                }
            })
            .collect()
    };
    format!(
        "{}_{}_{}.jws",
        clean(reference),
        clean(uscc),
        clean(receipt_id)
    )
}

/// The first field where the signed payload and the answer disagree.
fn mismatch(payload: &Value, answer: &Value, reference: &str) -> Option<&'static str> {
    for (name, expected) in [
        ("receiptId", answer["receiptId"].clone()),
        ("uscc", answer["uscc"].clone()),
        ("decision", answer["decision"].clone()),
        ("reference", Value::String(reference.to_string())),
    ] {
        if payload[name] != expected {
            return Some(name);
        }
    }
    None
}

struct Verified {
    kid: String,
    payload: Value,
}

/// The Ed25519 keys of a JWK set, by `kid` (other key types are skipped).
fn parse_jwks(text: &str) -> anyhow::Result<HashMap<String, VerifyingKey>> {
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
fn verify(receipt: &str, keys: &HashMap<String, VerifyingKey>) -> Result<Verified, String> {
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

/// `verify`: every file (or every `*.jws` of every folder), offline.
fn verify_files(jwks: &Path, paths: &[PathBuf]) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(jwks).with_context(|| format!("reading {}", jwks.display()))?;
    let keys = parse_jwks(&text)?;
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jws"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no receipt to verify");
    }
    let mut rows = Vec::new();
    let mut all_genuine = true;
    for file in &files {
        let receipt =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let (verdict, uscc, decision) = match verify(&receipt, &keys) {
            Ok(v) => (
                format!("VALID ({})", v.kid),
                v.payload["uscc"].as_str().unwrap_or_default().to_string(),
                v.payload["decision"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            Err(why) => {
                all_genuine = false;
                (format!("INVALID: {why}"), String::new(), String::new())
            }
        };
        rows.push(vec![file.display().to_string(), uscc, decision, verdict]);
    }
    print_table(&["file", "USCC", "decision", "signature"], &rows);
    Ok(all_genuine)
}

/// A plain text table, columns padded to their widest cell in terminal cells (a
/// Chinese character takes two).
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let width = |s: &str| UnicodeWidthStr::width(s);
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c)))))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&rules.iter().map(String::as_str).collect::<Vec<_>>());
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_what_a_clerk_searches_by() {
        assert_eq!(
            receipt_file_name("QY-ZB-2026/07 一标段", "91441802MA4W7K3Q8P", "0190-ab"),
            "QY-ZB-2026-07-一标段_91441802MA4W7K3Q8P_0190-ab.jws"
        );
    }

    #[test]
    fn bidders_files_skip_blanks_and_comments() {
        let dir = std::env::temp_dir().join(format!("partner-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let file = dir.join("bidders.txt");
        std::fs::write(&file, "# bidders\n 91441802MA4W7K3Q8P \n\nABC # late\n")
            .unwrap_or_default();
        assert_eq!(
            read_bidders(&file).unwrap_or_default(),
            vec!["91441802MA4W7K3Q8P".to_string(), "ABC".to_string()]
        );
        std::fs::remove_dir_all(&dir).unwrap_or_default();
    }
}
