use anyhow::Context;
use api::auth::tokens::{TokenRequest, parse_ttl};
use api::cli::{Cli, Command, MigrateAction, ReportFormat, parse_domains};
use api::config::Settings;
use api::service::receipts;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    // Before the runtime starts any thread: it may set an environment variable.
    api::error::configure_backtraces(settings.log_backtraces);
    actix_web::rt::System::new().block_on(run(cli, settings))
}

async fn run(cli: Cli, mut settings: Settings) -> anyhow::Result<()> {
    api::telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve { no_migrate: false }) {
        Command::Serve { no_migrate } => {
            if no_migrate {
                settings.run_migrations = false;
            }
            let app = api::startup::Application::build(settings).await?;
            app.run_until_stopped().await
        }
        Command::Migrate { action } => {
            let db = api::db::connect(&settings).await?;
            if matches!(action, MigrateAction::Up) {
                api::db::migrate_up(&db).await?;
            }
            for (name, applied) in api::db::migration_status(&db).await? {
                println!("{} {name}", if applied { "applied" } else { "pending" });
            }
            Ok(())
        }
        Command::Token {
            role,
            sub,
            domains,
            region,
            ttl,
        } => {
            let tokens = api::startup::token_service(&settings)?;
            let domains = parse_domains(&domains).map_err(anyhow::Error::msg)?;
            if let Some(region) = &region {
                anyhow::ensure!(
                    api::domain::region::is_division_code(region),
                    "region '{region}' is not a six-digit division code"
                );
            }
            let ttl = parse_ttl(&ttl).map_err(anyhow::Error::msg)?;
            let token = tokens.issue(&TokenRequest {
                subject: sub,
                role: role.into(),
                domains,
                region,
                ttl,
            })?;
            println!("{token}");
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", api::graphql::sdl());
            Ok(())
        }
        Command::CalendarLoad { file, year, source } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let days = api::service::calendar::days_of_year_from_csv(&text, year)
                .map_err(anyhow::Error::msg)?;
            let db = api::db::connect(&settings).await?;
            let actor = api::service::Actor::system("cli:calendar-load");
            let count = days.len();
            let clock = api::clock::Clock::system();
            api::service::calendar::load_year(&db, &actor, &clock, year, &source, days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("loaded {count} exception days for {year}");
            Ok(())
        }
        Command::Witness {
            url,
            log,
            key,
            name,
            state,
            vkey,
            interval,
            once,
        } => {
            let signing = api::auth::keys::load_or_create(&key, false)?;
            let key = api::tlog::cosignature::WitnessKey::new(&name, signing)
                .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let args = api::tlog::witness::WitnessArgs {
                url,
                log,
                state,
                vkey,
                interval: std::time::Duration::from_secs(interval.max(1)),
                once,
            };
            let status = api::tlog::witness::run(&args, &key).await;
            std::process::exit(status);
        }
        Command::WitnessKey { key, name } => {
            let signing = if key.exists() {
                api::auth::keys::load_or_create(&key, false)?
            } else {
                let signing = api::auth::keys::generate(&key)?;
                eprintln!("wrote {}", key.display());
                signing
            };
            let key = api::tlog::cosignature::WitnessKey::new(&name, signing)
                .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            println!("{}", key.vkey());
            Ok(())
        }
        Command::Keygen { out } => {
            api::auth::keys::generate(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::RotateReceiptKey => {
            let dir = settings.receipt_key_dir();
            add_and_announce_key(&settings, &dir, KeyKind::Receipts).await
        }
        Command::RotateTokenKey => {
            let Some(dir) = settings.auth.signing_key_dir.clone() else {
                anyhow::bail!(
                    "rotate-token-key needs auth.signing_key_dir (REGISTRY_AUTH__SIGNING_KEY_DIR): a single auth.signing_key_file cannot be rotated without invalidating every token it issued"
                );
            };
            add_and_announce_key(&settings, &dir, KeyKind::Tokens).await
        }
        Command::VerifyReceipt {
            jwks,
            vkey,
            witness_vkeys,
            min_cosignatures,
            registry_url,
            registry_vkey,
            registry_min_cosignatures,
            status_proof,
            recompute,
            receipt,
        } => {
            // Exit status 2: nothing could be verified (unlike 1: verified and not genuine).
            let inputs = (|| -> anyhow::Result<_> {
                let keys = match &jwks {
                    Some(path) => {
                        let text = std::fs::read_to_string(path)
                            .with_context(|| format!("reading the JWK set {}", path.display()))?;
                        receipts::parse_jwks(&text)
                            .with_context(|| format!("reading the JWK set {}", path.display()))?
                    }
                    None => Default::default(),
                };
                let log = match &vkey {
                    Some(path) => {
                        let text = std::fs::read_to_string(path).with_context(|| {
                            format!("reading the verifier key {}", path.display())
                        })?;
                        Some(
                            api::tlog::note::LogVerifier::parse(&text)
                                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                        )
                    }
                    None => None,
                };
                let receipt = api::cli::read_receipt_arg(&receipt)?;
                let is_proof = api::tlog::proof::is_tlog_proof(&receipt);
                if is_proof && log.is_none() {
                    anyhow::bail!(
                        "this receipt is a transparency-log proof: pass the answer log's verifier key with --vkey (a saved /logs/answers/vkey)"
                    );
                }
                if !is_proof && jwks.is_none() {
                    anyhow::bail!(
                        "this receipt is a compact JWS: pass the registry's JWK set with --jwks (a saved /.well-known/jwks.json)"
                    );
                }
                let witnesses = api::tlog::client::read_witness_vkeys(&witness_vkeys)?;
                let read = |path: &Option<std::path::PathBuf>, what: &str| {
                    path.as_ref()
                        .map(|path| {
                            std::fs::read_to_string(path)
                                .with_context(|| format!("reading {what} {}", path.display()))
                        })
                        .transpose()
                };
                let registry_vkey = read(&registry_vkey, "the registry log's verifier key")?;
                let status_proof = read(&status_proof, "the status proof")?;
                Ok((keys, log, receipt, witnesses, registry_vkey, status_proof))
            })();
            let (keys, log, receipt, witnesses, registry_vkey, status_proof) = match inputs {
                Ok(inputs) => inputs,
                Err(err) => {
                    eprintln!("ERROR: {err:#}");
                    std::process::exit(2);
                }
            };
            let verified = receipts::verify_any(&receipt, &keys, log.as_ref()).and_then(|v| {
                api::tlog::client::receipt_cosigned(&receipt, &witnesses, min_cosignatures)
                    .map_err(receipts::ReceiptError::Proof)?;
                Ok(v)
            });
            // With --registry-url: the head the answer was read from is in the public log.
            let tied = match (&registry_url, &verified) {
                (Some(url), Ok(v)) => match v.payload.registry_head() {
                    Err(why) => Some(Err(why)),
                    Ok(head) => match api::tlog::client::check_registry_head_witnessed(
                        url,
                        registry_vkey.clone(),
                        head.size,
                        &head.root,
                        recompute.then(|| (&v.payload).into()).as_ref(),
                        &witnesses,
                        registry_min_cosignatures,
                    )
                    .await
                    {
                        Ok(report) if report.ok() => Some(Ok(report.text())),
                        Ok(report) => Some(Err(report.problems.join("; "))),
                        Err(err) => {
                            eprintln!("ERROR: checking the registry log at {url}: {err:#}");
                            std::process::exit(2);
                        }
                    },
                },
                _ => None,
            };
            // With --status-proof: the answer follows from the status map, offline.
            let proven = match (&status_proof, &verified) {
                (Some(text), Ok(v)) => Some(v.payload.registry_head().and_then(|head| {
                    api::tlog::client::check_status_proof(
                        text,
                        registry_vkey.as_deref().unwrap_or_default(),
                        head.size,
                        &head.root,
                        &(&v.payload).into(),
                    )
                })),
                _ => None,
            };
            let verified = match (verified, &tied, &proven) {
                (Ok(_), Some(Err(problem)), _) => Err(receipts::ReceiptError::Proof(format!(
                    "the registry log: {problem}"
                ))),
                (Ok(_), _, Some(Err(problem))) => {
                    Err(receipts::ReceiptError::Proof(problem.clone()))
                }
                (verified, _, _) => verified,
            };
            let (report, genuine) = match verified {
                Ok(verified) => (
                    match verified.log {
                        Some((index, size)) => format!(
                            "VALID: entry {index} of the answer log, under its checkpoint of size {size} signed by {}\n{}\n",
                            verified.kid,
                            serde_json::to_string_pretty(&verified.payload)?
                        ),
                        None => format!(
                            "VALID: signed by key {}\n{}\n",
                            verified.kid,
                            serde_json::to_string_pretty(&verified.payload)?
                        ),
                    },
                    true,
                ),
                Err(reason) => (format!("INVALID: {reason}\n"), false),
            };
            let report = match tied {
                Some(Ok(registry)) if genuine => format!("{report}{registry}"),
                _ => report,
            };
            let report = match proven {
                Some(Ok(status)) if genuine => format!("{report}{}\n", status.report),
                _ => report,
            };
            // The exit status is the answer; a closed pipe (`| head`) must not change it.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), report.as_bytes());
            if !genuine {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::VerifyLog {
            url,
            from_checkpoint,
            vkey,
            save_checkpoint,
            witness_vkeys,
            min_cosignatures,
            at_size,
            as_of,
            list_out,
        } => {
            let args = api::tlog::client::VerifyLogArgs {
                url,
                from_checkpoint,
                vkey,
                save_checkpoint,
                witness_vkeys,
                min_cosignatures,
                at_size,
                as_of,
                list_out,
            };
            match api::tlog::client::verify_log(&args).await {
                Ok(report) => {
                    let _ =
                        std::io::Write::write_all(&mut std::io::stdout(), report.text().as_bytes());
                    if !report.ok() {
                        std::process::exit(1);
                    }
                    Ok(())
                }
                Err(err) => {
                    eprintln!("ERROR: {err:#}");
                    std::process::exit(2);
                }
            }
        }
        Command::VerifyAudit { page_size, expect } => {
            let db = api::db::connect(&settings).await?;
            let report =
                api::service::audit_query::verify_chain_expecting(&db, page_size, &expect).await?;
            if report.ok {
                println!(
                    "audit chain ok: {} events checked, last event {}",
                    report.checked_events,
                    report.last_event_id.unwrap_or(0)
                );
                for h in &expect {
                    println!("expected head {} {} holds", h.event_id, h.hash);
                }
                // The line to keep off-box and pass back as `--expect ID:HASH` next time.
                println!(
                    "head {} {}",
                    report.last_event_id.unwrap_or(0),
                    report.last_hash.as_deref().unwrap_or_default()
                );
                Ok(())
            } else {
                eprintln!(
                    "audit chain BROKEN at event {}: {}",
                    report.first_broken_event_id.unwrap_or(0),
                    report.problem.as_deref().unwrap_or("unknown problem")
                );
                eprintln!("{} events before it verified", report.checked_events);
                std::process::exit(1);
            }
        }
        Command::Import(args) => {
            let status = api::cli::run_import(&settings, args).await?;
            if status != 0 {
                std::process::exit(status);
            }
            Ok(())
        }
        Command::Export(args) => api::cli::run_export(&settings, args).await,
        Command::Report {
            year,
            format,
            region,
        } => {
            let db = api::db::connect(&settings).await?;
            let report = api::service::report::yearly(
                &db,
                api::clock::Clock::system().now(),
                year,
                region.as_deref(),
            )
            .await?;
            let text = match format {
                ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
                ReportFormat::Csv => api::service::report::to_csv(&report),
            };
            write_stdout(&text)
        }
    }
}

/// Writes to standard output; a reader that stopped early (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The key directories `rotate-receipt-key` and `rotate-token-key` add to.
#[derive(Clone, Copy)]
enum KeyKind {
    Receipts,
    Tokens,
}

/// Adds a key to `dir` (it signs from now on; older keys keep verifying) and announces it
/// to every instance on a PostgreSQL database, which re-reads its key directory at once;
/// the periodic re-read is the fallback.
async fn add_and_announce_key(
    settings: &Settings,
    dir: &std::path::Path,
    kind: KeyKind,
) -> anyhow::Result<()> {
    let kid = receipts::add_key(dir)?;
    // (the key's name, what the instances do with it, the setting of their directory, the
    // announcement's payload)
    let (what, signs, setting, announced_as) = match kind {
        KeyKind::Receipts => (
            "receipt",
            "sign with it now",
            "receipts.key_dir",
            "receipts",
        ),
        KeyKind::Tokens => (
            "token",
            "sign new tokens with it now",
            "auth.signing_key_dir",
            "tokens",
        ),
    };
    println!(
        "added {what} key {kid} ({})",
        dir.join(format!("{kid}.pem")).display()
    );
    match api::cluster::notify::announce_keys(settings, announced_as).await {
        Ok(true) => println!(
            "announced to the running instances on the database: they {signs} (each re-reads its {setting}); older keys keep verifying"
        ),
        Ok(false) => println!(
            "a running service picks it up within 30 s (or at its next start); older keys keep verifying"
        ),
        Err(e) => println!(
            "not announced ({e:#}): running services pick it up within 30 s; older keys keep verifying"
        ),
    }
    Ok(())
}
