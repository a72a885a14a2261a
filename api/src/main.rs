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
        Command::CalendarLoad { file, year, source } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let days = api::service::calendar::days_of_year_from_csv(&text, year)
                .map_err(anyhow::Error::msg)?;
            let db = api::db::connect(&settings).await?;
            let actor = api::service::Actor::system("cli:calendar-load");
            let count = days.len();
            api::service::calendar::load_year(&db, &actor, year, &source, days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("loaded {count} exception days for {year}");
            Ok(())
        }
        Command::Keygen { out } => {
            api::auth::keys::generate(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}
