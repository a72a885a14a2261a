//! The `credit-registry` command line.

use crate::auth::Role;
use crate::domain::measures::Domain;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "credit-registry",
    version,
    about = "Credit-punishment registry: joint-punishment checks over GraphQL"
)]
pub struct Cli {
    /// TOML configuration file (also REGISTRY_CONFIG); environment variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The default name of a witness (`witness --name`).
pub const WITNESS_NAME: &str = "credit-registry-witness.local";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run pending migrations (unless --no-migrate) and serve HTTP (the default command).
    Serve {
        /// Do not run migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending migrations, or list them with their status.
    Migrate {
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
    },
    /// Print a signed access token, using the configured signing key.
    Token {
        #[arg(long, value_enum)]
        role: CliRole,
        /// Subject: the admin's or auditor's user id, or the partner system's registered subject.
        #[arg(long)]
        sub: String,
        /// Partner domains, comma-separated (e.g. PROCUREMENT,BIDDING).
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
        /// Limit an admin to one division (e.g. 441802); a city code covers its counties.
        #[arg(long)]
        region: Option<String>,
        /// Lifetime: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Print the GraphQL schema (SDL).
    PrintSchema,
    /// Load (or replace) one year's working-day calendar from a CSV file in the project's
    /// format (`notice_year,date,HOLIDAY|WORKDAY,name`; see migration/data/calendar-cn.csv).
    CalendarLoad {
        #[arg(long)]
        file: PathBuf,
        /// The notice year to load from the file.
        #[arg(long)]
        year: i32,
        /// The notice the calendar comes from.
        #[arg(long)]
        source: String,
    },
    /// Write a new Ed25519 signing key (PKCS#8 PEM) for production configuration.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a new receipt signing key to the receipt key directory; it signs from the next
    /// start (or within 30 s for a running service) and the old keys keep verifying.
    RotateReceiptKey,
    /// Add a new token signing key to `auth.signing_key_dir`; it signs new tokens from
    /// now on (announced to running instances on PostgreSQL, otherwise within 30 s) and
    /// the old keys keep verifying the tokens they issued.
    RotateTokenKey,
    /// Verify a check receipt offline: a tlog-proof receipt against the answer log's
    /// verifier key (a saved /logs/answers/vkey), a compact JWS receipt against a JWK set
    /// (a saved /.well-known/jwks.json). Exit status 0 when it is genuine, 1 when it is
    /// not, 2 when it could not be checked.
    VerifyReceipt {
        /// The JWK set file (JWS receipts).
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// The answer log's verifier key file (tlog-proof receipts).
        #[arg(long)]
        vkey: Option<PathBuf>,
        /// A witness's verifier key file (C2SP cosignature/v1 vkey); repeatable.
        #[arg(long = "witness-vkey")]
        witness_vkeys: Vec<PathBuf>,
        /// Valid cosignatures of those witnesses the receipt's checkpoint must carry.
        #[arg(long, default_value_t = 0)]
        min_cosignatures: usize,
        /// Also tie the answer to the list: the registry log's head the receipt names
        /// must be a head of this public registry log (e.g.
        /// `https://registry.example/logs/registry`), under its verified checkpoint.
        #[arg(long)]
        registry_url: Option<String>,
        /// The registry log's verifier key file (a saved /logs/registry/vkey); without
        /// it the key is fetched from the registry URL (trust on first use).
        #[arg(long)]
        registry_vkey: Option<PathBuf>,
        /// Valid cosignatures of the --witness-vkey witnesses the registry log's
        /// checkpoint must carry (with --registry-url): what keeps a registry from
        /// showing this verifier a log of its own making.
        #[arg(long, default_value_t = 0, requires = "registry_url")]
        registry_min_cosignatures: usize,
        /// The answer's status proof (the check's `statusProof`, saved to a file): the
        /// code's entries in the status map of the registry-log checkpoint the receipt
        /// names. Checked offline with --registry-vkey: the checkpoint, the path to its
        /// map root, and that the entries give the receipt's decision and hits.
        #[arg(long, requires = "registry_vkey")]
        status_proof: Option<PathBuf>,
        /// Also recompute the answer: replay the log's entries up to the receipt's head
        /// into the list at its `asOf`, and check that this list gives the receipt's
        /// decision and hits for its code and domain (fetches every entry bundle).
        #[arg(long, requires = "registry_url")]
        recompute: bool,
        /// The receipt, `@FILE` to read it from a file, or `-` for standard input.
        receipt: String,
    },
    /// Audit a transparency log over HTTP: verify its checkpoint, recompute the tree from
    /// its tiles, check that it extends an earlier checkpoint, and for the registry log
    /// replay its entries into the list and compare it with /exports/public-list.jsonl.
    /// Exit status 0 when everything holds, 1 when something does not, 2 when it could
    /// not be checked.
    VerifyLog {
        /// The log's URL, e.g. `https://registry.example/logs/registry`.
        #[arg(long)]
        url: String,
        /// An earlier checkpoint of the same log (a saved `<url>/checkpoint`): the log
        /// must extend it.
        #[arg(long)]
        from_checkpoint: Option<PathBuf>,
        /// The log's verifier key file; default: fetched from `<url>/vkey` (trust on
        /// first use: save it and pass it from then on).
        #[arg(long)]
        vkey: Option<PathBuf>,
        /// Where to save the verified checkpoint (for the next `--from-checkpoint`).
        #[arg(long)]
        save_checkpoint: Option<PathBuf>,
        /// A witness's verifier key file (C2SP cosignature/v1 vkey); repeatable.
        #[arg(long = "witness-vkey")]
        witness_vkeys: Vec<PathBuf>,
        /// Valid cosignatures of those witnesses the checkpoint must carry.
        #[arg(long, default_value_t = 0)]
        min_cosignatures: usize,
        /// Replay only the registry log's first N entries: the state a receipt's
        /// `registryLog.size` names (its root is printed, to compare with the receipt's).
        /// The public list, which is today's, is then not compared.
        #[arg(long, value_name = "N")]
        at_size: Option<u64>,
        /// The instant (RFC 3339) the replayed list is in force at: default now; for a
        /// receipt, its `asOf`. Not before the last entry replayed.
        #[arg(long, value_name = "T")]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// Write the replayed list to FILE as JSONL (one listing in force per line: the
        /// entry's public fields and its measure codes).
        #[arg(long, value_name = "FILE")]
        list_out: Option<PathBuf>,
    },
    /// Witness a registry log: verify its checkpoint and its consistency with the last
    /// checkpoint this witness cosigned, cosign it (C2SP tlog-cosignature, Ed25519) and
    /// post the cosignature to `<url>/logs/<log>/cosignature`; refuse (exit status 1 with
    /// --once) a history that does not extend the one it cosigned.
    Witness {
        /// The registry's base URL, e.g. `https://registry.example`.
        #[arg(long)]
        url: String,
        #[arg(long, value_parser = ["registry", "answers"])]
        log: String,
        /// The witness's Ed25519 key (PKCS#8 PEM; `credit-registry witness-key` makes one).
        #[arg(long)]
        key: PathBuf,
        /// The witness's name (its key name in the cosignature line and vkey).
        #[arg(long, default_value = WITNESS_NAME)]
        name: String,
        /// The witness's state file (the log's key, the last checkpoint cosigned).
        #[arg(long)]
        state: PathBuf,
        /// The log's verifier key file; default: fetched on first use and pinned.
        #[arg(long)]
        vkey: Option<PathBuf>,
        /// Seconds between rounds.
        #[arg(long, default_value_t = 60)]
        interval: u64,
        /// One round, then exit (0: cosigned, 1: refused, 2: could not check).
        #[arg(long)]
        once: bool,
    },
    /// Create a witness key (if FILE does not exist) and print its verifier key, the line
    /// a registry adds to `logs.witnesses`.
    WitnessKey {
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = WITNESS_NAME)]
        name: String,
    },
    /// Recompute the audit log's hash chain and print the head it verified
    /// (`head ID HASH`); exits with status 1 and names the first broken link when the
    /// chain does not hold, or when an expected head is not in it.
    VerifyAudit {
        /// Events read per query.
        #[arg(long, default_value_t = 1000)]
        page_size: u64,
        /// A head printed by an earlier run and kept off this machine (`ID:HASH`, may be
        /// repeated): event ID must still have HASH. A writer with the database can
        /// recompute the whole chain; it cannot make an old head match a rewrite.
        #[arg(long = "expect", value_name = "ID:HASH", value_parser = crate::service::audit_query::ExpectedHead::parse)]
        expect: Vec<crate::service::audit_query::ExpectedHead>,
    },
    /// Import operators or listings from a CSV or .xlsx file, or print a template
    /// (`import --template listings`).
    Import(ImportArgs),
    /// Export the public list, listings, operators, check records or audit events.
    Export(ExportArgs),
    /// Print the yearly report (per county-level division) to standard output.
    Report {
        #[arg(long)]
        year: i32,
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// Limit to one division (a city code covers its counties).
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    Operators,
    Listings,
}

impl From<ImportKind> for crate::bulk::Kind {
    fn from(k: ImportKind) -> Self {
        match k {
            ImportKind::Operators => Self::Operators,
            ImportKind::Listings => Self::Listings,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TemplateFormat {
    Csv,
    Xlsx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CliEncoding {
    #[value(name = "utf-8")]
    Utf8,
    Gb18030,
}

/// `credit-registry import ...`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum, required_unless_present = "template")]
    pub kind: Option<ImportKind>,
    /// A `.csv` (UTF-8 with or without BOM, or GB18030) or `.xlsx` file.
    #[arg(required_unless_present = "template")]
    pub file: Option<PathBuf>,
    /// Print the template of operators or listings instead of importing.
    #[arg(long, value_enum, conflicts_with_all = ["kind", "file"])]
    pub template: Option<ImportKind>,
    /// The template's format.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Csv, requires = "template")]
    pub format: TemplateFormat,
    /// Where to write the template (default: standard output).
    #[arg(long, requires = "template")]
    pub out: Option<PathBuf>,
    /// Validate everything and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the valid rows even when others are refused.
    #[arg(long)]
    pub partial: bool,
    /// Write the refused rows (row, column, message) to this CSV file.
    #[arg(long)]
    pub errors_out: Option<PathBuf>,
    /// The CSV's encoding (default: UTF-8 when the file is valid UTF-8, else GB18030).
    #[arg(long, value_enum)]
    pub encoding: Option<CliEncoding>,
    /// Who runs the import (the audit events' subject).
    #[arg(long, default_value = "cli-import")]
    pub actor: String,
    /// Act as an admin limited to this division (default: the whole registry).
    #[arg(long)]
    pub region: Option<String>,
    /// Rows per transaction.
    #[arg(long, default_value_t = crate::service::import::DEFAULT_CHUNK_ROWS)]
    pub chunk_rows: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportWhat {
    PublicList,
    Listings,
    Operators,
    CheckRecords,
    AuditEvents,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Jsonl,
}

/// `credit-registry export ...` (as an admin: personal fields included where a template
/// has them; the public list never has any).
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[arg(value_enum)]
    pub what: ExportWhat,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Output file (default: standard output, also for .xlsx bytes).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The public list in force at this instant (RFC 3339; default now); for listings,
    /// only those in force then.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Operators registered in this division (a city code covers its counties).
    #[arg(long)]
    pub region: Option<String>,
    /// Check records and audit events from this Beijing date (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// ... to this Beijing date (inclusive).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MigrateAction {
    Up,
    Status,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CliRole {
    Admin,
    Partner,
    Auditor,
}

impl From<CliRole> for Role {
    fn from(r: CliRole) -> Self {
        match r {
            CliRole::Admin => Role::Admin,
            CliRole::Partner => Role::Partner,
            CliRole::Auditor => Role::Auditor,
        }
    }
}

pub fn parse_domains(raw: &[String]) -> Result<Vec<Domain>, String> {
    raw.iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| Domain::parse(d).ok_or_else(|| format!("unknown domain '{d}'")))
        .collect()
}

/// The receipt argument of `verify-receipt`: the text itself, `@FILE`, or `-` (stdin).
pub fn read_receipt_arg(arg: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    if arg == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the receipt from standard input")?;
        Ok(text.trim().to_string())
    } else if let Some(path) = arg.strip_prefix('@') {
        Ok(std::fs::read_to_string(path)
            .with_context(|| format!("reading the receipt from {path}"))?
            .trim()
            .to_string())
    } else {
        Ok(arg.trim().to_string())
    }
}

/// Runs `credit-registry import`; returns the exit status (0: nothing refused).
pub async fn run_import(
    settings: &crate::config::Settings,
    args: ImportArgs,
) -> anyhow::Result<i32> {
    use crate::bulk::write::{OutputFormat, template};
    use crate::service::import::{self, ImportOptions, Phase};
    use anyhow::Context;
    use std::io::IsTerminal;
    if let Some(kind) = args.template {
        let format = match args.format {
            TemplateFormat::Csv => OutputFormat::Csv,
            TemplateFormat::Xlsx => OutputFormat::Xlsx,
        };
        let out: Box<dyn std::io::Write + Send> = match &args.out {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        template(kind.into(), format, out)?;
        return Ok(0);
    }
    let (Some(kind), Some(path)) = (args.kind, args.file) else {
        anyhow::bail!("import needs KIND and FILE, or --template");
    };
    if let Some(region) = &args.region {
        anyhow::ensure!(
            crate::domain::region::is_division_code(region),
            "region '{region}' is not a six-digit division code"
        );
    }
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let db = crate::db::connect(settings).await?;
    let services = crate::service::Services::new(
        db.clone(),
        crate::clock::Clock::system(),
        std::sync::Arc::new(crate::service::feed::FeedHub::new(16)),
        std::sync::Arc::new(crate::auth::partners::PartnerDirectory::new(
            std::time::Duration::ZERO,
        )),
    );
    let actor = crate::service::Actor {
        identity: crate::auth::Identity {
            subject: args.actor.clone(),
            role: Role::Admin,
            domains: Vec::new(),
            region: args.region.clone(),
            token_id: None,
        },
        request_id: format!("cli:import:{}", uuid::Uuid::now_v7()),
    };
    let mut opts = ImportOptions::new(
        kind.into(),
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    );
    opts.dry_run = args.dry_run;
    opts.partial = args.partial;
    opts.chunk_rows = args.chunk_rows;
    // The operator's own limits.max_import_bytes bounds a workbook's parts here too.
    opts.max_xlsx_part_bytes = crate::bulk::read::max_part_bytes(settings.limits.max_import_bytes);
    opts.encoding = args.encoding.map(|e| match e {
        CliEncoding::Utf8 => crate::bulk::Encoding::Utf8,
        CliEncoding::Gb18030 => crate::bulk::Encoding::Gb18030,
    });
    // A progress bar only on a terminal; scripts and logs get the summary alone.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} validating {pos} rows ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let on_progress = |phase: Phase, done: u64, total: Option<u64>| {
        let Some(bar) = &bar else { return };
        if phase == Phase::Writing && bar.length().is_none() {
            bar.reset();
            bar.set_length(total.unwrap_or(0));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "writing {bar:40} {pos}/{len} rows ({per_sec}, ETA {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
        }
        bar.set_position(done);
    };
    let rules = settings.limits.input_rules();
    // The error itself, not its text: an internal error then prints its cause too.
    let report = import::import(&services, &actor, rules, &file, &opts, Some(&on_progress))
        .await
        .map_err(anyhow::Error::from)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    db.close().await.ok();
    if let Some(out) = &args.errors_out {
        let f =
            std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        // The refused rows' own cells come from the file, read again.
        let format = crate::bulk::InputFormat::from_file_name(&opts.file_name);
        let encoding = report
            .encoding
            .as_deref()
            .and_then(crate::bulk::Encoding::parse)
            .unwrap_or(crate::bulk::Encoding::Utf8);
        let source = file.try_clone().ok().map(|f| (f, format, encoding));
        import::write_errors_csv(f, &report.errors, source)?;
    }
    for e in report.errors.iter().take(20) {
        eprintln!(
            "row {}{}: {}",
            e.row,
            e.column
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default(),
            e.message
        );
    }
    let more = (report.errors.len().saturating_sub(20) as u64) + report.errors_omitted;
    if more > 0 {
        eprintln!("... and {more} more (see --errors-out)");
    }
    if report.errors_omitted > 0 {
        eprintln!(
            "only the first {} refusals are kept (and written to --errors-out); {} more were found: fix what they show and run the file again",
            report.errors.len(),
            report.errors_omitted
        );
    }
    let verdict = if report.dry_run {
        "dry run, nothing written"
    } else if report.committed {
        "committed"
    } else if report.created + report.updated > 0 {
        // All-or-nothing, but the registry changed after the file was validated (a
        // listing proposed, a measure deactivated): the chunks before the refusal stay
        // committed. Running the file again finishes it; those rows are then unchanged.
        "stopped: the registry changed during the import; the rows counted as created or updated were committed, run the file again to finish"
    } else {
        "refused, nothing written"
    };
    println!(
        "{} {}: {} rows; created {}, updated {}, unchanged {}, rejected {} ({verdict}{}{})",
        report.kind,
        report.file_name,
        report.rows,
        report.created,
        report.updated,
        report.unchanged,
        report.rejected,
        report
            .batch_id
            .as_deref()
            .map(|b| format!(", batch {b}"))
            .unwrap_or_default(),
        report
            .resumed_after_row
            .map(|r| format!(", resumed after row {r}"))
            .unwrap_or_default(),
    );
    Ok(if report.rejected > 0 || !report.errors.is_empty() {
        1
    } else {
        0
    })
}

/// Runs `credit-registry export`.
pub async fn run_export(
    settings: &crate::config::Settings,
    args: ExportArgs,
) -> anyhow::Result<()> {
    use crate::bulk::write::{OutputFormat, Sink};
    use crate::service::export::{self, ExportFilter, ExportKind};
    use anyhow::Context;
    let kind = match args.what {
        ExportWhat::PublicList => ExportKind::PublicList,
        ExportWhat::Listings => ExportKind::Listings,
        ExportWhat::Operators => ExportKind::Operators,
        ExportWhat::CheckRecords => ExportKind::CheckRecords,
        ExportWhat::AuditEvents => ExportKind::AuditEvents,
    };
    let format = match args.format {
        ExportFormat::Csv => OutputFormat::Csv,
        ExportFormat::Xlsx => OutputFormat::Xlsx,
        ExportFormat::Jsonl => OutputFormat::Jsonl,
    };
    let as_of = args
        .as_of
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .with_context(|| format!("--as-of '{t}' is not an RFC 3339 instant"))
        })
        .transpose()?;
    if let Some(region) = &args.region {
        anyhow::ensure!(
            crate::domain::region::is_division_code(region),
            "region '{region}' is not a six-digit division code"
        );
    }
    let filter = ExportFilter {
        as_of,
        region: args.region.clone(),
        from: args.from,
        to: args.to,
        subject: None,
    };
    // Before --out is created: a refused export leaves no empty file behind.
    filter
        .check_applies_to(kind)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out: Box<dyn std::io::Write + Send> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let db = crate::db::connect(settings).await?;
    let mut sink = Sink::new(format, out, export::columns_of(kind))?;
    let now = crate::clock::Clock::system().now();
    let rows = export::export(&db, kind, &filter, now, &mut sink, || async { Ok(()) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    sink.finish()?;
    db.close().await.ok();
    eprintln!("exported {rows} rows");
    Ok(())
}
