//! Transparency logs (issue 17): two append-only Merkle logs, `registry` (every change
//! of the list) and `answers` (every check answered). Per log: one head row (size, root,
//! the right edge of the tree, the latest signed checkpoint; its row lock serialises
//! appenders), the stored hashes (the `tlog_tiles` layout, tiles are read from them),
//! the entries, and every checkpoint signed.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tlog_heads")
                .col(string("log").primary_key())
                .col(big_integer("size"))
                .col(blob("root"))
                .col(blob("edge"))
                .col(big_integer("position"))
                .col(text("checkpoint"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("tlog_hashes")
                .col(string("log"))
                .col(big_integer("idx"))
                .col(blob("hash"))
                .primary_key(Index::create().col("log").col("idx"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("tlog_entries")
                .col(string("log"))
                .col(big_integer("idx"))
                .col(blob("data"))
                .primary_key(Index::create().col("log").col("idx"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("tlog_checkpoints")
                .col(string("log"))
                .col(big_integer("size"))
                .col(text("note"))
                .col(timestamp_with_time_zone("signed_at"))
                .primary_key(Index::create().col("log").col("size"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "tlog_checkpoints",
            "tlog_entries",
            "tlog_hashes",
            "tlog_heads",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
