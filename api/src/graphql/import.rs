//! `importListings`: the CLI's listing import for admins without a shell, over the
//! GraphQL multipart request spec (the body cap is `limits.max_import_bytes`).

use super::{request, state};
use crate::bulk::Kind;
use crate::error::AppError;
use crate::graphql::guards::ADMIN;
use crate::service::import::{self, ImportOptions};
use async_graphql::{Context, Object, Result, SimpleObject, Upload};

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
    /// scope applies to every row. Runs under the request timeout: import large files
    /// with `credit-registry import listings FILE` (an interrupted import resumes).
    #[graphql(guard = "ADMIN")]
    async fn import_listings(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        dry_run: Option<bool>,
    ) -> Result<ImportReport> {
        let state = state(ctx)?;
        let actor = request(ctx)?.actor();
        let upload = file
            .value(ctx)
            .map_err(|e| AppError::bad_input(format!("the upload cannot be read: {e}")))?;
        let mut opts = ImportOptions::new(Kind::Listings, upload.filename.clone());
        opts.dry_run = dry_run.unwrap_or(false);
        // The import reads the file three times (fingerprint, validation, writing).
        let mut content = tempfile::tempfile().map_err(AppError::internal)?;
        std::io::Write::write_all(&mut content, &upload.content).map_err(AppError::internal)?;
        drop(upload);
        let rules = state.settings.limits.input_rules();
        let report = import::import(&state.services, &actor, rules, &content, &opts, None).await?;
        Ok(report.into())
    }
}
