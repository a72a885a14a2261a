//! An exception to the Monday-Friday week: a holiday on a weekday or a swapped working weekend day (调休).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "calendar_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    pub is_working_day: bool,
    pub name: String,
    /// The year of the State Council notice the day comes from (a notice may reach into
    /// the neighbouring years): a reload of that year replaces exactly its days.
    pub notice_year: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
