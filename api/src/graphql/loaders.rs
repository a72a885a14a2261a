//! Per-request DataLoaders (built for each request, never shared across callers), so a
//! page of listings loads its operators, lists, periods and measures in a bounded
//! number of queries.

use crate::error::AppError;
use chrono::{DateTime, Utc};
use entity::{credit_list, listing, listing_measure, listing_period, measure, operator};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;

type LoadResult<V> = Result<HashMap<i64, V>, async_graphql::Error>;

fn db_error(e: sea_orm::DbErr) -> async_graphql::Error {
    AppError::from(e).into_graphql()
}

pub struct OperatorLoader(pub DatabaseConnection);
pub struct ListLoader(pub DatabaseConnection);
pub struct PeriodsLoader(pub DatabaseConnection);
pub struct MeasuresLoader(pub DatabaseConnection);
pub struct OperatorListingsLoader(pub DatabaseConnection);
pub struct ListingLoader(pub DatabaseConnection);
pub struct ListingRepairsLoader(pub DatabaseConnection);
/// Measures by code as the catalogue held them at an instant: a listing read at record
/// time (`knownAt`) names its measures by code.
pub struct MeasuresKnownAtLoader(pub DatabaseConnection);

impl async_graphql::dataloader::Loader<(String, DateTime<Utc>)> for MeasuresKnownAtLoader {
    type Value = measure::Model;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[(String, DateTime<Utc>)],
    ) -> Result<HashMap<(String, DateTime<Utc>), measure::Model>, async_graphql::Error> {
        let mut by_instant: HashMap<DateTime<Utc>, Vec<String>> = HashMap::new();
        for (code, at) in keys {
            by_instant.entry(*at).or_default().push(code.clone());
        }
        let mut out = HashMap::new();
        for (at, codes) in by_instant {
            let found = crate::service::history::measures_known_at(&self.0, &codes, at)
                .await
                .map_err(AppError::into_graphql)?;
            out.extend(found.into_iter().map(|(code, m)| ((code, at), m)));
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<i64> for OperatorLoader {
    type Value = operator::Model;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let rows = operator::Entity::find()
            .filter(operator::Column::Id.is_in(keys.to_vec()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl async_graphql::dataloader::Loader<i64> for ListLoader {
    type Value = credit_list::Model;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let rows = credit_list::Entity::find()
            .filter(credit_list::Column::Id.is_in(keys.to_vec()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl async_graphql::dataloader::Loader<i64> for PeriodsLoader {
    type Value = Vec<listing_period::Model>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let rows = listing_period::Entity::find()
            .filter(listing_period::Column::ListingId.is_in(keys.to_vec()))
            .order_by_asc(listing_period::Column::StartsAt)
            .order_by_asc(listing_period::Column::Id)
            .all(&self.0)
            .await
            .map_err(db_error)?;
        let mut out: HashMap<i64, Vec<listing_period::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(r.listing_id).or_default().push(r);
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<i64> for MeasuresLoader {
    type Value = Vec<measure::Model>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let links = listing_measure::Entity::find()
            .filter(listing_measure::Column::ListingId.is_in(keys.to_vec()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        let mut ids: Vec<i64> = links.iter().map(|l| l.measure_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let measures: HashMap<i64, measure::Model> = measure::Entity::find()
            .filter(measure::Column::Id.is_in(ids))
            .all(&self.0)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let mut out: HashMap<i64, Vec<measure::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for link in links {
            if let Some(m) = measures.get(&link.measure_id) {
                out.entry(link.listing_id).or_default().push(m.clone());
            }
        }
        for v in out.values_mut() {
            v.sort_by(|a, b| a.code.cmp(&b.code));
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<i64> for OperatorListingsLoader {
    type Value = Vec<listing::Model>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let rows = listing::Entity::find()
            .filter(listing::Column::OperatorId.is_in(keys.to_vec()))
            .order_by_asc(listing::Column::Id)
            .all(&self.0)
            .await
            .map_err(db_error)?;
        let mut out: HashMap<i64, Vec<listing::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(r.operator_id).or_default().push(r);
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<i64> for ListingLoader {
    type Value = listing::Model;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let rows = listing::Entity::find()
            .filter(listing::Column::Id.is_in(keys.to_vec()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// The credit-repair applications of each listing, in id order.
impl async_graphql::dataloader::Loader<i64> for ListingRepairsLoader {
    type Value = Vec<crate::service::repair::RepairView>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[i64]) -> LoadResult<Self::Value> {
        let rows = crate::service::repair::of_listings(&self.0, keys)
            .await
            .map_err(AppError::into_graphql)?;
        let mut out: HashMap<i64, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(r.row.listing_id).or_default().push(r);
        }
        Ok(out)
    }
}

/// The loaders of one request.
pub struct Loaders {
    pub operators: async_graphql::dataloader::DataLoader<OperatorLoader>,
    pub lists: async_graphql::dataloader::DataLoader<ListLoader>,
    pub periods: async_graphql::dataloader::DataLoader<PeriodsLoader>,
    pub measures: async_graphql::dataloader::DataLoader<MeasuresLoader>,
    pub operator_listings: async_graphql::dataloader::DataLoader<OperatorListingsLoader>,
    pub listings: async_graphql::dataloader::DataLoader<ListingLoader>,
    pub listing_repairs: async_graphql::dataloader::DataLoader<ListingRepairsLoader>,
    pub measures_known_at: async_graphql::dataloader::DataLoader<MeasuresKnownAtLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        use async_graphql::dataloader::DataLoader;
        Self {
            operators: DataLoader::new(OperatorLoader(db.clone()), tokio::spawn),
            lists: DataLoader::new(ListLoader(db.clone()), tokio::spawn),
            periods: DataLoader::new(PeriodsLoader(db.clone()), tokio::spawn),
            measures: DataLoader::new(MeasuresLoader(db.clone()), tokio::spawn),
            operator_listings: DataLoader::new(OperatorListingsLoader(db.clone()), tokio::spawn),
            listings: DataLoader::new(ListingLoader(db.clone()), tokio::spawn),
            listing_repairs: DataLoader::new(ListingRepairsLoader(db.clone()), tokio::spawn),
            measures_known_at: DataLoader::new(MeasuresKnownAtLoader(db.clone()), tokio::spawn),
        }
    }
}
