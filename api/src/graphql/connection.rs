//! Relay-style connections: opaque cursors over keyset pagination.

use crate::error::AppError;
use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A forward-only page of `(key, node)` pairs as a Relay connection (async-graphql's
/// own `Connection`, so every list in the schema shares one `PageInfo`).
pub fn forward_page<N: OutputType>(
    kind: &str,
    items: Vec<(String, N)>,
    has_next: bool,
) -> Connection<String, N> {
    let mut conn = Connection::new(false, has_next);
    conn.edges.extend(
        items
            .into_iter()
            .map(|(key, node)| Edge::new(encode_cursor(kind, &key), node)),
    );
    conn
}

/// `kind:key`, base64url: opaque to clients, checked on the way back in.
pub fn encode_cursor(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

pub fn decode_cursor(kind: &str, cursor: &str) -> Result<String, AppError> {
    let bad = || AppError::bad_input(format!("'{cursor}' is not a cursor of this list"));
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix(&format!("{kind}:"))
        .map(str::to_string)
        .ok_or_else(bad)
}

pub fn decode_id_cursor(kind: &str, cursor: Option<&str>) -> Result<Option<i64>, AppError> {
    match cursor {
        None => Ok(None),
        Some(c) => decode_cursor(kind, c)?
            .parse::<i64>()
            .map(Some)
            .map_err(|_| AppError::bad_input(format!("'{c}' is not a cursor of this list"))),
    }
}

/// The page size: `first` (default 50) within 1..=max.
pub fn page_size(first: Option<i32>, max: u64) -> Result<u64, AppError> {
    match first {
        None => Ok(50.min(max)),
        Some(n) if n < 1 => Err(AppError::bad_input("first must be at least 1")),
        Some(n) if n as u64 > max => Err(crate::domain::refusal::Refusal::new(
            crate::domain::refusal::Reason::PageTooLarge,
            format!("first may be at most {max}"),
        )
        .with("max", max)
        .into()),
        Some(n) => Ok(n as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_kinds() {
        let c = encode_cursor("listing", "42");
        assert_eq!(decode_id_cursor("listing", Some(&c)).unwrap(), Some(42));
        assert!(decode_id_cursor("check", Some(&c)).is_err());
        assert!(decode_id_cursor("listing", Some("!!!")).is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None, 500).unwrap(), 50);
        assert_eq!(page_size(Some(100), 500).unwrap(), 100);
        assert!(page_size(Some(0), 500).is_err());
        assert!(page_size(Some(501), 500).is_err());
    }
}
