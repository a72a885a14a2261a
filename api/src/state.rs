//! The application state: everything a request or a background job may need, built
//! once at start and shared by every worker. The HTTP layer (`startup`, `http`) and the
//! GraphQL layer read it; services receive what they need from it (`Services`), never
//! the state itself.

use crate::auth::partners::PartnerDirectory;
use crate::auth::{keys, tokens::TokenService};
use crate::clock::Clock;
use crate::config::Settings;
use crate::service::Services;
use crate::service::check_lookups::CheckLookups;
use crate::service::check_records::CheckRecorder;
use crate::service::feed::FeedHub;
use crate::service::logs::TransparencyLogs;
use crate::service::receipts::{self, ReceiptService};
use anyhow::Context;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Everything a request may need, shared by all workers.
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Anonymous callers' own small pool, with a shorter statement timeout: the public
    /// list cannot take the connections checks need (see `graphql::capacity`).
    pub anonymous_db: DatabaseConnection,
    /// Admission of bulk work (auditors) around execution (see `graphql::capacity`).
    pub capacity: crate::graphql::capacity::Capacity,
    /// Texts of automatic persisted queries, by hash: every transport resolves a
    /// request through it before reading its text (see `graphql::persisted`).
    pub persisted_queries: crate::graphql::persisted::PersistedQueries,
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
    /// The transparency logs (registry, answers): keys, appender, the registry head.
    pub logs: Arc<TransparencyLogs>,
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
    /// The read standby for heavy reads, when `database.replica_url` is set (see
    /// `replica`; reads pick it through [`AppState::heavy_reads`]).
    pub replica: Option<Arc<crate::replica::Replica>>,
    /// The public list's download files, one render per version (`service::public_files`).
    pub public_files: Arc<crate::service::public_files::PublicListFiles>,
    /// Status proofs being read at once, over all requests (see [`status_proof_permits`]).
    pub status_proofs: Arc<tokio::sync::Semaphore>,
    /// Every migration this build knows is applied: set once this process migrated, or
    /// once `/readyz` found none pending (an instance started with `--no-migrate` is not
    /// ready before the schema it needs is there).
    pub schema_current: std::sync::atomic::AtomicBool,
}

/// How many status proofs may read the main pool at once: a quarter of its connections.
/// A proof is a few sequential reads, and async-graphql resolves every item of a list
/// (and every alias) at once, so one `checkBatch` of a thousand bidders asking for
/// `statusProof` would otherwise queue thousands of reads for the pool that shared
/// check lookups and the check-record writer also draw from, and other callers' checks
/// would time out waiting for a connection. Proofs beyond this wait for a permit instead.
pub fn status_proof_permits(max_connections: u32) -> usize {
    usize::try_from(max_connections / 4).unwrap_or(1).max(1)
}

impl AppState {
    /// Connects, migrates when configured, and loads (or in development creates) keys.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings).await?;
        let migrated = settings.run_migrations;
        if migrated {
            crate::db::migrate_up(&db).await?;
        }
        let anonymous_db = crate::db::connect_anonymous(&settings, &db).await?;
        let replica = crate::replica::Replica::connect(&settings).await?;
        let mut state = Self::with_db(settings, db, anonymous_db)?;
        state.replica = replica;
        state.schema_current = std::sync::atomic::AtomicBool::new(migrated);
        state.logs.init(&state.db).await?;
        // Live subscribers start from the present; older events come from `changes`.
        let latest = crate::service::feed::latest_revision_id(&state.db).await?;
        state.feed.set_position(latest);
        Ok(state)
    }

    /// Builds the state over an open pool; starts the check-record writer and the
    /// receipt-key reloader on the current Tokio runtime.
    pub fn with_db(
        settings: Settings,
        mut db: DatabaseConnection,
        mut anonymous_db: DatabaseConnection,
    ) -> anyhow::Result<Self> {
        let tokens = token_service(&settings)?;
        let queries = Arc::new(AtomicU64::new(0));
        for pool in [&mut db, &mut anonymous_db] {
            let counter = queries.clone();
            pool.set_metric_callback(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
        }
        let receipts = receipt_service(&settings)?;
        let clock = Clock::system();
        let logs = Arc::new(
            TransparencyLogs::open(&settings, clock.clone())
                .context("opening the transparency logs")?,
        );
        let receipts = Arc::new(
            receipts
                .with_answer_log(&logs.key(crate::store::tlog_store::LogName::Answers).vkey())?,
        );
        receipts::spawn_reloader(&receipts);
        let tokens = Arc::new(tokens);
        crate::auth::tokens::spawn_reloader(&tokens);
        let partners = Arc::new(PartnerDirectory::new(Duration::from_secs(
            settings.auth.partner_cache_seconds,
        )));
        let check_recorder = CheckRecorder::start(
            db.clone(),
            settings.database.check_record_writers,
            logs.clone(),
        );
        let check_lookups = (settings.database.shared_check_lookups
            && db.get_database_backend() == sea_orm::DatabaseBackend::Postgres)
            .then(|| CheckLookups::start(db.clone()));
        let feed = Arc::new(FeedHub::new(FEED_BUFFER));
        let services = Services::new(db.clone(), clock.clone(), feed.clone(), partners.clone());
        let capacity = crate::graphql::capacity::Capacity::new(&settings.limits);
        let persisted_queries =
            crate::graphql::persisted::PersistedQueries::new(settings.limits.persisted_queries);
        let status_proofs = Arc::new(tokio::sync::Semaphore::new(status_proof_permits(
            settings.database.max_connections,
        )));
        Ok(Self {
            db,
            anonymous_db,
            capacity,
            persisted_queries,
            settings: Arc::new(settings),
            tokens,
            queries,
            partners,
            receipts,
            logs,
            check_recorder,
            check_lookups,
            feed,
            clock,
            services,
            replica: None,
            public_files: Arc::default(),
            status_proofs,
            schema_current: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl AppState {
    /// The pool a caller's queries run on: anonymous callers have their own.
    pub fn pool_for(&self, identity: &crate::auth::Identity) -> &DatabaseConnection {
        self.primary_pool(identity.is_anonymous())
    }

    /// The primary's anonymous pool or its main one.
    fn primary_pool(&self, anonymous: bool) -> &DatabaseConnection {
        if anonymous {
            &self.anonymous_db
        } else {
            &self.db
        }
    }

    /// The one place that decides where a heavy read runs (auditors' history, reports,
    /// exports, the public list): on the standby while it is in use, else on the
    /// primary; anonymous callers on the anonymous pool of either. Checks and writes
    /// never come here: they always run on the primary.
    pub fn heavy_reads(&self, anonymous: bool) -> &DatabaseConnection {
        match &self.replica {
            Some(replica) if replica.in_use() => {
                if anonymous {
                    &replica.anonymous
                } else {
                    &replica.main
                }
            }
            _ => self.primary_pool(anonymous),
        }
    }

    /// [`AppState::heavy_reads`] for `identity`'s pool.
    pub fn heavy_reads_for(&self, identity: &crate::auth::Identity) -> &DatabaseConnection {
        self.heavy_reads(identity.is_anonymous())
    }
}

/// The access-token service from the configured (or development) key, or key directory.
pub fn token_service(settings: &Settings) -> anyhow::Result<TokenService> {
    if let Some(dir) = &settings.auth.signing_key_dir {
        return TokenService::from_dir(
            dir,
            Some(&settings.signing_key_file()),
            !settings.is_production(),
            &settings.auth.issuer,
            &settings.auth.audience,
            settings.auth.leeway_seconds,
        )
        .context("loading the token signing keys");
    }
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
