//! `loadgen`: the credit-registry benchmark driver (loopback only, bounded in time).
//!
//! It regenerates the codes of a `seed-bench` data set from its manifest, so every
//! request asks about a random existing operator (about the seeded share of them listed).
//! Each measurement appends one JSON line to `--out`; `report` renders BENCHMARKS.md.

mod abuse;
mod client;
mod cpu;
mod groups;
mod http_load;
mod pg_load;
mod report;
mod schema;
mod stats;
mod targets;
mod verify;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Load generator for the credit-registry benchmarks"
)]
struct Cli {
    /// Runtime threads of the load generator (it shares the machine with the server).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct Window {
    /// Concurrent connections (closed loop: one request in flight per connection).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Measurement window in seconds.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Warm-up before the window, in seconds (requests sent, not counted).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Codes per request of a batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: u32,
    /// The seed-bench manifest (`--manifest` of seed-bench) of the database under test.
    #[arg(long)]
    manifest: PathBuf,
    /// Label of the data set in the results (e.g. 10k, 10m).
    #[arg(long)]
    scale: String,
    /// Append the result as a JSON line here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the random code choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print which operations the server offers and what the harness will send.
    Probe {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        /// Selection set for check results instead of the introspected one.
        #[arg(long)]
        check_selection: Option<String>,
    },
    /// Register the bench partner if `registerPartner` exists (tolerant: prints what happened).
    RegisterPartner {
        #[arg(long)]
        url: String,
        #[arg(long)]
        admin_token: String,
        #[arg(long)]
        subject: String,
        #[arg(long, default_value = "压测合作方系统")]
        name: String,
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
    },
    /// Check that the server's answers agree with the seeded data (exit status 1 if not).
    Verify {
        #[arg(long)]
        url: String,
        /// The partner's token.
        #[arg(long)]
        token: String,
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long, default_value = "PROCUREMENT")]
        domain: String,
        /// Codes to ask about, half of them listed in force.
        #[arg(long, default_value_t = 40)]
        samples: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// HTTP load against the GraphQL endpoint.
    Http {
        #[arg(long)]
        url: String,
        /// The partner's token for checks.
        #[arg(long)]
        token: String,
        /// Partners' tokens, one per line: connection i uses line i mod n (several
        /// partners, each under its own per-subject rate limit). Overrides `--token`
        /// for the checks.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Name of this measurement in the results instead of the scenario's (e.g.
        /// `abuse:none`, `search:no-match`).
        #[arg(long)]
        label: Option<String>,
        /// Count answers refused with this `details.reason` as answered (e.g.
        /// `SEARCH_TOO_SHORT`: the cost of a refusal is the figure).
        #[arg(long)]
        expect_reason: Option<String>,
        /// The text of `publicListings(search:)` for the `search` scenario (anonymous).
        #[arg(long, default_value = "")]
        search: String,
        /// An admin token for the mutations of the mixed load.
        #[arg(long)]
        admin_token: String,
        #[arg(long, value_enum)]
        scenario: http_load::Scenario,
        #[arg(long, default_value = "PROCUREMENT")]
        domain: String,
        /// Share of admin mutations in the mixed load.
        #[arg(long, default_value_t = 0.05)]
        write_share: f64,
        /// The server's process id, to sample its resident memory.
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long)]
        check_selection: Option<String>,
        #[command(flatten)]
        window: Window,
    },
    /// An abusive client beside the partners' load (bounded; prints a JSON summary).
    Abuse {
        #[arg(long)]
        url: String,
        #[arg(long, value_enum)]
        kind: abuse::Kind,
        /// The abusive partner's token (`subscriptions`, `batch-aliases`).
        #[arg(long)]
        token: Option<String>,
        /// Concurrent abusive clients (connections or sockets).
        #[arg(long, default_value_t = 3)]
        clients: u32,
        /// How long to keep abusing, in seconds.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// The seed-bench manifest (`batch-aliases` sends existing codes).
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Label of the data set in the results.
        #[arg(long, default_value = "")]
        scale: String,
        /// Append what the abusive clients did as a JSON line here (kind `abuse`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The database's own rate for the same lookups (this tool's SQL loop).
    Pg {
        #[arg(long)]
        database_url: String,
        #[arg(long, value_enum)]
        scenario: pg_load::PgScenario,
        #[command(flatten)]
        window: Window,
    },
    /// Render BENCHMARKS.md from the results and the run's metadata.
    /// Print the text of a peer scenario's GraphQL query (bench/run.sh checks the peer's
    /// answers with the query it will measure).
    PeerQuery {
        #[arg(long, value_enum)]
        scenario: http_load::Scenario,
    },
    Report {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        meta: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// A Markdown section of another script (bench/bulk.sh, bench/cluster.sh) to
        /// include as it is; repeatable.
        #[arg(long = "section")]
        sections: Vec<PathBuf>,
    },
}

fn read_population(path: &Path) -> anyhow::Result<bench_seed::Population> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: bench_seed::SeedReport =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    report.population().map_err(anyhow::Error::msg)
}

/// The checks' tokens: the lines of `file` when given, else the one `token`.
fn read_tokens(token: String, file: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let Some(file) = file else {
        return Ok(vec![token]);
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    anyhow::ensure!(!tokens.is_empty(), "{} holds no token", file.display());
    Ok(tokens)
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn finish(mut record: stats::Record, out: Option<&Path>) -> anyhow::Result<()> {
    record.loadavg = stats::loadavg();
    let record = &record;
    stats::print(record);
    if let Some(out) = out {
        stats::append(out, record)?;
    }
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Probe {
            url,
            token,
            check_selection,
        } => {
            let target = client::Target::parse(&url)?;
            let schema = schema::Schema::fetch(&target, Some(&token)).await?;
            let q = schema::queries(&schema, check_selection.as_deref());
            let out = serde_json::json!({
                "single": q.single_name,
                "single_query": q.single,
                "batch": q.batch.is_some(),
                "batch_query": q.batch,
                "register_partner": schema.mutation_field("registerPartner").is_some(),
            });
            println!("{}", serde_json::to_string(&out)?);
            Ok(())
        }
        Command::RegisterPartner {
            url,
            admin_token,
            subject,
            name,
            domains,
        } => {
            let target = client::Target::parse(&url)?;
            let schema = schema::Schema::fetch(&target, Some(&admin_token)).await?;
            let (registered, subject, note) =
                schema::register_partner(&target, &schema, &admin_token, &subject, &name, &domains)
                    .await?;
            let out =
                serde_json::json!({"registered": registered, "subject": subject, "note": note});
            println!("{}", serde_json::to_string(&out)?);
            Ok(())
        }
        Command::Verify {
            url,
            token,
            manifest,
            domain,
            samples,
            seed,
        } => {
            let target = client::Target::parse(&url)?;
            let schema = schema::Schema::fetch(&target, Some(&token)).await?;
            let population = read_population(&manifest)?;
            let result = verify::verify(
                &target,
                &schema,
                &token,
                &population,
                &domain,
                samples.max(2),
                seed,
            )
            .await?;
            println!("{}", serde_json::to_string(&result)?);
            if result.agree != result.sampled {
                anyhow::bail!(
                    "{} of {} answers disagree with the seeded data",
                    result.sampled - result.agree,
                    result.sampled
                );
            }
            Ok(())
        }
        Command::Http {
            url,
            token,
            token_file,
            label,
            expect_reason,
            search,
            admin_token,
            scenario,
            domain,
            write_share,
            server_pid,
            check_selection,
            window,
        } => {
            let target = client::Target::parse(&url)?;
            let queries = if scenario.is_peer() {
                // The peer's queries are fixed (http_load::GRAPHILE_*): no introspection.
                schema::Queries {
                    single_name: "operatorByUscc".into(),
                    single: http_load::GRAPHILE_LOOKUP.into(),
                    batch: None,
                }
            } else {
                let schema = schema::Schema::fetch(&target, Some(&token)).await?;
                schema::queries(&schema, check_selection.as_deref())
            };
            if scenario == http_load::Scenario::Batch && queries.batch.is_none() {
                anyhow::bail!("checkBatch does not exist on this server yet: nothing to measure");
            }
            let load = http_load::HttpLoad {
                target,
                scenario,
                connections: window.connections.max(1),
                warmup: seconds(window.warmup),
                duration: seconds(window.duration),
                population: read_population(&window.manifest)?,
                queries,
                read_tokens: read_tokens(token, token_file.as_deref())?,
                search,
                expect_reason,
                admin_token,
                domain,
                batch_size: window.batch_size.max(1),
                write_per_mille: (write_share.clamp(0.0, 1.0) * 1000.0).round() as u64,
                seed: window.seed,
                server_pid,
                scale: window.scale,
            };
            let mut record = load.run().await?;
            if let Some(label) = label {
                record.scenario = label;
            }
            finish(record, window.out.as_deref())
        }
        Command::Abuse {
            url,
            kind,
            token,
            clients,
            duration,
            manifest,
            seed,
            scale,
            out,
        } => {
            let target = client::Target::parse(&url)?;
            let ws_url = format!("ws://{}/graphql/ws", target.host);
            let population = manifest.as_deref().map(read_population).transpose()?;
            let report = abuse::Abuse {
                kind,
                target,
                ws_url,
                token,
                clients,
                duration: seconds(duration),
                population,
                seed,
            }
            .run()
            .await?;
            println!("{}", serde_json::to_string(&report)?);
            if let Some(out) = out {
                stats::append(&out, &report.record(&scale))?;
            }
            Ok(())
        }
        Command::Pg {
            database_url,
            scenario,
            window,
        } => {
            let load = pg_load::PgLoad {
                database_url,
                scenario,
                connections: window.connections.max(1),
                warmup: seconds(window.warmup),
                duration: seconds(window.duration),
                population: read_population(&window.manifest)?,
                batch_size: window.batch_size.max(1),
                seed: window.seed,
                scale: window.scale,
            };
            let record = load.run().await?;
            finish(record, window.out.as_deref())
        }
        Command::PeerQuery { scenario } => {
            let query = http_load::peer_query(scenario)
                .ok_or_else(|| anyhow::anyhow!("{} is not a peer scenario", scenario.name()))?;
            println!("{query}");
            Ok(())
        }
        Command::Report {
            results,
            meta,
            out,
            sections,
        } => report::write(&results, &meta, &out, &sections),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command))
}
