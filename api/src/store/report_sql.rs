//! The yearly report's grouped counts, written once for both backends with `?`
//! placeholders and translated for PostgreSQL.

use crate::domain::region::QINGYUAN_DIVISIONS;
use sea_orm::{DatabaseBackend, Statement, Value};
use std::sync::LazyLock;

/// `?` placeholders in PostgreSQL's `$n` form where needed.
pub fn statement(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(ch);
                }
            }
            out
        }
        _ => sql.to_string(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub const DECIDED_SQL: &str = "SELECT o.region_code AS region, COUNT(*) AS n \
    FROM listings l JOIN operators o ON o.id = l.operator_id \
    WHERE l.decision_date >= ? AND l.decision_date < ? GROUP BY o.region_code";

pub const REMOVED_SQL: &str = "SELECT o.region_code AS region, p.removal_kind AS kind, COUNT(*) AS n \
    FROM listing_periods p JOIN listings l ON l.id = p.listing_id JOIN operators o ON o.id = l.operator_id \
    WHERE p.removed_at >= ? AND p.removed_at < ? GROUP BY o.region_code, p.removal_kind";

/// A period expired when it ran out without an early removal.
pub const EXPIRED_SQL: &str = "SELECT o.region_code AS region, COUNT(*) AS n \
    FROM listing_periods p JOIN listings l ON l.id = p.listing_id JOIN operators o ON o.id = l.operator_id \
    WHERE p.removed_at IS NULL AND p.ends_at >= ? AND p.ends_at < ? AND p.ends_at <= ? \
    GROUP BY o.region_code";

/// The division a check (and its feedback) counts for: the registered operator's, else
/// positions 3-8 of the code when they name a Qingyuan division, else one bucket,
/// [`OUTSIDE`]. `check` takes any well-formed code, so positions 3-8 of an unregistered
/// one are whatever the partner sent (another city's division, letters): grouping by them
/// made a row for every distinct value, without bound, on the public statistics page too.
/// The codes are the constant table's six digits, so they are written into the SQL.
fn check_region() -> String {
    let known: Vec<String> = QINGYUAN_DIVISIONS
        .iter()
        .map(|(code, _)| format!("'{code}'"))
        .collect();
    format!(
        "CASE WHEN o.region_code IS NOT NULL THEN o.region_code \
         WHEN SUBSTR(c.uscc, 3, 6) IN ({}) THEN SUBSTR(c.uscc, 3, 6) ELSE '{OUTSIDE}' END",
        known.join(", ")
    )
}

/// The region of checks and feedback whose division is not known (see [`check_region`]).
pub const OUTSIDE: &str = "OUTSIDE";

/// The year's checks are the checks partners made before a procedure: `check_records`
/// also holds admins' and auditors' checks (tests, reviews) and `knownAt`
/// reconstructions of past answers, dated when they were re-run, and neither is one.
pub static CHECKS_SQL: LazyLock<String> = LazyLock::new(|| {
    let region = check_region();
    format!(
        "SELECT {region} AS region, c.domain AS domain, c.decision AS decision, COUNT(*) AS n \
         FROM check_records c LEFT JOIN operators o ON o.id = c.operator_id \
         WHERE c.checked_at >= ? AND c.checked_at < ? \
         AND c.role = 'partner' AND c.known_at IS NULL \
         GROUP BY {region}, c.domain, c.decision"
    )
});

pub static FEEDBACK_SQL: LazyLock<String> = LazyLock::new(|| {
    let region = check_region();
    format!(
        "SELECT {region} AS region, f.measure_code AS measure, COUNT(*) AS n \
         FROM partner_feedback f JOIN check_records c ON c.id = f.receipt_id \
         LEFT JOIN operators o ON o.id = c.operator_id \
         WHERE f.created_at >= ? AND f.created_at < ? \
         GROUP BY {region}, f.measure_code"
    )
});
