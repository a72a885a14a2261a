//! Partner tokens are only as good as the partner's registration: the subject must be a
//! registered, active partner, and the token may narrow the partner's domains but never
//! widen them. The registration is looked up once per request and cached for
//! `auth.partner_cache_seconds` (default 5). A change of a registration is announced to
//! every instance on PostgreSQL (`cluster::notify`), which drops that subject at once;
//! the cache time is the bound when an announcement is missed, so a deactivated partner
//! is refused at the latest that long after the deactivation.
//!
//! A registration read that was under way when a subject was dropped may have seen the
//! row before the change committed; it is not cached (`PartnerDirectory::remember_if`),
//! so the dropped subject's next request reads the registration again.

use super::{Identity, Role};
use crate::domain::measures::Domain;
use crate::error::{AppError, AppResult};
use entity::partner;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a request needs to know about a partner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerStanding {
    pub active: bool,
    pub domains: Vec<Domain>,
}

/// Domains a partner may check: the registration's, narrowed to the token's when the
/// token lists any. Order follows the registration.
pub fn effective_domains(registered: &[Domain], token: &[Domain]) -> Vec<Domain> {
    registered
        .iter()
        .copied()
        .filter(|d| token.is_empty() || token.contains(d))
        .collect()
}

/// The domain codes stored in a partner row (unknown codes are ignored, never widened).
pub fn stored_domains(value: &serde_json::Value) -> Vec<Domain> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().and_then(Domain::parse))
                .collect()
        })
        .unwrap_or_default()
}

/// A short-lived cache of partner registrations, keyed by token subject.
pub struct PartnerDirectory {
    ttl: Duration,
    cache: Mutex<Cache>,
}

struct Cache {
    /// Bumped by every `forget` and `forget_all`, under the same lock as the entries, so
    /// a read that began before a drop cannot store what it read after the drop. One
    /// counter for all subjects: a drop of another subject costs a spurious miss (one
    /// more read), never a stale entry.
    generation: u64,
    entries: HashMap<String, (Instant, PartnerStanding)>,
}

/// Cached entries kept before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

impl PartnerDirectory {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cache: Mutex::new(Cache {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current drop generation: read it before reading a registration and pass it
    /// to [`Self::remember_if`].
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The cached registration, if it was read less than `max_age` ago.
    fn cached(&self, subject: &str, max_age: Duration) -> Option<PartnerStanding> {
        self.lock()
            .entries
            .get(subject)
            .filter(|(at, _)| at.elapsed() < max_age.min(self.ttl))
            .map(|(_, standing)| standing.clone())
    }

    /// Caches a registration read after `seen_generation` was taken, unless a subject
    /// was dropped since: that read may have seen the row before the change that caused
    /// the drop committed, and caching it would keep the old registration for a whole
    /// cache time after the announcement.
    fn remember_if(&self, subject: &str, standing: PartnerStanding, seen_generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.lock();
        if cache.generation != seen_generation {
            return;
        }
        let entries = &mut cache.entries;
        if entries.len() >= SWEEP_ABOVE {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert(subject.to_string(), (Instant::now(), standing));
    }

    /// Drops a subject's cached registration (after a change made by this instance, or
    /// announced by another).
    pub fn forget(&self, subject: &str) {
        let mut cache = self.lock();
        cache.generation = cache.generation.wrapping_add(1);
        cache.entries.remove(subject);
    }

    /// Drops every cached registration (the cluster listener lost its connection and
    /// may have missed announcements).
    pub fn forget_all(&self) {
        let mut cache = self.lock();
        cache.generation = cache.generation.wrapping_add(1);
        cache.entries.clear();
    }

    /// The registration of `subject`; `None` when it is not registered (never cached,
    /// so a partner registered a moment ago is let in at once).
    pub async fn standing(
        &self,
        db: &DatabaseConnection,
        subject: &str,
    ) -> AppResult<Option<PartnerStanding>> {
        self.standing_within(db, subject, self.ttl).await
    }

    /// Like [`Self::standing`], trusting a cached registration only if it was read less
    /// than `max_age` ago (and never longer than the cache time).
    pub async fn standing_within(
        &self,
        db: &DatabaseConnection,
        subject: &str,
        max_age: Duration,
    ) -> AppResult<Option<PartnerStanding>> {
        if let Some(standing) = self.cached(subject, max_age) {
            return Ok(Some(standing));
        }
        let generation = self.generation();
        let Some(row) = partner::Entity::find()
            .filter(partner::Column::Subject.eq(subject))
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let standing = PartnerStanding {
            active: row.active,
            domains: stored_domains(&row.domains),
        };
        self.remember_if(subject, standing.clone(), generation);
        Ok(Some(standing))
    }

    /// Checks a partner identity against its registration and narrows its domains.
    /// Other roles pass through unchanged.
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        identity: Identity,
    ) -> AppResult<Identity> {
        self.resolve_within(db, identity, self.ttl).await
    }

    /// Like [`Self::resolve`], with a registration read less than `max_age` ago: an open
    /// WebSocket re-checks its partner every half cache time with half the cache time as
    /// `max_age`, so its subscriptions end within one cache time of a deactivation.
    pub async fn resolve_within(
        &self,
        db: &DatabaseConnection,
        identity: Identity,
        max_age: Duration,
    ) -> AppResult<Identity> {
        if identity.role != Role::Partner {
            return Ok(identity);
        }
        match self.standing_within(db, &identity.subject, max_age).await? {
            None => Err(AppError::Forbidden(format!(
                "partner '{}' is not registered; an admin must register it (registerPartner) before its tokens are accepted",
                identity.subject
            ))),
            Some(standing) if !standing.active => Err(AppError::Forbidden(format!(
                "partner '{}' has been deactivated",
                identity.subject
            ))),
            Some(standing) => Ok(Identity {
                domains: effective_domains(&standing.domains, &identity.domains),
                ..identity
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Domain::*;

    #[test]
    fn a_token_without_domains_gets_the_registration() {
        assert_eq!(
            effective_domains(&[Procurement, Bidding], &[]),
            vec![Procurement, Bidding]
        );
    }

    #[test]
    fn a_token_narrows_but_never_widens() {
        assert_eq!(
            effective_domains(&[Procurement, Bidding], &[Bidding, LandTransfer]),
            vec![Bidding]
        );
        assert!(effective_domains(&[Procurement], &[Honors]).is_empty());
    }

    #[test]
    fn stored_domains_ignore_unknown_codes() {
        let value = serde_json::json!(["PROCUREMENT", "FISHING", 3]);
        assert_eq!(stored_domains(&value), vec![Procurement]);
        assert!(stored_domains(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn the_cache_expires_and_can_be_cleared() {
        let directory = PartnerDirectory::new(Duration::from_millis(30));
        let standing = PartnerStanding {
            active: true,
            domains: vec![Procurement],
        };
        directory.remember_if("p", standing.clone(), directory.generation());
        let ttl = Duration::from_millis(30);
        assert_eq!(directory.cached("p", ttl), Some(standing.clone()));
        // A shorter age asked for is honoured; a longer one is capped at the cache time.
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(directory.cached("p", Duration::from_millis(5)), None);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(directory.cached("p", Duration::from_secs(60)), None);
        directory.remember_if("p", standing, directory.generation());
        directory.forget("p");
        assert_eq!(directory.cached("p", ttl), None);
    }

    #[test]
    fn a_read_that_straddles_a_drop_is_not_cached() {
        let directory = PartnerDirectory::new(Duration::from_secs(60));
        let active = PartnerStanding {
            active: true,
            domains: vec![Procurement],
        };
        let ttl = Duration::from_secs(60);
        // The read began, the registration changed and was dropped, then the read ended
        // with what it saw before the change.
        let seen = directory.generation();
        directory.forget("p");
        directory.remember_if("p", active.clone(), seen);
        assert_eq!(directory.cached("p", ttl), None);
        // Losing the listener drops everything, and straddles the same way.
        let seen = directory.generation();
        directory.forget_all();
        directory.remember_if("p", active.clone(), seen);
        assert_eq!(directory.cached("p", ttl), None);
        // A read begun after the drop is cached.
        directory.remember_if("p", active.clone(), directory.generation());
        assert_eq!(directory.cached("p", ttl), Some(active));
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let directory = PartnerDirectory::new(Duration::ZERO);
        directory.remember_if(
            "p",
            PartnerStanding {
                active: true,
                domains: vec![],
            },
            directory.generation(),
        );
        assert_eq!(directory.cached("p", Duration::from_secs(1)), None);
    }
}
