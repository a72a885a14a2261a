use anyhow::Context;
use api::auth::tokens::{TokenRequest, parse_ttl};
use api::cli::{Cli, Command, MigrateAction, parse_domains};
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
        Command::SeedBench {
            operators,
            listings,
            check_records,
            seed,
            in_force_share,
            manifest,
            codes_out,
            no_progress,
        } => {
            let db = api::db::connect(&settings).await?;
            api::db::migrate_up(&db).await?;
            let options = api::bench::SeedOptions {
                operators,
                listings,
                check_records: check_records.unwrap_or(listings),
                seed,
                in_force_share,
                progress: !no_progress,
            };
            let report = api::bench::seed(&db, &options).await?;
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
            if let Some(path) = manifest {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("manifest: {}", path.display());
            }
            if let Some(path) = codes_out {
                let population = report.population().map_err(anyhow::Error::msg)?;
                api::bench::load::write_codes(&population, &path)?;
                println!("codes: {}", path.display());
            }
            db.close().await?;
            Ok(())
        }
    }
}
