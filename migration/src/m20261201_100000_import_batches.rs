//! Imports of existing lists (issue 14): one row per import batch, so an interrupted
//! import resumes after its last committed chunk; and an index for the natural key of
//! an imported listing (list + decision document number + code), which an import looks
//! up a chunk at a time.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("import_batches")
                .col(string("id").primary_key())
                .col(string("kind"))
                .col(string("file_name"))
                .col(string_len("file_sha256", 64))
                .col(string("actor"))
                .col(big_integer("total_rows"))
                .col(big_integer("last_committed_row"))
                .col(string("status"))
                .col(big_integer("created"))
                .col(big_integer("updated"))
                .col(big_integer("unchanged"))
                .col(big_integer("rejected"))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_import_batches_file")
                .table("import_batches")
                .col("file_sha256")
                .col("kind")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_listings_decision_doc_no")
                .table("listings")
                .col("decision_doc_no")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_listings_decision_doc_no")
                .table("listings")
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table("import_batches").to_owned())
            .await
    }
}
