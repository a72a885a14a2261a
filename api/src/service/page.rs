//! Keyset pages, the one way lists are paged: the query is filtered to what follows the
//! cursor and put in page order, and one row more than the page is read to learn
//! whether another page follows (no `COUNT`, no `OFFSET`: a page costs what it holds).

use crate::error::AppResult;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

/// Rows after id `after`, in ascending id order (oldest first).
pub fn ascending_after<E: EntityTrait>(
    query: Select<E>,
    id: E::Column,
    after: Option<i64>,
) -> Select<E> {
    let query = match after {
        Some(after) => query.filter(id.gt(after)),
        None => query,
    };
    query.order_by_asc(id)
}

/// Rows before id `before`, in descending id order (newest first).
pub fn descending_before<E: EntityTrait>(
    query: Select<E>,
    id: E::Column,
    before: Option<i64>,
) -> Select<E> {
    let query = match before {
        Some(before) => query.filter(id.lt(before)),
        None => query,
    };
    query.order_by_desc(id)
}

/// Up to `first` rows of an ordered, cursor-filtered query, and whether more follow.
pub async fn fetch<E: EntityTrait, C: ConnectionTrait>(
    db: &C,
    ordered: Select<E>,
    first: u64,
) -> AppResult<(Vec<E::Model>, bool)> {
    let mut rows = ordered.limit(first.saturating_add(1)).all(db).await?;
    let has_next = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok((rows, has_next))
}
