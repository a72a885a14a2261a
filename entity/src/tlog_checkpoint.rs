//! Every checkpoint a transparency log signed, by tree size.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tlog_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub log: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub size: i64,
    pub note: String,
    pub signed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
