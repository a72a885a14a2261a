//! Use cases over the database, one file per area. Services take an [`Actor`] and plain
//! inputs, enforce the rules from `domain`, and write an audit event in the same
//! transaction as every change.

pub mod audit;
pub mod audit_query;
pub mod calendar;
pub mod catalogue;
pub mod check_records;
pub mod checks;
pub mod feed;
pub mod feedback;
pub mod history;
pub mod idempotency;
pub mod listing_search;
pub mod listings;
pub mod operators;
pub mod partners;
pub mod public;
pub mod receipts;
pub mod repair;
pub mod report;

use crate::auth::Identity;

/// Who performs a use case, and from which request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub identity: Identity,
    pub request_id: String,
}

impl Actor {
    pub fn system(request_id: impl Into<String>) -> Self {
        Self {
            identity: Identity {
                subject: "system".into(),
                role: crate::auth::Role::Admin,
                domains: Vec::new(),
                region: None,
                token_id: None,
            },
            request_id: request_id.into(),
        }
    }
}
