//! "The operator's normalised name contains this text", answered from an index.
//!
//! Text of [`MIN_INDEXED_CHARS`] characters or more is looked up through the trigram
//! index of each backend (migration `m20261201_120000_name_search_index`): on PostgreSQL
//! `LIKE '%text%' ESCAPE '\'`, which the `pg_trgm` GIN index answers; on SQLite a phrase
//! query on the FTS5 `trigram` table. Either way the text matches literally: `%`, `_`
//! and `\` are escaped in the LIKE pattern, and a phrase in double quotes (inner quotes
//! doubled) has no operators.
//!
//! Shorter text makes no trigram, so no index can answer it: the public search refuses
//! it (`service::public::search_text`); staff filters fall back to the literal LIKE,
//! a scan they pay for within their cost budget and statement timeout.

use entity::operator;
use sea_orm::DbBackend;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, SimpleExpr};

/// Characters a trigram index needs to answer a substring search.
pub const MIN_INDEXED_CHARS: usize = 3;

/// The escape character of [`contains_pattern`].
pub const LIKE_ESCAPE: char = '\\';

/// The LIKE pattern that finds `text` anywhere, with `%`, `_` and the escape character
/// itself matching only themselves: a caller's `%` is a percent sign in a name, never
/// "every operator". Used with `ESCAPE '\'`, which both backends understand.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// An FTS5 phrase that matches `text` literally.
pub fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The operator's normalised name contains `name` (already normalised) literally.
pub fn name_contains(backend: DbBackend, name: &str) -> SimpleExpr {
    let like = || {
        Expr::col((operator::Entity, operator::Column::NameNormalized))
            .like(LikeExpr::new(contains_pattern(name)).escape(LIKE_ESCAPE))
    };
    if name.chars().count() < MIN_INDEXED_CHARS {
        return like();
    }
    match backend {
        DbBackend::Sqlite => Expr::col((operator::Entity, operator::Column::Id)).in_subquery(
            sea_orm::sea_query::Query::select()
                .expr(Expr::cust("rowid"))
                .from(sea_orm::sea_query::Alias::new("operators_name_fts"))
                .and_where(Expr::cust_with_values(
                    "operators_name_fts MATCH ?",
                    [fts_phrase(name)],
                ))
                .to_owned(),
        ),
        // PostgreSQL (and anything else): the GIN trigram index answers the LIKE.
        _ => like(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{EntityTrait, QueryFilter, QueryTrait};

    #[test]
    fn wildcards_in_search_text_match_themselves() {
        assert_eq!(contains_pattern("清远"), "%清远%");
        assert_eq!(contains_pattern("%"), r"%\%%");
        assert_eq!(contains_pattern("a_b"), r"%a\_b%");
        assert_eq!(contains_pattern(r"a\b"), r"%a\\b%");
        assert_eq!(contains_pattern(r"\%_"), r"%\\\%\_%");
        assert_eq!(fts_phrase(r#"a"b%"#), r#""a""b%""#);
    }

    #[test]
    fn the_text_is_a_parameter_on_both_backends() {
        for (backend, indexed) in [(DbBackend::Postgres, "LIKE"), (DbBackend::Sqlite, "MATCH")] {
            let stmt = operator::Entity::find()
                .filter(name_contains(backend, "100%有限"))
                .build(backend);
            assert!(stmt.sql.contains(indexed), "{}", stmt.sql);
            assert!(!stmt.sql.contains("100"), "the text is bound: {}", stmt.sql);
            // Short text: the literal LIKE with its escape clause.
            let stmt = operator::Entity::find()
                .filter(name_contains(backend, "1%"))
                .build(backend);
            assert!(stmt.sql.contains("ESCAPE"), "{}", stmt.sql);
        }
    }
}
