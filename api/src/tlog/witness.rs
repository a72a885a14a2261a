//! `credit-registry witness`: the simplest witness of a registry log (C2SP
//! `tlog-cosignature`), which a partner can run. Each round it fetches the log's
//! checkpoint and tiles and verifies them as `verify-log` does ([`check_log`]: the log
//! key's signature, the tree recomputed from the tiles, and consistency with the last
//! checkpoint it cosigned), then cosigns the checkpoint (cosignature/v1, Ed25519) and
//! posts it to `POST <url>/logs/<log>/cosignature`. A history that does not extend the
//! one it cosigned is refused and said so, and its state is left as it was, so it goes
//! on refusing that history.
//!
//! The state file (JSON) keeps the log's verifier key (pinned on first use, or given with
//! `--vkey`) and the last checkpoint cosigned. It is written, durably, before the
//! cosignature is posted: a cosignature says "the largest consistent tree head I have
//! seen" (C2SP tlog-cosignature), and once it is in a request body the registry has it,
//! whatever it answers. Saved only after an accepted post, a registry that answered 503
//! (or a witness that crashed before saving) could have had this witness cosign a second
//! checkpoint of the same size that the first does not extend — a split view under the
//! witness's own key. A failed post leaves the state advanced; the next round verifies
//! from it and posts again.

use super::client::{LogCheck, MAX_NOTE_BYTES, check_log, read_capped};
use super::cosignature::WitnessKey;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct WitnessArgs {
    /// The registry's base URL (`https://registry.example`).
    pub url: String,
    /// `registry` or `answers`.
    pub log: String,
    pub state: PathBuf,
    /// The log's verifier key file, pinned into the state on first use; without it the
    /// key is fetched from `<url>/logs/<log>/vkey` the first time (trust on first use).
    pub vkey: Option<PathBuf>,
    pub interval: Duration,
    pub once: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The log's verifier key.
    log_vkey: Option<String>,
    /// The last checkpoint this witness cosigned (the log's signed note).
    checkpoint: Option<String>,
}

impl State {
    fn read(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a witness state file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Written whole to a temporary file, synced, renamed, and the directory synced: a
    /// crash never leaves half a state, and once this returns the state survives a power
    /// loss (the witness is about to vouch for what it holds).
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut file =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(file);
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        // The rename is durable only once the directory entry is on disk.
        #[cfg(unix)]
        {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing the directory {}", dir.display()))?;
        }
        Ok(())
    }
}

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The checkpoint of this size was verified, cosigned and accepted by the registry.
    Cosigned { size: u64 },
    /// The log does not hold (above all: it does not extend the checkpoint this witness
    /// cosigned last); nothing was cosigned.
    Refused(String),
}

/// One round: verify, remember, cosign, post.
pub async fn witness_once(args: &WitnessArgs, key: &WitnessKey) -> anyhow::Result<Outcome> {
    if crate::store::tlog_store::LogName::parse(&args.log).is_none() {
        bail!("--log must be registry or answers, not '{}'", args.log);
    }
    let base = args.url.trim_end_matches('/');
    let log_url = format!("{base}/logs/{}", args.log);
    let mut state = State::read(&args.state)?;
    let vkey = match (&state.log_vkey, &args.vkey) {
        (Some(pinned), _) => pinned.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the log's verifier key {}", path.display()))?,
        (None, None) => fetch_text(&format!("{log_url}/vkey")).await?,
    };
    let check = LogCheck {
        url: log_url.clone(),
        vkey: Some(vkey.clone()),
        earlier: state
            .checkpoint
            .clone()
            .map(|note| ("cosigned last by this witness".to_string(), note)),
        // A witness states consistency, and for the registry log that the checkpoint's
        // status map is the map of its entries (a status proof against a map that does
        // not follow from the log would otherwise verify); mirroring the list is
        // verify-log's job.
        replay: false,
        status_map: args.log == "registry",
        witnesses: Vec::new(),
        min_cosignatures: 0,
        ..Default::default()
    };
    let (report, checkpoint) = check_log(&check).await?;
    let checkpoint = match checkpoint {
        Some(checkpoint) if report.ok() => checkpoint,
        _ => return Ok(Outcome::Refused(report.problems.join("; "))),
    };
    // Remembered before anything is signed: from here on this witness has seen this
    // checkpoint, and refuses any history that does not extend it, whatever becomes of
    // the post below (see the module's comment).
    state.log_vkey = Some(vkey.clone());
    state.checkpoint = Some(checkpoint.note.clone());
    state.write(&args.state)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    // Only the log's signature and this witness's go back: the served checkpoint may
    // carry other witnesses' lines, which are not this witness's to vouch for.
    let bare = super::note::LogVerifier::parse(&vkey)
        .and_then(|log| log.log_signed_only(&checkpoint.note))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cosigned = key
        .cosign(&bare, now)
        .map_err(|e| anyhow::anyhow!("cosigning: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let answer = client
        .post(format!("{log_url}/cosignature"))
        .header("content-type", "text/plain; charset=utf-8")
        .body(cosigned)
        .send()
        .await
        .with_context(|| format!("posting the cosignature to {log_url}/cosignature"))?;
    let status = answer.status();
    let url = format!("{log_url}/cosignature");
    let body = read_capped(answer, &url, MAX_NOTE_BYTES, "an answer to a cosignature")
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the registry refused the cosignature ({status}): {}",
            body.trim()
        );
    }
    let accepted: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let label = key.key_label();
    if !accepted["accepted"]
        .as_array()
        .is_some_and(|a| a.iter().any(|w| w.as_str() == Some(label.as_str())))
    {
        bail!(
            "the registry did not accept this witness's cosignature ({label}): {}",
            body.trim()
        );
    }
    Ok(Outcome::Cosigned {
        size: checkpoint.size,
    })
}

async fn fetch_text(url: &str) -> anyhow::Result<String> {
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .get(url)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    let bytes = read_capped(resp, url, MAX_NOTE_BYTES, "a verifier key").await?;
    String::from_utf8(bytes).with_context(|| format!("{url} is not UTF-8 text"))
}

/// Rounds every `interval` (or one with `once`). Returns the exit status: 0 when every
/// round cosigned, 1 when a round refused the log (with `once`; otherwise it goes on
/// refusing at each round), and errors (unreachable registry, …) are reported and, without
/// `once`, retried at the next round.
pub async fn run(args: &WitnessArgs, key: &WitnessKey) -> i32 {
    loop {
        let status = match witness_once(args, key).await {
            Ok(Outcome::Cosigned { size }) => {
                println!("cosigned: the {} log at size {size}", args.log);
                0
            }
            Ok(Outcome::Refused(why)) => {
                eprintln!("REFUSED: not cosigning the {} log: {why}", args.log);
                1
            }
            Err(err) => {
                eprintln!("ERROR: {err:#}");
                2
            }
        };
        if args.once {
            return status;
        }
        tokio::time::sleep(args.interval).await;
    }
}
