//! `measures.first_used_at`: when a listing first used the measure. From then on its
//! domain and effect are fixed (`domain::measures::refusal_to_edit_in_use` says why),
//! and this column is how an edit of the catalogue knows, in one row, without reading
//! `listing_measures` (which has no index by measure: an import writes about 11 links
//! a listing, and every index there is paid on each of them).
//!
//! Existing measures that a listing uses now are marked as used from the migration's
//! instant. A measure that only a past state of a listing used (corrected away before
//! this migration) is not found that way; the revisions' snapshots would tell, but an
//! edit of such a measure before this column existed is already in the audit chain.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Measures {
    Table,
    FirstUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Measures::Table)
                .add_column(
                    ColumnDef::new(Measures::FirstUsedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        // The instant is bound, not `CURRENT_TIMESTAMP`, so SQLite stores it in the same
        // text form as every other timestamp the registry writes.
        m.exec_stmt(
            Query::update()
                .table(Measures::Table)
                .value(Measures::FirstUsedAt, chrono::Utc::now())
                .and_where(Expr::col(Measures::FirstUsedAt).is_null())
                .and_where(Expr::cust(
                    "EXISTS (SELECT 1 FROM listing_measures lm WHERE lm.measure_id = measures.id)",
                ))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Measures::Table)
                .drop_column(Measures::FirstUsedAt)
                .to_owned(),
        )
        .await
    }
}
