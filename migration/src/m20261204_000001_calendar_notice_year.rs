//! Each calendar exception remembers the notice year it came from
//! (`calendar_days.notice_year`), so that reloading a year's notice replaces exactly that
//! notice's days: the ones it reaches into a neighbouring year included (the 2023 notice
//! names 2022-12-31), a neighbouring notice's never. Without it a reload could delete
//! only the dates it lists again, and a day dropped from a corrected notice stayed a
//! holiday.
//!
//! Up adds the column and fills it: the shipped calendar's days from the shipped file,
//! then the days of later loads from their audit events (`calendar.load_year` records
//! every day it loaded; the newest load of a date wins), any other day with its own
//! year. Down drops the column.
use crate::calendar_data;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use std::collections::HashMap;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("calendar_days")
                .add_column(ColumnDef::new("notice_year").integer().null())
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let backend = db.get_database_backend();
        let mut owner: HashMap<chrono::NaiveDate, i32> = HashMap::new();
        for row in calendar_data::parse(calendar_data::SHIPPED_CSV).map_err(DbErr::Migration)? {
            owner.insert(row.day, row.notice_year);
        }
        let loads = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT entity_id, after FROM audit_events WHERE action = 'calendar.load_year' ORDER BY id",
            ))
            .await?;
        for load in loads {
            let year: String = load.try_get_by_index(0)?;
            let Ok(year) = year.parse::<i32>() else {
                continue;
            };
            let after: Option<serde_json::Value> = load.try_get_by_index(1)?;
            let days = after
                .as_ref()
                .and_then(|a| a.get("days"))
                .and_then(|d| d.as_array())
                .cloned()
                .unwrap_or_default();
            for d in days {
                if let Some(day) = d
                    .get("day")
                    .and_then(|v| v.as_str())
                    .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                {
                    owner.insert(day, year);
                }
            }
        }
        let stored = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT day FROM calendar_days",
            ))
            .await?;
        for row in stored {
            let day: chrono::NaiveDate = row.try_get_by_index(0)?;
            let year = owner
                .get(&day)
                .copied()
                .unwrap_or_else(|| chrono::Datelike::year(&day));
            m.exec_stmt(
                Query::update()
                    .table("calendar_days")
                    .value("notice_year", year)
                    .and_where(Expr::col("day").eq(day))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("calendar_days")
                .drop_column("notice_year")
                .to_owned(),
        )
        .await
    }
}
