//! Builds the application: database, keys, schema and HTTP server. Tests call
//! [`Application::build`] with `bind = "127.0.0.1:0"` and read the chosen port.

use crate::auth::partners::PartnerDirectory;
use crate::auth::{keys, tokens::TokenService};
use crate::clock::Clock;
use crate::config::Settings;
use crate::graphql::{RegistrySchema, build_schema};
use crate::http;
use crate::service::Services;
use crate::service::check_lookups::CheckLookups;
use crate::service::check_records::CheckRecorder;
use crate::service::feed::FeedHub;
use crate::service::receipts::{self, ReceiptService};
use crate::telemetry::RequestSpan;
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;
use sea_orm::DatabaseConnection;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing_actix_web::TracingLogger;

/// Everything a request may need, shared by all workers.
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The configuration the service started with.
    pub settings: Arc<Settings>,
    /// Verifies (and, for the CLI, issues) access tokens.
    pub tokens: Arc<TokenService>,
    /// Statements run on the pool since start (a cheap counter: tests use it to prove
    /// that a page of results costs a bounded number of queries).
    pub queries: Arc<AtomicU64>,
    /// Partner registrations behind partner tokens, cached for `auth.partner_cache_seconds`.
    pub partners: Arc<PartnerDirectory>,
    /// Receipt signing keys (the newest signs, all verify) and the published JWK set.
    pub receipts: Arc<ReceiptService>,
    /// Group-commit writer of check records: a check answers only once its record is committed.
    pub check_recorder: CheckRecorder,
    /// Shared lookups of single checks (PostgreSQL, unless turned off).
    pub check_lookups: Option<CheckLookups>,
    /// The live change feed: notified after each committed listing change, it pushes
    /// the new events to `registryChanged` subscribers.
    pub feed: Arc<FeedHub>,
    /// The registry's clock: services read the present from it.
    pub clock: Clock,
    /// What use cases need (pool, clock, post-commit effects).
    pub services: Services,
}

impl AppState {
    /// Connects, migrates when configured, and loads (or in development creates) keys.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings).await?;
        if settings.run_migrations {
            crate::db::migrate_up(&db).await?;
        }
        let state = Self::with_db(settings, db)?;
        // Live subscribers start from the present; older events come from `changes`.
        let latest = crate::service::feed::latest_revision_id(&state.db).await?;
        state.feed.set_position(latest);
        Ok(state)
    }

    /// Builds the state over an open pool; starts the check-record writer and the
    /// receipt-key reloader on the current Tokio runtime.
    pub fn with_db(settings: Settings, mut db: DatabaseConnection) -> anyhow::Result<Self> {
        let tokens = token_service(&settings)?;
        let queries = Arc::new(AtomicU64::new(0));
        let counter = queries.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let receipts = Arc::new(receipt_service(&settings)?);
        receipts::spawn_reloader(&receipts);
        let partners = Arc::new(PartnerDirectory::new(Duration::from_secs(
            settings.auth.partner_cache_seconds,
        )));
        let check_recorder =
            CheckRecorder::start(db.clone(), settings.database.check_record_writers);
        let check_lookups = (settings.database.shared_check_lookups
            && db.get_database_backend() == sea_orm::DatabaseBackend::Postgres)
            .then(|| CheckLookups::start(db.clone()));
        let clock = Clock::system();
        let feed = Arc::new(FeedHub::new(FEED_BUFFER));
        let services = Services::new(db.clone(), clock.clone(), feed.clone(), partners.clone());
        Ok(Self {
            db,
            settings: Arc::new(settings),
            tokens: Arc::new(tokens),
            queries,
            partners,
            receipts,
            check_recorder,
            check_lookups,
            feed,
            clock,
            services,
        })
    }
}

/// The change feed's pump (always), the expiry recorder and the purge of expired
/// idempotency keys (unless turned off).
fn background_jobs(state: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let jobs = &state.settings.jobs;
    let poll = Duration::from_millis(jobs.feed_poll_ms.max(50));
    let mut handles = vec![tokio::spawn(
        state.feed.clone().pump(state.db.clone(), poll),
    )];
    if jobs.idempotency_purge_interval_seconds > 0 {
        handles.push(tokio::spawn(crate::service::idempotency::purge_job(
            state.db.clone(),
            Duration::from_secs(jobs.idempotency_purge_interval_seconds),
        )));
    }
    if jobs.expiry_interval_seconds > 0 {
        handles.push(tokio::spawn(crate::service::feed::expiry_job(
            state.db.clone(),
            state.feed.clone(),
            Duration::from_secs(jobs.expiry_interval_seconds),
        )));
    }
    handles
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

/// The receipt keys from the configured (or, in development, a generated) key directory.
pub fn receipt_service(settings: &Settings) -> anyhow::Result<ReceiptService> {
    ReceiptService::open(
        settings.receipt_key_dir(),
        settings.auth.issuer.clone(),
        !settings.is_production(),
    )
    .context("loading the receipt signing keys")
}
/// Events a slow subscriber may fall behind before it re-reads from the database.
const FEED_BUFFER: usize = 1024;

pub struct Application {
    port: u16,
    server: Server,
    state: Arc<AppState>,
    /// The change feed's pump and the expiry recorder, stopped with the server.
    jobs: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = Arc::new(AppState::init(settings).await?);
        Self::from_state(state)
    }

    pub fn from_state(state: Arc<AppState>) -> anyhow::Result<Self> {
        let settings = state.settings.clone();
        // The process's metrics recorder, before the first request is counted.
        crate::metrics::handle();
        let address = settings.listen_address();
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener.local_addr()?.port();
        let schema: RegistrySchema = build_schema(state.clone(), &settings);
        let limiter = http::rate_limit::RateLimiter::from_limits(&settings.limits)?;
        http::cors::check(&settings.cors).map_err(anyhow::Error::msg)?;
        let cors = settings.cors.clone();
        let data_state = web::Data::new(state.clone());
        let data_schema = web::Data::new(schema);
        let data_limiter = web::Data::new(limiter);
        let data_sockets = web::Data::new(http::Sockets::new(&settings.limits));
        let mut server = HttpServer::new(move || {
            App::new()
                // The access middleware is outermost: the request id it assigns is the
                // one the request span (and every event inside it) carries.
                .wrap(TracingLogger::<RequestSpan>::new())
                // Compression and CORS inside the access middleware, so that every answer
                // (refusals and preflights included) is logged and carries a request id.
                .wrap(actix_web::middleware::Compress::default())
                .wrap(http::cors::middleware(&cors))
                .wrap(actix_web::middleware::from_fn(http::access::access_log))
                .app_data(data_state.clone())
                .app_data(data_schema.clone())
                .app_data(data_limiter.clone())
                .app_data(data_sockets.clone())
                .configure(http::routes)
        })
        .listen(listener)?
        .shutdown_timeout(30);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        tracing::info!(port, "credit-registry listening");
        let jobs = background_jobs(&state);
        Ok(Self {
            port,
            server: server.run(),
            state,
            jobs,
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
        for job in &self.jobs {
            job.abort();
        }
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
