//! Parsed documents, kept by their text.
//!
//! Partners send the same few documents over and over with different variables, and
//! parsing is the largest single cost of a `check` inside async-graphql (the profile of
//! the single-check load put the pest parser at about 15 % of the server's CPU). A
//! document is parsed once, checked against the alias and introspection rules once, and
//! later requests with the same text get a copy of the result. Validation still runs on
//! every request: it depends on the variables.
//!
//! Bounded: at most `capacity` documents of at most `max_query_bytes` each; when full,
//! the oldest entry goes (first in, first out). Unique documents sent to churn the cache
//! cost only the parse they would have cost anyway.

use async_graphql::parser::types::ExecutableDocument;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// What the limits extension concluded about an accepted document.
#[derive(Clone, Debug)]
pub struct AcceptedDocument {
    pub document: ExecutableDocument,
    /// Depth without `ofType` chains, for a document that only introspects.
    pub introspection_depth: Option<usize>,
}

/// Longer documents are parsed every time (partners' documents are far shorter).
pub const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;

pub struct DocumentCache {
    capacity: usize,
    max_query_bytes: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_text: HashMap<Arc<str>, Arc<AcceptedDocument>>,
    /// Insertion order, for eviction.
    order: VecDeque<Arc<str>>,
}

impl DocumentCache {
    /// `capacity` 0 turns the cache off.
    pub fn new(capacity: usize, max_query_bytes: usize) -> Self {
        Self {
            capacity,
            max_query_bytes,
            inner: Mutex::new(Entries::default()),
        }
    }

    pub fn get(&self, query: &str) -> Option<Arc<AcceptedDocument>> {
        if self.capacity == 0 || query.len() > self.max_query_bytes {
            return None;
        }
        let entries = self.inner.lock().ok()?;
        entries.by_text.get(query).cloned()
    }

    pub fn insert(&self, query: &str, accepted: AcceptedDocument) {
        if self.capacity == 0 || query.len() > self.max_query_bytes {
            return;
        }
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        if entries.by_text.contains_key(query) {
            return;
        }
        while entries.by_text.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_text.remove(&oldest);
        }
        let key: Arc<str> = Arc::from(query);
        entries.order.push_back(key.clone());
        entries.by_text.insert(key, Arc::new(accepted));
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|e| e.by_text.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(query: &str) -> AcceptedDocument {
        AcceptedDocument {
            document: async_graphql::parser::parse_query(query).unwrap(),
            introspection_depth: None,
        }
    }

    #[test]
    fn a_document_is_found_by_its_exact_text() {
        let cache = DocumentCache::new(4, 1024);
        let q = "{ a }";
        assert!(cache.get(q).is_none());
        cache.insert(q, accepted(q));
        assert!(cache.get(q).is_some());
        assert!(
            cache.get("{ a  }").is_none(),
            "no normalisation of the text"
        );
    }

    #[test]
    fn the_oldest_document_goes_when_full() {
        let cache = DocumentCache::new(2, 1024);
        for q in ["{ a }", "{ b }", "{ c }"] {
            cache.insert(q, accepted(q));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("{ a }").is_none());
        assert!(cache.get("{ b }").is_some() && cache.get("{ c }").is_some());
        // Inserting a cached text again changes nothing.
        cache.insert("{ b }", accepted("{ b }"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn long_documents_and_a_zero_capacity_are_not_kept() {
        let cache = DocumentCache::new(4, 8);
        let long = "{ abcdefghij }";
        cache.insert(long, accepted(long));
        assert!(cache.get(long).is_none());
        let off = DocumentCache::new(0, 1024);
        off.insert("{ a }", accepted("{ a }"));
        assert!(off.is_empty());
    }
}
