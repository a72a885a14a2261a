//! Automatic persisted queries, as Apollo clients speak them: a request may carry
//! `extensions.persistedQuery = {version: 1, sha256Hash}` and leave `query` empty; the
//! server answers `PERSISTED_QUERY_NOT_FOUND` for a hash it does not know, the client
//! then sends the text with the hash once, and later requests send the hash alone.
//!
//! **One path.** The store keeps the *text* of a document, and [`PersistedQueries::resolve`]
//! puts it back into the request before anything else reads the request: the transports
//! (`POST`/`GET /graphql`, the WebSocket) call it right after decoding a request and
//! before they decide anything from its text (GET refuses mutations, an Idempotency-Key
//! claims mutations, the socket tells subscriptions apart). From there on a hash-only
//! request is indistinguishable from one that sent the full text: the same parsed-document
//! cache (keyed by text), input guard, depth, alias, cost and role-budget limits, rate
//! charge and capacity admission run on it, every time, for its caller.
//!
//! async-graphql's own `ApolloPersistedQueries` extension is not used: it hands the schema
//! an already parsed document with an *empty* query text, so every check made on the
//! text before the schema runs (the three above) would see nothing, and the document
//! cache, keyed by text, would key every hash-only request by `""`.
//!
//! Bounded: an LRU of at most `limits.persisted_queries` texts, each at most
//! [`MAX_PERSISTED_QUERY_BYTES`]; a longer text sent with its hash still runs, it is only
//! not kept (the client then keeps sending the text). `0` turns the protocol off: any
//! request that uses it is answered `PERSISTED_QUERY_NOT_SUPPORTED`, which tells Apollo
//! clients to send full texts from then on.

use async_graphql::Request;
use async_graphql_value::ConstValue;
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// The request extension that carries the hash.
pub const EXTENSION: &str = "persistedQuery";

/// No text is stored for the hash: send it once with the text. The message is the one
/// Apollo clients compare (older ones look at the message, newer at the code).
pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// Persisted queries are turned off (`limits.persisted_queries = 0`).
pub const NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
/// The text sent does not have the hash sent with it.
pub const HASH_MISMATCH: &str = "PERSISTED_QUERY_HASH_MISMATCH";
/// `extensions.persistedQuery` is not `{version: 1, sha256Hash: <64 hex digits>}`.
pub const INVALID: &str = "PERSISTED_QUERY_INVALID";

/// Every code this module refuses with (request errors: HTTP 400 for
/// `application/graphql-response+json` clients, 200 for `application/json` ones).
pub const CODES: [&str; 4] = [NOT_FOUND, NOT_SUPPORTED, HASH_MISMATCH, INVALID];

/// Longer texts are not kept (the same bound as the parsed-document cache).
pub const MAX_PERSISTED_QUERY_BYTES: usize = super::document_cache::MAX_CACHED_QUERY_BYTES;

/// A request that named a persisted query the store cannot give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The GraphQL error object of the refusal.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"message": self.message, "extensions": {"code": self.code}})
    }
}

/// What resolving did with a request (counted in `registry_persisted_queries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The request did not use persisted queries.
    NotPersisted,
    /// A hash-only request got its stored text.
    Found,
    /// A text sent with its hash was stored (or was already).
    Registered,
}

impl Resolved {
    fn label(self) -> Option<&'static str> {
        match self {
            Resolved::NotPersisted => None,
            Resolved::Found => Some("found"),
            Resolved::Registered => Some("registered"),
        }
    }
}

/// The texts of persisted queries by their SHA-256, shared by every transport.
pub struct PersistedQueries {
    /// `None`: turned off.
    texts: Option<Mutex<LruCache<[u8; 32], Arc<str>>>>,
}

impl PersistedQueries {
    /// At most `capacity` texts; `0` turns persisted queries off.
    pub fn new(capacity: usize) -> Self {
        Self {
            texts: NonZeroUsize::new(capacity).map(|cap| Mutex::new(LruCache::new(cap))),
        }
    }

    /// Gives a request that uses persisted queries its full text (and removes the
    /// extension), or says why it cannot; a request that does not use them is left as
    /// it is. Call it before reading anything from `request.query`.
    pub fn resolve(&self, request: &mut Request) -> Result<Resolved, Refused> {
        let outcome = self.resolve_inner(request);
        match &outcome {
            Ok(resolved) => {
                if let Some(label) = resolved.label() {
                    crate::metrics::persisted_query(label);
                }
            }
            Err(refused) => crate::metrics::persisted_query(refused.code),
        }
        outcome
    }

    fn resolve_inner(&self, request: &mut Request) -> Result<Resolved, Refused> {
        let Some(extension) = request.extensions.0.remove(EXTENSION) else {
            return Ok(Resolved::NotPersisted);
        };
        let Some(texts) = &self.texts else {
            return Err(Refused::new(NOT_SUPPORTED, "PersistedQueryNotSupported"));
        };
        let hash = hash_of(&extension)?;
        if request.query.is_empty() {
            let stored = lock(texts).get(&hash).cloned();
            return match stored {
                Some(text) => {
                    request.query = text.to_string();
                    Ok(Resolved::Found)
                }
                None => Err(Refused::new(NOT_FOUND, "PersistedQueryNotFound")),
            };
        }
        let actual: [u8; 32] = Sha256::digest(request.query.as_bytes()).into();
        if actual != hash {
            return Err(Refused::new(
                HASH_MISMATCH,
                format!(
                    "provided sha does not match query: the query's SHA-256 is {}",
                    hex::encode(actual)
                ),
            ));
        }
        if request.query.len() <= MAX_PERSISTED_QUERY_BYTES {
            let mut texts = lock(texts);
            if !texts.contains(&hash) {
                texts.put(hash, Arc::from(request.query.as_str()));
            }
        }
        Ok(Resolved::Registered)
    }

    /// Texts stored now.
    pub fn len(&self) -> usize {
        self.texts.as_ref().map_or(0, |t| lock(t).len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A poisoned lock only means a panic in the middle of a cache update: the cache is
/// still a valid map, so keep using it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hash of `{version: 1, sha256Hash: "<64 hex digits>"}`.
fn hash_of(extension: &ConstValue) -> Result<[u8; 32], Refused> {
    let invalid = |why: &str| {
        Refused::new(
            INVALID,
            format!(
                "extensions.{EXTENSION} must be {{\"version\": 1, \"sha256Hash\": \"<SHA-256 of the query, 64 hex digits>\"}}: {why}"
            ),
        )
    };
    let ConstValue::Object(fields) = extension else {
        return Err(invalid("it is not an object"));
    };
    match fields.get("version") {
        Some(ConstValue::Number(n)) if n.as_i64() == Some(1) => {}
        Some(ConstValue::Number(_)) => return Err(invalid("only version 1 is supported")),
        _ => return Err(invalid("`version` is missing or not a number")),
    }
    let Some(ConstValue::String(text)) = fields.get("sha256Hash") else {
        return Err(invalid("`sha256Hash` is missing or not a string"));
    };
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash)
        .map_err(|_| invalid("`sha256Hash` is not 64 hexadecimal digits"))?;
    Ok(hash)
}

/// The form of a request payload (a JSON request object) compared on a retry of its
/// Idempotency-Key: a request that used persisted queries is compared as the full text
/// it stands for, so that a retry sent hash-only, with the text, or without persisted
/// queries at all is the same request. `query` is the resolved text.
pub fn canonicalise(payload: &mut serde_json::Value, query: &str) {
    let Some(object) = payload.as_object_mut() else {
        return;
    };
    let Some(extensions) = object
        .get_mut("extensions")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    if extensions.remove(EXTENSION).is_none() {
        return;
    }
    if extensions.is_empty() {
        object.remove("extensions");
    }
    object.insert("query".into(), serde_json::Value::String(query.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUERY: &str = "{ __typename }";

    fn sha(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn request(query: &str, extension: serde_json::Value) -> Request {
        serde_json::from_value(json!({"query": query, "extensions": {EXTENSION: extension}}))
            .unwrap()
    }

    fn hashed(query: &str, hash: &str) -> Request {
        request(query, json!({"version": 1, "sha256Hash": hash}))
    }

    #[test]
    fn a_hash_alone_is_not_found_until_its_text_was_sent_once() {
        let store = PersistedQueries::new(4);
        let mut first = hashed("", &sha(QUERY));
        assert_eq!(store.resolve(&mut first).unwrap_err().code, NOT_FOUND);
        assert_eq!(
            store
                .resolve(&mut hashed("", &sha(QUERY)))
                .unwrap_err()
                .message,
            "PersistedQueryNotFound",
            "the message Apollo clients compare"
        );
        let mut register = hashed(QUERY, &sha(QUERY));
        assert_eq!(store.resolve(&mut register), Ok(Resolved::Registered));
        assert!(register.extensions.0.is_empty(), "the extension is used up");
        let mut again = hashed("", &sha(QUERY).to_uppercase());
        assert_eq!(store.resolve(&mut again), Ok(Resolved::Found));
        assert_eq!(again.query, QUERY);
        assert!(again.extensions.0.is_empty());
    }

    #[test]
    fn a_text_with_another_texts_hash_is_refused_and_not_stored() {
        let store = PersistedQueries::new(4);
        let mut wrong = hashed("{ other }", &sha(QUERY));
        let refused = store.resolve(&mut wrong).unwrap_err();
        assert_eq!(refused.code, HASH_MISMATCH);
        assert!(refused.message.contains(&sha("{ other }")));
        assert!(store.is_empty());
        assert_eq!(
            store
                .resolve(&mut hashed("", &sha(QUERY)))
                .unwrap_err()
                .code,
            NOT_FOUND
        );
    }

    #[test]
    fn malformed_extensions_are_refused_with_one_code() {
        let store = PersistedQueries::new(4);
        for bad in [
            json!("abc"),
            json!({"sha256Hash": sha(QUERY)}),
            json!({"version": 2, "sha256Hash": sha(QUERY)}),
            json!({"version": 1}),
            json!({"version": 1, "sha256Hash": 7}),
            json!({"version": 1, "sha256Hash": "abc"}),
            json!({"version": 1, "sha256Hash": "zz".repeat(32)}),
        ] {
            let refused = store.resolve(&mut request("", bad.clone())).unwrap_err();
            assert_eq!(refused.code, INVALID, "{bad}");
        }
    }

    #[test]
    fn requests_without_the_extension_are_left_alone() {
        let store = PersistedQueries::new(4);
        let mut plain = Request::new(QUERY);
        assert_eq!(store.resolve(&mut plain), Ok(Resolved::NotPersisted));
        assert_eq!(plain.query, QUERY);
        let off = PersistedQueries::new(0);
        assert_eq!(
            off.resolve(&mut Request::new(QUERY)),
            Ok(Resolved::NotPersisted)
        );
        let refused = off.resolve(&mut hashed(QUERY, &sha(QUERY))).unwrap_err();
        assert_eq!(refused.code, NOT_SUPPORTED);
        assert_eq!(refused.message, "PersistedQueryNotSupported");
    }

    #[test]
    fn the_store_is_bounded_by_entries_and_by_text_length() {
        let store = PersistedQueries::new(2);
        for q in ["{ a }", "{ b }", "{ c }"] {
            store.resolve(&mut hashed(q, &sha(q))).unwrap();
        }
        assert_eq!(store.len(), 2);
        assert_eq!(
            store
                .resolve(&mut hashed("", &sha("{ a }")))
                .unwrap_err()
                .code,
            NOT_FOUND,
            "the least recently used text went"
        );
        let long = format!("{{ {} }}", "a ".repeat(MAX_PERSISTED_QUERY_BYTES));
        let mut sent = hashed(&long, &sha(&long));
        assert_eq!(store.resolve(&mut sent), Ok(Resolved::Registered));
        assert_eq!(sent.query, long, "a long text still runs");
        assert_eq!(
            store
                .resolve(&mut hashed("", &sha(&long)))
                .unwrap_err()
                .code,
            NOT_FOUND,
            "but is not kept"
        );
    }

    #[test]
    fn a_payload_is_compared_as_the_text_it_stands_for() {
        let hash_only = json!({"query": "", "variables": {"a": 1},
            "extensions": {EXTENSION: {"version": 1, "sha256Hash": sha(QUERY)}}});
        let with_key = json!({"extensions": {EXTENSION: {"version": 1, "sha256Hash": sha(QUERY)}, "idempotencyKey": "k"}});
        let plain = json!({"query": QUERY, "variables": {"a": 1}});
        let mut a = hash_only.clone();
        canonicalise(&mut a, QUERY);
        assert_eq!(a, plain);
        let mut b = with_key;
        canonicalise(&mut b, QUERY);
        assert_eq!(
            b,
            json!({"query": QUERY, "extensions": {"idempotencyKey": "k"}})
        );
        let mut c = plain.clone();
        canonicalise(&mut c, "something else");
        assert_eq!(c, plain, "a payload without the extension is unchanged");
    }
}
