//! One operator on one list, decided by one authority (列入记录).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "listings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub operator_id: i64,
    pub list_id: i64,
    /// Lifecycle state. Expiry is computed, never stored.
    pub status: StoredStatus,
    pub authority: String,
    /// Division of the listing authority (region scope of admins).
    pub authority_region: String,
    pub penalty_doc_no: String,
    pub penalty_date: Date,
    pub violation_category: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    #[sea_orm(column_type = "Text")]
    pub legal_basis: String,
    pub notice_date: Date,
    pub defence_deadline: Date,
    pub proposed_at: DateTimeUtc,
    pub decision_doc_no: Option<String>,
    pub decision_date: Option<Date>,
    /// Period in months when a law sets a longer one than the list default.
    pub period_months_override: Option<i32>,
    pub removal_doc_no: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub removal_reason: Option<String>,
    /// Revocation: the date by which publicity must have stopped.
    pub publicity_stop_deadline: Option<Date>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The stored lifecycle state of a listing, kept as text in `listings.status` (and in
/// revision snapshots). `EXPIRED` is not among them: it follows from the dates.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StoredStatus {
    #[sea_orm(string_value = "PROPOSED")]
    Proposed,
    #[sea_orm(string_value = "LISTED")]
    Listed,
    #[sea_orm(string_value = "WITHDRAWN")]
    Withdrawn,
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
    #[sea_orm(string_value = "REPAIRED")]
    Repaired,
}
