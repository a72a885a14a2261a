//! Witness cosignatures of checkpoints, by log, tree size and witness.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tlog_cosignatures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub log: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub size: i64,
    /// `<name>+<key id>` of the witness.
    #[sea_orm(primary_key, auto_increment = false)]
    pub witness: String,
    /// The signature line (`— <name> <base64>\n`).
    pub line: String,
    /// The witness's timestamp (POSIX seconds).
    pub cosigned_at: i64,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
