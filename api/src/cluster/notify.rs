//! Announcements between instances: `pg_notify` inside the writing transaction, one
//! `LISTEN`ing connection per instance.
//!
//! PostgreSQL queues a notification with the transaction that raised it and delivers it
//! to every listening session of the database when (and only if) that transaction
//! commits, so a listener never hears of a change it cannot read yet, nor of one that
//! was rolled back. Notifications are not stored: a listener that lost its connection
//! missed whatever was sent meanwhile, so on reconnect it does a full refresh (the
//! partner cache is emptied, the feed reads from its position, the keys are re-read).
//! The time limits of the caches (`auth.partner_cache_seconds`, `jobs.feed_poll_ms`,
//! the receipt keys' reload interval) stay as the fallback.

use crate::auth::partners::PartnerDirectory;
use crate::service::feed::FeedHub;
use crate::service::receipts::ReceiptService;
pub use sea_orm::sqlx::postgres::PgListener;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A committed change of the list (the feed reads new revisions).
pub const LIST_CHANNEL: &str = "registry_list";
/// A partner's registration changed; the payload is its subject.
pub const PARTNER_CHANNEL: &str = "registry_partner";
/// A signing key was added (the payload says which kind, for the logs only).
pub const KEYS_CHANNEL: &str = "registry_keys";
/// Every channel an instance listens on.
pub const CHANNELS: [&str; 3] = [LIST_CHANNEL, PARTNER_CHANNEL, KEYS_CHANNEL];

/// The listener's `application_name`, so an operator (or a test) can tell its
/// connection in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "credit-registry-listener";

/// What a writing transaction announces to every instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement<'a> {
    /// A change of the list was written (listing mutation, repair, import, expiry).
    ListChanged,
    /// The registration of the partner with this subject changed (deactivated,
    /// registered, its domains).
    PartnerChanged(&'a str),
    /// A signing key was added or rotated; the text names which (`receipts`, `tokens`).
    KeysChanged(&'a str),
}

impl Announcement<'_> {
    fn channel(&self) -> &'static str {
        match self {
            Announcement::ListChanged => LIST_CHANNEL,
            Announcement::PartnerChanged(_) => PARTNER_CHANNEL,
            Announcement::KeysChanged(_) => KEYS_CHANNEL,
        }
    }

    fn payload(&self) -> &str {
        match self {
            Announcement::ListChanged => "",
            Announcement::PartnerChanged(subject) => subject,
            Announcement::KeysChanged(which) => which,
        }
    }
}

/// Queues `announcement` in the transaction (or, outside one, sends it at once) on
/// PostgreSQL; nothing on SQLite, where one process serves and its in-process paths
/// suffice. **The one place** a change is announced to other instances.
///
/// Counted as sent when queued: a transaction rolled back after it delivers nothing.
pub async fn announce(
    conn: &impl ConnectionTrait,
    announcement: Announcement<'_>,
) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [announcement.channel().into(), announcement.payload().into()],
    ))
    .await?;
    crate::metrics::notification_sent(announcement.channel());
    Ok(())
}

/// Announces new signing keys (`which`: `receipts` or `tokens`) to every instance on the configured
/// database, from a command outside the server (`rotate-receipt-key`, `rotate-token-key`). `Ok(false)` on
/// SQLite, where nothing listens: the server re-reads its keys periodically.
pub async fn announce_keys(
    settings: &crate::config::Settings,
    which: &str,
) -> anyhow::Result<bool> {
    if crate::db::is_sqlite(&settings.database_url()) {
        return Ok(false);
    }
    let db = crate::db::connect(settings).await?;
    // Outside a transaction the notification is sent at once.
    announce(&db, Announcement::KeysChanged(which)).await?;
    let _ = db.close().await;
    Ok(true)
}

/// What an instance updates when it hears an announcement.
#[derive(Clone)]
pub struct Targets {
    pub partners: Arc<PartnerDirectory>,
    pub feed: Arc<FeedHub>,
    pub receipts: Arc<ReceiptService>,
    pub tokens: Arc<crate::auth::tokens::TokenService>,
}

impl Targets {
    fn apply(&self, channel: &str, payload: &str) {
        match channel {
            LIST_CHANNEL => self.feed.notify(),
            PARTNER_CHANNEL => self.partners.forget(payload),
            KEYS_CHANNEL => self.reload_keys(payload),
            _ => {}
        }
    }

    /// After a lost connection: whatever was announced meanwhile is unknown, so act as
    /// if everything had changed.
    fn refresh_all(&self) {
        self.partners.forget_all();
        self.feed.notify();
        self.reload_keys("refresh");
    }

    /// Both kinds are re-read whichever was announced: a re-read that finds nothing new
    /// changes nothing.
    fn reload_keys(&self, which: &str) {
        tracing::debug!(which, "signing keys re-read on announcement");
        if let Err(e) = self.receipts.reload() {
            tracing::warn!(error = %format!("{e:#}"), "receipt keys not reloaded; keeping the current ones");
        }
        if let Err(e) = self.tokens.reload() {
            tracing::warn!(error = %format!("{e:#}"), "token keys not reloaded; keeping the current ones");
        }
    }
}

/// Opens the listening connection (its own, outside the pool: it is held for the life of
/// the server) and subscribes to every channel.
pub async fn connect(url: &str, connect_timeout: Duration) -> Result<PgListener, DbErr> {
    let sqlx_err = |e: sea_orm::sqlx::Error| DbErr::Custom(format!("the cluster listener: {e}"));
    let options = PgConnectOptions::from_str(url)
        .map_err(sqlx_err)?
        .application_name(LISTENER_APPLICATION_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(connect_timeout)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options)
        .await
        .map_err(sqlx_err)?;
    let mut listener = PgListener::connect_with(&pool).await.map_err(sqlx_err)?;
    // The pool is the listener's alone; nothing closes it but the listener's drop.
    listener.ignore_pool_close_event(true);
    listener.listen_all(CHANNELS).await.map_err(sqlx_err)?;
    Ok(listener)
}

/// First wait after a failed (re)connection; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens for the life of the server. `listener` is the connection opened at start
/// (`None`: open it here). Whenever the connection was lost, everything is refreshed
/// once it is back: notifications are not queued for a session that is gone.
pub async fn run_listener(
    mut listener: Option<PgListener>,
    url: String,
    connect_timeout: Duration,
    targets: Targets,
) {
    let mut backoff = FIRST_BACKOFF;
    // Whether a connection was open before (only then is a new one a reconnect). Either
    // way the server may have served before it listened, so a new one refreshes.
    let mut was_connected = listener.is_some();
    loop {
        let Some(current) = listener.as_mut() else {
            match connect(&url, connect_timeout).await {
                Ok(l) => {
                    listener = Some(l);
                    backoff = FIRST_BACKOFF;
                    if was_connected {
                        crate::metrics::listener_reconnected();
                        tracing::info!(
                            "cluster listener connected again; refreshing caches, feed and keys"
                        );
                    }
                    targets.refresh_all();
                    was_connected = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cluster listener: connecting failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        match current.try_recv().await {
            Ok(Some(notification)) => {
                crate::metrics::notification_received(notification.channel());
                targets.apply(notification.channel(), notification.payload());
            }
            // The connection was lost and sqlx opened and subscribed a new one.
            Ok(None) => {
                crate::metrics::listener_reconnected();
                tracing::warn!("cluster listener reconnected; refreshing caches, feed and keys");
                targets.refresh_all();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster listener: connection lost");
                // A new listener from scratch (the refresh follows its connection), after
                // a pause, so an error that repeats does not spin.
                listener = None;
                tokio::time::sleep(FIRST_BACKOFF).await;
            }
        }
    }
}
