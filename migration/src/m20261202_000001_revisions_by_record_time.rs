//! An index on `listing_revisions (recorded_at, id)`: a `knownAt` check names the
//! registry log's head of the list as known at its instant, which starts from the newest
//! revision recorded by then (`feed::revision_known_at`). Without it that is a backward
//! walk of the primary key over every revision recorded since, seconds for an instant
//! years back in a registry of millions of revisions; with it, one index probe.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_listing_revisions_record_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(INDEX)
                .table("listing_revisions")
                .col("recorded_at")
                .col("id")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(INDEX)
                .table("listing_revisions")
                .to_owned(),
        )
        .await
    }
}
