//! Indexes for the ways check records are looked up besides a partner's own history
//! (`(subject, checked_at)`) and time ranges (`(checked_at)`): by tender reference ("what
//! did we check for tender T?", a partner's or an auditor's question) and by code ("who
//! checked this company?", an auditor's). Without them `checkRecords(filter: {reference})`
//! read a partner's whole history, up to the statement timeout, on the pool that checks
//! use; with them it reads the few records of that reference or code.
//!
//! Both end in `checked_at`, the order `checkRecords` pages in. Building them takes a
//! lock that holds check-record writes on PostgreSQL until they are built (seconds per
//! million records): run the upgrade in a quiet hour on a large registry.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, [&str; 2]); 2] = [
    ("idx_check_records_reference", ["reference", "checked_at"]),
    ("idx_check_records_uscc", ["uscc", "checked_at"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in INDEXES {
            let mut idx = Index::create();
            idx.name(name).table("check_records").if_not_exists();
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table("check_records")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
