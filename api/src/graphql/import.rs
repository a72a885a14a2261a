//! `importListings`: the CLI's listing import for admins without a shell, over the
//! GraphQL multipart request spec (the body cap is `limits.max_import_bytes`).

use super::{request, state};
use crate::bulk::Kind;
use crate::error::AppError;
use crate::graphql::guards::ADMIN;
use crate::service::import::{self, ImportOptions};
use async_graphql::{Context, Object, Result, SimpleObject, Upload};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One refused row: its spreadsheet row number (the header is row 1), the column as the
/// file names it, and why.
#[derive(SimpleObject, Clone)]
pub struct ImportRowError {
    pub row: u64,
    pub column: Option<String>,
    pub message: String,
}

/// What an import did (or, for a dry run, would do).
#[derive(SimpleObject, Clone)]
pub struct ImportReport {
    /// Null for a dry run or a refused file.
    pub batch_id: Option<String>,
    pub file_name: String,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// The CSV encoding read (`utf-8`, `gb18030`); null for `.xlsx`.
    pub encoding: Option<String>,
    pub dry_run: bool,
    /// Data rows in the file.
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Whether the import finished with every row it writes committed: false for a dry
    /// run, a refused file, and an import stopped part-way because the registry changed
    /// after the file was validated (`created` and `updated` then count what its
    /// committed chunks wrote; sending the file again finishes it).
    pub committed: bool,
    /// Set when this run continued an interrupted import of the same file.
    pub resumed_after_row: Option<u64>,
    /// The refusals, in row order: the first 10,000 (every rejected row is counted in
    /// `rejected`).
    pub errors: Vec<ImportRowError>,
    /// Refusals found beyond those listed in `errors`.
    pub errors_omitted: u64,
    /// Set when the answer comes before the import finished (the request timeout was
    /// near): the import goes on to its end on the server, as the CLI's would, so a file
    /// is never left written part-way because its request ran out of time. The counts are
    /// then zero (not known yet) and `committed` false; `batchId` is set once the writing
    /// pass has begun. Sending the same file again with `dryRun: true` shows what is left
    /// (every row unchanged once it has finished).
    pub message: Option<String>,
}

impl From<import::ImportReport> for ImportReport {
    fn from(r: import::ImportReport) -> Self {
        Self {
            batch_id: r.batch_id,
            file_name: r.file_name,
            sha256: r.sha256,
            encoding: r.encoding,
            dry_run: r.dry_run,
            rows: r.rows,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            rejected: r.rejected,
            committed: r.committed,
            resumed_after_row: r.resumed_after_row,
            errors_omitted: r.errors_omitted,
            message: None,
            errors: r
                .errors
                .into_iter()
                .map(|e| ImportRowError {
                    row: e.row,
                    column: e.column,
                    message: e.message,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct ImportMutation;

#[Object]
impl ImportMutation {
    /// Imports listings from an uploaded `.csv` (UTF-8 or GB18030) or `.xlsx` in the
    /// listing template (see the README): all or nothing, every refused row reported by
    /// row and column; `dryRun` validates and writes nothing. Admins; a region admin's
    /// scope applies to every row. An import that does not finish within the request
    /// timeout goes on to its end on the server and is answered before the timeout with
    /// `committed: false` and a `message` (see `ImportReport.message`); a dry run is
    /// stopped instead. Import large files with `credit-registry import listings FILE`.
    #[graphql(guard = "ADMIN")]
    async fn import_listings(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        dry_run: Option<bool>,
    ) -> Result<ImportReport> {
        let entered = Instant::now();
        let state = state(ctx)?;
        let actor = request(ctx)?.actor();
        let upload = file
            .value(ctx)
            .map_err(|e| AppError::bad_input(format!("the upload cannot be read: {e}")))?;
        let mut opts = ImportOptions::new(Kind::Listings, upload.filename.clone());
        opts.dry_run = dry_run.unwrap_or(false);
        opts.max_xlsx_part_bytes =
            crate::bulk::read::max_part_bytes(state.settings.limits.max_import_bytes);
        // The import reads the file three times (fingerprint, validation, writing).
        let mut content = tempfile::tempfile().map_err(AppError::internal)?;
        std::io::Write::write_all(&mut content, &upload.content).map_err(AppError::internal)?;
        drop(upload);
        let rules = state.settings.limits.input_rules();
        let started = Arc::new(import::Started::default());
        opts.started = Some(started.clone());
        let (file_name, dry) = (opts.file_name.clone(), opts.dry_run);
        // The import commits a chunk per transaction, so the request timeout must not
        // drop it between two chunks (that left part of the file written, the batch
        // RUNNING and the client with a bare TIMEOUT): it runs on its own task, to its
        // end, whatever becomes of the request.
        let services = state.services.clone();
        let mut task = tokio::spawn(async move {
            import::import(&services, &actor, rules, &content, &opts, None).await
        });
        // Answer before the request timeout fires (it started a moment before this
        // resolver): a fifth of it, at most 2 s, is left for the answer.
        let limit = Duration::from_millis(state.settings.limits.request_timeout_ms);
        let wait = limit
            .saturating_sub((limit / 5).min(Duration::from_secs(2)))
            .saturating_sub(entered.elapsed());
        match tokio::time::timeout(wait, &mut task).await {
            Ok(Ok(report)) => Ok(report?.into()),
            Ok(Err(join)) => Err(AppError::internal(join).into()),
            Err(_) => {
                let batch_id = started.batch_id.get().cloned();
                let message = if dry {
                    // Nothing to finish: a dry run writes nothing, and its answer is lost.
                    task.abort();
                    "the dry run did not finish within the request timeout and was stopped; validate large files with `credit-registry import listings FILE --dry-run`".to_string()
                } else {
                    let batch = batch_id.as_ref().map_or_else(
                        || "it is still validating the file".to_string(),
                        |id| format!("batch {id}"),
                    );
                    format!(
                        "the import did not finish within the request timeout and goes on on the server ({batch}): it runs to its end as if it had been answered, all or nothing as ever; send the same file again with dryRun: true to see what is left (every row unchanged once it has finished). Import large files with `credit-registry import listings FILE`"
                    )
                };
                // Nothing is counted yet: every count zero, not committed.
                let mut report: ImportReport = import::ImportReport {
                    batch_id,
                    file_name,
                    sha256: started.sha256.get().cloned().unwrap_or_default(),
                    dry_run: dry,
                    ..Default::default()
                }
                .into();
                report.message = Some(message);
                Ok(report)
            }
        }
    }
}
