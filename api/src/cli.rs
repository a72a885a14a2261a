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
    /// Verify a check receipt offline against a JWK set (a saved /.well-known/jwks.json).
    /// Exit status 0 when it is genuine, 1 when it is not, 2 when it could not be checked.
    VerifyReceipt {
        /// The JWK set file.
        #[arg(long)]
        jwks: PathBuf,
        /// The receipt (compact JWS), `@FILE` to read it from a file, or `-` for standard input.
        receipt: String,
    },
    /// Recompute the audit log's hash chain; exits with status 1 and names the first
    /// broken link when the chain does not hold.
    VerifyAudit {
        /// Events read per query.
        #[arg(long, default_value_t = 1000)]
        page_size: u64,
    },
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
