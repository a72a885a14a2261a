//! A list of dishonest parties (e.g. the SAMR list of Order No. 44), with its rules as data.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_lists")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    /// The regulation the list rests on.
    pub legal_basis: String,
    /// Default listing period in months (36 for the SAMR list).
    pub default_period_months: i32,
    /// Working days the party has to state its case after the notice.
    pub defence_working_days: i32,
    /// Working days to stop publicity after a revocation (Order 44 Art. 19: 3).
    pub publicity_stop_working_days: i32,
    /// Credit repair: minimum months listed before early removal may be applied for.
    pub repair_min_months: i32,
    /// Working days the authority has to decide a repair application once accepted.
    pub repair_decision_working_days: i32,
    /// What a revoked (fraudulent) repair does to the period: RESUME or RESTART.
    pub repair_revocation_policy: String,
    pub active: bool,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
