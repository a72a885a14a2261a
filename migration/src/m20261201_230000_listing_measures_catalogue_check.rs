//! `listing_measures` keeps its foreign key to `listings` and drops the one to
//! `measures`: every write of a listing's measures takes them from the catalogue (the
//! mutations load the `measures` rows by code, an import checks each code against the
//! catalogue it loaded), and a measure is never deleted, only deactivated, so the key
//! guarded nothing the registry does. It cost more than half of the PostgreSQL time of
//! writing the 11 measure rows of an imported listing (measured with `EXPLAIN ANALYZE`:
//! 154 ms for 11,000 rows with both keys, 102 ms with the key to `listings` only).
//!
//! - PostgreSQL drops the constraint by its name.
//! - SQLite cannot drop a constraint: the table is rebuilt without it (same columns,
//!   key and key to `listings`), its rows copied.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] =
    &["ALTER TABLE listing_measures DROP CONSTRAINT IF EXISTS listing_measures_measure_id_fkey"];

const POSTGRES_DOWN: &[&str] = &["ALTER TABLE listing_measures ADD CONSTRAINT \
     listing_measures_measure_id_fkey FOREIGN KEY (measure_id) REFERENCES measures (id)"];

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE \"listing_measures_rebuilt\" ( \"listing_id\" integer NOT NULL, \
     \"measure_id\" integer NOT NULL, PRIMARY KEY (\"listing_id\", \"measure_id\"), \
     FOREIGN KEY (\"listing_id\") REFERENCES \"listings\" (\"id\") )",
    "INSERT INTO listing_measures_rebuilt (listing_id, measure_id) \
     SELECT listing_id, measure_id FROM listing_measures",
    "DROP TABLE listing_measures",
    "ALTER TABLE listing_measures_rebuilt RENAME TO listing_measures",
];

const SQLITE_DOWN: &[&str] = &[
    "CREATE TABLE \"listing_measures_rebuilt\" ( \"listing_id\" integer NOT NULL, \
     \"measure_id\" integer NOT NULL, PRIMARY KEY (\"listing_id\", \"measure_id\"), \
     FOREIGN KEY (\"listing_id\") REFERENCES \"listings\" (\"id\"), \
     FOREIGN KEY (\"measure_id\") REFERENCES \"measures\" (\"id\") )",
    "INSERT INTO listing_measures_rebuilt (listing_id, measure_id) \
     SELECT listing_id, measure_id FROM listing_measures",
    "DROP TABLE listing_measures",
    "ALTER TABLE listing_measures_rebuilt RENAME TO listing_measures",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, POSTGRES_DOWN, SQLITE_DOWN).await
    }
}

async fn run(m: &SchemaManager<'_>, postgres: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let db = m.get_connection();
    let statements = match db.get_database_backend() {
        DatabaseBackend::Postgres => postgres,
        _ => sqlite,
    };
    // One call, so one connection of the pool runs the rebuild: another connection whose
    // schema was read before the `DROP` could still see the old table at the `RENAME`.
    db.execute_unprepared(&statements.join(";\n")).await?;
    Ok(())
}
