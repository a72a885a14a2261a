//! Credit repair: whether each decision was made on time, kept with the decision so that
//! "overdue" can be filtered and the on-time rate counted in SQL on both backends (the
//! due date is a Beijing date and the decision an instant: comparing them per row would
//! need backend-specific date arithmetic). Plus an index for the deadline queries.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("repair_applications")
                .add_column(boolean_null("decided_on_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_repair_status_due")
                .table("repair_applications")
                .col("status")
                .col("due_date")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_repair_decided_at")
                .table("repair_applications")
                .col("decided_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_repair_decided_at")
                .table("repair_applications")
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_repair_status_due")
                .table("repair_applications")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("repair_applications")
                .drop_column("decided_on_time")
                .to_owned(),
        )
        .await
    }
}
