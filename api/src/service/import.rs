//! Imports of an authority's existing lists: operators and listings from a CSV or
//! `.xlsx` file (formats in `bulk`).
//!
//! - **Same rules as the mutations.** Every row goes through the domain's rules:
//!   both check digits (`domain::uscc`), the catalogue codes, and the date and period
//!   rules of `domain::listing_rules` (the defence deadline from the working-day
//!   calendar as `proposeListing` computes it, the decision date as `decideListing`
//!   checks it, the listing in force from the start of its decision date in Beijing
//!   time for the list's period), the region scope of the admin.
//! - **All or nothing** by default: every row is validated first (pass 1) and nothing
//!   is written if any row is refused; every refusal is reported by row and column.
//!   `partial` writes the valid rows.
//! - **Chunks.** Pass 2 writes one transaction per chunk (each takes the audit chain's
//!   lock), so a million rows never make one giant transaction, and records in the same
//!   transaction how far the batch got (`import_batches`): an interrupted import of the
//!   same file resumes after its last committed chunk (the rows before it are planned
//!   again, so that what changed since the interruption is corrected as the file says).
//! - **Natural key** list + decision document number + code: a row whose listing is
//!   already recorded as the row says is `unchanged`; a row that differs corrects the
//!   listing, with the import as its reason. Re-running a file changes nothing.
//! - Every write is marked with the file's name and SHA-256, the batch id and the row
//!   number, in the revision's snapshot and the audit event.

use super::audit;
use super::listings::{self, bump, finish_marked_change, replace_measures};
use super::operators::{self, OperatorInput};
use super::{Actor, Services, calendar, ensure_scope};
use crate::bulk::columns::Header;
use crate::bulk::read::{self, Cell};
use crate::bulk::rows::{self, ListingRow, OperatorRow, RemovalKind};
use crate::bulk::{Encoding, InputFormat, Kind, RowError};
use crate::domain::document::DocumentNumber;
use crate::domain::input::InputRules;
use crate::domain::lifecycle::{EarlyRemoval, StoredStatus, check_imported_removal};
use crate::domain::listing_rules::{self, ListRules, Proposal};
use crate::domain::refusal::Refusal;
use crate::domain::region::scope_covers;
use crate::domain::repair::{MinimumListed, minimum_listed};
use crate::domain::uscc::Uscc;
use crate::domain::working_days::WorkingCalendar;
use crate::domain::{china_date, china_midnight};
use crate::error::{AppError, AppResult};
use crate::store::statistics;
use chrono::{DateTime, NaiveDate, Utc};
use entity::import_batch::ImportStatus;
use entity::{
    credit_list, import_batch, list_default_measure, listing, listing_measure, listing_period,
    listing_revision, measure, operator, violation_category,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Rows per transaction.
pub const DEFAULT_CHUNK_ROWS: usize = 1_000;

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub kind: Kind,
    /// The file's name as the user gave it (kept in the marks).
    pub file_name: String,
    /// Forces the CSV encoding; `None` detects it.
    pub encoding: Option<Encoding>,
    pub dry_run: bool,
    pub partial: bool,
    pub chunk_rows: usize,
    /// Row errors the report keeps (every rejected row is still counted): a million rows
    /// with a date in another format would otherwise be three million messages in
    /// memory, and in the GraphQL answer.
    pub max_errors: usize,
    /// Told what the import makes known as it goes (its file's SHA-256, then its batch),
    /// for a caller that stops waiting for it while it runs on: the upload answers before
    /// the request timeout and the import runs to its end on its own task.
    pub started: Option<std::sync::Arc<Started>>,
    /// The most an `.xlsx` part may inflate to (`read::max_part_bytes` of
    /// `limits.max_import_bytes`; `read::ReadLimits` says what else bounds it).
    pub max_xlsx_part_bytes: u64,
}

/// What a running import has made known so far ([`ImportOptions::started`]).
#[derive(Debug, Default)]
pub struct Started {
    pub sha256: std::sync::OnceLock<String>,
    pub batch_id: std::sync::OnceLock<String>,
}

/// Row errors a report keeps by default: enough to see every kind of mistake a file
/// makes, a few MiB at most.
pub const DEFAULT_MAX_ERRORS: usize = 10_000;

impl ImportOptions {
    pub fn new(kind: Kind, file_name: impl Into<String>) -> Self {
        Self {
            kind,
            file_name: file_name.into(),
            encoding: None,
            dry_run: false,
            partial: false,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            max_errors: DEFAULT_MAX_ERRORS,
            started: None,
            max_xlsx_part_bytes: read::max_part_bytes(
                crate::config::Limits::default().max_import_bytes,
            ),
        }
    }
}

/// The outcome of an import (or of a dry run: what it would do).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// `None` for a dry run or a file refused before anything was written.
    pub batch_id: Option<String>,
    pub kind: String,
    pub file_name: String,
    pub sha256: String,
    /// The CSV encoding read (`None` for `.xlsx`).
    pub encoding: Option<String>,
    pub dry_run: bool,
    pub partial: bool,
    /// Data rows in the file.
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Whether the import finished with every row it writes committed (false for a dry
    /// run, a refused file, and an all-or-nothing import stopped part-way because the
    /// registry changed after validation: `created` and `updated` then count what its
    /// committed chunks wrote, and running the file again finishes it).
    pub committed: bool,
    /// Set when this run continued an interrupted batch: the last row it had committed.
    pub resumed_after_row: Option<u64>,
    /// The refusals, in row order: the first `ImportOptions::max_errors`.
    pub errors: Vec<RowError>,
    /// Refusals found beyond those kept in `errors`.
    pub errors_omitted: u64,
}

impl ImportReport {
    /// Keeps `errors` up to `max` in all, and counts the rest.
    /// The report of a file refused whole: nothing was created, updated or even
    /// compared as unchanged.
    fn refused_whole(mut self) -> Self {
        self.created = 0;
        self.updated = 0;
        self.unchanged = 0;
        self
    }

    fn keep_errors(&mut self, errors: Vec<RowError>, max: usize) {
        let room = max.saturating_sub(self.errors.len());
        let omitted = errors.len().saturating_sub(room);
        self.errors.extend(errors.into_iter().take(room));
        self.errors_omitted += omitted as u64;
    }
}

/// The two passes, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Validating,
    Writing,
}

/// Told the rows done so far in a phase (and, when writing, the total).
pub type Progress<'a> = &'a (dyn Fn(Phase, u64, Option<u64>) + Sync);

/// Imports `file` (read three times: fingerprint, validation, writing).
pub async fn import(
    services: &Services,
    actor: &Actor,
    rules: InputRules,
    file: &std::fs::File,
    opts: &ImportOptions,
    progress: Option<Progress<'_>>,
) -> AppResult<ImportReport> {
    let io = |e: std::io::Error| AppError::bad_input(format!("the file cannot be read: {e}"));
    let clone = || file.try_clone().map_err(io);
    let print = read::fingerprint(std::io::BufReader::new(clone()?)).map_err(io)?;
    if let Some(started) = &opts.started {
        // Set once per import: a second value cannot arrive.
        let _ = started.sha256.set(print.sha256.clone());
    }
    let format = InputFormat::from_file_name(&opts.file_name);
    let encoding = read::detect_encoding(&print, opts.encoding);
    let mut report = ImportReport {
        kind: opts.kind.as_str().into(),
        file_name: opts.file_name.clone(),
        sha256: print.sha256.clone(),
        encoding: (format == InputFormat::Csv).then(|| encoding.as_str().to_string()),
        dry_run: opts.dry_run,
        partial: opts.partial,
        ..Default::default()
    };
    let chunk_rows = opts.chunk_rows.max(1);
    let job = Job {
        services,
        actor,
        rules,
        opts,
        sha256: print.sha256.clone(),
        now: services.clock.now(),
    };

    // Pass 1: validate everything, write nothing.
    let mut pass = job.pass(clone()?, format, encoding)?;
    let header = match pass.header.take() {
        Some(h) => h,
        None => {
            report.errors = pass.header_errors;
            report.rejected = 0;
            return Ok(report);
        }
    };
    let catalogue = Catalogue::load(&services.db).await?;
    // The chunks' lookups are planned from the tables' statistics: fresh ones first
    // (`store::statistics` says why; a re-import of a million rows depends on it).
    statistics::refresh_stale(&services.db, statistics::IMPORT_LOOKUPS).await?;
    let mut keys = Keys::default();
    let mut done = 0u64;
    while let Some(chunk) = pass.next_chunk(&header, chunk_rows) {
        let outcomes = job
            .validate(&services.db, &header, &catalogue, &mut keys, chunk)
            .await?;
        for o in outcomes {
            report.rows += 1;
            match o.plan {
                Ok(Plan::Unchanged) => report.unchanged += 1,
                Ok(p) if p.is_create() => report.created += 1,
                Ok(_) => report.updated += 1,
                Err(errors) => {
                    report.rejected += 1;
                    report.keep_errors(errors, opts.max_errors);
                }
            }
        }
        done = report.rows;
        if let Some(p) = progress {
            p(Phase::Validating, done, None);
        }
    }
    if let Some(unreadable) = pass.unreadable.take() {
        // A file read only in part is refused whole, with --partial too.
        report.rejected += 1;
        report.keep_errors(vec![unreadable], opts.max_errors);
        return Ok(report.refused_whole());
    }
    let total = done;
    // Pass 2 keeps its own keys: at a million rows each set is tens of MiB.
    drop(keys);
    if opts.dry_run {
        return Ok(report);
    }
    if report.rejected > 0 && !opts.partial {
        return Ok(report.refused_whole());
    }

    // Pass 2: write, a chunk per transaction, resuming an interrupted batch of this file.
    let db = &services.db;
    let batch = job.open_batch(db, total).await?;
    let resume_after = u64::try_from(batch.last_committed_row).unwrap_or(0);
    report.batch_id = Some(batch.id.clone());
    if let Some(started) = &opts.started {
        let _ = started.batch_id.set(batch.id.clone());
    }
    report.resumed_after_row = (resume_after > 1).then_some(resume_after);
    // The batch's totals (over every run of it) and this run's own.
    let mut counts = Counts::of(&batch);
    let mut this_run = Counts::default();
    let mut pass = job.pass(clone()?, format, encoding)?;
    pass.header.take();
    let mut keys = Keys::for_rows(opts.kind, total);
    let catalogue = Catalogue::load(db).await?;
    let marks = Marks {
        file_name: opts.file_name.clone(),
        sha256: print.sha256.clone(),
        batch_id: batch.id.clone(),
    };
    let mut late_errors = Vec::new();
    // With --partial, what the writing pass refused: the rows it did not write. Pass 1's
    // refusals again, and any row the registry's changes since then refuse.
    let mut not_written = ImportReport::default();
    let mut written_since_check = 0u64;
    while let Some(chunk) = pass.next_chunk(&header, chunk_rows) {
        let last_row = chunk.last().map_or(0, |(row, _)| *row);
        // Recorded at the instant this chunk is written (`begin_write_at` says why the
        // lock comes first): a row is on record from when it was written, not from when
        // the import started, so a check answered while the import ran is rebuilt by
        // `knownAt` as it was answered (the chunks still to come are not yet known then).
        let (tx, at) = audit::begin_write_at(db, &services.clock).await?;
        commit_without_waiting_for_flush(&tx).await?;
        let outcomes = job
            .validate(&tx, &header, &catalogue, &mut keys, chunk)
            .await?;
        let mut chunk_counts = Counts::default();
        let mut refused = Vec::new();
        let mut writes = Vec::new();
        // Rows a resumed batch committed before it was interrupted are planned again,
        // not skipped: the registry may have changed since (a correctListing between the
        // kill and the resume), and the file still says what it says. A row written then
        // and untouched since plans Unchanged and writes nothing.
        for o in outcomes {
            match o.plan {
                Ok(Plan::Unchanged) => {}
                Ok(plan) => writes.push((o.row, plan)),
                Err(errors) => {
                    chunk_counts.rejected += 1;
                    refused.extend(errors);
                }
            }
        }
        if refused.is_empty() || opts.partial {
            // Written in row order, so the audit chain follows the file: each run of new
            // listings together (a few statements), a correction or an operator alone.
            let mut creates = Vec::new();
            for (row, plan) in writes {
                match plan {
                    Plan::CreateListing(target) => creates.push(*target),
                    plan => {
                        let run = std::mem::take(&mut creates);
                        chunk_counts.created += job.create_listings(&tx, at, &marks, run).await?;
                        if let Some(done) = job.apply(&tx, at, &marks, row, plan).await? {
                            chunk_counts.add(done);
                        }
                    }
                }
            }
            chunk_counts.created += job.create_listings(&tx, at, &marks, creates).await?;
        }
        if !refused.is_empty() && !opts.partial {
            // Pass 1 found nothing: the registry changed in between. Nothing of this chunk
            // is kept; the batch stops here and reports why.
            drop(tx);
            late_errors.extend(refused);
            job.fail_batch(db, &batch.id).await?;
            break;
        }
        not_written.keep_errors(refused, opts.max_errors);
        counts.merge(&chunk_counts);
        this_run.merge(&chunk_counts);
        // A chunk before the resume point keeps the recorded progress but saves its counts
        // (it may have corrected rows).
        job.save_batch(
            &tx,
            &batch.id,
            last_row.max(resume_after),
            &counts,
            ImportStatus::Running,
        )
        .await?;
        let wrote = chunk_counts.created + chunk_counts.updated > 0;
        if wrote {
            services.commit_list_change(tx).await?;
        } else {
            tx.commit().await?;
        }
        // The tables grow under the lookups of the chunks still to come.
        if wrote {
            written_since_check += chunk_counts.created + chunk_counts.updated;
            if written_since_check >= statistics::MIN_CHANGED_ROWS as u64 {
                written_since_check = 0;
                statistics::refresh_stale(db, statistics::IMPORT_LOOKUPS).await?;
            }
        }
        if let Some(p) = progress {
            p(Phase::Writing, last_row.saturating_sub(1), Some(total));
        }
    }
    if let Some(unreadable) = pass.unreadable.take() {
        // Pass 1 read the same bytes to their end, so this cannot happen; if it did, the
        // batch stops as for a refusal only the writing pass found.
        late_errors.push(unreadable);
        job.fail_batch(db, &batch.id).await?;
    }
    if late_errors.is_empty() {
        let tx = audit::begin_write(db).await?;
        job.save_batch(&tx, &batch.id, total + 1, &counts, ImportStatus::Done)
            .await?;
        tx.commit().await?;
        report.committed = true;
    } else {
        report.keep_errors(late_errors, opts.max_errors);
    }
    if opts.partial && report.committed {
        // Every row was planned again in this pass (a resumed run too), so its refusals
        // are the file's as written, not as validated: a row pass 1 accepted and the
        // registry then refused is rejected, not counted as unchanged.
        report.rejected = this_run.rejected;
        report.errors = not_written.errors;
        report.errors_omitted = not_written.errors_omitted;
    }
    report.created = this_run.created;
    report.updated = this_run.updated;
    report.unchanged = report
        .rows
        .saturating_sub(this_run.created + this_run.updated + report.rejected);
    Ok(report)
}

/// What one run needs.
struct Job<'a> {
    services: &'a Services,
    actor: &'a Actor,
    rules: InputRules,
    opts: &'a ImportOptions,
    sha256: String,
    /// The instant the rows are validated at (one for the whole file, both passes). What
    /// a chunk writes is recorded at the instant that chunk is written instead (the
    /// `at` of the write methods, read in the chunk loop of [`import`]).
    now: DateTime<Utc>,
}

/// A file's rows, parsed a chunk at a time.
struct Pass {
    header: Option<Header>,
    header_errors: Vec<RowError>,
    rows: Box<dyn Iterator<Item = Result<Vec<Cell>, read::ReadError>> + Send>,
    next_row: u64,
    /// The read error that ended the file before its end (`ReadError::File`): the rows
    /// after it were never read.
    unreadable: Option<RowError>,
    kind: Kind,
    rules: InputRules,
}

/// A parsed row.
enum Parsed {
    Listing(Box<ListingRow>),
    Operator(Box<OperatorRow>),
}

type Chunk = Vec<(u64, Result<Parsed, Vec<RowError>>)>;

impl Pass {
    fn next_chunk(&mut self, header: &Header, size: usize) -> Option<Chunk> {
        if self.unreadable.is_some() {
            return None;
        }
        let mut chunk = Vec::with_capacity(size);
        for cells in self.rows.by_ref() {
            let row = self.next_row;
            self.next_row += 1;
            let parsed = match cells {
                Err(read::ReadError::File(message)) => {
                    // Not one refused row: the rest of the file is unread, and a
                    // `--partial` import that wrote the rows before it and reported
                    // itself committed would drop the others silently.
                    self.unreadable = Some(RowError::new(
                        row,
                        None,
                        format!(
                            "the file cannot be read from row {row} on ({message}): the whole file is refused, even with --partial, as nothing after this row could be read"
                        ),
                    ));
                    break;
                }
                Err(read::ReadError::Row(message)) => Err(vec![RowError::new(row, None, message)]),
                Ok(cells) if cells.iter().all(|c| matches!(c, Cell::Empty)) => {
                    // A blank line (spreadsheets leave them) is not a row.
                    continue;
                }
                Ok(cells) => match self.kind {
                    Kind::Listings => rows::listing_row(header, &cells, row, self.rules)
                        .map(|r| Parsed::Listing(Box::new(r))),
                    Kind::Operators => rows::operator_row(header, &cells, row, self.rules)
                        .map(|r| Parsed::Operator(Box::new(r))),
                },
            };
            chunk.push((row, parsed));
            if chunk.len() >= size {
                break;
            }
        }
        (!chunk.is_empty()).then_some(chunk)
    }
}

/// What a valid row does.
enum Plan {
    Unchanged,
    CreateListing(Box<Target>),
    UpdateListing(Box<(listing::Model, listing_period::Model, Target)>),
    Operator(Box<(OperatorInput, bool)>),
}

impl Plan {
    fn is_create(&self) -> bool {
        match self {
            Self::CreateListing(_) => true,
            Self::Operator(op) => op.1,
            _ => false,
        }
    }
}

#[derive(Clone, Copy)]
enum Done {
    Created,
    Updated,
}

struct Outcome {
    row: u64,
    plan: Result<Plan, Vec<RowError>>,
}

#[derive(Default)]
struct Counts {
    created: u64,
    updated: u64,
    rejected: u64,
}

impl Counts {
    fn of(b: &import_batch::Model) -> Self {
        Self {
            created: u64::try_from(b.created).unwrap_or(0),
            updated: u64::try_from(b.updated).unwrap_or(0),
            rejected: 0,
        }
    }
    fn add(&mut self, d: Done) {
        match d {
            Done::Created => self.created += 1,
            Done::Updated => self.updated += 1,
        }
    }
    fn merge(&mut self, o: &Counts) {
        self.created += o.created;
        self.updated += o.updated;
        self.rejected += o.rejected;
    }
}

/// The marks every write of a batch carries.
struct Marks {
    file_name: String,
    sha256: String,
    batch_id: String,
}

impl Marks {
    fn marker(&self, row: u64) -> Value {
        json!({"file": self.file_name, "sha256": self.sha256, "batch": self.batch_id, "row": row})
    }
    fn reason(&self, row: u64, correction: bool) -> String {
        format!(
            "{} {} (sha256 {}), batch {}, row {row}",
            if correction {
                "corrected by the import of"
            } else {
                "imported from"
            },
            self.file_name,
            self.sha256,
            self.batch_id
        )
    }
}

/// The catalogue as an import reads it, loaded once per pass.
struct Catalogue {
    lists: HashMap<String, (credit_list::Model, ListRules, Vec<i64>)>,
    measures: HashMap<String, measure::Model>,
    measure_codes: HashMap<i64, String>,
    categories: HashSet<String>,
    calendar: WorkingCalendar,
}

impl Catalogue {
    async fn load<C: ConnectionTrait>(db: &C) -> AppResult<Self> {
        let measures_all = measure::Entity::find().all(db).await?;
        let measure_codes = measures_all
            .iter()
            .map(|m| (m.id, m.code.clone()))
            .collect();
        let active: HashMap<i64, bool> = measures_all.iter().map(|m| (m.id, m.active)).collect();
        let defaults = list_default_measure::Entity::find().all(db).await?;
        let mut lists = HashMap::new();
        for l in credit_list::Entity::find().all(db).await? {
            let rules = listings::list_rules(&l)?;
            let mut ids: Vec<i64> = defaults
                .iter()
                .filter(|d| d.list_id == l.id && active.get(&d.measure_id) == Some(&true))
                .map(|d| d.measure_id)
                .collect();
            ids.sort_unstable();
            lists.insert(l.code.clone(), (l, rules, ids));
        }
        Ok(Self {
            lists,
            measures: measures_all
                .into_iter()
                .map(|m| (m.code.clone(), m))
                .collect(),
            measure_codes,
            categories: violation_category::Entity::find()
                .all(db)
                .await?
                .into_iter()
                .map(|c| c.code)
                .collect(),
            calendar: calendar::load(db).await?,
        })
    }
}

/// Natural keys seen so far in the file, by a 96-bit digest, with the row that first had
/// each: 16 bytes an entry, so the two sets of a million-row file of listings take about
/// 70 MiB (with 128-bit digests and 64-bit rows they took 105 MiB, plus a resize's
/// transient). Two different keys share a digest with a probability of about 10⁻¹⁷ in
/// a file of a million rows; if they ever did, the second row would be refused as a
/// duplicate, never merged into the first.
#[derive(Default)]
struct Keys {
    listings: HashMap<KeyDigest, RowNumber>,
    penalties: HashMap<KeyDigest, RowNumber>,
    operators: HashMap<KeyDigest, RowNumber>,
}

type KeyDigest = [u8; 12];

/// A row number as the key sets keep it (files of more than 4 billion rows cannot be
/// represented: `u32::MAX` stands for any row past it, in a message only).
type RowNumber = u32;

impl Keys {
    /// Sets sized for a file of `rows` rows of `kind` (pass 2 knows the count: no set
    /// grows, so none holds its old and new table at once).
    fn for_rows(kind: Kind, rows: u64) -> Self {
        let rows = usize::try_from(rows).unwrap_or(usize::MAX);
        match kind {
            Kind::Listings => Self {
                listings: HashMap::with_capacity(rows),
                penalties: HashMap::with_capacity(rows),
                operators: HashMap::new(),
            },
            Kind::Operators => Self {
                operators: HashMap::with_capacity(rows),
                ..Self::default()
            },
        }
    }
}

fn row_number(row: u64) -> RowNumber {
    RowNumber::try_from(row).unwrap_or(RowNumber::MAX)
}

fn digest(parts: &[&str]) -> KeyDigest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let full = h.finalize();
    let mut out = KeyDigest::default();
    let len = out.len();
    out.copy_from_slice(&full[..len]);
    out
}

/// A listing as a row of the file sets it.
#[derive(Clone, Debug)]
struct Target {
    row: ListingRow,
    operator: Option<operator::Model>,
    list_id: i64,
    status: StoredStatus,
    authority_region: Option<String>,
    defence_deadline: NaiveDate,
    period_override: Option<i32>,
    months: u32,
    measure_ids: Vec<i64>,
    measure_codes: Vec<String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    removal_kind: Option<RemovalKind>,
    publicity_stop_deadline: Option<NaiveDate>,
}

/// What the file can say about a listing, for comparing a row with what is recorded.
#[derive(Debug, PartialEq)]
struct Facts {
    authority: String,
    authority_region: Option<String>,
    penalty_doc_no: String,
    penalty_date: NaiveDate,
    category: String,
    reason: String,
    legal_basis: String,
    notice_date: NaiveDate,
    decision_date: Option<NaiveDate>,
    months: u32,
    measures: Vec<String>,
    removal: Option<(NaiveDate, &'static str)>,
}

/// How a listing's (last) period left the list, as of `now`.
fn removal_of(
    ends_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    kind: Option<&str>,
    now: DateTime<Utc>,
) -> Option<(NaiveDate, &'static str)> {
    match removed_at {
        Some(t) => Some((
            china_date(t),
            match kind {
                Some("REPAIRED") => "REPAIRED",
                _ => "REVOKED",
            },
        )),
        None if ends_at <= now => Some((china_date(ends_at), "EXPIRED")),
        None => None,
    }
}

impl Target {
    fn facts(&self, now: DateTime<Utc>) -> Facts {
        let r = &self.row;
        Facts {
            authority: r.authority.clone(),
            authority_region: self.authority_region.clone(),
            penalty_doc_no: r.penalty_doc_no.clone(),
            penalty_date: r.penalty_date,
            category: r.category.clone(),
            reason: r.reason.clone(),
            legal_basis: r.legal_basis.clone(),
            notice_date: r.notice_date,
            decision_date: Some(r.decision_date),
            months: self.months,
            measures: self.measure_codes.clone(),
            removal: removal_of(
                self.ends_at,
                self.removed_at,
                self.removal_kind.map(RemovalKind::as_str),
                now,
            ),
        }
    }
}

/// The facts of a recorded listing: its last period's removal, the months its period
/// applies (`listing_rules::recorded_period_months`).
fn recorded_facts(
    l: &listing::Model,
    period: &listing_period::Model,
    months: u32,
    measures: Vec<String>,
    now: DateTime<Utc>,
) -> Facts {
    Facts {
        authority: l.authority.clone(),
        authority_region: Some(l.authority_region.clone()),
        penalty_doc_no: l.penalty_doc_no.clone(),
        penalty_date: l.penalty_date,
        category: l.violation_category.clone(),
        reason: l.reason.clone(),
        legal_basis: l.legal_basis.clone(),
        notice_date: l.notice_date,
        decision_date: l.decision_date,
        months,
        measures,
        removal: removal_of(
            period.ends_at,
            period.removed_at,
            period.removal_kind.as_deref(),
            now,
        ),
    }
}

/// The column a rule's refusal is about (the rules name GraphQL fields).
fn refusal_column(refusal: &Refusal, default: &'static str) -> &'static str {
    match refusal.field {
        Some("penaltyDate") => "penaltyDate",
        Some("noticeDate") => "noticeDate",
        Some("decisionDate" | "effectiveAt") => "decisionDate",
        Some("periodMonths") => "periodMonths",
        Some("expiresAt") => "removedDate",
        _ => default,
    }
}

/// Collects a row's refusals by column.
struct RowErrors<'h> {
    header: &'h Header,
    row: u64,
    errors: Vec<RowError>,
}

impl RowErrors<'_> {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(RowError::new(
            self.row,
            Some(self.header.name(key)),
            message.into(),
        ));
    }
    fn refusal(&mut self, r: &Refusal, default: &'static str) {
        self.add(refusal_column(r, default), r.message.clone());
    }
    fn app(&mut self, e: AppError, default: &'static str) -> AppResult<()> {
        match e {
            AppError::BadInput { message, details } => {
                let key = details
                    .as_ref()
                    .and_then(|d| d.get("field"))
                    .and_then(Value::as_str)
                    .map_or(default.to_string(), str::to_string);
                let key = if self.header.position(&key).is_some() {
                    key
                } else {
                    default.to_string()
                };
                self.add(&key, message);
                Ok(())
            }
            AppError::Forbidden(m) | AppError::NotFound(m) | AppError::Conflict(m) => {
                self.add(default, m);
                Ok(())
            }
            other => Err(other),
        }
    }
}

impl Job<'_> {
    fn pass(
        &self,
        file: std::fs::File,
        format: InputFormat,
        encoding: Encoding,
    ) -> AppResult<Pass> {
        let limits = read::ReadLimits {
            max_part_bytes: self.opts.max_xlsx_part_bytes,
            max_cell_chars: self.rules.max_string_chars,
        };
        let opened = read::open_with(std::io::BufReader::new(file), format, encoding, limits)
            .map_err(AppError::bad_input)?;
        let (header, header_errors) = match Header::match_row(self.opts.kind, &opened.headers) {
            Ok(h) => (Some(h), Vec::new()),
            Err(e) => (None, e),
        };
        Ok(Pass {
            header,
            header_errors,
            rows: opened.rows,
            next_row: 2,
            unreadable: None,
            kind: self.opts.kind,
            rules: self.rules,
        })
    }

    fn scope(&self) -> Option<&str> {
        self.actor.identity.region.as_deref()
    }

    /// Checks a chunk against the registry as `db` sees it.
    async fn validate<C: ConnectionTrait>(
        &self,
        db: &C,
        header: &Header,
        cat: &Catalogue,
        keys: &mut Keys,
        chunk: Chunk,
    ) -> AppResult<Vec<Outcome>> {
        let codes: Vec<String> = chunk
            .iter()
            .filter_map(|(_, p)| match p {
                Ok(Parsed::Listing(r)) => Some(r.uscc.clone()),
                Ok(Parsed::Operator(r)) => Some(r.uscc.clone()),
                Err(_) => None,
            })
            .collect();
        let operators: HashMap<String, operator::Model> = if codes.is_empty() {
            HashMap::new()
        } else {
            operator::Entity::find()
                .filter(operator::Column::Uscc.is_in(codes))
                .all(db)
                .await?
                .into_iter()
                .map(|o| (o.uscc.clone(), o))
                .collect()
        };
        match self.opts.kind {
            Kind::Listings => {
                self.validate_listings(db, header, cat, keys, chunk, &operators)
                    .await
            }
            Kind::Operators => {
                let mut out = Vec::with_capacity(chunk.len());
                for (row, parsed) in chunk {
                    let plan = match parsed {
                        Ok(Parsed::Operator(r)) => self.plan_operator(header, keys, &r, &operators),
                        Ok(Parsed::Listing(_)) => {
                            Err(vec![RowError::new(row, None, "not an operator row")])
                        }
                        Err(e) => Err(e),
                    };
                    out.push(Outcome { row, plan });
                }
                Ok(out)
            }
        }
    }

    fn plan_operator(
        &self,
        header: &Header,
        keys: &mut Keys,
        r: &OperatorRow,
        operators: &HashMap<String, operator::Model>,
    ) -> Result<Plan, Vec<RowError>> {
        let mut e = RowErrors {
            header,
            row: r.row,
            errors: Vec::new(),
        };
        let code =
            match operators::parse_admin_uscc(&r.uscc, r.check_digit_override_reason.as_deref()) {
                Ok((code, _)) => Some(code),
                Err(err) => {
                    // An already registered code keeps its recorded override.
                    let registered = operators
                        .get(&r.uscc)
                        .is_some_and(|o| o.check_digit_override.is_some());
                    match Uscc::parse_format(&r.uscc) {
                        Ok(code) if registered => Some(code),
                        _ => {
                            e.app(err, "uscc").ok();
                            None
                        }
                    }
                }
            };
        if let Some(code) = &code {
            // An empty cell keeps a registered operator's division (as upsertOperator
            // does); a new operator takes its code's.
            let region = r
                .region_code
                .clone()
                .or_else(|| operators.get(code.as_str()).map(|o| o.region_code.clone()))
                .unwrap_or_else(|| code.division().to_string());
            if !scope_covers(self.scope(), &region) {
                e.add(
                    "uscc",
                    format!(
                        "an admin of region {} may not act on operators registered in {region}",
                        self.scope().unwrap_or("-")
                    ),
                );
            }
            if let Some(existing) = operators.get(code.as_str())
                && let Err(err) = ensure_scope(self.actor, existing)
            {
                e.add("uscc", err.to_string());
            }
            if let Some(first) = keys
                .operators
                .insert(digest(&[code.as_str()]), row_number(r.row))
            {
                e.add(
                    "uscc",
                    format!("operator {code} is already in row {first} of this file"),
                );
            }
        }
        if !e.errors.is_empty() {
            return Err(e.errors);
        }
        let input = OperatorInput {
            uscc: r.uscc.clone(),
            name: r.name.clone(),
            entity_type: r.entity_type.clone(),
            region_code: r.region_code.clone(),
            legal_representative: r.legal_representative.clone(),
            legal_rep_id_number: r.legal_rep_id_number.clone(),
            address: r.address.clone(),
            address_is_personal: r.address_is_personal,
            check_digit_override_reason: r.check_digit_override_reason.clone(),
            expected_version: None,
        };
        match operators.get(&r.uscc) {
            Some(o) if operator_unchanged(o, r) => Ok(Plan::Unchanged),
            Some(_) => Ok(Plan::Operator(Box::new((input, false)))),
            None => Ok(Plan::Operator(Box::new((input, true)))),
        }
    }

    async fn validate_listings<C: ConnectionTrait>(
        &self,
        db: &C,
        header: &Header,
        cat: &Catalogue,
        keys: &mut Keys,
        chunk: Chunk,
        operators: &HashMap<String, operator::Model>,
    ) -> AppResult<Vec<Outcome>> {
        // What is recorded for the chunk's natural keys and penalty decisions. Both name
        // the operator, so only the listings of the chunk's registered operators can match:
        // one indexed lookup (none at all for a file of new operators).
        let mut docs: HashSet<&str> = HashSet::new();
        // Penalty decisions by their matching key, as proposeListing finds the same one
        // typed another way (DocumentNumber::matching_key).
        let mut penalties: HashSet<String> = HashSet::new();
        for (_, p) in &chunk {
            if let Ok(Parsed::Listing(r)) = p {
                docs.insert(r.decision_doc_no.as_str());
                penalties.insert(DocumentNumber::matching_key(&r.penalty_doc_no));
            }
        }
        let operator_ids: Vec<i64> = operators.values().map(|o| o.id).collect();
        let of_operators = if operator_ids.is_empty() || docs.is_empty() {
            Vec::new()
        } else {
            listing::Entity::find()
                .filter(listing::Column::OperatorId.is_in(operator_ids))
                .all(db)
                .await?
        };
        let mut by_doc: HashMap<ListingKey, listing::Model> = HashMap::new();
        let mut by_penalty: HashMap<ListingKey, Vec<listing::Model>> = HashMap::new();
        for l in of_operators {
            if matches!(l.status, StoredStatus::Proposed | StoredStatus::Listed) {
                let penalty_key = DocumentNumber::matching_key(&l.penalty_doc_no);
                if penalties.contains(&penalty_key) {
                    by_penalty
                        .entry((l.operator_id, l.list_id, penalty_key))
                        .or_default()
                        .push(l.clone());
                }
            }
            if let Some(doc) = l.decision_doc_no.as_deref()
                && docs.contains(doc)
            {
                by_doc
                    .entry((l.operator_id, l.list_id, doc.to_string()))
                    .or_insert(l);
            }
        }
        let ids: Vec<i64> = by_doc.values().map(|l| l.id).collect();
        let mut periods: HashMap<i64, Vec<listing_period::Model>> = HashMap::new();
        let mut measures: HashMap<i64, Vec<String>> = HashMap::new();
        if !ids.is_empty() {
            for p in listing_period::Entity::find()
                .filter(listing_period::Column::ListingId.is_in(ids.clone()))
                .all(db)
                .await?
            {
                periods.entry(p.listing_id).or_default().push(p);
            }
            for m in listing_measure::Entity::find()
                .filter(listing_measure::Column::ListingId.is_in(ids))
                .all(db)
                .await?
            {
                if let Some(code) = cat.measure_codes.get(&m.measure_id) {
                    measures.entry(m.listing_id).or_default().push(code.clone());
                }
            }
        }
        for ps in periods.values_mut() {
            ps.sort_by_key(|p| (p.starts_at, p.id));
        }
        for ms in measures.values_mut() {
            ms.sort();
        }
        let mut out = Vec::with_capacity(chunk.len());
        for (row, parsed) in chunk {
            let plan = match parsed {
                Err(e) => Err(e),
                Ok(Parsed::Operator(_)) => Err(vec![RowError::new(row, None, "not a listing row")]),
                Ok(Parsed::Listing(r)) => {
                    let recorded = Recorded {
                        by_doc: &by_doc,
                        by_penalty: &by_penalty,
                        periods: &periods,
                        measures: &measures,
                    };
                    self.plan_listing(header, cat, keys, *r, operators, &recorded)
                }
            };
            out.push(Outcome { row, plan });
        }
        Ok(out)
    }

    fn plan_listing(
        &self,
        header: &Header,
        cat: &Catalogue,
        keys: &mut Keys,
        r: ListingRow,
        operators: &HashMap<String, operator::Model>,
        recorded: &Recorded<'_>,
    ) -> Result<Plan, Vec<RowError>> {
        let mut e = RowErrors {
            header,
            row: r.row,
            errors: Vec::new(),
        };
        let today = china_date(self.now);
        // The operator: registered (in the admin's region), or registered by this row.
        let existing_op = operators.get(&r.uscc).cloned();
        match Uscc::parse_format(&r.uscc) {
            Err(err) => e.add("uscc", err.to_string()),
            Ok(code) => {
                match &existing_op {
                    Some(op) => {
                        if let Err(err) = ensure_scope(self.actor, op) {
                            e.add("uscc", err.to_string());
                        }
                    }
                    None => {
                        if let Some(problem) = code.check_digit_problem() {
                            e.add("uscc", format!("{problem}; register a genuine older code with its override reason (import operators) first"));
                        }
                        if !scope_covers(self.scope(), code.division()) {
                            e.add("uscc", format!("an admin of region {} may not act on operators registered in {}", self.scope().unwrap_or("-"), code.division()));
                        }
                        if r.name.is_none() {
                            e.add("name", format!("operator {code} is not registered: its name is needed to register it"));
                        }
                    }
                }
            }
        }
        // The catalogue.
        let list = match cat.lists.get(r.list.as_str()) {
            None => {
                e.add("list", format!("there is no list with code '{}'", r.list));
                None
            }
            // An inactive list takes no new listing; its recorded ones are still
            // compared and corrected (below), as correctListing corrects them.
            Some(found) => Some(found),
        };
        if !cat.categories.contains(&r.category) {
            e.add(
                "category",
                format!("there is no violation category '{}'", r.category),
            );
        }
        // The listing recorded here under the row's natural key, if any.
        let matched = list.zip(existing_op.as_ref()).and_then(|((list, ..), op)| {
            recorded
                .by_doc
                .get(&(op.id, list.id, r.decision_doc_no.clone()))
        });
        if let Some((l, ..)) = list
            && !l.active
            && matched.is_none()
        {
            e.add("list", format!("list {} is not active", l.code));
        }
        // The rules that bind new decisions (an active list, active measures, the defence
        // period by today's calendar) do not refuse a row that restates the record: an
        // export of a retired list, of a deactivated measure or of a listing whose
        // calendar year was reloaded since must re-import unchanged, and correctListing
        // checks none of them either.
        let recorded_codes: &[String] = matched
            .and_then(|l| recorded.measures.get(&l.id))
            .map_or(&[], Vec::as_slice);
        let mut measure_ids = Vec::new();
        let mut measure_codes = Vec::new();
        match &r.measures {
            Some(codes) => {
                let mut unknown = Vec::new();
                for c in codes {
                    match cat.measures.get(c) {
                        Some(m) if m.active || recorded_codes.contains(&m.code) => {
                            if !measure_ids.contains(&m.id) {
                                measure_ids.push(m.id);
                                measure_codes.push(m.code.clone());
                            }
                        }
                        _ => unknown.push(c.as_str()),
                    }
                }
                if !unknown.is_empty() {
                    e.add(
                        "measures",
                        format!("unknown or inactive measure codes: {}", unknown.join(", ")),
                    );
                }
            }
            // A listing recorded here keeps its measures: the cell is empty in a file
            // written before the list's defaults changed (or a default measure was
            // deactivated), and the file still says what it said.
            None if matched.is_some() => {
                for c in recorded_codes {
                    if let Some(m) = cat.measures.get(c) {
                        measure_ids.push(m.id);
                        measure_codes.push(m.code.clone());
                    }
                }
            }
            // A new listing: the list's defaults.
            None => {
                if let Some((_, _, defaults)) = list {
                    for id in defaults {
                        measure_ids.push(*id);
                        if let Some(c) = cat.measure_codes.get(id) {
                            measure_codes.push(c.clone());
                        }
                    }
                }
            }
        }
        measure_codes.sort();
        // A new listing applies at least one measure, as decideListing requires: with
        // none it would be listed while every check answered CLEAR. (A recorded one keeps
        // what it has; a row cannot name an empty set.)
        if matched.is_none()
            && list.is_some()
            && let Err(rf) =
                listing_rules::check_measures_present(measure_ids.len(), r.measures.is_none())
        {
            e.refusal(&rf, "measures");
        }
        // The dates, by the mutations' rules.
        if let Err(rf) = listing_rules::check_proposal_dates(r.penalty_date, r.notice_date, today) {
            e.refusal(&rf, "noticeDate");
        }
        let Some((list, rules, _)) = list else {
            return Err(e.errors);
        };
        let rules = *rules;
        // The matched listing's period as recorded, with the months it applies (not the
        // list's default, which may have changed since: `recorded_period_months` says why).
        let recorded_period = matched.and_then(|l| {
            recorded
                .periods
                .get(&l.id)
                .and_then(|ps| ps.first())
                .map(|p| RecordedPeriod {
                    starts_at: p.starts_at,
                    ends_at: p.ends_at,
                    months: listing_rules::recorded_period_months(
                        l.period_months_override,
                        p.starts_at,
                        p.ends_at,
                    ),
                })
        });
        let recorded_months = recorded_period.map(|p| p.months);
        // A recorded listing's notice date restated: its recorded deadline, which a
        // calendar reloaded since must not move.
        let recorded_deadline = matched
            .filter(|l| l.notice_date == r.notice_date)
            .map(|l| l.defence_deadline);
        let defence_deadline = match recorded_deadline {
            Some(d) => Some(d),
            None => match cat
                .calendar
                .add_working_days(r.notice_date, rules.defence_working_days)
            {
                Ok(d) => Some(d),
                Err(err) => {
                    e.add("noticeDate", calendar::calendar_error(err).to_string());
                    None
                }
            },
        };
        // As correctListing: the dates are judged only when a row changes one, so a
        // correction of other facts does not fail on how the record was decided.
        let dates_as_recorded = matched.is_some_and(|l| {
            l.penalty_date == r.penalty_date
                && l.notice_date == r.notice_date
                && l.decision_date == Some(r.decision_date)
        });
        let mut period = None;
        if let Some(deadline) = defence_deadline {
            let proposal = Proposal {
                notice_date: r.notice_date,
                defence_deadline: deadline,
            };
            let checked = match recorded_period {
                Some(_) if dates_as_recorded => Ok(()),
                // A correction of a listing recorded here: correctListing's rule, which
                // also keeps the decision at or before the instant the listing took
                // effect (the start stays as recorded, see `period`). A decision inside
                // the defence period may be kept (recorded so) or stated (the row's
                // 放弃陈述申辩), as a decision may be taken with the waiver.
                Some(p) => listing_rules::check_corrected_dates(
                    listing_rules::CorrectedDates {
                        penalty_date: r.penalty_date,
                        notice_date: r.notice_date,
                        defence_deadline: deadline,
                        decision_date: Some(r.decision_date),
                        decided_inside_defence_period: r.defence_waived
                            || matched.is_some_and(|l| {
                                l.decision_date.is_some_and(|d| d <= l.defence_deadline)
                            }),
                        first_start: Some(p.starts_at),
                    },
                    today,
                ),
                None => listing_rules::check_decision_date(
                    proposal,
                    r.decision_date,
                    r.defence_waived,
                    today,
                ),
            };
            if let Err(rf) = checked {
                e.refusal(&rf, "decisionDate");
            } else {
                period = self.period(&mut e, &r, rules, recorded_period, &cat.calendar);
            }
        }
        // The natural key, once per file.
        if let Some(first) = keys.listings.insert(
            digest(&[&r.list, &r.decision_doc_no, &r.uscc]),
            row_number(r.row),
        ) {
            e.add("decisionDocNo", format!("the same listing (list {}, decision {}, code {}) is already in row {first} of this file", r.list, r.decision_doc_no, r.uscc));
        }
        let removed_early = matches!(
            r.removal,
            Some((_, RemovalKind::Repaired | RemovalKind::Revoked))
        );
        let penalty_key = DocumentNumber::matching_key(&r.penalty_doc_no);
        if !removed_early
            && let Some(first) = keys
                .penalties
                .insert(digest(&[&r.list, &penalty_key, &r.uscc]), row_number(r.row))
        {
            e.add(
                "penaltyDocNo",
                format!(
                    "row {first} of this file already lists {} on {} for penalty decision {}",
                    r.uscc, r.list, r.penalty_doc_no
                ),
            );
        }
        if let Some(op) = &existing_op
            && !removed_early
            && let Some(other) = recorded
                .by_penalty
                .get(&(op.id, list.id, penalty_key))
                .and_then(|ls| ls.iter().find(|l| Some(l.id) != matched.map(|m| m.id)))
        {
            e.add(
                "penaltyDocNo",
                format!(
                    "listing {} already rests on penalty decision {} for this operator and list",
                    other.id, r.penalty_doc_no
                ),
            );
        }
        if !e.errors.is_empty() {
            return Err(e.errors);
        }
        let (
            Some(defence_deadline),
            Some((starts_at, months, ends_at, removed_at, publicity_stop_deadline)),
        ) = (defence_deadline, period)
        else {
            return Err(e.errors);
        };
        let target = Target {
            operator: existing_op,
            list_id: list.id,
            status: match r.removal {
                Some((_, RemovalKind::Repaired)) => StoredStatus::Repaired,
                Some((_, RemovalKind::Revoked)) => StoredStatus::Revoked,
                _ => StoredStatus::Listed,
            },
            authority_region: r.authority_region.clone(),
            defence_deadline,
            period_override: (months != rules.period_months)
                .then(|| i32::try_from(months).unwrap_or(i32::MAX)),
            months,
            measure_ids,
            measure_codes,
            starts_at,
            ends_at,
            removed_at,
            removal_kind: r
                .removal
                .map(|(_, k)| k)
                .filter(|k| *k != RemovalKind::Expired),
            publicity_stop_deadline,
            row: r,
        };
        let Some(l) = matched else {
            return Ok(Plan::CreateListing(Box::new(target)));
        };
        let ps = recorded.periods.get(&l.id).cloned().unwrap_or_default();
        let ms = recorded.measures.get(&l.id).cloned().unwrap_or_default();
        let Some(last) = ps.last().cloned() else {
            return Err(vec![RowError::new(
                target.row.row,
                Some(header.name("decisionDocNo")),
                format!("listing {} has no period", l.id),
            )]);
        };
        let mut facts = target.facts(self.now);
        if facts.authority_region.is_none() {
            // No column: the recorded division stands.
            facts.authority_region = Some(l.authority_region.clone());
        }
        let on_record = recorded_months.unwrap_or(rules.period_months);
        if facts == recorded_facts(l, &last, on_record, ms, self.now) {
            return Ok(Plan::Unchanged);
        }
        // A row differs: it may correct the facts, not move the listing through its
        // lifecycle (`check_imported_removal` says why).
        // Read as the comparison above and the export read it (the period's removal),
        // so that a row equal to an export of the listing always passes.
        let recorded_removal = removal_of(
            last.ends_at,
            last.removed_at,
            last.removal_kind.as_deref(),
            self.now,
        )
        .and_then(|(on, kind)| early_removal(on, kind));
        let row_removal = target
            .row
            .removal
            .and_then(|(on, kind)| early_removal(on, kind.as_str()));
        if let Err(rf) = check_imported_removal(l.id, recorded_removal, row_removal) {
            return Err(vec![RowError::new(
                target.row.row,
                Some(header.name("removedDate")),
                rf.message,
            )]);
        }
        if ps.len() != 1 {
            return Err(vec![RowError::new(
                target.row.row,
                Some(header.name("decisionDocNo")),
                format!(
                    "listing {} was changed here since its decision (a revoked repair gave it a second period): correct it with correctListing, not by import",
                    l.id
                ),
            )]);
        }
        // correctListing's end rules: a row may re-date the end, not take the listing off
        // the list now nor put it back, and not cut a listing in force below the list's
        // period (an early removal a moment after now, else).
        let column = if target.row.removal.is_some() {
            "removedDate"
        } else {
            "periodMonths"
        };
        let refused = |message: String| {
            vec![RowError::new(
                target.row.row,
                Some(header.name(column)),
                message,
            )]
        };
        listing_rules::check_corrected_end_keeps_state(
            last.ends_at,
            target.ends_at,
            last.removed_at.is_some(),
            self.now,
        )
        .map_err(|rf| refused(rf.message))?;
        listing_rules::check_shortened_end_keeps_minimum(
            last.starts_at,
            last.ends_at,
            target.ends_at,
            last.removed_at.is_some(),
            rules,
            self.now,
        )
        .map_err(|rf| refused(rf.message))?;
        Ok(Plan::UpdateListing(Box::new((l.clone(), last, target))))
    }

    /// The period a decided row sets: from the start of its decision date (Beijing) for
    /// the list's period (or the row's longer one), ended or removed as the row says.
    ///
    /// A listing recorded here (`recorded`) is corrected, not decided again. It keeps its
    /// recorded start: the row cannot express an `effectiveAt` later than the decision
    /// date's midnight, and `correctListing` never moves a start either. It keeps its
    /// months where the row names none, and its recorded end, to the instant, while the
    /// months stay as recorded: an end corrected off a month boundary (`expiresAt`),
    /// whose months the export rounds down, must survive a row that changes only the
    /// reason. Other months (shorter than the list's default included, as
    /// `correctListing` may set them) end the period that many months after the recorded
    /// start.
    #[allow(clippy::type_complexity)]
    fn period(
        &self,
        e: &mut RowErrors<'_>,
        r: &ListingRow,
        rules: ListRules,
        recorded: Option<RecordedPeriod>,
        cal: &WorkingCalendar,
    ) -> Option<(
        DateTime<Utc>,
        u32,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<NaiveDate>,
    )> {
        let recorded_months = recorded.map(|p| p.months);
        let starts_at = match recorded {
            Some(p) => p.starts_at,
            None => match listing_rules::effective_from(r.decision_date, None, self.now) {
                Ok(t) => t,
                Err(rf) => {
                    e.refusal(&rf, "decisionDate");
                    return None;
                }
            },
        };
        let months = match (r.period_months, recorded_months) {
            (None, Some(recorded)) => recorded,
            (Some(m), Some(_)) => match u32::try_from(m) {
                Ok(m) => m,
                Err(_) => {
                    e.add("periodMonths", format!("periodMonths {m} is negative"));
                    return None;
                }
            },
            (requested, None) => match listing_rules::period_months(requested, rules) {
                Ok(m) => m,
                Err(rf) => {
                    e.refusal(&rf, "periodMonths");
                    return None;
                }
            },
        };
        let mut ends_at = match recorded {
            Some(p) if p.months == months => p.ends_at,
            _ => match listing_rules::period_end(starts_at, months) {
                Ok(t) => t,
                Err(rf) => {
                    e.refusal(&rf, "periodMonths");
                    return None;
                }
            },
        };
        if recorded_months.is_some()
            && let Err(rf) = listing_rules::check_corrected_end(starts_at, ends_at)
        {
            e.add(
                "periodMonths",
                format!(
                    "periodMonths {months} is not a period a correction may set: {}",
                    rf.message
                ),
            );
            return None;
        }
        let mut removed_at = None;
        let mut publicity = None;
        if let Some((date, kind)) = r.removal {
            let at = china_midnight(date);
            // A row names a day: a recorded start later than its midnight (a later
            // `effectiveAt`) still allows a removal dated that day, as recorded.
            let listed_from = match recorded {
                Some(_) => china_midnight(china_date(starts_at)),
                None => starts_at,
            };
            if let Err(rf) =
                listing_rules::removal_effective_at(Some(at), Some(listed_from), self.now)
            {
                e.add(
                    "removedDate",
                    rf.message.replace("effectiveAt", "removedDate"),
                );
                return None;
            }
            match kind {
                // The recorded end's own day: the recorded end, to the instant.
                RemovalKind::Expired if recorded.is_some() && date == china_date(ends_at) => {}
                // A new listing's period ends where its months end it: any other day
                // would be an early removal without the repair minimum or a revocation
                // (or a period longer than the months the row keeps).
                RemovalKind::Expired if recorded.is_none() => {
                    let end = china_date(ends_at);
                    if date != end {
                        e.add(
                            "removedDate",
                            format!(
                                "removedDate {date} is not the end of the period ({months} months from {}, so {end}): an EXPIRED removal is the end of its period; a removal before it is REPAIRED or REVOKED",
                                china_date(starts_at)
                            ),
                        );
                        return None;
                    }
                }
                // A recorded listing's end corrected to another day, as correctListing's
                // expiresAt may.
                RemovalKind::Expired => {
                    if let Err(rf) = listing_rules::check_corrected_end(starts_at, at) {
                        e.add(
                            "removedDate",
                            rf.message.replace("expiresAt", "removedDate"),
                        );
                        return None;
                    }
                    ends_at = at;
                }
                RemovalKind::Repaired | RemovalKind::Revoked => {
                    // Only a new listing: a recorded one keeps its recorded removal
                    // (`check_imported_removal`), which a list's minimum raised
                    // since must not turn into a refusal of the unchanged row.
                    if kind == RemovalKind::Repaired
                        && recorded_months.is_none()
                        && let Err(message) =
                            repair_minimum(china_date(starts_at), rules.repair_min_months, date)
                    {
                        e.add("removedDate", message);
                        return None;
                    }
                    if at >= ends_at {
                        e.add("removedDate", format!("removedDate {date} is after the period's end ({}): the listing had expired by then", china_date(ends_at)));
                        return None;
                    }
                    removed_at = Some(at);
                }
            }
            if kind == RemovalKind::Revoked && recorded.is_none() {
                // Publicity had to stop within the list's limit (Order 44 Art. 19). A
                // recorded revocation keeps its own deadline (`update_listing` writes
                // none), whatever the calendar says now.
                match cal.add_working_days(date, rules.publicity_stop_working_days) {
                    Ok(d) => publicity = Some(d),
                    Err(err) => {
                        e.add("removedDate", calendar::calendar_error(err).to_string());
                        return None;
                    }
                }
            }
        }
        Some((starts_at, months, ends_at, removed_at, publicity))
    }
}

/// A removal named as the file and `removal_of` name them (`REPAIRED`, `REVOKED`,
/// `EXPIRED`), as an early removal: an expiry is none.
fn early_removal(on: NaiveDate, kind: &str) -> Option<EarlyRemoval> {
    let kind = match kind {
        "REPAIRED" => StoredStatus::Repaired,
        "REVOKED" => StoredStatus::Revoked,
        _ => return None,
    };
    Some(EarlyRemoval { kind, on })
}

/// An imported repair obeys the repair procedure's minimum (`domain::repair::minimum_listed`):
/// a file may record an early removal decided elsewhere, not one the procedure here would
/// have refused.
fn repair_minimum(listed_on: NaiveDate, min_months: u32, on: NaiveDate) -> Result<(), String> {
    match minimum_listed(listed_on, min_months, on) {
        MinimumListed::Reached(_) => Ok(()),
        MinimumListed::NotYet(from) => Err(format!(
            "removedDate {on} is too early for a REPAIRED removal: a listing may be removed by credit repair only after {min_months} months on the list (listed since {listed_on}, so from {from})"
        )),
        MinimumListed::BeyondCalendar => Err(format!(
            "removedDate {on}: {min_months} months after {listed_on} is beyond the calendar"
        )),
    }
}

/// A recorded listing's first period, which a row corrects (`Job::period`).
#[derive(Clone, Copy)]
struct RecordedPeriod {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// The months it applies (`listing_rules::recorded_period_months`).
    months: u32,
}

/// Operator id, list id and a document number.
type ListingKey = (i64, i64, String);

/// What is recorded for a chunk's rows.
struct Recorded<'a> {
    /// By operator, list and decision document number (the natural key).
    by_doc: &'a HashMap<ListingKey, listing::Model>,
    /// Proposed or listed, by operator, list and penalty decision number.
    by_penalty: &'a HashMap<ListingKey, Vec<listing::Model>>,
    periods: &'a HashMap<i64, Vec<listing_period::Model>>,
    measures: &'a HashMap<i64, Vec<String>>,
}

/// Whether a registered operator already holds what the row says.
fn operator_unchanged(o: &operator::Model, r: &OperatorRow) -> bool {
    o.name == r.name
        && o.entity_type == r.entity_type
        && r.region_code.as_ref().is_none_or(|c| c == &o.region_code)
        && o.legal_representative == r.legal_representative
        && o.legal_rep_id_number == r.legal_rep_id_number
        && o.address == r.address
        && r.address_is_personal
            .is_none_or(|p| p == o.address_is_personal)
        && (r.check_digit_override_reason.is_none()
            || o.check_digit_override == r.check_digit_override_reason)
}

impl Job<'_> {
    /// The batch of this file: an interrupted one (RUNNING) is resumed, else a new one.
    async fn open_batch(
        &self,
        db: &DatabaseConnection,
        total: u64,
    ) -> AppResult<import_batch::Model> {
        let running = import_batch::Entity::find()
            .filter(import_batch::Column::FileSha256.eq(&self.sha256))
            .filter(import_batch::Column::Kind.eq(self.opts.kind.as_str()))
            .filter(import_batch::Column::Status.eq(ImportStatus::Running))
            .one(db)
            .await?;
        if let Some(b) = running {
            return Ok(b);
        }
        let total = i64::try_from(total).map_err(AppError::internal)?;
        Ok(import_batch::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            kind: Set(self.opts.kind.as_str().into()),
            file_name: Set(self.opts.file_name.clone()),
            file_sha256: Set(self.sha256.clone()),
            actor: Set(self.actor.identity.subject.clone()),
            total_rows: Set(total),
            last_committed_row: Set(1),
            status: Set(ImportStatus::Running),
            created: Set(0),
            updated: Set(0),
            unchanged: Set(0),
            rejected: Set(0),
            started_at: Set(self.now),
            updated_at: Set(self.now),
        }
        .insert(db)
        .await?)
    }

    async fn save_batch<C: ConnectionTrait>(
        &self,
        db: &C,
        id: &str,
        last_row: u64,
        counts: &Counts,
        status: ImportStatus,
    ) -> AppResult<()> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        import_batch::ActiveModel {
            id: Set(id.to_string()),
            last_committed_row: Set(n(last_row)),
            status: Set(status),
            created: Set(n(counts.created)),
            updated: Set(n(counts.updated)),
            rejected: Set(n(counts.rejected)),
            updated_at: Set(self.services.clock.now()),
            ..Default::default()
        }
        .update(db)
        .await?;
        Ok(())
    }

    async fn fail_batch(&self, db: &DatabaseConnection, id: &str) -> AppResult<()> {
        import_batch::ActiveModel {
            id: Set(id.to_string()),
            status: Set(ImportStatus::Failed),
            updated_at: Set(self.services.clock.now()),
            ..Default::default()
        }
        .update(db)
        .await?;
        Ok(())
    }

    /// Writes one planned row inside the chunk's transaction.
    async fn apply(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        at: DateTime<Utc>,
        marks: &Marks,
        row: u64,
        plan: Plan,
    ) -> AppResult<Option<Done>> {
        match plan {
            Plan::Unchanged => Ok(None),
            Plan::Operator(op) => {
                let (input, created) = *op;
                operators::upsert_in(tx, self.actor, at, input, Some(marks.reason(row, false)))
                    .await?;
                Ok(Some(if created {
                    Done::Created
                } else {
                    Done::Updated
                }))
            }
            Plan::CreateListing(target) => {
                self.create_listings(tx, at, marks, vec![*target]).await?;
                Ok(Some(Done::Created))
            }
            Plan::UpdateListing(update) => {
                let (l, period, target) = *update;
                self.update_listing(tx, at, marks, l, period, target)
                    .await?;
                Ok(Some(Done::Updated))
            }
        }
    }

    /// Writes a chunk's new listings: the operators they register, the listings, their
    /// periods and measures, their revisions and audit events, each table in one
    /// multi-row INSERT (split only at the bind-parameter limit). What is written is what
    /// `decideListing` would leave, row for row: the same snapshot in the revision and the
    /// event (marked with the file, batch and row), one `operator.create` event before the
    /// listing's own for a code the file registers, the chain linked event by event.
    async fn create_listings(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        at: DateTime<Utc>,
        marks: &Marks,
        targets: Vec<Target>,
    ) -> AppResult<u64> {
        use crate::store::insert_many::{insert_all, insert_listing_measures, insert_returning};
        if targets.is_empty() {
            return Ok(0);
        }
        // The operators the chunk registers: the first row naming an unregistered code.
        let mut registers: HashMap<String, (u64, String)> = HashMap::new();
        let mut new_operators = Vec::new();
        for t in &targets {
            let r = &t.row;
            if t.operator.is_some() || registers.contains_key(&r.uscc) {
                continue;
            }
            let input = OperatorInput {
                uscc: r.uscc.clone(),
                name: r.name.clone().unwrap_or_default(),
                ..Default::default()
            };
            let checked = operators::check_input(self.actor, input)?;
            registers.insert(r.uscc.clone(), (r.row, checked.uscc().to_string()));
            new_operators.push(checked.new_operator(None, at));
        }
        let by_code: HashMap<String, operator::Model> = insert_returning(tx, new_operators)
            .await?
            .into_iter()
            .map(|o| (o.uscc.clone(), o))
            .collect();
        let operator_of = |t: &Target| -> AppResult<operator::Model> {
            match &t.operator {
                Some(op) => Ok(op.clone()),
                None => registers
                    .get(&t.row.uscc)
                    .and_then(|(_, code)| by_code.get(code))
                    .cloned()
                    .ok_or_else(|| {
                        AppError::internal(anyhow::anyhow!(
                            "operator {} of row {} was not registered",
                            t.row.uscc,
                            t.row.row
                        ))
                    }),
            }
        };
        let mut rows = Vec::with_capacity(targets.len());
        for t in &targets {
            let op = operator_of(t)?;
            let r = &t.row;
            rows.push(listing::ActiveModel {
                operator_id: Set(op.id),
                list_id: Set(t.list_id),
                status: Set(t.status),
                authority: Set(r.authority.clone()),
                authority_region: Set(t
                    .authority_region
                    .clone()
                    .unwrap_or_else(|| op.region_code.clone())),
                penalty_doc_no: Set(r.penalty_doc_no.clone()),
                penalty_date: Set(r.penalty_date),
                violation_category: Set(r.category.clone()),
                reason: Set(r.reason.clone()),
                legal_basis: Set(r.legal_basis.clone()),
                notice_date: Set(r.notice_date),
                defence_deadline: Set(t.defence_deadline),
                proposed_at: Set(at),
                decision_doc_no: Set(Some(r.decision_doc_no.clone())),
                decision_date: Set(Some(r.decision_date)),
                period_months_override: Set(t.period_override),
                removal_doc_no: Set(None),
                removal_reason: Set(removal_reason(t)),
                publicity_stop_deadline: Set(t.publicity_stop_deadline),
                version: Set(1),
                created_at: Set(at),
                updated_at: Set(at),
                ..Default::default()
            });
        }
        // Matched back by the natural key, not by the order rows come back in.
        let key =
            |operator_id: i64, list_id: i64, doc: &str| (operator_id, list_id, doc.to_string());
        let mut saved: HashMap<(i64, i64, String), listing::Model> = insert_returning(tx, rows)
            .await?
            .into_iter()
            .map(|l| {
                let doc = l.decision_doc_no.clone().unwrap_or_default();
                (key(l.operator_id, l.list_id, &doc), l)
            })
            .collect();
        let mut written = Vec::with_capacity(targets.len());
        for t in targets {
            let op = operator_of(&t)?;
            let l = saved
                .remove(&key(op.id, t.list_id, &t.row.decision_doc_no))
                .ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!(
                        "the listing of row {} was not stored",
                        t.row.row
                    ))
                })?;
            written.push((t, op, l));
        }
        let periods: Vec<listing_period::ActiveModel> = written
            .iter()
            .map(|(t, _, l)| listing_period::ActiveModel {
                listing_id: Set(l.id),
                starts_at: Set(t.starts_at),
                ends_at: Set(t.ends_at),
                removed_at: Set(t.removed_at),
                removal_kind: Set(t.removal_kind.map(|k| k.as_str().to_string())),
                ..Default::default()
            })
            .collect();
        let mut periods_of: HashMap<i64, Vec<listing_period::Model>> = HashMap::new();
        for p in insert_returning(tx, periods).await? {
            periods_of.entry(p.listing_id).or_default().push(p);
        }
        let links: Vec<(i64, i64)> = written
            .iter()
            .flat_map(|(t, _, l)| t.measure_ids.iter().map(|id| (l.id, *id)))
            .collect();
        insert_listing_measures(tx, &links).await?;
        let mut used: Vec<i64> = links.iter().map(|(_, measure)| *measure).collect();
        used.sort_unstable();
        used.dedup();
        super::catalogue::mark_used(tx, &used, at).await?;
        let mut revisions = Vec::with_capacity(written.len());
        let mut events = Vec::with_capacity(written.len() * 2);
        for (t, op, l) in &written {
            let row = t.row.row;
            if registers
                .get(&t.row.uscc)
                .is_some_and(|(first, _)| *first == row)
            {
                events.push(operators::audit_entry(
                    op,
                    "operator.create",
                    None,
                    Some(marks.reason(row, false)),
                ));
            }
            let action = match t.status {
                StoredStatus::Repaired => "listing.repaired",
                StoredStatus::Revoked => "listing.revoked",
                _ => "listing.decided",
            };
            let periods = periods_of.get(&l.id).map_or(&[][..], Vec::as_slice);
            let mut after = listings::snapshot_of(l, periods, &t.measure_codes);
            if let Value::Object(doc) = &mut after {
                doc.insert("import".into(), marks.marker(row));
            }
            revisions.push(listing_revision::ActiveModel {
                listing_id: Set(l.id),
                version: Set(l.version),
                action: Set(action.to_string()),
                recorded_at: Set(l.updated_at),
                superseded_at: Set(None),
                snapshot: Set(after.clone()),
                ..Default::default()
            });
            events.push(
                audit::AuditEntry::new(action, "listing", l.id)
                    .after(Some(after))
                    .reason(Some(marks.reason(row, false))),
            );
        }
        insert_all(tx, revisions).await?;
        audit::record_many(tx, self.actor, at, events).await?;
        Ok(written.len() as u64)
    }

    async fn update_listing(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        at: DateTime<Utc>,
        marks: &Marks,
        l: listing::Model,
        period: listing_period::Model,
        t: Target,
    ) -> AppResult<()> {
        let r = &t.row;
        let before = listings::snapshot(tx, &l).await?;
        let old_measures = listings::measure_codes_of(tx, l.id).await?;
        let measures_changed = old_measures != t.measure_codes;
        if measures_changed {
            let models = measure::Entity::find()
                .filter(measure::Column::Id.is_in(t.measure_ids.clone()))
                .all(tx)
                .await?;
            replace_measures(tx, l.id, &models, at).await?;
        }
        // The removal, its status and its reason stay as recorded: the plan allowed this
        // row only because its removal is the recorded one (`check_imported_removal`),
        // and the row names only its date, where the record has the instant and the
        // procedure's own reason.
        // The start stays as recorded (`Job::period` keeps it: `t.starts_at` is it).
        let mut p: listing_period::ActiveModel = period.into();
        p.ends_at = Set(t.ends_at);
        p.update(tx).await?;
        let region = t.authority_region.clone();
        let mut a = bump(l, at);
        a.authority = Set(r.authority.clone());
        if let Some(region) = region {
            a.authority_region = Set(region);
        }
        a.penalty_doc_no = Set(r.penalty_doc_no.clone());
        a.penalty_date = Set(r.penalty_date);
        a.violation_category = Set(r.category.clone());
        a.reason = Set(r.reason.clone());
        a.legal_basis = Set(r.legal_basis.clone());
        a.notice_date = Set(r.notice_date);
        a.defence_deadline = Set(t.defence_deadline);
        a.decision_date = Set(Some(r.decision_date));
        a.period_months_override = Set(t.period_override);
        let saved = a.update(tx).await?;
        let action = if measures_changed {
            "listing.measures_changed"
        } else {
            "listing.corrected"
        };
        finish_marked_change(
            tx,
            self.actor,
            &saved,
            action,
            Some(before),
            Some(marks.reason(r.row, true)),
            Some(marks.marker(r.row)),
        )
        .await
    }
}

/// A chunk's commit does not wait for its WAL to reach the disk (PostgreSQL's
/// `synchronous_commit = off` for this transaction only): the wait was a sixth of a
/// chunk's server time. Nothing is lost that matters: the batch's progress row is in the
/// same transaction, so a server crash that loses the last chunks loses their progress
/// with them and the resumed import writes them again; and the batch's final `Done`
/// commit waits as usual, which flushes every chunk before it, so an import that reports
/// itself committed is durable whole. (SQLite has no such setting; nothing to do.)
async fn commit_without_waiting_for_flush(tx: &sea_orm::DatabaseTransaction) -> AppResult<()> {
    let backend = tx.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        tx.execute_raw(sea_orm::Statement::from_string(
            backend,
            "SET LOCAL synchronous_commit = off",
        ))
        .await?;
    }
    Ok(())
}

/// An imported removal names itself (the registry has no document of its own for it).
fn removal_reason(t: &Target) -> Option<String> {
    match (t.removal_kind, t.row.removal) {
        (Some(kind), Some((date, _))) => Some(format!(
            "{} on {date}, as recorded by the authority (imported)",
            kind.as_str()
        )),
        _ => None,
    }
}

/// `--errors-out`: every refusal kept (`row`, `column`, `message`), followed by the
/// refused row's own cells under the file's own headers, read again from `source` (the
/// imported file; its rows are streamed, not held). The rows can then be fixed where the
/// message says and, without the first three columns, imported again. A file whose
/// header was refused (or that cannot be read again) gives the refusals alone.
pub fn write_errors_csv<W: std::io::Write>(
    out: W,
    errors: &[RowError],
    source: Option<(std::fs::File, InputFormat, Encoding)>,
) -> anyhow::Result<()> {
    // A refused row may have more or fewer cells than the header: written as it is.
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let (headers, mut rows) =
        match source.map(|(file, format, encoding)| read::open(file, format, encoding)) {
            Some(Ok(opened)) => (opened.headers, Some(opened.rows)),
            _ => (Vec::new(), None),
        };
    let mut head = vec![
        "row".to_string(),
        "column".to_string(),
        "message".to_string(),
    ];
    head.extend(headers);
    w.write_record(&head)?;
    // Data rows are numbered from 2 (the header is row 1), as the refusals number them.
    let mut position = 1u64;
    let mut cells: Vec<String> = Vec::new();
    let mut order: Vec<&RowError> = errors.iter().collect();
    order.sort_by_key(|e| e.row);
    for e in order {
        while position < e.row {
            let Some(row) = rows.as_mut().and_then(Iterator::next) else {
                // The file ended (or was not read again): no cells for the rest.
                rows = None;
                cells.clear();
                break;
            };
            position += 1;
            cells = row
                .map(|r| r.iter().map(|c| c.text().unwrap_or_default()).collect())
                .unwrap_or_default();
        }
        let own: &[String] = if position == e.row && e.row > 1 {
            &cells
        } else {
            &[]
        };
        let mut record = vec![
            e.row.to_string(),
            e.column.clone().unwrap_or_default(),
            e.message.clone(),
        ];
        // Quoted as the CSV exports quote a cell that starts like a formula (the import
        // takes the `'` off again): the file is opened in a spreadsheet to be fixed.
        record.extend(own.iter().map(|c| crate::bulk::write::csv_safe(c)));
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// Each refusal with its row's own cells (a row with two refusals twice, one the
    /// file does not have without cells), in row order whatever order they came in.
    #[test]
    fn errors_out_carries_the_refused_rows() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all("统一社会信用代码,名单\nA1,L1\nB2,L2\nC3,L3\n".as_bytes())
            .unwrap();
        let errors = [
            RowError::new(4, Some("名单".into()), "unknown list"),
            RowError::new(2, Some("统一社会信用代码".into()), "bad code"),
            RowError::new(4, Some("统一社会信用代码".into()), "bad code"),
            RowError::new(9, None, "beyond the file"),
        ];
        let mut out = Vec::new();
        write_errors_csv(
            &mut out,
            &errors,
            Some((file, InputFormat::Csv, Encoding::Utf8)),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "row,column,message,统一社会信用代码,名单\n\
             2,统一社会信用代码,bad code,A1,L1\n\
             4,名单,unknown list,C3,L3\n\
             4,统一社会信用代码,bad code,C3,L3\n\
             9,,beyond the file\n"
        );
        let mut alone = Vec::new();
        write_errors_csv(&mut alone, &errors[1..2], None).unwrap();
        assert_eq!(
            String::from_utf8(alone).unwrap(),
            "row,column,message\n2,统一社会信用代码,bad code\n"
        );
    }
}
