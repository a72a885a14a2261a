//! Finding listings: by id, and a filtered, keyset-paginated search.

use super::page;
use crate::domain::lifecycle::{ListingStatus, StoredStatus};
use crate::domain::names::normalize_name;
use crate::error::AppResult;
use crate::store::{in_force, name_search};
use chrono::{DateTime, Utc};
use entity::{credit_list, listing, operator};
use sea_orm::sea_query::{ExprTrait, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};

#[derive(Clone, Debug, Default)]
pub struct ListingFilter {
    pub status: Option<ListingStatus>,
    pub list_code: Option<String>,
    pub authority: Option<String>,
    /// The division where the operator is registered.
    pub region: Option<String>,
    pub category: Option<String>,
    pub in_force_at: Option<DateTime<Utc>>,
    /// An exact code, or part of the operator's (normalised) name.
    pub operator: Option<String>,
    pub operator_id: Option<i64>,
}

/// The filter as SQL; `backend` decides how the operator's name is searched
/// ([`name_search::name_contains`]).
pub fn condition(filter: &ListingFilter, now: DateTime<Utc>, backend: DbBackend) -> Condition {
    condition_after(filter, now, backend, None)
}

/// [`condition`] for a keyset page of listings after id `after`: the period tests are
/// bounded by the cursor too ([`in_force::listing_in_force_after`] says why).
fn condition_after(
    filter: &ListingFilter,
    now: DateTime<Utc>,
    backend: DbBackend,
    after: Option<i64>,
) -> Condition {
    let mut cond = Condition::all();
    if let Some(status) = filter.status {
        cond = match status {
            ListingStatus::Listed => cond
                .add(listing::Column::Status.eq(StoredStatus::Listed))
                .add(in_force::listing_has_open_period_after(now, after)),
            ListingStatus::Expired => cond
                .add(listing::Column::Status.eq(StoredStatus::Listed))
                .add(in_force::listing_has_open_period_after(now, after).not()),
            other => cond.add(listing::Column::Status.eq(other.stored())),
        };
    }
    if let Some(code) = &filter.list_code {
        cond = cond.add(
            listing::Column::ListId.in_subquery(
                Query::select()
                    .column(credit_list::Column::Id)
                    .from(credit_list::Entity)
                    .and_where(credit_list::Column::Code.eq(code.trim()))
                    .to_owned(),
            ),
        );
    }
    if let Some(authority) = &filter.authority {
        cond = cond.add(listing::Column::Authority.eq(authority.trim()));
    }
    if let Some(category) = &filter.category {
        cond = cond.add(listing::Column::ViolationCategory.eq(category.trim()));
    }
    if let Some(t) = filter.in_force_at {
        cond = cond.add(in_force::listing_in_force_after(t, after));
    }
    if let Some(id) = filter.operator_id {
        cond = cond.add(listing::Column::OperatorId.eq(id));
    }
    let mut operator_cond = Condition::all();
    let mut by_operator = false;
    if let Some(region) = &filter.region {
        operator_cond = operator_cond.add(operator::Column::RegionCode.eq(region.trim()));
        by_operator = true;
    }
    if let Some(text) = &filter.operator {
        let code = text.trim().to_uppercase();
        let name = normalize_name(text);
        operator_cond = operator_cond.add(
            Condition::any()
                .add(operator::Column::Uscc.eq(code))
                .add(name_search::name_contains(backend, &name)),
        );
        by_operator = true;
    }
    if by_operator {
        cond = cond.add(
            listing::Column::OperatorId.in_subquery(
                Query::select()
                    .column(operator::Column::Id)
                    .from(operator::Entity)
                    .cond_where(operator_cond)
                    .to_owned(),
            ),
        );
    }
    cond
}

pub use crate::store::name_search::contains_pattern;

/// One page in id order after `after`; `first + 1` rows are read to learn whether
/// another page follows.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    filter: &ListingFilter,
    now: DateTime<Utc>,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<listing::Model>, bool)> {
    let q = listing::Entity::find().filter(condition_after(
        filter,
        now,
        db.get_database_backend(),
        after,
    ));
    page::fetch(
        db,
        page::ascending_after(q, listing::Column::Id, after),
        first,
    )
    .await
}

pub async fn by_id<C: ConnectionTrait>(db: &C, id: i64) -> AppResult<Option<listing::Model>> {
    Ok(listing::Entity::find_by_id(id).one(db).await?)
}
