//! Checks may be re-run "as the registry knew it" at an earlier instant (`knownAt`, by
//! auditors): the record keeps that instant so the reconstruction is not mistaken for
//! an answer the registry gave at the time.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("check_records")
                .add_column(timestamp_with_time_zone_null("known_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("check_records")
                .drop_column("known_at")
                .to_owned(),
        )
        .await
    }
}
