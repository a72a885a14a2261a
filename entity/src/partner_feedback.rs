//! What a partner did with a check (执行反馈).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "partner_feedback")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub receipt_id: String,
    pub subject: String,
    pub measure_code: String,
    #[sea_orm(column_type = "Text")]
    pub context: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
