//! One import of a file (operators or listings): how far it got, so an interrupted
//! import resumes after its last committed chunk.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "import_batches")]
pub struct Model {
    /// The batch id (UUID v7), named in every revision and audit event it wrote.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `operators` or `listings`.
    pub kind: String,
    pub file_name: String,
    pub file_sha256: String,
    /// Who ran it (token subject or `--actor`).
    pub actor: String,
    /// Data rows in the file.
    pub total_rows: i64,
    /// The spreadsheet row number of the last row of the last committed chunk (1: none).
    pub last_committed_row: i64,
    pub status: ImportStatus,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// How far an import batch got (`import_batches.status`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImportStatus {
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "DONE")]
    Done,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}
