//! A punishment measure (惩戒措施) from the national basic list.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "measures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    /// PROCUREMENT, BIDDING, LAND_TRANSFER, HONORS, LICENSING, ...
    pub domain: String,
    /// PROHIBIT, CONSIDER or SUPERVISE.
    pub effect: String,
    #[sea_orm(column_type = "Text")]
    pub legal_basis: String,
    pub active: bool,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
