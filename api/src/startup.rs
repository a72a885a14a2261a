//! Builds the application: database, keys, schema and HTTP server. Tests call
//! [`Application::build`] with `bind = "127.0.0.1:0"` and read the chosen port.

use crate::auth::{keys, tokens::TokenService};
use crate::config::Settings;
use crate::graphql::{RegistrySchema, build_schema};
use crate::http;
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;
use sea_orm::DatabaseConnection;
use std::net::TcpListener;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;

/// Everything a request may need, shared by all workers.
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The configuration the service started with.
    pub settings: Arc<Settings>,
    /// Verifies (and, for the CLI, issues) access tokens.
    pub tokens: Arc<TokenService>,
}

impl AppState {
    /// Connects, migrates when configured, and loads (or in development creates) keys.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings).await?;
        if settings.run_migrations {
            crate::db::migrate_up(&db).await?;
        }
        Self::with_db(settings, db)
    }

    pub fn with_db(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let tokens = token_service(&settings)?;
        Ok(Self {
            db,
            settings: Arc::new(settings),
            tokens: Arc::new(tokens),
        })
    }
}

/// The access-token service from the configured (or development) key.
pub fn token_service(settings: &Settings) -> anyhow::Result<TokenService> {
    let key = keys::load_or_create(&settings.signing_key_file(), !settings.is_production())
        .context("loading the token signing key")?;
    TokenService::new(
        &key,
        &settings.auth.issuer,
        &settings.auth.audience,
        settings.auth.leeway_seconds,
    )
}

pub struct Application {
    port: u16,
    server: Server,
    state: Arc<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = Arc::new(AppState::init(settings).await?);
        Self::from_state(state)
    }

    pub fn from_state(state: Arc<AppState>) -> anyhow::Result<Self> {
        let settings = state.settings.clone();
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let schema: RegistrySchema = build_schema(state.clone(), &settings);
        let limiter = http::rate_limit::RateLimiter::from_limits(&settings.limits)?;
        let data_state = web::Data::new(state.clone());
        let data_schema = web::Data::new(schema);
        let data_limiter = web::Data::new(limiter);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(data_state.clone())
                .app_data(data_schema.clone())
                .app_data(data_limiter.clone())
                .configure(http::routes)
        })
        .listen(listener)?
        .shutdown_timeout(30);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        tracing::info!(port, "credit-registry listening");
        Ok(Self {
            port,
            server: server.run(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM (graceful: in-flight requests finish, up to 30 s) or SIGINT
    /// (immediate), then closes the pool. The pool is shared by every clone of the
    /// connection, so closing a clone closes it even while workers still hold theirs.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        let closed = self.state.db.clone().close().await;
        match &closed {
            Ok(()) => tracing::info!("database pool closed"),
            Err(err) => tracing::warn!(error = %err, "closing the database pool failed"),
        }
        served?;
        tracing::info!("credit-registry stopped");
        Ok(())
    }
}
