//! Builds the application: database, keys, schema and HTTP server. Tests call
//! [`Application::build`] with `bind = "127.0.0.1:0"` and read the chosen port.

use crate::config::Settings;
use crate::graphql::{RegistrySchema, build_schema};
use crate::http;
pub use crate::state::{AppState, receipt_service, token_service};
use crate::telemetry::RequestSpan;
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::TracingLogger;

/// The change feed's pump (always), the expiry recorder and the purge of expired
/// idempotency keys (unless turned off), and on PostgreSQL the cluster listener
/// (`listener`: its connection if already open).
fn background_jobs(
    state: &Arc<AppState>,
    listener: Option<crate::cluster::notify::PgListener>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let jobs = &state.settings.jobs;
    let poll = Duration::from_millis(jobs.feed_poll_ms.max(50));
    let mut handles = Vec::new();
    if state.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        handles.push(tokio::spawn(crate::cluster::notify::run_listener(
            listener,
            state.settings.database_url(),
            Duration::from_millis(state.settings.database.connect_timeout_ms),
            cluster_targets(state),
        )));
    }
    handles.extend([
        tokio::spawn(state.feed.clone().pump(state.db.clone(), poll)),
        tokio::spawn(state.logs.clone().run_registry_appender(
            state.db.clone(),
            state.feed.clone(),
            poll,
        )),
    ]);
    if jobs.idempotency_purge_interval_seconds > 0 {
        handles.push(tokio::spawn(crate::service::idempotency::purge_job(
            state.db.clone(),
            state.clock.clone(),
            Duration::from_secs(jobs.idempotency_purge_interval_seconds),
        )));
    }
    if jobs.expiry_interval_seconds > 0 {
        handles.push(tokio::spawn(crate::service::feed::expiry_job(
            state.db.clone(),
            state.clock.clone(),
            state.feed.clone(),
            Duration::from_secs(jobs.expiry_interval_seconds),
        )));
    }
    if let Some(replica) = &state.replica {
        let interval =
            Duration::from_millis(state.settings.database.replica_check_interval_ms.max(50));
        handles.push(tokio::spawn(
            replica.clone().watch(state.db.clone(), interval),
        ));
    }
    handles
}

/// What the cluster listener updates on this instance.
fn cluster_targets(state: &AppState) -> crate::cluster::notify::Targets {
    crate::cluster::notify::Targets {
        partners: state.partners.clone(),
        feed: state.feed.clone(),
        receipts: state.receipts.clone(),
        tokens: state.tokens.clone(),
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: Arc<AppState>,
    /// The background jobs (feed pump, registry-log appender, expiry recorder, purge,
    /// cluster listener), stopped with the server.
    jobs: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = Arc::new(AppState::init(settings).await?);
        // On PostgreSQL the listening connection is open before the server answers, so
        // nothing another instance commits once this one is ready goes unheard.
        let listener = if state.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            let timeout = Duration::from_millis(state.settings.database.connect_timeout_ms);
            Some(
                crate::cluster::notify::connect(&state.settings.database_url(), timeout)
                    .await
                    .context("opening the cluster listener (LISTEN)")?,
            )
        } else {
            None
        };
        Self::start(state, listener)
    }

    /// Serves an already built state (the cluster listener, on PostgreSQL, connects in
    /// the background).
    pub fn from_state(state: Arc<AppState>) -> anyhow::Result<Self> {
        Self::start(state, None)
    }

    fn start(
        state: Arc<AppState>,
        cluster_listener: Option<crate::cluster::notify::PgListener>,
    ) -> anyhow::Result<Self> {
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
        // One for all workers: the statistics pages' one-at-a-time permit and cache.
        let data_statistics = web::Data::new(http::StatisticsPages::default());
        let data_hold = web::Data::new(http::refusal_hold::RefusalHold::from_limits(
            &settings.limits,
        ));
        let mut server = HttpServer::new(move || {
            App::new()
                // Innermost: a 429 is held before it is sent (see `http::refusal_hold`).
                .wrap(actix_web::middleware::from_fn(
                    http::refusal_hold::hold_refusals,
                ))
                // The access middleware is outermost: the request id it assigns is the
                // one the request span (and every event inside it) carries.
                .wrap(TracingLogger::<RequestSpan>::new())
                // Compression and CORS inside the access middleware, so that every answer
                // (refusals and preflights included) is logged and carries a request id.
                .wrap(actix_web::middleware::Compress::default())
                .wrap(http::cors::middleware(&cors))
                // Security headers on every answer, refusals and preflights included.
                .wrap(http::security_headers())
                .wrap(actix_web::middleware::from_fn(http::access::access_log))
                .app_data(data_state.clone())
                .app_data(data_schema.clone())
                .app_data(data_limiter.clone())
                .app_data(data_sockets.clone())
                .app_data(data_statistics.clone())
                .app_data(data_hold.clone())
                .configure(http::routes)
        })
        .listen(listener)?
        .client_disconnect_timeout(Duration::from_millis(settings.limits.close_linger_ms))
        .shutdown_timeout(30);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        tracing::info!(port, "credit-registry listening");
        let jobs = background_jobs(&state, cluster_listener);
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
        let _ = self.state.anonymous_db.clone().close().await;
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
