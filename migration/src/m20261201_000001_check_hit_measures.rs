//! A check record keeps the measures of its hits (the measures that produced its
//! answer), so execution feedback can be held to them: a partner reports only a measure
//! that was among its check's hits. NULL for records written before this column: their
//! hits are rebuilt from the listing revisions at the time of the check.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("check_records")
                .add_column(json_binary_null("hit_measure_codes"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("check_records")
                .drop_column("hit_measure_codes")
                .to_owned(),
        )
        .await
    }
}
