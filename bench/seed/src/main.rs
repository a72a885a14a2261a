//! `seed-bench`: fill an EMPTY registry with synthetic bench data (see the crate docs).
//!
//! Configuration as for `credit-registry`: `--config FILE` (or `REGISTRY_CONFIG`), then
//! the environment (`DATABASE_URL`, `REGISTRY_*`), through the same `Settings::load`.

use anyhow::Context;
use api::config::Settings;
use clap::Parser;
use std::path::PathBuf;

/// Fill an EMPTY registry with synthetic bench data: operators with valid codes, listings
/// in every state with periods and measures, check records. A bulk load for benchmarks:
/// it writes no audit events. Migrates first.
#[derive(Parser, Debug)]
#[command(name = "seed-bench", version)]
struct Cli {
    /// TOML configuration file (also REGISTRY_CONFIG); environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    api::telemetry::init(settings.log_format);
    let db = api::db::connect(&settings).await?;
    api::db::migrate_up(&db).await?;
    let options = bench_seed::SeedOptions {
        operators: cli.operators,
        listings: cli.listings,
        check_records: cli.check_records.unwrap_or(cli.listings),
        seed: cli.seed,
        in_force_share: cli.in_force_share,
        progress: !cli.no_progress,
    };
    let report = bench_seed::seed(&db, &options).await?;
    for phase in &report.phases {
        println!(
            "{:<18} {:>12} rows {:>9.1} s {:>12.0} rows/s",
            phase.name,
            phase.rows,
            phase.seconds,
            phase.rows as f64 / phase.seconds.max(1e-9)
        );
    }
    println!(
        "seeded {} operators ({} listed in force, {:.1} %), {} listings, {} periods, {} listing measures, {} check records on {} in {:.1} s",
        report.operators,
        report.in_force_operators,
        report.in_force_share * 100.0,
        report.listings,
        report.listing_periods,
        report.listing_measures,
        report.check_records,
        report.backend,
        report.seconds
    );
    if let Some(path) = cli.manifest {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("manifest: {}", path.display());
    }
    if let Some(path) = cli.codes_out {
        let population = report.population().map_err(anyhow::Error::msg)?;
        bench_seed::load::write_codes(&population, &path)?;
        println!("codes: {}", path.display());
    }
    db.close().await?;
    Ok(())
}
