//! Capacity kept for checks: classes of callers whose work must not take what partners'
//! checks need.
//!
//! - **Anonymous callers** (the public list) run their SQL on a pool of their own
//!   (`database.anonymous_max_connections`, default 2, with a shorter PostgreSQL
//!   `statement_timeout`): see [`crate::state::AppState::pool_for`]. A pool rather than
//!   a semaphore because one request resolves its aliases concurrently, each taking a
//!   connection: only a pool bounds the connections themselves, and its own
//!   `statement_timeout` needs no transaction around every public query. Anonymous SQL
//!   is issued by three resolvers only (`publicListings`, `typicalCases`,
//!   `verifyReceipt`; every other field refuses the public before any SQL), so routing it
//!   is local.
//! - **Auditors** (history, `knownAt` reconstructions, reports, the audit log: bulk
//!   reads through every resolver and the DataLoaders) are admitted by a semaphore of
//!   `limits.max_concurrent_audit_requests` (default 4) around execution: rerouting their
//!   SQL would touch every resolver, while an admission bound is one place. A request
//!   that finds no permit within `limits.capacity_wait_ms` is refused with
//!   `SERVICE_UNAVAILABLE` (HTTP 503, `Retry-After: 1`).
//! - Partners and admins use the main pool, all of it.

use crate::auth::Role;
use crate::config::Limits;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Capacity {
    audit: Option<Arc<Semaphore>>,
    audit_limit: usize,
    wait: Duration,
}

/// No permit came free in time.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy {
    pub class: &'static str,
    pub limit: usize,
}

impl Busy {
    pub fn message(&self) -> String {
        format!(
            "{} {} requests are already running; retry shortly",
            self.limit, self.class
        )
    }
}

impl Capacity {
    pub fn new(limits: &Limits) -> Self {
        Self {
            audit: (limits.max_concurrent_audit_requests > 0)
                .then(|| Arc::new(Semaphore::new(limits.max_concurrent_audit_requests))),
            audit_limit: limits.max_concurrent_audit_requests,
            wait: Duration::from_millis(limits.capacity_wait_ms),
        }
    }

    /// A permit to execute one operation of a caller of `role`, held until dropped
    /// (`None`: this class is not bounded here).
    pub async fn admit(&self, role: Role) -> Result<Option<OwnedSemaphorePermit>, Busy> {
        let semaphore = match (role, &self.audit) {
            (Role::Auditor, Some(semaphore)) => semaphore,
            _ => return Ok(None),
        };
        match tokio::time::timeout(self.wait, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // Timed out, or closed (never: the semaphore lives as long as the state).
            _ => Err(Busy {
                class: "auditor",
                limit: self.audit_limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(audit: usize) -> Capacity {
        Capacity::new(&Limits {
            max_concurrent_audit_requests: audit,
            capacity_wait_ms: 20,
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn auditors_beyond_their_capacity_are_refused_and_others_are_not() {
        let c = capacity(2);
        let a = c.admit(Role::Auditor).await.unwrap();
        let b = c.admit(Role::Auditor).await.unwrap();
        assert!(a.is_some() && b.is_some());
        let refused = c.admit(Role::Auditor).await.unwrap_err();
        assert_eq!(refused.limit, 2);
        // Partners and admins are not bounded by the auditors' class.
        assert!(c.admit(Role::Partner).await.unwrap().is_none());
        assert!(c.admit(Role::Admin).await.unwrap().is_none());
        // A finished request gives its permit back.
        drop(a);
        assert!(c.admit(Role::Auditor).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn zero_means_unbounded() {
        let c = capacity(0);
        for _ in 0..10 {
            assert!(c.admit(Role::Auditor).await.unwrap().is_none());
        }
    }
}
