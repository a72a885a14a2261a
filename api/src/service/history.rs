//! Record time: listings as the registry recorded them at an instant `knownAt`, read
//! from `listing_revisions` (each revision holds from its `recorded_at` until the next
//! change's instant, `superseded_at`). A listing not yet recorded at `knownAt` did not
//! exist then; later corrections are invisible.
//!
//! The check service answers "as the registry knew it at knownAt" with
//! [`for_operator_known_at`], [`RecordedListing::in_force_at`] and
//! [`measures_known_at`] (the measures' domains and effects as they then stood).

use super::listing_search::{self, ListingFilter};
use crate::domain::history::{CatalogueStateAt, catalogue_state_at, revision_covers};
use crate::domain::lifecycle::{self, ListingStatus, Period, StoredStatus};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{audit_event, listing, listing_period, listing_revision, measure};
use sea_orm::ActiveEnum;
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use std::collections::HashMap;

/// The document `service::listings::snapshot` writes.
#[derive(Deserialize)]
struct SnapshotDoc {
    id: i64,
    operator_id: i64,
    list_id: i64,
    status: StoredStatus,
    authority: String,
    authority_region: String,
    penalty_doc_no: String,
    penalty_date: NaiveDate,
    violation_category: String,
    reason: String,
    legal_basis: String,
    notice_date: NaiveDate,
    defence_deadline: NaiveDate,
    proposed_at: DateTime<Utc>,
    decision_doc_no: Option<String>,
    decision_date: Option<NaiveDate>,
    period_months_override: Option<i32>,
    removal_doc_no: Option<String>,
    removal_reason: Option<String>,
    publicity_stop_deadline: Option<NaiveDate>,
    version: i32,
    periods: Vec<SnapshotPeriod>,
    measures: Vec<String>,
}

#[derive(Deserialize)]
struct SnapshotPeriod {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    removal_kind: Option<String>,
}

/// A listing as one revision recorded it.
#[derive(Clone, Debug)]
pub struct RecordedListing {
    pub revision_id: i64,
    /// The action that produced this revision, e.g. `listing.corrected`.
    pub action: String,
    pub recorded_at: DateTime<Utc>,
    pub superseded_at: Option<DateTime<Utc>>,
    /// The row as it was: `created_at` is the proposal instant, `updated_at` the
    /// instant this revision was recorded.
    pub row: listing::Model,
    /// The periods as they were (period ids are not part of the record: 0).
    pub periods: Vec<listing_period::Model>,
    pub measure_codes: Vec<String>,
}

impl RecordedListing {
    pub fn from_revision(rev: &listing_revision::Model) -> AppResult<Self> {
        let doc: SnapshotDoc = serde_json::from_value(rev.snapshot.clone()).map_err(|e| {
            AppError::internal(anyhow::anyhow!(
                "listing revision {} has an unreadable snapshot: {e}",
                rev.id
            ))
        })?;
        let periods = doc
            .periods
            .into_iter()
            .map(|p| listing_period::Model {
                id: 0,
                listing_id: doc.id,
                starts_at: p.starts_at,
                ends_at: p.ends_at,
                removed_at: p.removed_at,
                removal_kind: p.removal_kind,
            })
            .collect();
        let row = listing::Model {
            id: doc.id,
            operator_id: doc.operator_id,
            list_id: doc.list_id,
            status: doc.status,
            authority: doc.authority,
            authority_region: doc.authority_region,
            penalty_doc_no: doc.penalty_doc_no,
            penalty_date: doc.penalty_date,
            violation_category: doc.violation_category,
            reason: doc.reason,
            legal_basis: doc.legal_basis,
            notice_date: doc.notice_date,
            defence_deadline: doc.defence_deadline,
            proposed_at: doc.proposed_at,
            decision_doc_no: doc.decision_doc_no,
            decision_date: doc.decision_date,
            period_months_override: doc.period_months_override,
            removal_doc_no: doc.removal_doc_no,
            removal_reason: doc.removal_reason,
            publicity_stop_deadline: doc.publicity_stop_deadline,
            version: doc.version,
            created_at: doc.proposed_at,
            updated_at: rev.recorded_at,
        };
        Ok(Self {
            revision_id: rev.id,
            action: rev.action.clone(),
            recorded_at: rev.recorded_at,
            superseded_at: rev.superseded_at,
            row,
            periods,
            measure_codes: doc.measures,
        })
    }

    pub fn periods(&self) -> Vec<Period> {
        super::listings::to_periods(&self.periods)
    }

    /// Valid time over the recorded periods: in force at `t` as the record then said.
    /// Whether the listing had been decided when this revision was recorded: a decision
    /// opens the first period, and nothing else does.
    pub fn was_decided(&self) -> bool {
        !self.periods.is_empty()
    }

    pub fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        lifecycle::in_force_at(&self.periods(), t)
    }

    /// What the record showed for the status at `t`.
    pub fn status_at(&self, t: DateTime<Utc>) -> AppResult<ListingStatus> {
        super::listings::status_at(&self.row, &self.periods, t)
    }
}

#[derive(Deserialize)]
struct MeasureDoc {
    code: String,
    name: String,
    domain: entity::measure::Domain,
    effect: entity::measure::Effect,
    legal_basis: String,
    active: bool,
    version: i32,
}

/// The measures named by `codes` as the catalogue held them at `k`: a listing recorded
/// then names its measures by code, and a measure's domain or effect may have been
/// edited since. Rebuilt from the audit log of `measure.upsert` (two queries); a
/// measure never edited through the API is its current row.
pub async fn measures_known_at<C: ConnectionTrait>(
    db: &C,
    codes: &[String],
    k: DateTime<Utc>,
) -> AppResult<HashMap<String, measure::Model>> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let current: HashMap<String, measure::Model> = measure::Entity::find()
        .filter(measure::Column::Code.is_in(codes.to_vec()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.code.clone(), m))
        .collect();
    let mut edits: HashMap<String, Vec<EditEvent>> = HashMap::new();
    for e in audit_event::Entity::find()
        .filter(audit_event::Column::EntityType.eq("measure"))
        .filter(audit_event::Column::EntityId.is_in(codes.to_vec()))
        .order_by_asc(audit_event::Column::Id)
        .all(db)
        .await?
    {
        edits
            .entry(e.entity_id.clone())
            .or_default()
            .push((e.occurred_at, e.before, e.after));
    }
    let mut out = HashMap::new();
    for code in codes {
        let events = edits.get(code).map_or(&[][..], Vec::as_slice);
        let now = current.get(code);
        let model = match catalogue_state_at(events, k) {
            CatalogueStateAt::Current => now.cloned(),
            CatalogueStateAt::Absent => None,
            CatalogueStateAt::Recorded(doc) => {
                let d: MeasureDoc = serde_json::from_value(doc.clone()).map_err(|e| {
                    AppError::internal(anyhow::anyhow!(
                        "audit event of measure {code} has an unreadable document: {e}"
                    ))
                })?;
                Some(measure::Model {
                    id: now.map_or(0, |m| m.id),
                    code: d.code,
                    name: d.name,
                    domain: d.domain,
                    effect: d.effect,
                    legal_basis: d.legal_basis,
                    active: d.active,
                    version: d.version,
                    created_at: now.map_or(k, |m| m.created_at),
                    updated_at: now.map_or(k, |m| m.updated_at),
                    first_used_at: now.and_then(|m| m.first_used_at).filter(|t| *t <= k),
                })
            }
        };
        if let Some(m) = model {
            out.insert(code.clone(), m);
        }
    }
    Ok(out)
}

type EditEvent = (
    DateTime<Utc>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

/// `recorded_at <= k AND (superseded_at IS NULL OR k < superseded_at)`.
fn covers(k: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(listing_revision::Column::RecordedAt.lte(k))
        .add(
            Condition::any()
                .add(listing_revision::Column::SupersededAt.is_null())
                .add(listing_revision::Column::SupersededAt.gt(k)),
        )
}

fn recorded(
    rows: Vec<listing_revision::Model>,
    k: DateTime<Utc>,
) -> AppResult<Vec<RecordedListing>> {
    rows.iter()
        .filter(|r| revision_covers(r.recorded_at, r.superseded_at, k))
        .map(RecordedListing::from_revision)
        .collect()
}

/// The listing as recorded at `k`; `None` when it had not been recorded yet.
pub async fn by_id_known_at<C: ConnectionTrait>(
    db: &C,
    id: i64,
    k: DateTime<Utc>,
) -> AppResult<Option<RecordedListing>> {
    let rows = listing_revision::Entity::find()
        .filter(listing_revision::Column::ListingId.eq(id))
        .filter(covers(k))
        .all(db)
        .await?;
    Ok(recorded(rows, k)?.into_iter().next())
}

/// An operator's listings as recorded at `k`, in listing id order.
pub async fn for_operator_known_at<C: ConnectionTrait>(
    db: &C,
    operator_id: i64,
    k: DateTime<Utc>,
) -> AppResult<Vec<RecordedListing>> {
    let rows = listing_revision::Entity::find()
        .filter(
            listing_revision::Column::ListingId.in_subquery(
                Query::select()
                    .column(listing::Column::Id)
                    .from(listing::Entity)
                    .and_where(listing::Column::OperatorId.eq(operator_id))
                    .to_owned(),
            ),
        )
        .filter(covers(k))
        .order_by_asc(listing_revision::Column::ListingId)
        .all(db)
        .await?;
    recorded(rows, k)
}

/// Whether a recorded listing passes the filter's fields that can change over time
/// (status, authority, category, valid time); the fixed ones (list, operator, region)
/// are applied in SQL.
fn matches(r: &RecordedListing, filter: &ListingFilter, k: DateTime<Utc>) -> AppResult<bool> {
    if let Some(status) = filter.status
        && r.status_at(k)? != status
    {
        return Ok(false);
    }
    if let Some(authority) = &filter.authority
        && r.row.authority != authority.trim()
    {
        return Ok(false);
    }
    if let Some(category) = &filter.category
        && r.row.violation_category != category.trim()
    {
        return Ok(false);
    }
    if let Some(t) = filter.in_force_at
        && !r.in_force_at(t)
    {
        return Ok(false);
    }
    Ok(true)
}

/// What the recorded fields must hold for `matches` to accept a revision, in SQL: the
/// authority and category as recorded, and the stored status that can show as the
/// wanted one (LISTED and EXPIRED are both stored LISTED: the periods decide, in
/// `matches`). Without it a filter that matches few listings read and parsed every
/// revision in force at `knownAt`, chunk after chunk.
fn recorded_prefilter(filter: &ListingFilter, backend: sea_orm::DbBackend) -> Condition {
    use crate::store::revisions::snapshot_text;
    use sea_orm::sea_query::ExprTrait;
    let mut cond = Condition::all();
    if let Some(status) = filter.status {
        cond = cond.add(snapshot_text(backend, "status").eq(status.stored().to_value()));
    }
    if let Some(authority) = &filter.authority {
        cond = cond.add(snapshot_text(backend, "authority").eq(authority.trim()));
    }
    if let Some(category) = &filter.category {
        cond = cond.add(snapshot_text(backend, "violation_category").eq(category.trim()));
    }
    cond
}

/// One page of listings as recorded at `k`, in listing id order after `after`. The
/// status filter is evaluated at `k` (what the registry showed then), `in_force_at` on
/// the recorded periods.
pub async fn search_known_at<C: ConnectionTrait>(
    db: &C,
    filter: &ListingFilter,
    k: DateTime<Utc>,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<RecordedListing>, bool)> {
    // The list, region and operator never change on a listing: the live row answers them.
    let fixed = ListingFilter {
        list_code: filter.list_code.clone(),
        region: filter.region.clone(),
        operator: filter.operator.clone(),
        operator_id: filter.operator_id,
        ..Default::default()
    };
    let ids = Query::select()
        .column(listing::Column::Id)
        .from(listing::Entity)
        .cond_where(listing_search::condition(
            &fixed,
            k,
            db.get_database_backend(),
        ))
        .to_owned();
    let backend = db.get_database_backend();
    let chunk = ((first + 1) * 2).clamp(100, 1000);
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let mut q = listing_revision::Entity::find()
            .filter(covers(k))
            .filter(recorded_prefilter(filter, backend))
            .filter(listing_revision::Column::ListingId.in_subquery(ids.clone()));
        if let Some(c) = cursor {
            q = q.filter(listing_revision::Column::ListingId.gt(c));
        }
        let rows = q
            .order_by_asc(listing_revision::Column::ListingId)
            .limit(chunk)
            .all(db)
            .await?;
        let exhausted = (rows.len() as u64) < chunk;
        cursor = rows.last().map(|r| r.listing_id).or(cursor);
        for r in recorded(rows, k)? {
            if matches(&r, filter, k)? {
                out.push(r);
                if out.len() as u64 > first {
                    out.truncate(first as usize);
                    return Ok((out, true));
                }
            }
        }
        if exhausted {
            return Ok((out, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use serde_json::json;

    #[test]
    fn a_snapshot_reads_back_as_the_listing_it_was() {
        let recorded_at = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
        let rev = listing_revision::Model {
            id: 7,
            listing_id: 3,
            version: 2,
            action: "listing.decided".into(),
            recorded_at,
            superseded_at: None,
            snapshot: json!({
                "id": 3, "operator_id": 1, "list_id": 1, "status": "LISTED",
                "authority": "清远市市场监督管理局", "authority_region": "441802",
                "penalty_doc_no": "P-1", "penalty_date": "2026-02-02",
                "violation_category": "CONSUMER_HARM", "reason": "r", "legal_basis": "b",
                "notice_date": "2026-02-12", "defence_deadline": "2026-02-26",
                "proposed_at": "2026-02-12T02:00:00.000000Z",
                "decision_doc_no": "D-1", "decision_date": "2026-03-02",
                "period_months_override": null, "removal_doc_no": null, "removal_reason": null,
                "publicity_stop_deadline": null, "version": 2,
                "periods": [{"starts_at": "2026-03-02T01:00:00.000000Z",
                             "ends_at": "2029-03-02T01:00:00.000000Z",
                             "removed_at": null, "removal_kind": null}],
                "measures": ["A", "B"],
            }),
        };
        let r = RecordedListing::from_revision(&rev).unwrap();
        assert_eq!(r.row.id, 3);
        assert_eq!(r.row.version, 2);
        assert_eq!(r.row.updated_at, recorded_at);
        assert_eq!(r.measure_codes, vec!["A", "B"]);
        assert!(r.in_force_at(recorded_at));
        assert!(!r.in_force_at(Utc.with_ymd_and_hms(2029, 3, 2, 1, 0, 0).unwrap()));
        assert_eq!(r.status_at(recorded_at).unwrap(), ListingStatus::Listed);
    }

    #[test]
    fn an_unreadable_snapshot_is_an_internal_error() {
        let rev = listing_revision::Model {
            id: 1,
            listing_id: 1,
            version: 1,
            action: "listing.proposed".into(),
            recorded_at: Utc::now(),
            superseded_at: None,
            snapshot: json!({"id": "x"}),
        };
        assert!(RecordedListing::from_revision(&rev).is_err());
    }
}
