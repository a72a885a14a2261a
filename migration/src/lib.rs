//! Schema migrations. Each migration is immutable once it has landed on `main`:
//! a change to the schema is a new file, named `mYYYYMMDD_HHMMSS_<what>.rs`.
//! Every migration runs unchanged on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

pub mod calendar_data;

mod m20261128_000001_create_tables;
mod m20261128_000002_seed_catalogues;
mod m20261128_120000_repair_timeliness;
mod m20261128_130000_audit_append_only;
mod m20261128_140000_check_known_at;
mod m20261201_000001_check_hit_measures;
mod m20261201_100000_import_batches;
mod m20261201_120000_name_search_index;
mod m20261201_200000_transparency_logs;
mod m20261201_220000_tlog_cosignatures;
mod m20261201_230000_listing_measures_catalogue_check;
mod m20261202_000001_revisions_by_record_time;
mod m20261202_100000_measures_first_used;
mod m20261202_200000_status_map;
mod m20261203_000001_status_map_stored_levels;
mod m20261204_000001_calendar_notice_year;
mod m20261204_000002_check_records_lookups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_tables::Migration),
            Box::new(m20261128_000002_seed_catalogues::Migration),
            Box::new(m20261128_120000_repair_timeliness::Migration),
            Box::new(m20261128_130000_audit_append_only::Migration),
            Box::new(m20261128_140000_check_known_at::Migration),
            Box::new(m20261201_000001_check_hit_measures::Migration),
            Box::new(m20261201_100000_import_batches::Migration),
            Box::new(m20261201_120000_name_search_index::Migration),
            Box::new(m20261201_200000_transparency_logs::Migration),
            Box::new(m20261201_220000_tlog_cosignatures::Migration),
            Box::new(m20261201_230000_listing_measures_catalogue_check::Migration),
            Box::new(m20261202_000001_revisions_by_record_time::Migration),
            Box::new(m20261202_100000_measures_first_used::Migration),
            Box::new(m20261202_200000_status_map::Migration),
            Box::new(m20261203_000001_status_map_stored_levels::Migration),
            Box::new(m20261204_000001_calendar_notice_year::Migration),
            Box::new(m20261204_000002_check_records_lookups::Migration),
        ]
    }
}
