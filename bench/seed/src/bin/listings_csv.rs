//! `listings-csv`: writes a listings import file (the `import --template listings`
//! columns, UTF-8 CSV) of N rows for the bulk benchmark and the interruption tests.
//!
//! Every row is a listing on the serious-dishonesty list of a distinct operator whose
//! code carries both valid check digits (the seed's population of codes); the dates
//! obey the import's rules (penalty before notice, the decision a month after the notice,
//! inside the shipped working-day calendars of 2024-2026) and every listing is in force
//! now, so the same file also feeds the public-list export benchmark. The same
//! `--seed` and `--rows` give the same file.

use anyhow::Context;
use bench_seed::Population;
use bench_seed::population::{DIVISIONS, Rng};
use bench_seed::synth;
use chrono::{Duration, NaiveDate};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

/// Write a listings import file (CSV) of N valid, in-force listings.
#[derive(Parser, Debug)]
#[command(name = "listings-csv", version)]
struct Cli {
    /// Data rows to write.
    #[arg(long)]
    rows: u64,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The same seed and rows give the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Violation categories of the serious-dishonesty list (the seeded catalogue's codes).
const CATEGORIES: &[(&str, &str, &str)] = &[
    ("CONSUMER_HARM", "收取预付款后卷款跑路", "第八条"),
    ("UNFAIR_COMPETITION", "以虚假交易扰乱市场秩序", "第九条"),
    (
        "HEALTH_FALSE_ADVERTISING",
        "发布涉及健康的虚假广告",
        "第九条",
    ),
    (
        "QUALITY_SPECIAL_EQUIPMENT",
        "使用未经检验的特种设备",
        "第七条",
    ),
    ("OBSTRUCTING_INSPECTION", "拒绝、阻碍监督检查", "第十条"),
];

/// A stream of its own, so the row texts do not repeat the seed's operator texts.
const ROW_STREAM: u64 = 101;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(cli.rows > 0, "--rows must be at least 1");
    // Codes only: every operator index below `rows` gets a distinct valid code.
    let size = cli.rows.max(10);
    let population = Population::new(cli.seed, size, size, 0.0).map_err(anyhow::Error::msg)?;
    let out: Box<dyn Write> = match &cli.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, out));
    w.write_record(
        api::bulk::columns::LISTING_COLUMNS
            .iter()
            .take(13)
            .map(|c| c.zh),
    )?;
    // Notices from the first working week of 2024 to mid-October 2026: the decision a
    // month later is in the past and every three-year period is still running.
    let first_notice = NaiveDate::from_ymd_opt(2024, 1, 8).context("date")?;
    let last_notice = NaiveDate::from_ymd_opt(2026, 10, 15).context("date")?;
    let span = u64::try_from((last_notice - first_notice).num_days())? + 1;
    for i in 0..cli.rows {
        let mut rng = Rng::new(cli.seed, ROW_STREAM, i);
        let (kind, division) = population.kind_and_division(i);
        let (_, full, _, short) = DIVISIONS[division];
        let operator = synth::operator_text(&mut rng, kind, division);
        let notice = first_notice + Duration::days(i64::try_from(rng.below(span))?);
        let penalty = notice - Duration::days(rng.between(3, 40));
        let decision = notice + Duration::days(30);
        let (category, reason, article) = *rng.pick(CATEGORIES);
        let serial = i + 1;
        let year = chrono::Datelike::year(&penalty);
        w.write_record([
            population.code(i).as_str(),
            operator.name.as_str(),
            "SAMR_SERIOUS_DISHONEST",
            &format!("{full}市场监督管理局"),
            &format!("{short}市监罚〔{year}〕{serial}号"),
            &penalty.to_string(),
            category,
            reason,
            &format!("《市场监督管理严重违法失信名单管理办法》{article}"),
            &notice.to_string(),
            &format!(
                "{short}市监列〔{}〕{serial}号",
                chrono::Datelike::year(&decision)
            ),
            &decision.to_string(),
            "",
        ])?;
    }
    w.flush()?;
    Ok(())
}
