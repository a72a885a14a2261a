//! How many sockets each key holds (unacknowledged sockets per client address, open
//! connections per token subject), counted by guards: a socket takes a place while it
//! lives and gives it back when its guard drops, however the socket ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Places taken per key, at most `limit` each.
pub struct Counts<K: Hash + Eq + Clone> {
    limit: usize,
    taken: Arc<Mutex<HashMap<K, usize>>>,
}

/// One place, given back on drop.
pub struct Place<K: Hash + Eq + Clone> {
    key: K,
    taken: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            taken: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for `key`, or `None` when it already holds `limit`.
    pub fn take(&self, key: K) -> Option<Place<K>> {
        // A poisoned lock only means a panic mid-update of a counter: keep counting.
        let mut taken = self
            .taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = taken.entry(key.clone()).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Place {
            key,
            taken: self.taken.clone(),
        })
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.taken.lock().map(|t| t.len()).unwrap_or(0)
    }
}

impl<K: Hash + Eq + Clone> Drop for Place<K> {
    fn drop(&mut self) {
        let mut taken = self
            .taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = taken.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            // Keys with no socket are dropped, so the map holds only live sockets.
            if *n == 0 {
                taken.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_limit_and_gets_places_back() {
        let counts = Counts::new(2);
        let a = counts.take("a");
        let b = counts.take("a");
        assert!(a.is_some() && b.is_some());
        assert!(counts.take("a").is_none());
        // Other keys are counted apart.
        let other = counts.take("b");
        assert!(other.is_some());
        drop(a);
        let again = counts.take("a");
        assert!(again.is_some());
        assert!(counts.take("a").is_none());
        drop((b, again, other));
        assert_eq!(counts.keys(), 0);
    }

    #[test]
    fn a_zero_limit_still_admits_one() {
        let counts = Counts::new(0);
        let one = counts.take(1);
        assert!(one.is_some());
        assert!(counts.take(1).is_none());
    }
}
