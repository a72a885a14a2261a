//! One joint-punishment check and what it answered: the receipt's durable twin.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "check_records")]
pub struct Model {
    /// The receipt id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub subject: String,
    pub role: String,
    pub domain: super::measure::Domain,
    pub uscc: String,
    pub operator_id: Option<i64>,
    pub as_of: DateTimeUtc,
    pub checked_at: DateTimeUtc,
    pub reference: Option<String>,
    pub decision: Decision,
    /// JSON array of listing ids.
    pub hit_listing_ids: Json,
    pub warnings: Json,
    pub request_id: String,
    pub batch_id: Option<String>,
    /// JSON array of the codes of the measures that produced the answer (`[]` for CLEAR);
    /// NULL on records written before it was kept.
    pub hit_measure_codes: Option<Json>,
    /// Set when the check was re-run as the registry knew it at that instant (auditors).
    pub known_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What a check answered (`check_records.decision`).
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
pub enum Decision {
    #[sea_orm(string_value = "CLEAR")]
    Clear,
    #[sea_orm(string_value = "REVIEW")]
    Review,
    #[sea_orm(string_value = "RESTRICTED")]
    Restricted,
}
