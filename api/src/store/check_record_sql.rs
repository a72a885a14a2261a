//! PostgreSQL: a group of check records and its answer-log append written as ONE
//! statement of data-modifying CTEs with a fixed text (one prepared statement for every
//! group size): the head moves only if it still is where the group's hashes were computed
//! from, and the records, hashes, entries and checkpoint are inserted only if it moved. A
//! single statement is atomic without BEGIN/COMMIT, so a group costs one round trip.

use chrono::{DateTime, Utc};
use entity::check_record;

/// Parameters: $1 log, $2 size and $11 root of the head the append was computed from,
/// $3 the new size, $4 root, $5 edge, $6 checkpoint, $7 now, $8 the records (JSON array
/// of objects), $9 the new stored hashes (`[{"idx", "hash" base64}]`), $10 the entries
/// (`[{"idx", "data" base64}]`). Returns `moved`: 1 if the group was written, 0 if the
/// head was elsewhere and nothing was written; and `size`, the committed head's size
/// when the statement began (below $2: the group it was computed on had not landed yet).
///
/// The head UPDATE waits for a concurrent writer's uncommitted UPDATE of the row and then
/// re-checks the condition against the committed row (READ COMMITTED), so a group
/// computed on top of a group still in flight lands right after it, and one computed on
/// a stale head writes nothing. The root is in the condition as well as the size: a
/// group computed on a group that never landed must not land on another history of the
/// same size. So the log never forks or skips an index.
pub const PG_WRITE_GROUP: &str = "WITH head AS ( \
        UPDATE tlog_heads SET size = $3, root = $4, edge = $5, checkpoint = $6, updated_at = $7 \
        WHERE log = $1 AND size = $2 AND root = $11 RETURNING log), \
    records AS ( \
        INSERT INTO check_records \
        (id, subject, role, domain, uscc, operator_id, as_of, checked_at, reference, decision, \
         hit_listing_ids, hit_measure_codes, warnings, request_id, batch_id, known_at) \
        SELECT id, subject, role, domain, uscc, operator_id, as_of, checked_at, reference, decision, \
               hit_listing_ids, hit_measure_codes, warnings, request_id, batch_id, known_at \
        FROM jsonb_to_recordset($8::jsonb) AS r( \
            id text, subject text, role text, domain text, uscc text, operator_id bigint, \
            as_of timestamptz, checked_at timestamptz, reference text, decision text, \
            hit_listing_ids jsonb, hit_measure_codes jsonb, warnings jsonb, request_id text, batch_id text, \
            known_at timestamptz) \
        WHERE EXISTS (SELECT 1 FROM head)), \
    hashes AS ( \
        INSERT INTO tlog_hashes (log, idx, hash) \
        SELECT $1, h.idx, decode(h.hash, 'base64') \
        FROM jsonb_to_recordset($9::jsonb) AS h(idx bigint, hash text) \
        WHERE EXISTS (SELECT 1 FROM head)), \
    entries AS ( \
        INSERT INTO tlog_entries (log, idx, data) \
        SELECT $1, e.idx, decode(e.data, 'base64') \
        FROM jsonb_to_recordset($10::jsonb) AS e(idx bigint, data text) \
        WHERE EXISTS (SELECT 1 FROM head)), \
    checkpoint AS ( \
        INSERT INTO tlog_checkpoints (log, size, note, signed_at) \
        SELECT $1, $3, $6, $7 WHERE EXISTS (SELECT 1 FROM head)) \
    SELECT (SELECT count(*) FROM head) AS moved, \
        (SELECT size FROM tlog_heads WHERE log = $1) AS size";

#[derive(serde::Serialize)]
struct HashRow {
    idx: u64,
    hash: String,
}

#[derive(serde::Serialize)]
struct EntryRow {
    idx: u64,
    data: String,
}

fn to_json<T: serde::Serialize>(rows: &T) -> Result<String, sea_orm::DbErr> {
    serde_json::to_string(rows).map_err(|e| sea_orm::DbErr::Custom(e.to_string()))
}

/// The new stored hashes as the JSON array text `PG_WRITE_GROUP` takes ($9).
pub fn hashes_json(hashes: &[(u64, crate::tlog::Hash)]) -> Result<String, sea_orm::DbErr> {
    use base64::Engine;
    let rows: Vec<HashRow> = hashes
        .iter()
        .map(|(idx, hash)| HashRow {
            idx: *idx,
            hash: base64::engine::general_purpose::STANDARD.encode(hash.0),
        })
        .collect();
    to_json(&rows)
}

/// The entries from index `first` on as the JSON array text `PG_WRITE_GROUP` takes ($10).
pub fn entries_json(first: u64, entries: &[Vec<u8>]) -> Result<String, sea_orm::DbErr> {
    use base64::Engine;
    let rows: Vec<EntryRow> = entries
        .iter()
        .zip(first..)
        .map(|(data, idx)| EntryRow {
            idx,
            data: base64::engine::general_purpose::STANDARD.encode(data),
        })
        .collect();
    to_json(&rows)
}

/// One record as `PG_WRITE_GROUP` reads it: the columns by name, borrowed from the
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

/// The group's rows as the JSON array text `PG_WRITE_GROUP` takes ($8).
pub fn group_json(records: &[check_record::Model]) -> Result<String, sea_orm::DbErr> {
    let rows: Vec<GroupRow<'_>> = records.iter().map(GroupRow::from).collect();
    to_json(&rows)
}
