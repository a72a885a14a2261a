//! Reading fields of a listing revision's snapshot in SQL, so that a `knownAt` search
//! narrows revisions in the database instead of reading and parsing every one.

use entity::listing_revision;
use sea_orm::DbBackend;
use sea_orm::sea_query::{Expr, Func, SimpleExpr};

/// The text of a top-level field of `listing_revisions.snapshot` (`jsonb` on
/// PostgreSQL, JSON text on SQLite).
pub fn snapshot_text(backend: DbBackend, field: &'static str) -> SimpleExpr {
    let column = Expr::col((listing_revision::Entity, listing_revision::Column::Snapshot));
    match backend {
        DbBackend::Postgres => Expr::cust_with_exprs("($1 ->> $2)", [column, Expr::val(field)]),
        _ => Func::cust("json_extract")
            .arg(column)
            .arg(Expr::val(format!("$.{field}")))
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{ExprTrait, PostgresQueryBuilder, Query, SqliteQueryBuilder};

    #[test]
    fn fields_are_read_with_each_backends_json_operator() {
        let q = |backend| {
            Query::select()
                .column(listing_revision::Column::Id)
                .from(listing_revision::Entity)
                .and_where(snapshot_text(backend, "authority").eq("x"))
                .to_owned()
        };
        let pg = q(DbBackend::Postgres).to_string(PostgresQueryBuilder);
        assert!(pg.contains(r#""snapshot" ->> 'authority'"#), "{pg}");
        let lite = q(DbBackend::Sqlite).to_string(SqliteQueryBuilder);
        assert!(
            lite.contains(r#"json_extract("listing_revisions"."snapshot", '$.authority')"#),
            "{lite}"
        );
    }
}
