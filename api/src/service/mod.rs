//! Use cases over the database, one file per area. Services take an [`Actor`] and plain
//! inputs, enforce the rules from `domain`, and write an audit event in the same
//! transaction as every change.

pub mod audit;
pub mod audit_query;
pub mod calendar;
pub mod catalogue;
pub mod check_lookups;
pub mod check_records;
pub mod checks;
pub mod context;
pub mod export;
pub mod feed;
pub mod feedback;
pub mod group_queue;
pub mod history;
pub mod idempotency;
pub mod import;
pub mod listing_search;
pub mod listings;
pub mod logs;
pub mod operators;
pub mod page;
pub mod partners;
pub mod public;
pub mod public_files;
pub mod receipts;
pub mod repair;
pub mod report;
pub mod status_map;

pub use context::Services;

use crate::auth::Identity;
use crate::domain::region::scope_covers;
use crate::error::{AppError, AppResult};

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

/// A required free-text field: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::bad_input(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(AppError::bad_input(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(v.to_string())
}

/// Region scope: an admin limited to a division acts only on operators registered in it.
pub fn ensure_scope(actor: &Actor, op: &entity::operator::Model) -> AppResult<()> {
    let scope = actor.identity.region.as_deref();
    if scope_covers(scope, &op.region_code) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "an admin of region {} may not act on operators registered in {}",
            scope.unwrap_or("-"),
            op.region_code
        )))
    }
}
