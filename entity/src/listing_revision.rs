//! A snapshot of a listing as recorded between recorded_at and superseded_at (record time).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "listing_revisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub listing_id: i64,
    pub version: i32,
    pub action: String,
    pub recorded_at: DateTimeUtc,
    pub superseded_at: Option<DateTimeUtc>,
    /// The listing, its periods and measure codes as they stood.
    pub snapshot: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
