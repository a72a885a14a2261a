//! The audit log is append-only: the database itself refuses to change or remove an
//! audit event, whatever code (or person) connects. On PostgreSQL a trigger raises on
//! UPDATE, DELETE and TRUNCATE of `audit_events`; on SQLite `BEFORE UPDATE/DELETE`
//! triggers abort the statement. The chain's head row may only move forward.
//!
//! A superuser can still disable the triggers (PostgreSQL) or drop them (SQLite):
//! that is what the hash chain and `verify-audit` are for.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    r#"CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_events is append-only: % is refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END
       $$"#,
    "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events \
     FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events \
     FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
    r#"CREATE OR REPLACE FUNCTION audit_head_forward_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           RAISE EXCEPTION 'audit_head only moves forward: DELETE is refused'
             USING ERRCODE = 'insufficient_privilege';
         END IF;
         IF NEW.last_event_id < OLD.last_event_id THEN
           RAISE EXCEPTION 'audit_head only moves forward: UPDATE is refused'
             USING ERRCODE = 'insufficient_privilege';
         END IF;
         RETURN NEW;
       END
       $$"#,
    "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head \
     FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head",
    "DROP FUNCTION IF EXISTS audit_head_forward_only()",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events \
     BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE is refused'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events \
     BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE is refused'); END",
    "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head \
     WHEN NEW.last_event_id < OLD.last_event_id \
     BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward: UPDATE is refused'); END",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head \
     BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward: DELETE is refused'); END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS audit_head_no_delete",
    "DROP TRIGGER IF EXISTS audit_head_forward_only",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_events_no_update",
];

async fn run(m: &SchemaManager<'_>, postgres: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let statements = match m.get_database_backend() {
        DatabaseBackend::Postgres => postgres,
        DatabaseBackend::Sqlite => sqlite,
        other => {
            return Err(DbErr::Migration(format!(
                "the audit triggers are written for PostgreSQL and SQLite, not {other:?}"
            )));
        }
    };
    let db = m.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, POSTGRES_DOWN, SQLITE_DOWN).await
    }
}
