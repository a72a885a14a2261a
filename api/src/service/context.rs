//! What use cases need from the running service besides their inputs: the pool, the
//! clock, and where to announce what they committed.
//!
//! **Post-commit effects** live here, raised by the service that committed the change
//! and never by a resolver, so every transport (HTTP, WebSocket, CLI) and every use case
//! that changes the list (listing mutations, credit repair, the expiry recorder)
//! publishes it exactly once, after commit.

use super::feed::FeedHub;
use crate::auth::partners::PartnerDirectory;
use crate::clock::Clock;
use sea_orm::DatabaseConnection;
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

    /// A change of the list was committed: the change feed reads it now and pushes it
    /// to live subscribers.
    pub fn list_changed(&self) {
        self.feed.notify();
    }

    /// A partner's registration was committed: its cached registration is dropped, so
    /// its next request on this instance sees the change.
    pub fn partner_changed(&self, subject: &str) {
        self.partners.forget(subject);
    }
}
