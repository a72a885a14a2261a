//! What the registry knows now about the codes of a check: one statement per check or
//! batch (`store::check_sql`), or, on PostgreSQL, one shared by the single checks of
//! concurrent requests (`check_lookups`), read into [`Findings`].

use super::{Hit, HitMeasure};
use crate::domain::decision::bears_on_answer;
use crate::domain::measures::{Domain, Effect};
use crate::error::{AppError, AppResult};
use crate::store::check_sql;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use std::collections::{BTreeMap, HashMap};

/// The newest listing revision a lookup's snapshot saw (`check_sql::REVISION_COLUMN`):
/// the state of the list its findings come from.
pub(crate) type SnapshotRevision = i64;

/// Reads a lookup row's snapshot revision.
fn snapshot_revision(row: &sea_orm::QueryResult) -> AppResult<SnapshotRevision> {
    Ok(row.try_get("", check_sql::REVISION_COLUMN)?)
}

/// The revision of a lookup's rows: every statement answers at least one row (see
/// `check_sql`); none at all would be a defect of the statement.
fn revision_of_rows(revision: Option<SnapshotRevision>) -> AppResult<SnapshotRevision> {
    revision.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "a check lookup answered no row, not even its snapshot's revision"
        ))
    })
}

/// What the registry knows about one code at `asOf`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Findings {
    pub(super) operator_id: i64,
    pub(super) operator_name: String,
    pub(super) hits: BTreeMap<i64, Hit>,
}

impl Findings {
    /// Measures in code order, whatever order the rows came in.
    fn finish(&mut self) {
        for hit in self.hits.values_mut() {
            hit.measures.sort_by(|a, b| a.code.cmp(&b.code));
        }
    }
}

pub(super) async fn lookup(
    db: &DatabaseConnection,
    codes: &[&str],
    as_of: DateTime<Utc>,
    domain: Domain,
) -> AppResult<(HashMap<String, Findings>, SnapshotRevision)> {
    let rows = db
        .query_all_raw(check_sql::statement(
            db.get_database_backend(),
            codes,
            as_of,
            domain,
        ))
        .await?;
    let mut found: HashMap<String, Findings> = HashMap::with_capacity(codes.len());
    let mut revision = None;
    for row in rows {
        revision = Some(snapshot_revision(&row)?);
        // The row of the revision alone (no code matched) has no operator.
        let Some(uscc) = row.try_get::<Option<String>>("", "uscc")? else {
            continue;
        };
        add_row(found.entry(uscc).or_default(), &row)?;
    }
    for findings in found.values_mut() {
        findings.finish();
    }
    Ok((found, revision_of_rows(revision)?))
}

/// Adds one row of the hits query (the operator, and a listing with one measure when
/// the row has them) to what is known of its code.
fn add_row(entry: &mut Findings, row: &sea_orm::QueryResult) -> AppResult<()> {
    entry.operator_id = row.try_get("", "operator_id")?;
    entry.operator_name = row.try_get("", "operator_name")?;
    let Some(listing_id) = row.try_get::<Option<i64>>("", "listing_id")? else {
        return Ok(());
    };
    let effect: Effect = row.try_get::<entity::measure::Effect>("", "effect")?.into();
    // Hits are what produced the answer: a supervision measure never does, so a listing
    // whose only measures for the domain supervise is no hit (and a CLEAR answer has none).
    if !bears_on_answer(effect) {
        return Ok(());
    }
    let measure = HitMeasure {
        code: row.try_get("", "measure_code")?,
        name: row.try_get("", "measure_name")?,
        effect,
        legal_basis: row.try_get("", "legal_basis")?,
    };
    let starts_at: DateTime<Utc> = row.try_get("", "starts_at")?;
    let ends_at: DateTime<Utc> = row.try_get("", "ends_at")?;
    let hit = match entry.hits.entry(listing_id) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(e) => e.insert(Hit {
            listing_id,
            list_code: row.try_get("", "list_code")?,
            list_name: row.try_get("", "list_name")?,
            authority: row.try_get("", "authority")?,
            decision_doc_no: row.try_get("", "decision_doc_no")?,
            listed_at: starts_at,
            expires_at: ends_at,
            measures: Vec::new(),
        }),
    };
    // Overlapping periods of one listing would repeat its measures: keep each once.
    if !hit.measures.iter().any(|m| m.code == measure.code) {
        hit.measures.push(measure);
    }
    Ok(())
}

/// One single check's question, as `PG_SINGLES` answers it.
#[derive(Clone, Debug)]
pub(crate) struct SingleAsk {
    pub uscc: String,
    pub as_of: DateTime<Utc>,
    pub domain: Domain,
}

/// Runs `PG_SINGLES` for `asks` and returns what is known of each, in order (`None`:
/// the registry has no operator with that code), and the snapshot's revision.
pub(crate) async fn lookup_singles(
    db: &DatabaseConnection,
    asks: &[SingleAsk],
) -> AppResult<(Vec<Option<Findings>>, SnapshotRevision)> {
    use chrono::SecondsFormat::Micros;
    let codes: Vec<&str> = asks.iter().map(|a| a.uscc.as_str()).collect();
    let instants: Vec<String> = asks
        .iter()
        .map(|a| a.as_of.to_rfc3339_opts(Micros, true))
        .collect();
    let domains: Vec<String> = asks.iter().map(|a| a.domain.code()).collect();
    let (codes, instants, domains) = (codes.join(","), instants.join(","), domains.join(","));
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            check_sql::PG_SINGLES.as_str(),
            [codes.into(), instants.into(), domains.into()],
        ))
        .await?;
    let mut found: Vec<Option<Findings>> = vec![None; asks.len()];
    let mut revision = None;
    for row in rows {
        revision = Some(snapshot_revision(&row)?);
        // The row of the revision alone (no code matched) answers no request.
        let Some(index) = row.try_get::<Option<i64>>("", "request_index")? else {
            continue;
        };
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("request index {index} out of range"))
            })?;
        add_row(slot.get_or_insert_with(Findings::default), &row)?;
    }
    for findings in found.iter_mut().flatten() {
        findings.finish();
    }
    Ok((found, revision_of_rows(revision)?))
}
