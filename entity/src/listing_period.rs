//! An interval during which a listing is in force; a listing whose repair is revoked gets a second one.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "listing_periods")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub listing_id: i64,
    pub starts_at: DateTimeUtc,
    /// Scheduled end of the period (expiry): it takes effect without any job.
    pub ends_at: DateTimeUtc,
    /// Early end: revocation, repair.
    pub removed_at: Option<DateTimeUtc>,
    pub removal_kind: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
