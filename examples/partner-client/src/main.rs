//! An example partner system (a tender platform) calling the registry.
//!
//! `partner-client check` asks about every bidder of one tender with a single
//! `checkBatch`, fetches the registry's public keys once (the answer log's verifier key,
//! kept as `answers.vkey`, and the JWK set, kept as `jwks.json`, next to the receipts),
//! files each receipt in a folder as `<reference>_<uscc>_<receiptId>.tlog` (a
//! transparency-log proof) or `….jws` (a compact JWS) — the names a clerk searches by —,
//! verifies every receipt offline and checks that it says what the answer said, and
//! prints a table.
//!
//! `partner-client verify` re-verifies filed receipts later, with the saved keys only
//! and no network: exit status 0 when every receipt is genuine, 1 when one is not, 2 when
//! one could not be checked (its key was not given).
//!
//! Receipts come in two formats, told apart by their first line (see [`tlog`] and
//! [`jws`]): the registry's default, a C2SP `tlog-proof` of the answer's entry in its
//! answer log, and the compact JWS it issues with `receipts.format = "jws"`.
//!
//! With `--status-proofs`, `check` also asks for each answer's status proof, keeps the
//! registry log's verifier key as `registry.vkey`, files each proof beside its receipt as
//! `….status.json` and checks that it proves the answer (see [`status`]): for a CLEAR
//! bidder, evidence from the registry's published list that nothing restricted it.
//! `verify --registry-vkey` checks the filed proofs again.

mod jws;
mod status;
mod tlog;

use anyhow::{Context, bail};
use clap::{ArgGroup, Parser, Subcommand};
use ed25519_dalek::VerifyingKey;
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
        /// Also ask for each answer's status proof, file it beside its receipt
        /// (`….status.json`) and check that it proves the answer.
        #[arg(long)]
        status_proofs: bool,
    },
    /// Verify filed receipts offline against the saved keys.
    #[command(group(ArgGroup::new("keys").required(true).multiple(true).args(["jwks", "vkey"])))]
    Verify {
        /// The JWK set saved by `check` (`<out>/jwks.json`), for JWS receipts.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// The answer log's verifier key saved by `check` (`<out>/answers.vkey`), for
        /// tlog-proof receipts.
        #[arg(long)]
        vkey: Option<PathBuf>,
        /// The registry log's verifier key saved by `check --status-proofs`
        /// (`<out>/registry.vkey`), for the status proofs filed beside the receipts.
        #[arg(long)]
        registry_vkey: Option<PathBuf>,
        /// Receipt files, or folders whose `*.tlog` and `*.jws` files are verified.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Where `check` keeps the keys, next to the receipts.
const JWKS_FILE: &str = "jwks.json";
const VKEY_FILE: &str = "answers.vkey";
const REGISTRY_VKEY_FILE: &str = "registry.vkey";
/// What a receipt's status proof is filed as: the receipt's name with this instead of its
/// extension.
const STATUS_PROOF_EXTENSION: &str = "status.json";

/// The tender's check; `{statusProof}` is where the status proof is asked for, or not.
const CHECK_BATCH: &str = "query TenderCheck($u: [String!]!, $d: Domain!, $r: String!) { \
     checkBatch(usccs: $u, domain: $d, reference: $r) { \
       receiptId uscc operatorName decision asOf \
       hits { listCode authority measures { code effect } } \
       warnings { code } receipt {statusProof} } }";

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
            status_proofs,
        } => {
            let tender = Tender {
                url: &url,
                token: &token,
                reference: &reference,
                domain: &domain,
                status_proofs,
            };
            check(&tender, &bidders, &out).await
        }
        Command::Verify {
            jwks,
            vkey,
            registry_vkey,
            paths,
        } => verify_files(jwks, vkey, registry_vkey, &paths),
    };
    match outcome {
        Ok(tally) => tally.exit_code(),
        Err(err) => {
            eprintln!("partner-client: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The keys receipts are verified with; a kind of receipt whose key is missing cannot be
/// checked.
struct Keys {
    jws: Option<HashMap<String, VerifyingKey>>,
    answer_log: Option<tlog::LogKey>,
    /// For status proofs.
    registry_log: Option<tlog::LogKey>,
}

impl Keys {
    fn read(
        jwks: Option<&Path>,
        vkey: Option<&Path>,
        registry_vkey: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        let jws = match jwks {
            Some(path) => {
                Some(jws::parse_jwks(&read(path)?).with_context(|| format!("{}", path.display()))?)
            }
            None => None,
        };
        let log_key = |path: Option<&Path>| -> anyhow::Result<Option<tlog::LogKey>> {
            match path {
                Some(path) => {
                    Ok(Some(tlog::LogKey::parse(&read(path)?).map_err(|why| {
                        anyhow::anyhow!("{}: {why}", path.display())
                    })?))
                }
                None => Ok(None),
            }
        };
        Ok(Self {
            jws,
            answer_log: log_key(vkey)?,
            registry_log: log_key(registry_vkey)?,
        })
    }
}

/// What checking a receipt's status proof found, as the table shows it.
fn status_verdict(
    proof: Option<&str>,
    receipt: &Outcome,
    keys: &Keys,
    tally: &mut Tally,
) -> String {
    let Some(proof) = proof else {
        return String::new();
    };
    let Some(key) = &keys.registry_log else {
        tally.unchecked += 1;
        return "NOT CHECKED: no --registry-vkey was given".into();
    };
    let Outcome::Valid { payload, .. } = receipt else {
        // Already counted: the receipt itself is not genuine, or was not checked.
        return "NOT CHECKED: its receipt did not verify".into();
    };
    let outcome = status::verify(proof, key, payload);
    match outcome {
        status::Outcome::Proven { .. } => {}
        status::Outcome::Invalid(_) => tally.invalid += 1,
        status::Outcome::NotRecomputed(_) => tally.unchecked += 1,
    }
    outcome.verdict()
}

/// The file a receipt's status proof is filed in.
fn status_proof_file(receipt_file: &Path) -> PathBuf {
    receipt_file.with_extension(STATUS_PROOF_EXTENSION)
}

/// What verifying one receipt found.
enum Outcome {
    /// Genuine: who vouches for it, and what it says.
    Valid { by: String, payload: Value },
    /// Not genuine, and why.
    Invalid(String),
    /// Not checked: the key for its kind was not given.
    Unchecked(String),
}

impl Outcome {
    fn verdict(&self) -> String {
        match self {
            Self::Valid { by, .. } => format!("VALID ({by})"),
            Self::Invalid(why) => format!("INVALID: {why}"),
            Self::Unchecked(why) => format!("NOT CHECKED: {why}"),
        }
    }
}

/// Verifies a receipt of either format, told apart by its first line.
fn verify_receipt(receipt: &str, keys: &Keys) -> Outcome {
    if tlog::is_tlog_proof(receipt) {
        let Some(key) = &keys.answer_log else {
            return Outcome::Unchecked("a tlog-proof receipt, and no --vkey was given".into());
        };
        match tlog::verify(receipt, key) {
            Ok(v) => Outcome::Valid {
                by: format!("answer log entry {} of {}", v.index, v.size),
                payload: v.payload,
            },
            Err(why) => Outcome::Invalid(why),
        }
    } else {
        let Some(set) = &keys.jws else {
            return Outcome::Unchecked("a JWS receipt, and no --jwks was given".into());
        };
        match jws::verify(receipt, set) {
            Ok(v) => Outcome::Valid {
                by: v.kid,
                payload: v.payload,
            },
            Err(why) => Outcome::Invalid(why),
        }
    }
}

/// How many receipts were not genuine, or not checked: the exit status.
#[derive(Default)]
struct Tally {
    invalid: usize,
    unchecked: usize,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Valid { .. } => {}
            Outcome::Invalid(_) => self.invalid += 1,
            Outcome::Unchecked(_) => self.unchecked += 1,
        }
    }

    /// 0 every receipt genuine, 1 one is not (whatever else), 2 one could not be checked.
    fn exit_code(&self) -> ExitCode {
        if self.invalid > 0 {
            ExitCode::from(1)
        } else if self.unchecked > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// GETs a public document of the registry as text.
async fn fetch_text(http: &reqwest::Client, url: String, what: &str) -> anyhow::Result<String> {
    http.get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("fetching {what} ({url})"))?
        .text()
        .await
        .with_context(|| format!("reading {what}"))
}

/// One tender's check, as asked on the command line.
struct Tender<'a> {
    url: &'a str,
    token: &'a str,
    reference: &'a str,
    domain: &'a str,
    status_proofs: bool,
}

/// Checks, files, verifies and prints.
async fn check(tender: &Tender<'_>, bidders: &Path, out: &Path) -> anyhow::Result<Tally> {
    let &Tender {
        url,
        token,
        reference,
        domain,
        status_proofs,
    } = tender;
    // The registry trims the reference before it signs it; compare what it signs.
    let reference = reference.trim();
    if reference.is_empty() {
        bail!("--reference is empty: the receipts must name the tender they were asked for");
    }
    let codes = read_bidders(bidders)?;
    if codes.is_empty() {
        bail!("{} lists no bidder", bidders.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');

    // The public keys, once: every receipt of this run is verified with them, offline,
    // and they are kept so that the receipts can be verified again later without the
    // registry.
    let vkey_text = fetch_text(
        &http,
        format!("{base}/logs/answers/vkey"),
        "the answer log's verifier key",
    )
    .await?;
    let jwks_text = fetch_text(
        &http,
        format!("{base}/.well-known/jwks.json"),
        "the registry's JWK set",
    )
    .await?;
    let vkey_file = out.join(VKEY_FILE);
    let jwks_file = out.join(JWKS_FILE);
    let mut saved = vec![
        (vkey_file.clone(), vkey_text),
        (jwks_file.clone(), jwks_text),
    ];
    let registry_vkey_file = out.join(REGISTRY_VKEY_FILE);
    if status_proofs {
        let text = fetch_text(
            &http,
            format!("{base}/logs/registry/vkey"),
            "the registry log's verifier key",
        )
        .await?;
        saved.push((registry_vkey_file.clone(), text));
    }
    for (file, text) in &saved {
        std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    let keys = Keys::read(
        Some(&jwks_file),
        Some(&vkey_file),
        status_proofs.then_some(registry_vkey_file.as_path()),
    )?;

    let query = CHECK_BATCH.replace(
        "{statusProof}",
        if status_proofs { "statusProof" } else { "" },
    );
    let body = json!({
        "query": query,
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
    // One answer per bidder, in the order asked: a missing bidder would leave the file
    // without its evidence while every receipt present verifies.
    if let Some(problem) = answers_do_not_cover(&codes, results) {
        bail!("the registry's answer does not cover the bidders asked: {problem}");
    }

    let mut rows = Vec::new();
    let mut tally = Tally::default();
    for result in results {
        let field = |name: &str| result[name].as_str().unwrap_or_default().to_string();
        let (uscc, receipt_id, receipt) = (field("uscc"), field("receiptId"), field("receipt"));
        let extension = if tlog::is_tlog_proof(&receipt) {
            "tlog"
        } else {
            "jws"
        };
        let file = out.join(receipt_file_name(reference, &uscc, &receipt_id, extension));
        std::fs::write(&file, tlog::normalized(&receipt))
            .with_context(|| format!("filing {}", file.display()))?;
        let proof = result["statusProof"].as_str();
        if let Some(proof) = proof {
            let proof_file = status_proof_file(&file);
            std::fs::write(&proof_file, proof)
                .with_context(|| format!("filing {}", proof_file.display()))?;
        }
        // The receipt must be genuine and say what the answer said.
        let outcome = match verify_receipt(&receipt, &keys) {
            Outcome::Valid { by, payload } => match mismatch(&payload, result, reference, domain) {
                None => Outcome::Valid { by, payload },
                Some(field) => {
                    Outcome::Invalid(format!("the receipt's {field} differs from the answer"))
                }
            },
            other => other,
        };
        tally.count(&outcome);
        let status = if !status_proofs {
            String::new()
        } else if proof.is_none() {
            // The answer was read while the registry log was appending: the receipt
            // names its head, and that head has no checkpoint with a map (README).
            tally.unchecked += 1;
            "NONE: the registry gave no status proof for this answer".into()
        } else {
            status_verdict(proof, &outcome, &keys, &mut tally)
        };
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
            outcome.verdict(),
            status,
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
            "receipt",
            "status proof",
            "file",
        ],
        &rows,
    );
    let kept: Vec<String> = saved.iter().map(|(f, _)| f.display().to_string()).collect();
    println!("keys: {}", kept.join(" "));
    Ok(tally)
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

/// `<reference>_<uscc>_<receiptId>.<extension>`, with anything a file system may not
/// take in a name (separators, reserved punctuation, control and space characters) as `-`.
fn receipt_file_name(reference: &str, uscc: &str, receipt_id: &str, extension: &str) -> String {
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
        "{}_{}_{}.{extension}",
        clean(reference),
        clean(uscc),
        clean(receipt_id)
    )
}

/// The code as the registry writes it (trimmed, upper case), for comparing answers.
fn normalized_code(code: &str) -> String {
    code.trim().to_uppercase()
}

/// Why `results` is not one answer per code of `codes`, position by position; `None`
/// when it is.
fn answers_do_not_cover(codes: &[String], results: &[Value]) -> Option<String> {
    if results.len() != codes.len() {
        return Some(format!(
            "{} bidders asked, {} answers",
            codes.len(),
            results.len()
        ));
    }
    codes
        .iter()
        .zip(results)
        .enumerate()
        .find_map(|(i, (code, result))| {
            let answered = result["uscc"].as_str().unwrap_or_default();
            (answered != normalized_code(code)).then(|| {
                format!(
                    "bidder {} is {}, but its answer is for {answered:?}",
                    i + 1,
                    normalized_code(code)
                )
            })
        })
}

/// The first field where the signed payload and the answer (or the question) disagree.
fn mismatch(
    payload: &Value,
    answer: &Value,
    reference: &str,
    domain: &str,
) -> Option<&'static str> {
    for (name, expected) in [
        ("receiptId", answer["receiptId"].clone()),
        ("uscc", answer["uscc"].clone()),
        ("decision", answer["decision"].clone()),
        ("reference", Value::String(reference.to_string())),
        ("domain", Value::String(domain.to_string())),
    ] {
        if payload[name] != expected {
            return Some(name);
        }
    }
    None
}

/// `verify`: every file (or every `*.tlog` and `*.jws` of every folder), offline.
fn verify_files(
    jwks: Option<PathBuf>,
    vkey: Option<PathBuf>,
    registry_vkey: Option<PathBuf>,
    paths: &[PathBuf],
) -> anyhow::Result<Tally> {
    let keys = Keys::read(jwks.as_deref(), vkey.as_deref(), registry_vkey.as_deref())?;
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "tlog" || e == "jws"))
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
    let mut tally = Tally::default();
    for file in &files {
        let receipt =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let outcome = verify_receipt(&receipt, &keys);
        tally.count(&outcome);
        let proof_file = status_proof_file(file);
        let proof = if proof_file.is_file() {
            Some(
                std::fs::read_to_string(&proof_file)
                    .with_context(|| format!("reading {}", proof_file.display()))?,
            )
        } else {
            None
        };
        let status = status_verdict(proof.as_deref(), &outcome, &keys, &mut tally);
        let (uscc, decision) = match &outcome {
            Outcome::Valid { payload, .. } => (
                payload["uscc"].as_str().unwrap_or_default().to_string(),
                payload["decision"].as_str().unwrap_or_default().to_string(),
            ),
            _ => (String::new(), String::new()),
        };
        rows.push(vec![
            file.display().to_string(),
            uscc,
            decision,
            outcome.verdict(),
            status,
        ]);
    }
    print_table(
        &["file", "USCC", "decision", "receipt", "status proof"],
        &rows,
    );
    Ok(tally)
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
            receipt_file_name(
                "QY-ZB-2026/07 一标段",
                "91441802MA4W7K3Q8P",
                "0190-ab",
                "tlog"
            ),
            "QY-ZB-2026-07-一标段_91441802MA4W7K3Q8P_0190-ab.tlog"
        );
    }

    #[test]
    fn a_receipt_whose_key_was_not_given_is_not_checked() {
        let keys = Keys {
            jws: None,
            answer_log: None,
            registry_log: None,
        };
        for receipt in ["c2sp.org/tlog-proof@v1\nextra e30=\n", "e30.e30.AAAA"] {
            let outcome = verify_receipt(receipt, &keys);
            assert!(
                outcome.verdict().starts_with("NOT CHECKED"),
                "{}",
                outcome.verdict()
            );
            let mut tally = Tally::default();
            tally.count(&outcome);
            assert_eq!(tally.exit_code(), ExitCode::from(2));
            tally.count(&Outcome::Invalid("forged".into()));
            assert_eq!(tally.exit_code(), ExitCode::from(1));
        }
    }

    #[test]
    fn an_answer_must_cover_every_bidder_in_order() {
        let codes = vec![
            "91441802MA4X0001AB ".to_string(),
            "91441802ma4x0002cd".to_string(),
        ];
        let answer = |u: &str| json!({"uscc": u});
        let both = [answer("91441802MA4X0001AB"), answer("91441802MA4X0002CD")];
        assert_eq!(answers_do_not_cover(&codes, &both), None);
        let missing = answers_do_not_cover(&codes, &both[..1]).unwrap();
        assert!(missing.contains("2 bidders asked, 1 answers"), "{missing}");
        let swapped = [both[1].clone(), both[0].clone()];
        let problem = answers_do_not_cover(&codes, &swapped).unwrap();
        assert!(problem.contains("bidder 1"), "{problem}");
    }

    #[test]
    fn a_receipt_for_another_domain_or_reference_is_a_mismatch() {
        let answer = json!({"receiptId": "r1", "uscc": "U", "decision": "CLEAR"});
        let payload = |domain: &str, reference: &str| {
            json!({"receiptId": "r1", "uscc": "U", "decision": "CLEAR",
                   "reference": reference, "domain": domain})
        };
        let genuine = payload("PROCUREMENT", "QY-1");
        assert_eq!(mismatch(&genuine, &answer, "QY-1", "PROCUREMENT"), None);
        let other = payload("BIDDING", "QY-1");
        assert_eq!(
            mismatch(&other, &answer, "QY-1", "PROCUREMENT"),
            Some("domain")
        );
        assert_eq!(
            mismatch(&genuine, &answer, "QY-2", "PROCUREMENT"),
            Some("reference")
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
