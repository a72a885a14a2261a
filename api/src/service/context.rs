//! What use cases need from the running service besides their inputs: the pool, the
//! clock, and where to announce what they committed.
//!
//! **Post-commit effects** live here, raised by the service that committed the change
//! and never by a resolver, so every transport (HTTP, WebSocket, CLI) and every use case
//! that changes the list (listing mutations, credit repair, the expiry recorder)
//! publishes it exactly once, after commit.
//!
//! A use case ends its transaction with [`Services::commit_list_change`] or
//! [`Services::commit_partner_change`]: the change is announced to the other instances
//! inside the transaction (`cluster::notify`, delivered by PostgreSQL at commit), the
//! transaction commits, and this instance acts on it at once in process.

use super::feed::FeedHub;
use crate::auth::partners::PartnerDirectory;
use crate::clock::Clock;
use crate::cluster::notify::{Announcement, announce};
use crate::error::AppResult;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use std::sync::Arc;

#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    /// The instant use cases act at (tests move it instead of sleeping).
    pub clock: Clock,
    feed: Arc<FeedHub>,
    partners: Arc<PartnerDirectory>,
}

impl Services {
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        feed: Arc<FeedHub>,
        partners: Arc<PartnerDirectory>,
    ) -> Self {
        Self {
            db,
            clock,
            feed,
            partners,
        }
    }

    /// Commits `tx`, which changed the list, and announces it: every instance's change
    /// feed reads it at once and pushes it to its live subscribers.
    pub async fn commit_list_change(&self, tx: DatabaseTransaction) -> AppResult<()> {
        commit_announced(tx, Announcement::ListChanged).await?;
        self.feed.notify();
        Ok(())
    }

    /// Commits `tx`, which changed the registration of partner `subject`, and announces
    /// it: every instance drops its cached registration, so the partner's next request
    /// anywhere sees the change.
    pub async fn commit_partner_change(
        &self,
        tx: DatabaseTransaction,
        subject: &str,
    ) -> AppResult<()> {
        commit_announced(tx, Announcement::PartnerChanged(subject)).await?;
        self.partners.forget(subject);
        Ok(())
    }
}

/// Queues `announcement` in `tx` and commits it: PostgreSQL delivers the announcement only
/// if the commit succeeds. The one way a writing transaction ends with an announcement
/// (the `Services` methods above, and jobs that run without them, like the expiry recorder).
pub(crate) async fn commit_announced(
    tx: DatabaseTransaction,
    announcement: Announcement<'_>,
) -> AppResult<()> {
    announce(&tx, announcement).await?;
    tx.commit().await?;
    Ok(())
}
