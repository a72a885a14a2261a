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
//! - **HTTP check-records exports** (`GET /exports/check-records.csv`) stream a whole
//!   table for the price of one request, so they are admitted here too, for the life of
//!   the stream ([`Capacity::admit_export`]): an auditor's export holds one of the
//!   auditors' permits, as the GraphQL reads it duplicates do, and every caller's
//!   exports are bounded per subject (`limits.max_concurrent_exports_per_subject`).
//! - Partners and admins use the main pool, all of it.

use crate::auth::Role;
use crate::config::Limits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Capacity {
    audit: Option<Arc<Semaphore>>,
    audit_limit: usize,
    wait: Duration,
    exports_per_subject: usize,
    /// Exports streaming now, by `role:subject` (a key is removed at 0, so the map holds
    /// only callers with an export open).
    exports: Arc<Mutex<HashMap<String, usize>>>,
}

/// What an admitted export holds until its stream is dropped.
pub struct ExportPermit {
    _audit: Option<OwnedSemaphorePermit>,
    _subject: Option<SubjectSlot>,
}

/// One of a subject's export places, given back on drop.
struct SubjectSlot {
    key: String,
    exports: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for SubjectSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.exports);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A poisoned lock only means a panic mid-update of a counter.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
            exports_per_subject: limits.max_concurrent_exports_per_subject,
            exports: Arc::default(),
        }
    }

    /// Admits one HTTP export by the caller `subject_key` (`role:subject`) of `role`:
    /// a place among the subject's exports (refused at once when they are all taken: the
    /// caller's own exports hold them), then, for an auditor, an auditors' permit as
    /// [`Capacity::admit`] gives it. Both are held until the permit is dropped.
    pub async fn admit_export(&self, role: Role, subject_key: &str) -> Result<ExportPermit, Busy> {
        let subject = if self.exports_per_subject == 0 {
            None
        } else {
            let mut open = lock(&self.exports);
            let n = open.entry(subject_key.to_string()).or_insert(0);
            if *n >= self.exports_per_subject {
                return Err(Busy {
                    class: "check-records export",
                    limit: self.exports_per_subject,
                });
            }
            *n += 1;
            Some(SubjectSlot {
                key: subject_key.to_string(),
                exports: self.exports.clone(),
            })
        };
        // On refusal the subject's place is given back as `subject` drops.
        let audit = self.admit(role).await?;
        Ok(ExportPermit {
            _audit: audit,
            _subject: subject,
        })
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
    async fn exports_are_bounded_per_subject_and_by_the_auditors_class() {
        let c = Capacity::new(&Limits {
            max_concurrent_audit_requests: 1,
            max_concurrent_exports_per_subject: 2,
            capacity_wait_ms: 20,
            ..Limits::default()
        });
        let a = c.admit_export(Role::Partner, "partner:p").await.unwrap();
        let b = c.admit_export(Role::Partner, "partner:p").await.unwrap();
        assert!(c.admit_export(Role::Partner, "partner:p").await.is_err());
        // Another subject has places of its own.
        assert!(c.admit_export(Role::Partner, "partner:q").await.is_ok());
        drop(a);
        let _c = c.admit_export(Role::Partner, "partner:p").await.unwrap();
        drop(b);
        // An auditor's export takes the auditors' permit: GraphQL auditors wait for it.
        let held = c.admit_export(Role::Auditor, "auditor:x").await.unwrap();
        assert!(c.admit(Role::Auditor).await.is_err());
        // Refused for the class, the export gives its subject's place back.
        assert!(c.admit_export(Role::Auditor, "auditor:y").await.is_err());
        assert!(!lock(&c.exports).contains_key("auditor:y"));
        drop(held);
        assert!(c.admit(Role::Auditor).await.unwrap().is_some());
        assert!(!lock(&c.exports).contains_key("auditor:x"));
    }

    #[tokio::test]
    async fn zero_means_unbounded() {
        let c = capacity(0);
        for _ in 0..10 {
            assert!(c.admit(Role::Auditor).await.unwrap().is_none());
        }
    }
}
