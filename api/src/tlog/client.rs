//! `credit-registry verify-log`: an auditor's check of a log over HTTP, with nothing but
//! public data. It verifies the checkpoint's signature, recomputes the tree from the
//! log's level-0 tiles (so every hash it serves is accounted for), checks that the log
//! extends an earlier checkpoint (a consistency proof, RFC 6962 §2.1.2), and for the
//! public registry log checks each entry against its leaf hash and replays the entries
//! into the list, which must equal `/exports/public-list.jsonl`.

use super::note::{LogVerifier, VerifiedCheckpoint};
use super::{
    HashMemo, TILE_WIDTH, TilePath, hash_b64, parse_entry_bundle, parse_hash_b64, parse_tile,
    prove_consistency, record_hash, stored_hashes_for_leaves, verify_consistency,
};
use crate::domain::decision::{Decision, bears_on_answer, decide};
use crate::domain::measures::{Domain, MeasureEffect};
use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct VerifyLogArgs {
    pub url: String,
    pub from_checkpoint: Option<PathBuf>,
    pub vkey: Option<PathBuf>,
    pub save_checkpoint: Option<PathBuf>,
    /// Witnesses' verifier keys (files of C2SP cosignature/v1 vkeys).
    pub witness_vkeys: Vec<PathBuf>,
    /// Cosignatures of those witnesses the checkpoint must carry.
    pub min_cosignatures: usize,
    /// Replay only the registry log's first entries (the size a receipt's `registryLog`
    /// names) instead of all of them; the public list is then not compared.
    pub at_size: Option<u64>,
    /// The instant the replayed list is in force at (default now; with `at_size`, a
    /// receipt's `asOf`).
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Where to write the replayed list (JSONL, one listing in force per line).
    pub list_out: Option<PathBuf>,
}

/// What [`check_log`] checks, as texts rather than files (the witness keeps them in its
/// state file).
#[derive(Clone, Default)]
pub struct LogCheck {
    /// The log's URL (`…/logs/registry`).
    pub url: String,
    /// The log's verifier key; `None`: fetched from `<url>/vkey` (trust on first use).
    pub vkey: Option<String>,
    /// An earlier checkpoint (its name in the report, its text) the log must extend.
    pub earlier: Option<(String, String)>,
    /// Replay the registry log's entries into the public list and compare.
    pub replay: bool,
    /// Recompute the registry log's status map from its entries and compare it with the
    /// checkpoint's (also done by `replay`).
    pub status_map: bool,
    /// Which state the replay rebuilds ([`VerifyLogArgs::at_size`], [`VerifyLogArgs::as_of`]).
    pub replay_at: ReplayAt,
    pub witnesses: Vec<super::cosignature::WitnessVerifier>,
    pub min_cosignatures: usize,
}

/// What was checked, and what did not hold.
#[derive(Debug, Default)]
pub struct Report {
    pub checked: Vec<String>,
    pub problems: Vec<String>,
    /// The registry log's list as replayed (its listings in force, by id), when replayed.
    pub replayed: Vec<serde_json::Value>,
    /// Why the list could not be rebuilt at the instant asked (an instant before the
    /// entries replayed): a problem for `verify-log`, a limit for `verify-receipt`.
    pub not_rebuilt: Option<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.checked {
            out.push_str(&format!("ok: {line}\n"));
        }
        for line in &self.problems {
            out.push_str(&format!("PROBLEM: {line}\n"));
        }
        out.push_str(if self.ok() {
            "VALID: the log holds\n"
        } else {
            "INVALID: the log does not hold\n"
        });
        out
    }
}

/// The most a hash tile can hold: 256 hashes of 32 bytes (C2SP tlog-tiles).
pub const MAX_TILE_BYTES: usize = TILE_WIDTH as usize * 32;
/// The most an entry bundle can hold: 256 entries, each a big-endian uint16 length and
/// at most 65,535 bytes (the tlog-tiles encoding cannot carry a longer entry), so about
/// 16 MiB. A registry entry is a few kilobytes; the bound is the format's, not ours.
pub const MAX_ENTRY_BUNDLE_BYTES: usize = TILE_WIDTH as usize * (2 + u16::MAX as usize);
/// A checkpoint (a few hundred bytes, plus one line per cosignature) or a verifier key:
/// the registry takes cosigned notes of at most 16 KiB; 1 MiB leaves room for any honest
/// log and none for a hostile one to exhaust memory.
pub const MAX_NOTE_BYTES: usize = 1024 * 1024;
/// The public list (`/exports/public-list.jsonl`), compared by `verify-log`: about 1 KB
/// per listing in force, so 1 GiB is a list of about a million listings.
const MAX_PUBLIC_LIST_BYTES: usize = 1024 * 1024 * 1024;
/// Leaf hashes reserved before the tiles arrive: at most a million (32 MiB). The size is
/// the log's claim, and a checkpoint of size 2^40 would otherwise ask for 32 TiB at once
/// (an abort, not a report); past this the vector grows only as tiles are served.
const MAX_RESERVED_LEAVES: u64 = 1 << 20;

/// A body longer than its cap: the log serves what no log following the specification
/// serves (or tries to exhaust the verifier's memory), so reading stopped at the cap.
#[derive(Debug, thiserror::Error)]
#[error("{url} answered more than {cap} bytes, more than {what} can hold")]
pub struct Oversized {
    url: String,
    cap: usize,
    what: &'static str,
}

/// Reads a body of at most `cap` bytes: refused by its declared length, or stopped while
/// reading one that runs past it (a chunked body declares none).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    url: &str,
    cap: usize,
    what: &'static str,
) -> anyhow::Result<Vec<u8>> {
    let oversized = || Oversized {
        url: url.to_string(),
        cap,
        what,
    };
    if resp
        .content_length()
        .is_some_and(|declared| declared > cap as u64)
    {
        return Err(oversized().into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .with_context(|| format!("reading {url}"))?
    {
        if body.len() + chunk.len() > cap {
            return Err(oversized().into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A body over its cap is a problem of the log, reported with the others (`verify-log`
/// exit status 1, the witness refuses); other failures (unreachable, a 404) stay errors.
fn oversized_as_problem<T>(
    report: &mut Report,
    fetched: anyhow::Result<T>,
) -> anyhow::Result<Option<T>> {
    match fetched {
        Ok(value) => Ok(Some(value)),
        Err(e) => match e.downcast_ref::<Oversized>() {
            Some(oversized) => {
                report.problems.push(oversized.to_string());
                Ok(None)
            }
            None => Err(e),
        },
    }
}

struct Fetcher {
    client: reqwest::Client,
    base: String,
}

impl Fetcher {
    async fn bytes(&self, url: &str, cap: usize, what: &'static str) -> anyhow::Result<Vec<u8>> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .with_context(|| format!("fetching {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("{url} answered {status}");
        }
        read_capped(resp, url, cap, what).await
    }

    async fn log(&self, path: &str, cap: usize, what: &'static str) -> anyhow::Result<Vec<u8>> {
        self.bytes(&format!("{}/{path}", self.base), cap, what)
            .await
    }

    async fn text(&self, path: &str, what: &'static str) -> anyhow::Result<String> {
        String::from_utf8(self.log(path, MAX_NOTE_BYTES, what).await?)
            .context("the answer is not UTF-8 text")
    }
}

pub async fn verify_log(args: &VerifyLogArgs) -> anyhow::Result<Report> {
    let vkey = match &args.vkey {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the verifier key {}", path.display()))?,
        ),
        None => None,
    };
    let earlier = match &args.from_checkpoint {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the earlier checkpoint {}", path.display()))?,
        )),
        None => None,
    };
    let witnesses = read_witness_vkeys(&args.witness_vkeys)?;
    let check = LogCheck {
        url: args.url.clone(),
        vkey,
        earlier,
        replay: true,
        status_map: true,
        replay_at: ReplayAt {
            size: args.at_size,
            as_of: args.as_of,
        },
        witnesses,
        min_cosignatures: args.min_cosignatures,
    };
    let (mut report, checkpoint) = check_log(&check).await?;
    if let Some(why) = report.not_rebuilt.take() {
        report.problems.push(why);
    }
    if let Some(path) = &args.list_out
        && report.ok()
    {
        let mut out = Vec::new();
        for listing in &report.replayed {
            serde_json::to_writer(&mut out, listing)?;
            out.push(b'\n');
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
        report.checked.push(format!(
            "the replayed list ({} listings) written to {}",
            report.replayed.len(),
            path.display()
        ));
    }
    if let (Some(path), Some(checkpoint)) = (&args.save_checkpoint, checkpoint)
        && report.ok()
    {
        std::fs::write(path, &checkpoint.note)
            .with_context(|| format!("writing {}", path.display()))?;
        report
            .checked
            .push(format!("checkpoint saved to {}", path.display()));
    }
    Ok(report)
}

/// Parses witnesses' verifier-key files (`--witness-vkey`).
pub fn read_witness_vkeys(
    paths: &[PathBuf],
) -> anyhow::Result<Vec<super::cosignature::WitnessVerifier>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the witness key {}", path.display()))?;
            super::cosignature::WitnessVerifier::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        })
        .collect()
}

/// Counts the checkpoint's valid cosignatures of `witnesses` into the report: fewer
/// than `min` is a problem.
pub fn check_cosignatures(
    report: &mut Report,
    note: &str,
    witnesses: &[super::cosignature::WitnessVerifier],
    min: usize,
) {
    use super::cosignature::{CosignatureError, verify_cosignatures};
    if witnesses.is_empty() && min == 0 {
        return;
    }
    let found = match verify_cosignatures(note, witnesses) {
        Ok(found) => found,
        Err(CosignatureError::NoKnownWitness) => Vec::new(),
        Err(e) => {
            report
                .problems
                .push(format!("the checkpoint's cosignatures: {e}"));
            return;
        }
    };
    let names: Vec<&str> = found.iter().map(|c| c.witness.as_str()).collect();
    if found.len() < min {
        report.problems.push(format!(
            "the checkpoint carries {} valid cosignature(s) of the given witnesses ({}), fewer than the {min} required",
            found.len(),
            names.join(", ")
        ));
    } else {
        report.checked.push(format!(
            "the checkpoint carries {} valid cosignature(s) of the given witnesses: {}",
            found.len(),
            names.join(", ")
        ));
    }
}

/// `verify-receipt --witness-vkey … --min-cosignatures N`: the receipt's checkpoint must
/// carry `min` valid cosignatures of `witnesses` (its proof is verified separately).
pub fn receipt_cosigned(
    receipt: &str,
    witnesses: &[super::cosignature::WitnessVerifier],
    min: usize,
) -> Result<(), String> {
    if min == 0 {
        return Ok(());
    }
    if !super::proof::is_tlog_proof(receipt) {
        return Err("a JWS receipt carries no checkpoint, so no cosignature".into());
    }
    // As `verify_any` reads it: pasted text may have lost its final newline or gained CRs.
    let text = format!("{}\n", receipt.trim().replace("\r\n", "\n"));
    let proof = super::proof::TlogProof::parse(&text).map_err(|e| e.to_string())?;
    let mut report = Report::default();
    check_cosignatures(&mut report, &proof.checkpoint, witnesses, min);
    if report.ok() {
        Ok(())
    } else {
        Err(report.problems.join("; "))
    }
}

/// Checks a log as [`verify_log`] does; also returns the verified checkpoint.
pub async fn check_log(check: &LogCheck) -> anyhow::Result<(Report, Option<VerifiedCheckpoint>)> {
    let (report, verified) = check_log_tree(check).await?;
    Ok((report, verified.map(|(checkpoint, _)| checkpoint)))
}

/// A receipt's answer, to be recomputed from the registry log (`verify-receipt
/// --recompute`).
#[derive(Clone, Debug)]
pub struct ReceiptAnswer {
    pub uscc: String,
    pub domain: Domain,
    pub as_of: chrono::DateTime<chrono::Utc>,
    pub decision: Decision,
    pub hit_listing_ids: Vec<i64>,
}

impl From<&crate::service::receipts::ReceiptPayload> for ReceiptAnswer {
    fn from(p: &crate::service::receipts::ReceiptPayload) -> Self {
        Self {
            uscc: p.uscc.clone(),
            domain: p.domain,
            as_of: p.as_of,
            decision: p.decision,
            hit_listing_ids: p.hit_listing_ids.clone(),
        }
    }
}

/// `verify-receipt --registry-url`: the registry log's tree head a receipt names (the
/// state of the list its answer was read from, `size` entries with root `root`) must be
/// a head of the public registry log: the root of its first `size` entries, recomputed
/// from the tiles under the log's verified checkpoint, which therefore extends it.
///
/// With `answer` (`--recompute`), those entries are also replayed into the list at the
/// receipt's `asOf`, and the decision and hits that list gives for the receipt's code and
/// domain must be the receipt's: the answer follows from public data alone. This fetches
/// every entry bundle of the log.
pub async fn check_registry_head(
    url: &str,
    vkey: Option<String>,
    size: u64,
    root: &str,
    answer: Option<&ReceiptAnswer>,
) -> anyhow::Result<Report> {
    check_registry_head_witnessed(url, vkey, size, root, answer, &[], 0).await
}

/// [`check_registry_head`], with the registry log's checkpoint required to carry
/// `min_cosignatures` valid cosignatures of `witnesses` (`--registry-min-cosignatures`).
/// Without them, a registry that serves one verifier a forked log (one where a listing
/// never appears) passes every check of its own making; a witness that follows the
/// real log would not have cosigned the fork.
pub async fn check_registry_head_witnessed(
    url: &str,
    vkey: Option<String>,
    size: u64,
    root: &str,
    answer: Option<&ReceiptAnswer>,
    witnesses: &[super::cosignature::WitnessVerifier],
    min_cosignatures: usize,
) -> anyhow::Result<Report> {
    let check = LogCheck {
        url: url.to_string(),
        vkey,
        replay: answer.is_some(),
        replay_at: ReplayAt {
            size: Some(size),
            as_of: answer.map(|a| a.as_of),
        },
        witnesses: witnesses.to_vec(),
        min_cosignatures,
        ..Default::default()
    };
    let (mut report, verified) = check_log_tree(&check).await?;
    let Some((checkpoint, memo)) = verified else {
        return Ok(report);
    };
    let named = match parse_hash_b64(root) {
        Ok(named) => named,
        Err(e) => {
            report
                .problems
                .push(format!("the receipt's registry log root: {e}"));
            return Ok(report);
        }
    };
    if size > checkpoint.size {
        report.problems.push(format!(
            "the receipt names a registry log of {size} entries; the log's checkpoint has {}",
            checkpoint.size
        ));
        return Ok(report);
    }
    let at_size = super::tree_hash(size, &memo).map_err(|e| anyhow::anyhow!("{e}"))?;
    if at_size == named {
        report.checked.push(format!(
            "the receipt's registry log head (size {size}, root {root}) is the log's first {size} entries, which the checkpoint of size {} extends",
            checkpoint.size
        ));
    } else {
        report.problems.push(format!(
            "the receipt names root {root} for the registry log's first {size} entries; the log's are {}",
            hash_b64(&at_size)
        ));
        return Ok(report);
    }
    if let Some(answer) = answer
        && report.ok()
    {
        recompute_into(&mut report, answer);
    }
    Ok(report)
}

/// Compares the receipt's answer with what the replayed list gives for its code and
/// domain (or says why it cannot be recomputed).
fn recompute_into(report: &mut Report, answer: &ReceiptAnswer) {
    let domain = crate::domain::enum_name(answer.domain);
    if let Some(why) = report.not_rebuilt.take() {
        report.checked.push(format!("answer not recomputed: {why}"));
        return;
    }
    match answer_from_list(&report.replayed, &answer.uscc, answer.domain) {
        Err(why) => report
            .checked
            .push(format!("answer not recomputed: {why}")),
        Ok((decision, hits)) if decision == answer.decision && hits == answer.hit_listing_ids => {
            report.checked.push(format!(
                "the list those entries replay to at {} answers {} for {} in {domain}, hits {hits:?}: the receipt's answer",
                answer.as_of.to_rfc3339(),
                crate::domain::enum_name(decision),
                answer.uscc,
            ))
        }
        Ok((decision, hits)) => report.problems.push(format!(
            "the list those entries replay to at {} answers {} for {} in {domain} with hits {hits:?}; the receipt says {} with hits {:?}",
            answer.as_of.to_rfc3339(),
            crate::domain::enum_name(decision),
            answer.uscc,
            crate::domain::enum_name(answer.decision),
            answer.hit_listing_ids,
        )),
    }
}

/// What a replayed list (listings in force, each with its logged `measures`) answers for
/// `uscc` in `domain`: the decision and the hit listings' ids, ascending, by the rules of
/// the registry's own checks (`domain::decision`). `Err` when the list cannot say: a
/// listing of the code was logged before entries carried their measures' effects.
pub fn answer_from_list(
    list: &[serde_json::Value],
    uscc: &str,
    domain: Domain,
) -> Result<(Decision, Vec<i64>), String> {
    let mut effects = Vec::new();
    let mut hits = BTreeSet::new();
    for listing in list.iter().filter(|l| l["uscc"].as_str() == Some(uscc)) {
        let id = listing["id"]
            .as_str()
            .and_then(|id| id.parse::<i64>().ok())
            .ok_or_else(|| format!("a listing of {uscc} has no numeric id: {listing}"))?;
        let measures = listing["measures"].as_array().ok_or_else(|| {
            format!(
                "listing {id} was logged before entries carried their measures' domain and effect"
            )
        })?;
        for m in measures {
            let of: MeasureEffect = serde_json::from_value(m.clone())
                .map_err(|e| format!("a measure of listing {id}: {e}"))?;
            if of.domain == domain && bears_on_answer(of.effect) {
                effects.push(of.effect);
                hits.insert(id);
            }
        }
    }
    Ok((decide(effects), hits.into_iter().collect()))
}

/// [`check_log`], also returning every stored hash of the verified tree.
async fn check_log_tree(
    check: &LogCheck,
) -> anyhow::Result<(Report, Option<(VerifiedCheckpoint, HashMemo)>)> {
    let base = check.url.trim_end_matches('/').to_string();
    let fetch = Fetcher {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: base.clone(),
    };
    let mut report = Report::default();
    let vkey = match &check.vkey {
        Some(text) => text.clone(),
        None => {
            let text = fetch.text("vkey", "a verifier key").await?;
            report.checked.push(format!(
                "verifier key fetched from {base}/vkey (trust on first use: save it and pass --vkey from now on): {}",
                text.trim()
            ));
            text
        }
    };
    let verifier = LogVerifier::parse(&vkey).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(note) =
        oversized_as_problem(&mut report, fetch.text("checkpoint", "a checkpoint").await)?
    else {
        return Ok((report, None));
    };
    let checkpoint = match verifier.verify_checkpoint(&note) {
        Ok(c) => c,
        Err(e) => {
            report.problems.push(format!("the checkpoint: {e}"));
            return Ok((report, None));
        }
    };
    report.checked.push(format!(
        "checkpoint of {} signed by {}: size {}, root {}",
        checkpoint.origin,
        verifier.key_label(),
        checkpoint.size,
        hash_b64(&checkpoint.root)
    ));
    check_cosignatures(
        &mut report,
        &checkpoint.note,
        &check.witnesses,
        check.min_cosignatures,
    );

    // Every leaf hash, from the level-0 tiles; the tree they make must be the checkpoint's.
    let mut leaves = Vec::with_capacity(
        usize::try_from(checkpoint.size.min(MAX_RESERVED_LEAVES)).unwrap_or_default(),
    );
    let tiles = checkpoint.size.div_ceil(TILE_WIDTH);
    for n in 0..tiles {
        let width = (checkpoint.size - n * TILE_WIDTH).min(TILE_WIDTH);
        let tile = TilePath {
            level: Some(0),
            index: n,
            width,
        };
        let fetched = fetch
            .log(
                &format!("tile/{}", tile.path()),
                MAX_TILE_BYTES,
                "a hash tile",
            )
            .await;
        let Some(bytes) = oversized_as_problem(&mut report, fetched)? else {
            return Ok((report, None));
        };
        let hashes =
            parse_tile(&bytes).map_err(|e| anyhow::anyhow!("tile {}: {e}", tile.path()))?;
        if hashes.len() as u64 != width {
            report.problems.push(format!(
                "tile {} holds {} hashes, not {width}",
                tile.path(),
                hashes.len()
            ));
            return Ok((report, None));
        }
        leaves.extend(hashes);
    }
    let mut memo = HashMemo::default();
    let (_, root) =
        stored_hashes_for_leaves(0, &leaves, &mut memo).map_err(|e| anyhow::anyhow!("{e}"))?;
    if root != checkpoint.root {
        report.problems.push(format!(
            "the tiles make a tree with root {}, not the checkpoint's {}",
            hash_b64(&root),
            hash_b64(&checkpoint.root)
        ));
        return Ok((report, None));
    }
    report.checked.push(format!(
        "{} leaf hashes from {tiles} tiles make the checkpoint's root",
        leaves.len()
    ));

    if let Some((name, old_note)) = &check.earlier {
        match verifier.verify_checkpoint(old_note) {
            Err(e) => report
                .problems
                .push(format!("the earlier checkpoint {name}: {e}")),
            Ok(old) => consistency(&mut report, &old, &checkpoint, &memo),
        }
    }

    if (check.replay || check.status_map) && checkpoint.origin.ends_with("/registry") {
        let at = check.replay_at;
        replay_registry(
            &fetch,
            &mut report,
            &checkpoint,
            &leaves,
            &memo,
            at,
            check.replay,
        )
        .await?;
    }
    Ok((report, Some((checkpoint, memo))))
}

/// The newer checkpoint must extend the older one.
fn consistency(
    report: &mut Report,
    old: &VerifiedCheckpoint,
    new: &VerifiedCheckpoint,
    memo: &HashMemo,
) {
    if old.size > new.size {
        report.problems.push(format!(
            "the log shrank: an earlier checkpoint has {} entries, the current one {}",
            old.size, new.size
        ));
        return;
    }
    let proof = if old.size == 0 || old.size == new.size {
        Vec::new()
    } else {
        match prove_consistency(new.size, old.size, memo) {
            Ok(p) => p,
            Err(e) => {
                report.problems.push(format!("no consistency proof: {e}"));
                return;
            }
        }
    };
    match verify_consistency(&proof, new.size, new.root, old.size, old.root) {
        Ok(()) => report.checked.push(format!(
            "the log of size {} extends the earlier checkpoint of size {} (consistency proof of {} hashes)",
            new.size,
            old.size,
            proof.len()
        )),
        Err(_) => report.problems.push(format!(
            "the log rewrote history: its first {} entries are not those of the earlier checkpoint",
            old.size
        )),
    }
}

/// An RFC 3339 instant of an entry's field, if it holds one.
fn instant(field: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    field
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A public listing's id and code, as the replayed list and the public list both name it.
fn id_and_code(listing: &serde_json::Value) -> (String, String) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    (text(&listing["id"]), text(&listing["uscc"]))
}

/// The listings in force at `as_of` from the latest entry of each listing (each with its
/// logged measures), or why the list cannot be rebuilt at that instant (`Ok(Err)`): an
/// entry says whether its listing was in force when it was logged, not before, so the
/// list can be rebuilt at an instant no earlier than the last of those entries.
pub fn list_at<'a>(
    latest: impl IntoIterator<Item = &'a serde_json::Value>,
    as_of: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Result<Vec<serde_json::Value>, String>> {
    let latest: Vec<&serde_json::Value> = latest.into_iter().collect();
    let mut last_logged = None;
    for e in &latest {
        let t = instant(&e["occurredAt"])
            .context("an entry's occurredAt is not an RFC 3339 instant")?;
        last_logged = last_logged.max(Some(t));
    }
    if let Some(last) = last_logged
        && as_of < last
    {
        return Ok(Err(format!(
            "the list cannot be rebuilt at {as_of}: the entries replayed run to {last}, and an entry says whether its listing was in force when it was logged, not before"
        )));
    }
    Ok(Ok(latest
        .into_iter()
        .filter(|e| {
            // In force when last recorded, and its period has not run out by `as_of` (an
            // expiry the registry has not logged yet).
            e["inForce"].as_bool() == Some(true)
                && instant(&e["listing"]["expires_at"]).is_none_or(|t| t > as_of)
        })
        .map(|e| {
            let mut listing = e["listing"].clone();
            if let serde_json::Value::Object(fields) = &mut listing {
                fields.insert("measureCodes".into(), e["measureCodes"].clone());
                // Entries logged before the registry fixed a measure's domain and effect
                // once used do not carry them.
                if let Some(measures) = e.get("measures") {
                    fields.insert("measures".into(), measures.clone());
                }
            }
            listing
        })
        .collect()))
}

/// `verify-receipt --status-proof`: the answer of a receipt (naming registry-log head
/// `size`/`root`) follows from its status proof, offline, with the registry log's
/// verifier key alone: the checkpoint is the registry log's, of that head, and carries
/// a map root; the proof's path leads to it; and the code's entries give the receipt's
/// decision and hits at its `asOf`. `Ok` says what was checked, and whether the answer
/// was recomputed ([`StatusCheck::recomputed`]); `Err` is why the proof does not hold.
pub fn check_status_proof(
    proof_text: &str,
    registry_vkey: &str,
    size: u64,
    root: &str,
    answer: &ReceiptAnswer,
) -> Result<StatusCheck, String> {
    let proof = super::status_map::StatusProof::parse(proof_text).map_err(|e| e.to_string())?;
    let verifier = super::note::LogVerifier::parse(registry_vkey)
        .map_err(|e| format!("the registry log's verifier key: {e}"))?;
    let checkpoint = verifier
        .verify_checkpoint(&proof.checkpoint)
        .map_err(|e| format!("the status proof's checkpoint: {e}"))?;
    let text = super::note::note_text(&proof.checkpoint).unwrap_or_default();
    let map_root = super::status_map::root_in_checkpoint(text)
        .map_err(|e| e.to_string())?
        .ok_or("the status proof's checkpoint carries no status map")?;
    if checkpoint.size != size || hash_b64(&checkpoint.root) != root {
        return Err(format!(
            "the status proof is for the registry log's checkpoint of size {} (root {}); the receipt names size {size} (root {root})",
            checkpoint.size,
            hash_b64(&checkpoint.root)
        ));
    }
    if proof.uscc != answer.uscc {
        return Err(format!(
            "the status proof is for {}; the receipt is for {}",
            proof.uscc, answer.uscc
        ));
    }
    let proven = proof.verify_path(&map_root).map_err(|e| e.to_string())?;
    let not_recomputed = |why: String| StatusCheck {
        recomputed: false,
        report: format!("status proof holds; answer not recomputed: {why}"),
    };
    let list = match list_at(&proven.entries, answer.as_of).map_err(|e| format!("{e:#}"))? {
        Ok(list) => list,
        Err(why) => return Ok(not_recomputed(why)),
    };
    let domain = crate::domain::enum_name(answer.domain);
    match answer_from_list(&list, &answer.uscc, answer.domain) {
        Err(why) => Ok(not_recomputed(why)),
        Ok((decision, hits)) if decision == answer.decision && hits == answer.hit_listing_ids => {
            Ok(StatusCheck {
                recomputed: true,
                report: format!(
                    "the status map of the registry log's checkpoint of size {size} holds {} entries for {}; at {} they answer {} in {domain}, hits {hits:?}: the receipt's answer",
                    proven.entries.len(),
                    answer.uscc,
                    answer.as_of.to_rfc3339(),
                    crate::domain::enum_name(decision),
                ),
            })
        }
        Ok((decision, hits)) => Err(format!(
            "the status map's entries for {} answer {} in {domain} with hits {hits:?} at {}; the receipt says {} with hits {:?}",
            answer.uscc,
            crate::domain::enum_name(decision),
            answer.as_of.to_rfc3339(),
            crate::domain::enum_name(answer.decision),
            answer.hit_listing_ids,
        )),
    }
}

/// What a status proof that holds showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCheck {
    /// Whether the code's entries gave the receipt's answer at its `asOf`. False when
    /// the proof holds but says nothing about that instant (an `asOf` before the code's
    /// last entry: an entry says whether its listing was in force when it was logged,
    /// not before), so the answer is neither confirmed nor refuted.
    pub recomputed: bool,
    /// What was checked, or why the answer was not recomputed.
    pub report: String,
}

/// Which state of the registry log a replay rebuilds: the first `size` entries (default
/// all) at instant `as_of` (default now).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayAt {
    pub size: Option<u64>,
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// Each entry bundle against the leaf hashes; then the list replayed from the entries
/// (the first `at.size` of them) and, for the whole log now, compared with the public
/// list the registry serves.
async fn replay_registry(
    fetch: &Fetcher,
    report: &mut Report,
    checkpoint: &VerifiedCheckpoint,
    leaves: &[super::Hash],
    memo: &HashMemo,
    at: ReplayAt,
    replay: bool,
) -> anyhow::Result<()> {
    let upto = at.size.unwrap_or(checkpoint.size);
    if upto > checkpoint.size {
        report.problems.push(format!(
            "asked to replay {upto} entries; the log's checkpoint has {}",
            checkpoint.size
        ));
        return Ok(());
    }
    let mut latest: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    // The status map of every entry, to compare with the checkpoint's map root.
    let mut map = super::status_map::StatusMap::default();
    let bundles = checkpoint.size.div_ceil(TILE_WIDTH);
    for n in 0..bundles {
        let width = (checkpoint.size - n * TILE_WIDTH).min(TILE_WIDTH);
        let tile = TilePath {
            level: None,
            index: n,
            width,
        };
        let fetched = fetch
            .log(
                &format!("tile/{}", tile.path()),
                MAX_ENTRY_BUNDLE_BYTES,
                "an entry bundle",
            )
            .await;
        let Some(bytes) = oversized_as_problem(report, fetched)? else {
            return Ok(());
        };
        let entries =
            parse_entry_bundle(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", tile.path()))?;
        if entries.len() as u64 != width {
            report.problems.push(format!(
                "entry bundle {} holds {} entries, not {width}",
                tile.path(),
                entries.len()
            ));
            return Ok(());
        }
        for (i, entry) in entries.iter().enumerate() {
            let index = (n * TILE_WIDTH) as usize + i;
            if record_hash(entry) != leaves[index] {
                report
                    .problems
                    .push(format!("entry {index} does not hash to its leaf"));
                return Ok(());
            }
            if let Err(e) = map.apply(index as u64, entry) {
                report.problems.push(format!("the status map: {e}"));
                return Ok(());
            }
            if index as u64 >= upto {
                continue;
            }
            let event: serde_json::Value = serde_json::from_slice(entry)
                .with_context(|| format!("entry {index} is not JSON"))?;
            let id = event["listing"]["id"]
                .as_str()
                .with_context(|| format!("entry {index} names no listing"))?
                .to_string();
            latest.insert(id, event);
        }
    }
    report.checked.push(format!(
        "{} entries match their leaf hashes",
        checkpoint.size
    ));
    let text = super::note::note_text(&checkpoint.note).unwrap_or_default();
    let map_root = map.root();
    match super::status_map::root_in_checkpoint(text) {
        Ok(Some(root)) if root == map_root => report.checked.push(format!(
            "the checkpoint's status map root {} is the map of its {} entries",
            hash_b64(&root),
            checkpoint.size
        )),
        Ok(Some(root)) => report.problems.push(format!(
            "the checkpoint's status map root {} is not the map of its entries ({})",
            hash_b64(&root),
            hash_b64(&map_root)
        )),
        Ok(None) => report.checked.push(
            "the checkpoint carries no status map (signed before the registry kept one)".into(),
        ),
        Err(e) => report
            .problems
            .push(format!("the checkpoint's status map line: {e}")),
    }
    if !replay {
        return Ok(());
    }
    let as_of = at.as_of.unwrap_or_else(chrono::Utc::now);
    match list_at(latest.values(), as_of)? {
        Ok(list) => report.replayed = list,
        Err(why) => {
            report.not_rebuilt = Some(why);
            return Ok(());
        }
    }
    if upto < checkpoint.size || at.as_of.is_some() {
        let root = super::tree_hash(upto, memo).map_err(|e| anyhow::anyhow!("{e}"))?;
        report.checked.push(format!(
            "the log's first {upto} entries (root {}) replayed at {as_of}: {} listings in force",
            hash_b64(&root),
            report.replayed.len()
        ));
        return Ok(());
    }
    let replayed: BTreeMap<String, String> = report.replayed.iter().map(id_and_code).collect();
    let Some(root) = fetch.base.strip_suffix("/logs/registry") else {
        report.problems.push(
            "the registry log's URL does not end in /logs/registry: no public list to compare"
                .into(),
        );
        return Ok(());
    };
    let list = fetch
        .bytes(
            &format!("{root}/exports/public-list.jsonl"),
            MAX_PUBLIC_LIST_BYTES,
            "the public list this verifier reads",
        )
        .await?;
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8(list)
        .context("the public list is not UTF-8")?
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let row: serde_json::Value =
            serde_json::from_str(line).context("a public-list line is not JSON")?;
        let (id, code) = id_and_code(&row);
        served.insert(id, code);
    }
    if replayed == served {
        report.checked.push(format!(
            "the log replayed gives the public list: {} listings in force",
            served.len()
        ));
    } else {
        let r: BTreeSet<_> = replayed.keys().collect();
        let s: BTreeSet<_> = served.keys().collect();
        report.problems.push(format!(
            "the log replayed is not the public list: only in the log {:?}, only in the list {:?}",
            r.difference(&s).collect::<Vec<_>>(),
            s.difference(&r).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hostile log on loopback: each request (one per connection) is answered with the
    /// raw response its path maps to, or 404. Returns the base URL.
    fn hostile_log(routes: Vec<(String, Vec<u8>)>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or_default().to_string();
                let answer = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_else(|| {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    });
                // The client may stop reading at its cap and close: not an error here.
                let _ = stream.write_all(&answer);
            }
        });
        base
    }

    fn ok(headers: &str, body: &[u8]) -> Vec<u8> {
        let mut answer =
            format!("HTTP/1.1 200 OK\r\n{headers}connection: close\r\n\r\n").into_bytes();
        answer.extend_from_slice(body);
        answer
    }

    fn sized(body: &[u8]) -> Vec<u8> {
        ok(&format!("content-length: {}\r\n", body.len()), body)
    }

    /// A checkpoint of size 2^40 reserved 32 TiB of leaf hashes before any tile came (an
    /// abort), and a tile body was read whole however long: now at most a million hashes
    /// are reserved, and a hash tile of more than 8,192 bytes, sent without a declared
    /// length, is a problem of the log.
    #[tokio::test]
    async fn a_huge_size_and_an_endless_tile_are_problems_not_aborts() {
        let key = super::super::note::LogKey::new(
            "hostile.test/logs/answers",
            &ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        )
        .unwrap();
        let note = key
            .sign_checkpoint(1 << 40, &super::super::Hash([1; 32]))
            .unwrap();
        let base = hostile_log(vec![
            ("/logs/answers/checkpoint".into(), sized(note.as_bytes())),
            // No content-length: the body runs until the connection closes.
            (
                "/logs/answers/tile/0/000".into(),
                ok("", &vec![0u8; MAX_TILE_BYTES + 32]),
            ),
        ]);
        let check = LogCheck {
            url: format!("{base}/logs/answers"),
            vkey: Some(key.vkey()),
            ..Default::default()
        };
        let (report, checkpoint) = check_log(&check).await.unwrap();
        assert!(checkpoint.is_none());
        assert!(!report.ok(), "{}", report.text());
        assert!(
            report
                .text()
                .contains("more than 8192 bytes, more than a hash tile can hold"),
            "{}",
            report.text()
        );
    }

    /// An entry bundle that declares more than 256 entries of the longest length can
    /// hold is refused before its body is read; so is an oversized checkpoint.
    #[tokio::test]
    async fn an_oversized_entry_bundle_or_checkpoint_is_a_problem() {
        let key = super::super::note::LogKey::new(
            "hostile.test/logs/registry",
            &ed25519_dalek::SigningKey::from_bytes(&[6; 32]),
        )
        .unwrap();
        let leaf = record_hash(b"{}");
        // A tree of one leaf: its root is the leaf's hash.
        let note = key.sign_checkpoint(1, &leaf).unwrap();
        let declared = format!("content-length: {}\r\n", MAX_ENTRY_BUNDLE_BYTES + 1);
        let base = hostile_log(vec![
            ("/logs/registry/checkpoint".into(), sized(note.as_bytes())),
            ("/logs/registry/tile/0/000.p/1".into(), sized(&leaf.0)),
            (
                "/logs/registry/tile/entries/000.p/1".into(),
                ok(&declared, b"\x00\x02{}"),
            ),
        ]);
        let check = LogCheck {
            url: format!("{base}/logs/registry"),
            vkey: Some(key.vkey()),
            status_map: true,
            ..Default::default()
        };
        let (report, _) = check_log(&check).await.unwrap();
        assert!(
            report.text().contains(&format!(
                "more than {MAX_ENTRY_BUNDLE_BYTES} bytes, more than an entry bundle can hold"
            )),
            "{}",
            report.text()
        );

        let huge = format!("content-length: {}\r\n", MAX_NOTE_BYTES + 1);
        let base = hostile_log(vec![(
            "/logs/registry/checkpoint".into(),
            ok(&huge, note.as_bytes()),
        )]);
        let (report, checkpoint) = check_log(&LogCheck {
            url: format!("{base}/logs/registry"),
            ..check
        })
        .await
        .unwrap();
        assert!(checkpoint.is_none());
        assert!(
            report.text().contains("more than a checkpoint can hold"),
            "{}",
            report.text()
        );
    }

    fn listing(id: &str, uscc: &str, measures: serde_json::Value) -> serde_json::Value {
        json!({"id": id, "uscc": uscc, "measures": measures})
    }

    #[test]
    fn a_replayed_list_answers_by_the_strictest_measure_for_the_domain() {
        let list = vec![
            listing(
                "7",
                "A",
                json!([{"code": "P", "domain": "PROCUREMENT", "effect": "CONSIDER"},
                       {"code": "S", "domain": "SUPERVISION", "effect": "SUPERVISE"}]),
            ),
            listing(
                "3",
                "A",
                json!([{"code": "R", "domain": "PROCUREMENT", "effect": "PROHIBIT"}]),
            ),
            // Another domain only, and a supervision measure: no hit.
            listing(
                "9",
                "A",
                json!([{"code": "B", "domain": "BIDDING", "effect": "PROHIBIT"},
                       {"code": "S2", "domain": "PROCUREMENT", "effect": "SUPERVISE"}]),
            ),
            listing(
                "4",
                "B",
                json!([{"code": "R", "domain": "PROCUREMENT", "effect": "PROHIBIT"}]),
            ),
        ];
        assert_eq!(
            answer_from_list(&list, "A", Domain::Procurement),
            Ok((Decision::Restricted, vec![3, 7]))
        );
        assert_eq!(
            answer_from_list(&list, "A", Domain::Honors),
            Ok((Decision::Clear, vec![]))
        );
        assert_eq!(
            answer_from_list(&list, "C", Domain::Procurement),
            Ok((Decision::Clear, vec![]))
        );
        // An entry of the code logged before entries named their measures' effects.
        let old = vec![json!({"id": "5", "uscc": "A", "measureCodes": ["P"]})];
        let refused = answer_from_list(&old, "A", Domain::Procurement).unwrap_err();
        assert!(refused.contains("listing 5 was logged before"), "{refused}");
    }
}
