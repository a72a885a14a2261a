//! The registry's two transparency logs (issue 17) as a running service: their keys,
//! the registry-log appender, the answer log's appends for the check-record writer,
//! and what the HTTP layer serves.
//!
//! The registry log is written by a single appender that follows the change feed in
//! order (not in the transaction of each change): every change already goes through the
//! feed, whose order is the revision id order (revisions are written under the audit
//! chain lock), so following it logs exactly the events of `changes`, in feed order,
//! without touching the many write paths of the list. The appender re-reads its position
//! under the log's head lock, so several servers never log an event twice; it runs on
//! every committed change (the feed hub's notification) and at the poll interval.
//!
//! The answer log is appended by the check-record writer in the same transaction as the
//! group's records ([`TransparencyLogs::append_answers`]): one leaf per answer, one checkpoint
//! signature per group, and no answer leaves before its leaf and checkpoint commit.

use super::feed::{self, ChangeEvent};
use crate::auth::keys;
use crate::config::Settings;
use crate::domain::measures::{Domain, Effect, MeasureEffect};
use crate::error::{AppError, AppResult};
use crate::store::tlog_store::{self, Appended, LogName};
use crate::tlog::cosignature::{
    CosignatureError, WitnessVerifier, verify_cosignatures, with_signature_lines,
};
use crate::tlog::note::LogKey;
use crate::tlog::status_map;
use crate::tlog::{self, Hash};
use anyhow::Context;
use sea_orm::{DatabaseConnection, SqliteTransactionMode, TransactionOptions, TransactionTrait};
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One entry of the registry log: a change event of `changes`, public fields only, and
/// the domain and effect of each of its measures. Those two decide what a check answers
/// and are fixed once a listing uses the measure (`domain::measures`), so the log alone
/// says what the list it replays to answers for a code and a domain.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryEntry<'a> {
    pub revision_id: i64,
    pub kind: &'static str,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub effective_at: chrono::DateTime<chrono::Utc>,
    pub status: &'static str,
    pub in_force: bool,
    pub version: i32,
    pub measure_codes: &'a [String],
    pub measures: Vec<MeasureEffect>,
    pub listing: &'a super::public::PublicListing,
}

/// The domain and effect of each measure, by code.
pub type MeasureEffects = std::collections::HashMap<String, (Domain, Effect)>;

/// The catalogue's domain and effect of every measure (a few dozen rows).
pub async fn measure_effects<C: sea_orm::ConnectionTrait>(db: &C) -> AppResult<MeasureEffects> {
    Ok(super::catalogue::measures(db, None)
        .await?
        .into_iter()
        .map(|m| (m.code, (m.domain.into(), m.effect.into())))
        .collect())
}

impl<'a> RegistryEntry<'a> {
    fn new(e: &'a ChangeEvent, catalogue: &MeasureEffects) -> AppResult<Self> {
        let measures = e
            .measure_codes
            .iter()
            .map(|code| {
                let (domain, effect) = catalogue.get(code).copied().ok_or_else(|| {
                    // Measures are never deleted (only deactivated): a data fault.
                    AppError::internal(anyhow::anyhow!(
                        "revision {} names measure {code}, which the catalogue lacks",
                        e.revision_id
                    ))
                })?;
                Ok(MeasureEffect {
                    code: code.clone(),
                    domain,
                    effect,
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(Self {
            revision_id: e.revision_id,
            kind: e.kind.action(),
            occurred_at: e.occurred_at,
            effective_at: e.effective_at,
            status: crate::domain::enum_name(e.status),
            in_force: e.in_force,
            version: e.version,
            measure_codes: &e.measure_codes,
            measures,
            listing: &e.listing,
        })
    }
}

/// How many of the registry log's first `size` entries are change events up to
/// `revision`. The entries are in revision order, so this is where the first entry past
/// `revision` is: found by bisection, a few point reads of stored entries whatever the
/// log's length (a `knownAt` reconstruction names a head far back).
async fn registry_size_at(db: &DatabaseConnection, size: u64, revision: i64) -> AppResult<u64> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Position {
        revision_id: i64,
    }
    // Entries before `low` are up to `revision`, entries from `high` on are past it.
    let (mut low, mut high) = (0u64, size);
    while low < high {
        let middle = low + (high - low) / 2;
        let entry = tlog_store::read_entries(db, LogName::Registry, middle..middle + 1)
            .await?
            .pop()
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("registry log entry {middle} is missing"))
            })?;
        let at: Position = serde_json::from_slice(&entry)
            .with_context(|| format!("registry log entry {middle}"))
            .map_err(AppError::internal)?;
        if at.revision_id <= revision {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// The bytes logged for a change event (compact JSON).
pub fn registry_entry(event: &ChangeEvent, catalogue: &MeasureEffects) -> AppResult<Vec<u8>> {
    serde_json::to_vec(&RegistryEntry::new(event, catalogue)?).map_err(AppError::internal)
}

/// The size and root of a log's latest checkpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// The registry log's head as this server last saw it, and which states of the list it
/// is the tree head of.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RegistryHead {
    head: TreeHead,
    /// The revision of the last change event in the log (the head's feed position).
    position: i64,
    /// Every revision up to this id (≥ `position`) has been read by an appender, and
    /// none after `position` was a change event: `head` is the state of the list at any
    /// revision from `position` through `covered_through`.
    covered_through: i64,
}

impl RegistryHead {
    /// The head, if it is exactly the list at `revision`.
    fn exact_for(&self, revision: i64) -> Option<TreeHead> {
        (self.position <= revision && revision <= self.covered_through).then_some(self.head)
    }

    /// What is known after `self` and `seen`, which are both true: the larger log, and
    /// for the same log the further bound.
    fn merged(self, seen: Self) -> Self {
        match seen.head.size.cmp(&self.head.size) {
            std::cmp::Ordering::Greater => seen,
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Equal => Self {
                covered_through: self.covered_through.max(seen.covered_through),
                ..self
            },
        }
    }
}

/// The logs' keys and the registry log's latest head, shared by the server.
pub struct TransparencyLogs {
    registry_key: LogKey,
    answers_key: LogKey,
    /// The registry log's latest head as this server last saw it.
    registry_head: RwLock<RegistryHead>,
    /// Held by the one check that logs changes the appender has not read yet, so that
    /// the checks answered right after a change do not all append at once.
    catch_up: tokio::sync::Mutex<()>,
    /// The status map's nodes as this server's appends last read and wrote them.
    map_nodes: tokio::sync::Mutex<super::status_map::NodeCache>,
    /// The registry's clock: checkpoints and heads are stamped with its present.
    clock: crate::clock::Clock,
    /// The witnesses whose cosignatures are accepted (`logs.witnesses`).
    witnesses: Vec<WitnessVerifier>,
}

/// Why a posted cosignature was refused: each with its stable code and HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum CosignatureRefusal {
    /// Not a checkpoint this log signed (`BAD_CHECKPOINT`, 400).
    #[error("{0}")]
    BadCheckpoint(String),
    /// Signed with this log's key, but not the checkpoint this log holds at that size: a
    /// witness of another history (`UNKNOWN_CHECKPOINT`, 409).
    #[error("{0}")]
    UnknownCheckpoint(String),
    /// No cosignature of a configured witness on it (`UNKNOWN_WITNESS`, 403).
    #[error(
        "the checkpoint carries no cosignature of a witness this registry knows (logs.witnesses)"
    )]
    UnknownWitness,
    /// A configured witness's line that does not verify (`BAD_COSIGNATURE`, 400).
    #[error("{0}")]
    BadCosignature(String),
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl CosignatureRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadCheckpoint(_) => "BAD_CHECKPOINT",
            Self::UnknownCheckpoint(_) => "UNKNOWN_CHECKPOINT",
            Self::UnknownWitness => "UNKNOWN_WITNESS",
            Self::BadCosignature(_) => "BAD_COSIGNATURE",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

/// Whether a posted note is the held checkpoint: the whole note text (origin, size, root
/// and every extension line, the registry log's `status-map/v1` root among them), not
/// the size and root alone. A cosignature signs that whole text (C2SP
/// tlog-cosignature), and it is stored and served after the held note: a cosignature of
/// another text under the same size and root (a second checkpoint the log key signed
/// with another map) would be served where it does not verify, and every verifier that
/// knows the witness would then find the log's checkpoint invalid.
fn same_note_text(held: &str, posted: &str) -> bool {
    matches!(
        (tlog::note::note_text(held), tlog::note::note_text(posted)),
        (Some(held), Some(posted)) if held == posted
    )
}

/// Events logged per registry-log append.
const REGISTRY_APPEND_PAGE: u64 = 500;

impl TransparencyLogs {
    /// Loads (or, outside production, creates) the log keys under `logs.key_dir`.
    pub fn open(settings: &Settings, clock: crate::clock::Clock) -> anyhow::Result<Self> {
        let dir = settings.log_key_dir();
        let may_create = !settings.is_production();
        let origin = settings.logs.origin.trim_end_matches('/');
        let key = |log: LogName| -> anyhow::Result<LogKey> {
            let path = dir.join(format!("{}.pem", log.as_str()));
            let signing = keys::load_or_create(&path, may_create)
                .with_context(|| format!("loading the {} log key", log.as_str()))?;
            LogKey::new(&format!("{origin}/{}", log.as_str()), &signing)
                .map_err(|e| anyhow::anyhow!("logs.origin: {e}"))
        };
        Ok(Self {
            registry_key: key(LogName::Registry)?,
            answers_key: key(LogName::Answers)?,
            registry_head: RwLock::new(RegistryHead {
                head: TreeHead {
                    size: 0,
                    root: tlog::EMPTY_HASH,
                },
                position: 0,
                covered_through: 0,
            }),
            catch_up: tokio::sync::Mutex::new(()),
            map_nodes: tokio::sync::Mutex::new(Default::default()),
            clock,
            witnesses: settings
                .logs
                .witnesses
                .iter()
                .map(|v| {
                    WitnessVerifier::parse(v).map_err(|e| anyhow::anyhow!("logs.witnesses: {e}"))
                })
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// Accepts a witness's cosignature: `note` is a checkpoint of `log` as this log
    /// signed it, with one or more cosignature lines of configured witnesses. Each valid
    /// cosignature is stored and from then on served with that checkpoint. Returns the
    /// witnesses stored.
    pub async fn accept_cosignature(
        &self,
        db: &DatabaseConnection,
        log: LogName,
        note: &str,
    ) -> Result<Vec<String>, CosignatureRefusal> {
        let verifier = self.key(log).verifier().map_err(|e| {
            CosignatureRefusal::Internal(AppError::internal(anyhow::anyhow!("{e}")))
        })?;
        let checkpoint = verifier
            .verify_checkpoint(note)
            .map_err(|e| CosignatureRefusal::BadCheckpoint(e.to_string()))?;
        let held = tlog_store::checkpoint_at(db, log, checkpoint.size)
            .await
            .map_err(AppError::from)?;
        if !held
            .as_deref()
            .is_some_and(|held| same_note_text(held, note))
        {
            return Err(CosignatureRefusal::UnknownCheckpoint(format!(
                "this log holds no checkpoint of size {} with that text",
                checkpoint.size
            )));
        }
        let cosignatures = verify_cosignatures(note, &self.witnesses).map_err(|e| match e {
            CosignatureError::NoKnownWitness => CosignatureRefusal::UnknownWitness,
            CosignatureError::Invalid(_) => CosignatureRefusal::BadCosignature(e.to_string()),
            CosignatureError::Malformed => CosignatureRefusal::BadCheckpoint(e.to_string()),
        })?;
        let now = self.clock.now();
        for cosignature in &cosignatures {
            tlog_store::save_cosignature(db, log, checkpoint.size, cosignature, now)
                .await
                .map_err(AppError::from)?;
        }
        Ok(cosignatures.into_iter().map(|c| c.witness).collect())
    }

    /// The log's latest checkpoint with the cosignatures stored for it.
    pub async fn cosigned_checkpoint(
        &self,
        db: &DatabaseConnection,
        log: LogName,
    ) -> Result<Option<String>, sea_orm::DbErr> {
        let Some(head) = tlog_store::head(db, log).await? else {
            return Ok(None);
        };
        let lines = tlog_store::cosignature_lines(db, log, head.size).await?;
        Ok(Some(with_signature_lines(&head.checkpoint, &lines)))
    }

    pub fn key(&self, log: LogName) -> &LogKey {
        match log {
            LogName::Registry => &self.registry_key,
            LogName::Answers => &self.answers_key,
        }
    }

    /// Creates both logs' heads if they are new, checks that this instance's keys signed
    /// them, and reads the registry log's head.
    ///
    /// Every instance on one database appends to the same two logs, so all must sign with
    /// the same keys (and origin): a checkpoint signed by another key would break the log
    /// for every verifier. An instance whose key does not verify the stored checkpoint
    /// (other key files, or development keys generated under another `data_dir`) is
    /// refused at start, before it signs anything.
    pub async fn init(&self, db: &DatabaseConnection) -> anyhow::Result<()> {
        let now = self.clock.now();
        for log in [LogName::Registry, LogName::Answers] {
            // A new registry log starts with the empty status map in its checkpoint.
            let empty_map = status_map::extension_line(&status_map::empty_root());
            let extension = (log == LogName::Registry).then_some(empty_map.as_str());
            tlog_store::ensure_head(db, log, self.key(log), extension, now).await?;
            let head = tlog_store::head(db, log)
                .await?
                .with_context(|| format!("the {} log has no head", log.as_str()))?;
            let verifier = self
                .key(log)
                .verifier()
                .map_err(|e| anyhow::anyhow!("the {} log key: {e}", log.as_str()))?;
            if let Err(e) = verifier.verify_checkpoint(&head.checkpoint) {
                anyhow::bail!(
                    "the {log} log in the database was not signed by this instance's key {}: {e}; every instance on one database must be configured with the same log keys (logs.key_dir/{log}.pem) and logs.origin",
                    verifier.key_label(),
                    log = log.as_str(),
                );
            }
            if log == LogName::Registry {
                self.set_registry_head(head.size, head.root, head.position, head.position);
            }
        }
        Ok(())
    }

    fn set_registry_head(&self, size: u64, root: Hash, position: i64, covered_through: i64) {
        let seen = RegistryHead {
            head: TreeHead { size, root },
            position,
            covered_through: covered_through.max(position),
        };
        let mut head = self
            .registry_head
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *head = head.merged(seen);
    }

    fn registry_state(&self) -> RegistryHead {
        *self
            .registry_head
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The registry log's tree head of exactly the list at `revision` (the newest
    /// revision a check's lookup saw): the size of the log holding every change event up
    /// to that revision and none after it, and that tree's root. So a receipt names the
    /// state its answer was computed from, never a head a moment older or newer.
    ///
    /// Almost always the head in memory is that tree. Right after a change the appender
    /// may not have logged it yet: then this check logs the changes up to `revision`
    /// and no further (one check at a time; the others find it done), so that a check
    /// answered while an import commits chunk after chunk waits for the changes it saw,
    /// never for those committed after it. If the log has meanwhile moved past
    /// `revision`, the tree head at the smaller size is computed from the stored hashes.
    pub async fn registry_head_for(
        &self,
        db: &DatabaseConnection,
        revision: i64,
    ) -> AppResult<TreeHead> {
        if let Some(head) = self.registry_state().exact_for(revision) {
            return Ok(head);
        }
        if self.registry_state().covered_through < revision {
            let _turn = self.catch_up.lock().await;
            if self.registry_state().covered_through < revision {
                self.append_registry_through(db, revision).await?;
            }
            if let Some(head) = self.registry_state().exact_for(revision) {
                return Ok(head);
            }
        }
        let state = self.registry_state();
        if state.covered_through < revision {
            // The appender read every revision committed before it ran, and the lookup's
            // revision had committed before this call.
            return Err(AppError::internal(anyhow::anyhow!(
                "the registry log did not catch up with revision {revision} (covered through {})",
                state.covered_through
            )));
        }
        self.registry_head_before(db, state, revision).await
    }

    /// The tree head of the list at `revision`, earlier than `state`'s position: the
    /// size of the log's prefix of the change events up to `revision`, and the root of
    /// that size from the stored hashes (every complete subtree's hash is stored).
    async fn registry_head_before(
        &self,
        db: &DatabaseConnection,
        state: RegistryHead,
        revision: i64,
    ) -> AppResult<TreeHead> {
        let size = registry_size_at(db, state.head.size, revision).await?;
        let memo =
            tlog_store::read_hashes(db, LogName::Registry, &tlog::edge_indexes(size)).await?;
        let root = tlog::tree_hash(size, &memo).map_err(AppError::internal)?;
        Ok(TreeHead { size, root })
    }

    /// Logs every change event not logged yet; returns how many it logged.
    pub async fn append_registry(&self, db: &DatabaseConnection) -> AppResult<u64> {
        self.append_registry_through(db, i64::MAX).await
    }

    /// Logs the change events not logged yet up to revision `through` (the last append
    /// ends at it, so its checkpoint is exactly the list at `through`); returns how many
    /// it logged.
    async fn append_registry_through(
        &self,
        db: &DatabaseConnection,
        through: i64,
    ) -> AppResult<u64> {
        let mut logged = 0;
        loop {
            let head = tlog_store::head(db, LogName::Registry)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("no registry log head")))?;
            // Read before the page: every revision up to it committed before the page's
            // reads (ids commit in order), so a page that runs out of events has read all
            // of them, and none after its last event up to here is a change event.
            let newest = feed::latest_revision_id(db).await?;
            let mut page = feed::page(db, Some(head.position), REGISTRY_APPEND_PAGE).await?;
            let revisions: Vec<i64> = page.events.iter().map(|e| e.revision_id).collect();
            let cut = PageCut::of(&revisions, page.has_next, through, newest, head.position);
            page.events.truncate(cut.take);
            let Some(last) = page.events.last() else {
                self.set_registry_head(head.size, head.root, head.position, cut.read_through);
                return Ok(logged);
            };
            let position = last.revision_id;
            let catalogue = measure_effects(db).await?;
            let entries = page
                .events
                .iter()
                .map(|e| registry_entry(e, &catalogue))
                .collect::<AppResult<Vec<_>>>()?;
            let tx = db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?;
            let locked = tlog_store::lock_head(&tx, LogName::Registry).await?;
            if locked.position != head.position {
                // Another appender logged these meanwhile: read on from its position.
                tx.rollback().await?;
                continue;
            }
            let mut cache = self.map_nodes.lock().await;
            let map = super::status_map::update_status_map(&tx, &locked, &entries, &cache).await?;
            let extension = status_map::extension_line(&map.root);
            let appended = tlog_store::append(
                &tx,
                &locked,
                &entries,
                position,
                &self.registry_key,
                Some(&extension),
                self.clock.now(),
            )
            .await?;
            tx.commit().await?;
            cache.committed(&map);
            drop(cache);
            logged += entries.len() as u64;
            self.set_registry_head(appended.size, appended.root, position, cut.read_through);
            if cut.last {
                return Ok(logged);
            }
        }
    }

    /// Runs the registry-log appender for the life of the server, after each run of the
    /// feed hub's pump (woken by every committed change, and polling for other
    /// processes' changes). It touches the database only when the feed's position moved
    /// past what it has logged, so an idle registry costs no queries.
    pub async fn run_registry_appender(
        self: Arc<Self>,
        db: DatabaseConnection,
        hub: Arc<super::feed::FeedHub>,
        poll: Duration,
    ) {
        let mut seen: Option<i64> = None;
        loop {
            let target = hub.position();
            if seen.is_none_or(|s| target > s) {
                match self.append_registry(&db).await {
                    Ok(_) => seen = Some(target),
                    Err(e) => {
                        tracing::warn!(error = %crate::error::one_line(&e), "registry log: appending changes failed")
                    }
                }
            }
            let _ = tokio::time::timeout(poll, hub.pumped()).await;
        }
    }

    /// Appends one leaf per answer of a check-record group inside `tx` (the group's own
    /// transaction) and signs the group's checkpoint.
    pub async fn append_answers(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        entries: &[Vec<u8>],
    ) -> Result<Appended, sea_orm::DbErr> {
        let head = tlog_store::lock_head(tx, LogName::Answers).await?;
        tlog_store::append(
            tx,
            &head,
            entries,
            0,
            &self.answers_key,
            None,
            self.clock.now(),
        )
        .await
    }

    /// Computes the append of a group's answers after `head` and signs its checkpoint,
    /// for a writer that writes it itself (PostgreSQL, `check_records`).
    pub fn prepare_answers(
        &self,
        head: &tlog_store::Head,
        entries: &[Vec<u8>],
    ) -> Result<tlog_store::PreparedAppend, sea_orm::DbErr> {
        tlog_store::prepare_append(head, entries, 0, &self.answers_key, None)
    }

    /// The registry's present, as checkpoints and heads are stamped with it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// Where each of a group's answers landed in the answer log.
#[derive(Clone, Debug)]
pub struct LoggedAnswer {
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The group's checkpoint (shared by every answer of the group).
    pub checkpoint: Arc<str>,
}

/// How much of a page of change events (their revisions, in order, after the log's
/// position) one append of the registry log takes when it must stop at revision
/// `through`, and how far that append has then read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageCut {
    /// The events to log: every one up to `through`.
    take: usize,
    /// Every revision up to this one has been read, and none after the last event
    /// taken is a change event: the log's head is exact for the list up to here.
    read_through: i64,
    /// Nothing more to log up to `through`: the append ends with this page.
    last: bool,
}

impl PageCut {
    /// `newest` is the newest revision, read before the page (so a page that runs out
    /// of events has read every revision up to it); `position` the revision the log has
    /// logged through.
    fn of(revisions: &[i64], has_next: bool, through: i64, newest: i64, position: i64) -> Self {
        // The page is in revision order: the events up to `through` are a prefix.
        let take = revisions.partition_point(|&revision| revision <= through);
        if take < revisions.len() {
            // Cut: none from `through` up to the first event left out is a change event.
            Self {
                take,
                read_through: through,
                last: true,
            }
        } else if has_next {
            // More pages follow: read exactly through the last event of this one.
            Self {
                take,
                read_through: revisions.last().copied().unwrap_or(position),
                last: false,
            }
        } else {
            Self {
                take,
                read_through: newest,
                last: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(size: u64, position: i64, covered_through: i64) -> RegistryHead {
        RegistryHead {
            head: TreeHead {
                size,
                root: Hash([size as u8; 32]),
            },
            position,
            covered_through,
        }
    }

    /// A cosignature of a note with the held size and root but another extension line
    /// (another status map under the log key) is refused as UNKNOWN_CHECKPOINT and not
    /// stored; the held note's own cosignature is accepted.
    #[tokio::test]
    async fn a_cosignature_of_another_text_of_the_held_size_and_root_is_refused() {
        use crate::tlog::cosignature::WitnessKey;
        let dir = tempfile::tempdir().unwrap();
        let witness = WitnessKey::new(
            "witness.unit/w1",
            ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        )
        .unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        settings.logs.witnesses = vec![witness.vkey()];
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("logs.db").display());
        let db = sea_orm::Database::connect(&url).await.unwrap();
        crate::db::migrate_up(&db).await.unwrap();
        let logs = TransparencyLogs::open(&settings, crate::clock::Clock::system()).unwrap();
        logs.init(&db).await.unwrap();
        let held = tlog_store::head(&db, LogName::Registry)
            .await
            .unwrap()
            .unwrap();

        let other_map = status_map::extension_line(&Hash([9; 32]));
        let other = logs
            .key(LogName::Registry)
            .sign_checkpoint_with(held.size, &held.root, Some(&other_map))
            .unwrap();
        assert_ne!(
            other, held.checkpoint,
            "another text of the same size and root"
        );
        let refused = logs
            .accept_cosignature(
                &db,
                LogName::Registry,
                &witness.cosign(&other, 1_700_000_000).unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "UNKNOWN_CHECKPOINT", "{refused}");
        assert_eq!(
            logs.cosigned_checkpoint(&db, LogName::Registry)
                .await
                .unwrap(),
            Some(held.checkpoint.clone()),
            "nothing stored"
        );

        let accepted = logs
            .accept_cosignature(
                &db,
                LogName::Registry,
                &witness.cosign(&held.checkpoint, 1_700_000_000).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(accepted, vec![witness.key_label()]);
    }

    #[test]
    fn a_head_is_exact_from_its_last_event_through_what_was_read() {
        let h = head(3, 10, 14);
        assert_eq!(h.exact_for(9), None, "before its last event: a smaller log");
        assert_eq!(h.exact_for(10), Some(h.head));
        assert_eq!(h.exact_for(14), Some(h.head));
        assert_eq!(h.exact_for(15), None, "not read yet: maybe a larger log");
    }

    #[test]
    fn merging_keeps_the_larger_log_and_the_further_bound() {
        let older = head(3, 10, 14);
        let newer = head(4, 16, 16);
        assert_eq!(older.merged(newer), newer);
        assert_eq!(newer.merged(older), newer);
        // The same log read further: the bound moves on, the head stays.
        assert_eq!(older.merged(head(3, 10, 20)), head(3, 10, 20));
        assert_eq!(head(3, 10, 20).merged(older), head(3, 10, 20));
    }

    #[test]
    fn an_append_through_a_revision_takes_the_events_up_to_it_and_stops() {
        // A page of events at revisions 11, 12 and 15, more pages after it, the newest
        // revision 40, the log through 10.
        let cut = |through| PageCut::of(&[11, 12, 15], true, through, 40, 10);
        assert_eq!(
            cut(13),
            PageCut {
                take: 2,
                read_through: 13,
                last: true
            },
            "a check that saw revision 13 waits for 11 and 12 only"
        );
        assert_eq!(
            cut(10),
            PageCut {
                take: 0,
                read_through: 10,
                last: true
            }
        );
        assert_eq!(
            cut(15),
            PageCut {
                take: 3,
                read_through: 15,
                last: false
            },
            "the page's last event: the next page may hold more up to 15"
        );
        assert_eq!(
            cut(i64::MAX),
            PageCut {
                take: 3,
                read_through: 15,
                last: false
            }
        );
    }

    #[test]
    fn an_append_that_runs_out_of_events_has_read_through_the_newest_revision() {
        assert_eq!(
            PageCut::of(&[11, 12], false, i64::MAX, 40, 10),
            PageCut {
                take: 2,
                read_through: 40,
                last: true
            }
        );
        assert_eq!(
            PageCut::of(&[], false, 30, 40, 10),
            PageCut {
                take: 0,
                read_through: 40,
                last: true
            },
            "no change event after the log's position, up to the newest revision"
        );
    }
}
