//! Public name search answers from an index, never a scan of every operator.
//!
//! - PostgreSQL: `pg_trgm` and a GIN trigram index on `operators.name_normalized`, which
//!   `name_normalized LIKE '%text%' ESCAPE '\'` uses for any text of three characters or
//!   more (`pg_trgm` is a trusted extension: the database owner may create it; the
//!   database's `LC_CTYPE` must be a UTF-8 one, as `C.UTF-8`, for Chinese characters to
//!   make trigrams).
//! - SQLite: an FTS5 table with the `trigram` tokenizer over the same column (external
//!   content: the index only), kept in step with `operators` by triggers; a phrase
//!   query (`MATCH '"text"'`) is a substring search of three characters or more.
//!
//! Also an index on `listing_revisions (listing_id, recorded_at)`: a `knownAt`
//! reconstruction reads, per listing, only the revisions recorded by then.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS idx_operators_name_trgm ON operators \
     USING gin (name_normalized gin_trgm_ops)",
];

const POSTGRES_DOWN: &[&str] = &["DROP INDEX IF EXISTS idx_operators_name_trgm"];

const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE operators_name_fts USING fts5(\
     name_normalized, content='operators', content_rowid='id', tokenize='trigram')",
    "INSERT INTO operators_name_fts(operators_name_fts) VALUES ('rebuild')",
    "CREATE TRIGGER operators_name_fts_insert AFTER INSERT ON operators BEGIN \
     INSERT INTO operators_name_fts(rowid, name_normalized) VALUES (new.id, new.name_normalized); \
     END",
    "CREATE TRIGGER operators_name_fts_delete AFTER DELETE ON operators BEGIN \
     INSERT INTO operators_name_fts(operators_name_fts, rowid, name_normalized) \
     VALUES ('delete', old.id, old.name_normalized); \
     END",
    "CREATE TRIGGER operators_name_fts_update AFTER UPDATE OF name_normalized ON operators BEGIN \
     INSERT INTO operators_name_fts(operators_name_fts, rowid, name_normalized) \
     VALUES ('delete', old.id, old.name_normalized); \
     INSERT INTO operators_name_fts(rowid, name_normalized) VALUES (new.id, new.name_normalized); \
     END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS operators_name_fts_update",
    "DROP TRIGGER IF EXISTS operators_name_fts_delete",
    "DROP TRIGGER IF EXISTS operators_name_fts_insert",
    "DROP TABLE IF EXISTS operators_name_fts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let statements = match db.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        m.create_index(
            Index::create()
                .name("idx_listing_revisions_recorded")
                .table("listing_revisions")
                .col("listing_id")
                .col("recorded_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_listing_revisions_recorded")
                .table("listing_revisions")
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let statements = match db.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
