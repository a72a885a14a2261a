//! An entry of a transparency log, by its leaf index, append-only.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tlog_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub log: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idx: i64,
    pub data: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
