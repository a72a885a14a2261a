//! The registry log's status map (`api::tlog::status_map`), versioned by log size: a
//! row is the value of a leaf or a node from the log size it was written at until the
//! next row of the same leaf or node. Rows are only ever inserted, in the transaction
//! of the registry-log append that makes that size, so the map of any checkpointed size
//! can be read back (a receipt's status proof names one) and nothing is rewritten.
//!
//! - `status_map_leaves`: per code, the latest entry (index and leaf hash) of each of
//!   its listings, as JSON; `bucket` is the code's bucket, for reading a bucket whole.
//! - `status_map_nodes`: per tree position (level 0 the root … 16 the buckets), its hash.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("status_map_leaves")
                .col(string("uscc"))
                .col(big_integer("from_size"))
                .col(integer("bucket"))
                .col(text("listings"))
                .primary_key(Index::create().col("uscc").col("from_size"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("status_map_leaves_by_bucket")
                .table("status_map_leaves")
                .col("bucket")
                .col("from_size")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("status_map_nodes")
                .col(small_integer("level"))
                .col(integer("position"))
                .col(big_integer("from_size"))
                .col(blob("hash"))
                .primary_key(
                    Index::create()
                        .col("level")
                        .col("position")
                        .col("from_size"),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("status_map_nodes").to_owned())
            .await?;
        m.drop_table(Table::drop().table("status_map_leaves").to_owned())
            .await
    }
}
