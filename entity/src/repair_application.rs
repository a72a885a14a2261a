//! An application for credit repair (信用修复) of one listing.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "repair_applications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub listing_id: i64,
    pub status: RepairStatus,
    pub received_date: Date,
    pub accepted_at: Option<DateTimeUtc>,
    pub due_date: Option<Date>,
    /// Documents received: kind, file name, SHA-256.
    pub documents: Json,
    /// The applicant's statements on each eligibility condition.
    pub statements: Json,
    /// The eligibility verdict, condition by condition.
    pub eligibility: Json,
    pub decided_at: Option<DateTimeUtc>,
    pub decided_by: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub decision_reason: Option<String>,
    pub revoked_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub revocation_reason: Option<String>,
    /// Whether the decision was made on or before the due date (null until decided).
    pub decided_on_time: Option<bool>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a repair application stands (`repair_applications.status`).
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
pub enum RepairStatus {
    #[sea_orm(string_value = "INELIGIBLE")]
    Ineligible,
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
}
