//! PostgreSQL: a group of check records written as one INSERT of the rows of one JSON
//! parameter (`jsonb_to_recordset`): one prepared statement for every group size.

use chrono::{DateTime, Utc};
use entity::check_record;

/// PostgreSQL: the group's rows as one JSON array of objects.
pub const PG_INSERT_GROUP: &str = "INSERT INTO check_records \
    (id, subject, role, domain, uscc, operator_id, as_of, checked_at, reference, decision, \
     hit_listing_ids, hit_measure_codes, warnings, request_id, batch_id, known_at) \
    SELECT id, subject, role, domain, uscc, operator_id, as_of, checked_at, reference, decision, \
           hit_listing_ids, hit_measure_codes, warnings, request_id, batch_id, known_at \
    FROM jsonb_to_recordset($1::jsonb) AS r( \
        id text, subject text, role text, domain text, uscc text, operator_id bigint, \
        as_of timestamptz, checked_at timestamptz, reference text, decision text, \
        hit_listing_ids jsonb, hit_measure_codes jsonb, warnings jsonb, request_id text, batch_id text, \
        known_at timestamptz)";

/// One record as `PG_INSERT_GROUP` reads it: the columns by name, borrowed from the
/// record (serialised straight to the statement's text, no intermediate JSON tree).
#[derive(serde::Serialize)]
struct GroupRow<'a> {
    id: &'a str,
    subject: &'a str,
    role: &'a str,
    domain: entity::measure::Domain,
    uscc: &'a str,
    operator_id: Option<i64>,
    as_of: DateTime<Utc>,
    checked_at: DateTime<Utc>,
    reference: Option<&'a str>,
    decision: check_record::Decision,
    hit_listing_ids: &'a serde_json::Value,
    hit_measure_codes: Option<&'a serde_json::Value>,
    warnings: &'a serde_json::Value,
    request_id: &'a str,
    batch_id: Option<&'a str>,
    known_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a check_record::Model> for GroupRow<'a> {
    fn from(r: &'a check_record::Model) -> Self {
        Self {
            id: &r.id,
            subject: &r.subject,
            role: &r.role,
            domain: r.domain,
            uscc: &r.uscc,
            operator_id: r.operator_id,
            as_of: r.as_of,
            checked_at: r.checked_at,
            reference: r.reference.as_deref(),
            decision: r.decision,
            hit_listing_ids: &r.hit_listing_ids,
            hit_measure_codes: r.hit_measure_codes.as_ref(),
            warnings: &r.warnings,
            request_id: &r.request_id,
            batch_id: r.batch_id.as_deref(),
            known_at: r.known_at,
        }
    }
}

/// The group's rows as the JSON array text `PG_INSERT_GROUP` takes.
pub fn group_json(records: &[check_record::Model]) -> Result<String, sea_orm::DbErr> {
    let rows: Vec<GroupRow<'_>> = records.iter().map(GroupRow::from).collect();
    serde_json::to_string(&rows).map_err(|e| sea_orm::DbErr::Custom(e.to_string()))
}
