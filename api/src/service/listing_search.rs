//! Finding listings: by id, and a filtered, keyset-paginated search.

use super::page;
use crate::domain::lifecycle::ListingStatus;
use crate::domain::names::normalize_name;
use crate::error::AppResult;
use crate::store::in_force;
use chrono::{DateTime, Utc};
use entity::{credit_list, listing, operator};
use sea_orm::sea_query::{ExprTrait, LikeExpr, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

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

pub fn condition(filter: &ListingFilter, now: DateTime<Utc>) -> Condition {
    let mut cond = Condition::all();
    if let Some(status) = filter.status {
        cond = match status {
            ListingStatus::Listed => cond
                .add(listing::Column::Status.eq("LISTED"))
                .add(in_force::listing_has_open_period(now)),
            ListingStatus::Expired => cond
                .add(listing::Column::Status.eq("LISTED"))
                .add(in_force::listing_has_open_period(now).not()),
            other => cond.add(listing::Column::Status.eq(other.as_str())),
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
        cond = cond.add(in_force::listing_in_force(t));
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
                .add(name_contains(&name)),
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

/// The escape character of [`contains_pattern`].
const LIKE_ESCAPE: char = '\\';

/// The LIKE pattern that finds `text` anywhere, with `%`, `_` and the escape character
/// itself matching only themselves: a caller's `%` is a percent sign in a name, never
/// "every operator". Used with `ESCAPE '\'`, which both backends understand.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The operator's normalised name contains `name` literally.
fn name_contains(name: &str) -> sea_orm::sea_query::SimpleExpr {
    operator::Column::NameNormalized.like(LikeExpr::new(contains_pattern(name)).escape(LIKE_ESCAPE))
}

/// One page in id order after `after`; `first + 1` rows are read to learn whether
/// another page follows.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    filter: &ListingFilter,
    now: DateTime<Utc>,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<listing::Model>, bool)> {
    let q = listing::Entity::find().filter(condition(filter, now));
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

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

    #[test]
    fn wildcards_in_search_text_match_themselves() {
        assert_eq!(contains_pattern("清远"), "%清远%");
        assert_eq!(contains_pattern("%"), r"%\%%");
        assert_eq!(contains_pattern("a_b"), r"%a\_b%");
        assert_eq!(contains_pattern(r"a\b"), r"%a\\b%");
        assert_eq!(contains_pattern(r"\%_"), r"%\\\%\_%");
    }

    #[test]
    fn the_pattern_is_a_parameter_with_an_escape_clause_on_both_backends() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let stmt = operator::Entity::find()
                .filter(name_contains("100%"))
                .build(backend);
            assert!(stmt.sql.contains("LIKE"), "{}", stmt.sql);
            assert!(stmt.sql.contains("ESCAPE"), "{}", stmt.sql);
            assert!(!stmt.sql.contains("100"), "the text is bound: {}", stmt.sql);
        }
    }
}
