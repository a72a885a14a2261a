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
    pub domain: Domain,
    pub effect: Effect,
    #[sea_orm(column_type = "Text")]
    pub legal_basis: String,
    pub active: bool,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When a listing first used this measure; from then on its domain and effect are
    /// fixed. `None`: no listing has used it yet.
    pub first_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The domain a measure restricts (`measures.domain`, `check_records.domain`, and the
/// codes in `partners.domains`).
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
pub enum Domain {
    #[sea_orm(string_value = "PROCUREMENT")]
    Procurement,
    #[sea_orm(string_value = "BIDDING")]
    Bidding,
    #[sea_orm(string_value = "LAND_TRANSFER")]
    LandTransfer,
    #[sea_orm(string_value = "HONORS")]
    Honors,
    #[sea_orm(string_value = "LICENSING")]
    Licensing,
    #[sea_orm(string_value = "NOTIFICATION_COMMITMENT")]
    NotificationCommitment,
    #[sea_orm(string_value = "SUPERVISION")]
    Supervision,
}

/// The effect a measure has on a partner's answer (`measures.effect`).
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
pub enum Effect {
    #[sea_orm(string_value = "PROHIBIT")]
    Prohibit,
    #[sea_orm(string_value = "CONSIDER")]
    Consider,
    #[sea_orm(string_value = "SUPERVISE")]
    Supervise,
}
