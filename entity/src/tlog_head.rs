//! One transparency log's head: its size, root and right edge, the last signed
//! checkpoint, and (registry log) the last change feed position logged. Appenders lock it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tlog_heads")]
pub struct Model {
    /// `registry` or `answers`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub log: String,
    pub size: i64,
    /// The RFC 6962 root of the first `size` entries (32 bytes).
    pub root: Vec<u8>,
    /// The hashes of the complete subtrees that make up the tree, largest first (32
    /// bytes each): what the next append starts from.
    pub edge: Vec<u8>,
    /// Registry log: the id of the last listing revision logged; answer log: 0.
    pub position: i64,
    /// The signed checkpoint of `size` (a C2SP signed note).
    pub checkpoint: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
