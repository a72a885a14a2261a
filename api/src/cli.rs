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
    /// Write a new Ed25519 signing key (PKCS#8 PEM) for production configuration.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Fill an EMPTY registry with synthetic bench data: operators with valid codes,
    /// listings in every state with periods and measures, check records. A bulk load for
    /// benchmarks: it writes no audit events. Migrates first.
    SeedBench {
        /// Operators to generate (at least 10).
        #[arg(long)]
        operators: u64,
        /// Listings to generate, in every state.
        #[arg(long)]
        listings: u64,
        /// Check records to generate (default: as many as listings).
        #[arg(long)]
        check_records: Option<u64>,
        /// Seed: the same seed and sizes give the same data (and the same codes).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of operators listed in force now (at most 0.9; capped at 90 % of the listings).
        #[arg(long, default_value_t = 0.1)]
        in_force_share: f64,
        /// Write what was loaded as JSON: the manifest the load generator reads.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Write every generated code with whether it is listed in force (`USCC<TAB>0|1`).
        #[arg(long)]
        codes_out: Option<PathBuf>,
        /// No progress bars (they are also hidden when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
    },
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
