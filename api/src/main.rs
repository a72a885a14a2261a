use anyhow::Context;
use api::auth::tokens::{TokenRequest, parse_ttl};
use api::cli::{Cli, Command, MigrateAction, ReportFormat, parse_domains};
use api::config::Settings;
use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
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
        Command::Keygen { out } => {
            api::auth::keys::generate(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::VerifyAudit { page_size } => {
            let db = api::db::connect(&settings).await?;
            let report = api::service::audit_query::verify_chain(&db, page_size).await?;
            if report.ok {
                println!(
                    "audit chain ok: {} events checked, last event {}",
                    report.checked_events,
                    report.last_event_id.unwrap_or(0)
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
        Command::Report {
            year,
            format,
            region,
        } => {
            let db = api::db::connect(&settings).await?;
            let report = api::service::report::yearly(&db, year, region.as_deref()).await?;
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
