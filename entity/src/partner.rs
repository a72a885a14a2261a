//! A partner department system allowed to run checks for its domains.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "partners")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The `sub` of its tokens.
    #[sea_orm(unique)]
    pub subject: String,
    pub name: String,
    /// JSON array of domain codes.
    pub domains: Json,
    pub active: bool,
    pub deactivated_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
