//! A market operator (经营者), identified by its unified social credit code.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "operators")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub uscc: String,
    pub name: String,
    /// Name after full-width/half-width, bracket and white-space normalisation, for matching.
    pub name_normalized: String,
    /// Earlier names as a JSON array of strings (companies rename).
    pub former_names: Json,
    pub entity_type: Option<String>,
    /// GB/T 2260 county-level division where the operator is registered.
    pub region_code: String,
    pub legal_representative: Option<String>,
    pub legal_rep_id_number: Option<String>,
    pub address: Option<String>,
    /// The address is a natural person's (individual business): personal data.
    pub address_is_personal: bool,
    /// Reason given by an admin for accepting a code that fails its check digits.
    pub check_digit_override: Option<String>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
