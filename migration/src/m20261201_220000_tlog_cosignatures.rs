//! Witness cosignatures of the transparency logs' checkpoints (C2SP `tlog-cosignature`):
//! per log, checkpoint size and witness (`<name>+<key id>`), the signature line as the
//! witness posted it, and the witness's timestamp. Served appended to the checkpoint.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tlog_cosignatures")
                .col(string("log"))
                .col(big_integer("size"))
                .col(string("witness"))
                .col(text("line"))
                .col(big_integer("cosigned_at"))
                .col(timestamp_with_time_zone("received_at"))
                .primary_key(Index::create().col("log").col("size").col("witness"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("tlog_cosignatures").to_owned())
            .await
    }
}
