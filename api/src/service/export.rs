//! Exports: the public list, listings and operators in the import templates' columns (an
//! export re-imports as it is), check records and audit events. Rows are read a keyset
//! page at a time (`service::page`) and written to a `bulk::write::Sink`; after each page
//! the caller's hook runs (the HTTP layer hands the bytes written so far to the client
//! there), so memory is one page whatever the size.

use super::listing_search::{self, ListingFilter};
use super::listings::to_periods;
use super::page;
use super::public::Related;
use crate::bulk::Kind;
use crate::bulk::write::{OutCell, OutColumn, Sink, template_columns};
use crate::domain::china_date;
use crate::domain::lifecycle::in_force_at;
use crate::domain::listing_rules::recorded_period_months;
use crate::domain::region::scope_covers;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    audit_event, check_record, listing, listing_measure, listing_period, measure, operator,
};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use std::future::Future;

/// Rows read per page.
pub const PAGE_ROWS: u64 = 1_000;

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    PublicList,
    Listings,
    Operators,
    CheckRecords,
    AuditEvents,
}

/// Which rows.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    /// Public list: in force at this instant (default now); listings: only those in
    /// force at it.
    pub as_of: Option<DateTime<Utc>>,
    /// Operators registered in this division (a city code covers its counties).
    pub region: Option<String>,
    /// Check records and audit events: from this Beijing date (inclusive).
    pub from: Option<NaiveDate>,
    /// ... to this Beijing date (inclusive).
    pub to: Option<NaiveDate>,
    /// Check records of this partner only (a partner's own: made in the partner role).
    pub subject: Option<String>,
}

impl ExportFilter {
    /// A filter the kind has no use for is refused rather than ignored: `--region` on
    /// check records would otherwise export every division's records to someone who
    /// asked for one.
    pub fn check_applies_to(&self, kind: ExportKind) -> AppResult<()> {
        use ExportKind::*;
        let refuse = |option: &str, kinds: &str| {
            Err(AppError::bad_input(format!(
                "{option} applies to {kinds} only"
            )))
        };
        if self.region.is_some() && !matches!(kind, PublicList | Listings | Operators) {
            return refuse("--region", "public-list, listings and operators");
        }
        if self.as_of.is_some() && !matches!(kind, PublicList | Listings) {
            return refuse("--as-of", "public-list and listings");
        }
        if (self.from.is_some() || self.to.is_some()) && !matches!(kind, CheckRecords | AuditEvents)
        {
            return refuse("--from and --to", "check-records and audit-events");
        }
        if self.subject.is_some() && kind != CheckRecords {
            return refuse("a partner's own records", "check-records");
        }
        Ok(())
    }
}

fn text(s: &str) -> OutCell {
    OutCell::Text(s.to_string())
}

fn instant(t: DateTime<Utc>) -> OutCell {
    OutCell::Text(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn opt_instant(t: Option<DateTime<Utc>>) -> OutCell {
    t.map_or(OutCell::Empty, instant)
}

fn columns(pairs: &[(&'static str, &str)]) -> Vec<OutColumn> {
    pairs
        .iter()
        .map(|(key, header)| OutColumn {
            key,
            header: header.to_string(),
        })
        .collect()
}

/// The public list's columns: `PublicListing`'s fields, nothing else.
pub fn public_columns() -> Vec<OutColumn> {
    columns(&[
        ("id", "id"),
        ("uscc", "统一社会信用代码"),
        ("operatorName", "市场主体名称"),
        ("listCode", "名单"),
        ("listName", "名单名称"),
        ("authority", "作出决定机关"),
        ("penaltyDocNo", "处罚决定书文号"),
        ("decisionDocNo", "列入决定书文号"),
        ("decisionDate", "列入日期"),
        ("listedAt", "列入生效时间"),
        ("expiresAt", "期满时间"),
        ("violationCategory", "违法行为类别"),
        ("reason", "列入事由"),
        ("legalBasis", "法律依据"),
    ])
}

pub fn columns_of(kind: ExportKind) -> Vec<OutColumn> {
    match kind {
        ExportKind::PublicList => public_columns(),
        ExportKind::Listings => template_columns(Kind::Listings),
        ExportKind::Operators => template_columns(Kind::Operators),
        ExportKind::CheckRecords => columns(&[
            ("receiptId", "receiptId"),
            ("checkedAt", "checkedAt"),
            ("subject", "subject"),
            ("role", "role"),
            ("domain", "domain"),
            ("uscc", "uscc"),
            ("asOf", "asOf"),
            ("knownAt", "knownAt"),
            ("reference", "reference"),
            ("decision", "decision"),
            ("hitListingIds", "hitListingIds"),
            ("warnings", "warnings"),
            ("batchId", "batchId"),
            ("requestId", "requestId"),
        ]),
        ExportKind::AuditEvents => columns(&[
            ("id", "id"),
            ("occurredAt", "occurredAt"),
            ("actor", "actor"),
            ("role", "role"),
            ("action", "action"),
            ("entityType", "entityType"),
            ("entityId", "entityId"),
            ("reason", "reason"),
            ("requestId", "requestId"),
            ("before", "before"),
            ("after", "after"),
            ("prevHash", "prevHash"),
            ("hash", "hash"),
        ]),
    }
}

/// The instant range of a pair of Beijing dates.
fn range(filter: &ExportFilter) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    (
        filter.from.map(crate::domain::china_midnight),
        filter
            .to
            .and_then(|d| d.succ_opt())
            .map(crate::domain::china_midnight),
    )
}

/// Writes the rows of `kind` to `sink`, calling `after_page` after each page; returns the
/// number of rows. `now` (the registry's clock) is the public list's default as-of and
/// the instant statuses are shown at.
pub async fn export<C, F, Fut>(
    db: &C,
    kind: ExportKind,
    filter: &ExportFilter,
    now: DateTime<Utc>,
    sink: &mut Sink,
    mut after_page: F,
) -> AppResult<u64>
where
    C: ConnectionTrait,
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<()>>,
{
    filter.check_applies_to(kind)?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(AppError::bad_input(format!("from {from} is after to {to}")));
    }
    let write = |sink: &mut Sink, cells: Vec<OutCell>| sink.row(&cells).map_err(AppError::internal);
    let mut count = 0u64;
    match kind {
        ExportKind::PublicList | ExportKind::Listings => {
            let search = ListingFilter {
                in_force_at: match kind {
                    ExportKind::PublicList => Some(filter.as_of.unwrap_or(now)),
                    _ => filter.as_of,
                },
                region: filter.region.clone(),
                ..Default::default()
            };
            let mut after = None;
            loop {
                let (rows, more) =
                    listing_search::search(db, &search, now, PAGE_ROWS, after).await?;
                after = rows.last().map(|l| l.id);
                let rows: Vec<listing::Model> = rows
                    .into_iter()
                    .filter(|l| l.decision_date.is_some())
                    .collect();
                let related = Related::load(db, &rows.iter().collect::<Vec<_>>()).await?;
                let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
                let periods = periods_by_listing(db, &ids).await?;
                let measures = if kind == ExportKind::Listings {
                    measures_by_listing(db, &ids).await?
                } else {
                    HashMap::new()
                };
                for l in &rows {
                    let ps = periods.get(&l.id).map_or(&[][..], Vec::as_slice);
                    let cells = match kind {
                        ExportKind::PublicList => public_cells(&related, l, ps),
                        _ => listing_cells(
                            &related,
                            l,
                            ps,
                            measures.get(&l.id).map_or(&[][..], Vec::as_slice),
                            now,
                        ),
                    };
                    write(sink, cells)?;
                    count += 1;
                }
                after_page().await?;
                if !more {
                    break;
                }
            }
        }
        ExportKind::Operators => {
            let mut after = None;
            loop {
                let q =
                    page::ascending_after(operator::Entity::find(), operator::Column::Id, after);
                let (rows, more) = page::fetch(db, q, PAGE_ROWS).await?;
                after = rows.last().map(|o| o.id);
                for o in rows.iter().filter(|o| {
                    filter
                        .region
                        .as_deref()
                        .is_none_or(|r| scope_covers(Some(r), &o.region_code))
                }) {
                    write(sink, operator_cells(o))?;
                    count += 1;
                }
                after_page().await?;
                if !more {
                    break;
                }
            }
        }
        ExportKind::CheckRecords => {
            let (from, to) = range(filter);
            // Pages in (checked_at, id) order, the cursor the last row's pair: each page
            // starts where the checked_at index (or the partner's subject, checked_at
            // index) left off. An id-ordered page under a date range made PostgreSQL read
            // the whole range and sort it for every page (a week of 3,800 records read in
            // full for each page of 1,000), quadratic in the range.
            let mut after: Option<(DateTime<Utc>, String)> = None;
            loop {
                let mut q = check_record::Entity::find();
                if let Some((t, id)) = &after {
                    q = q.filter(check_record::Column::CheckedAt.gte(*t)).filter(
                        sea_orm::Condition::any()
                            .add(check_record::Column::CheckedAt.gt(*t))
                            .add(check_record::Column::Id.gt(id.clone())),
                    );
                }
                if let Some(t) = from {
                    q = q.filter(check_record::Column::CheckedAt.gte(t));
                }
                if let Some(t) = to {
                    q = q.filter(check_record::Column::CheckedAt.lt(t));
                }
                if let Some(s) = &filter.subject {
                    // A partner's own: made by that partner, not by an admin or auditor
                    // token that happens to carry the same subject name.
                    q = q
                        .filter(check_record::Column::Subject.eq(s.clone()))
                        .filter(check_record::Column::Role.eq(crate::auth::Role::Partner.as_str()));
                }
                let rows = q
                    .order_by_asc(check_record::Column::CheckedAt)
                    .order_by_asc(check_record::Column::Id)
                    .limit(PAGE_ROWS)
                    .all(db)
                    .await?;
                let more = rows.len() as u64 == PAGE_ROWS;
                after = rows.last().map(|r| (r.checked_at, r.id.clone()));
                for r in &rows {
                    write(sink, check_cells(r))?;
                    count += 1;
                }
                after_page().await?;
                if !more {
                    break;
                }
            }
        }
        ExportKind::AuditEvents => {
            let (from, to) = range(filter);
            let mut after = None;
            loop {
                let mut q = audit_event::Entity::find();
                if let Some(t) = from {
                    q = q.filter(audit_event::Column::OccurredAt.gte(t));
                }
                if let Some(t) = to {
                    q = q.filter(audit_event::Column::OccurredAt.lt(t));
                }
                let q = page::ascending_after(q, audit_event::Column::Id, after);
                let (rows, more) = page::fetch(db, q, PAGE_ROWS).await?;
                after = rows.last().map(|e| e.id);
                for e in &rows {
                    write(sink, audit_cells(e))?;
                    count += 1;
                }
                after_page().await?;
                if !more {
                    break;
                }
            }
        }
    }
    Ok(count)
}

async fn periods_by_listing<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> AppResult<HashMap<i64, Vec<listing_period::Model>>> {
    let mut out: HashMap<i64, Vec<listing_period::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for p in listing_period::Entity::find()
        .filter(listing_period::Column::ListingId.is_in(ids.to_vec()))
        .order_by_asc(listing_period::Column::StartsAt)
        .order_by_asc(listing_period::Column::Id)
        .all(db)
        .await?
    {
        out.entry(p.listing_id).or_default().push(p);
    }
    Ok(out)
}

async fn measures_by_listing<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> AppResult<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let links = listing_measure::Entity::find()
        .filter(listing_measure::Column::ListingId.is_in(ids.to_vec()))
        .all(db)
        .await?;
    let mut measure_ids: Vec<i64> = links.iter().map(|l| l.measure_id).collect();
    measure_ids.sort_unstable();
    measure_ids.dedup();
    let codes: HashMap<i64, String> = measure::Entity::find()
        .filter(measure::Column::Id.is_in(measure_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m.code))
        .collect();
    for l in links {
        if let Some(c) = codes.get(&l.measure_id) {
            out.entry(l.listing_id).or_default().push(c.clone());
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

fn public_cells(
    related: &Related,
    l: &listing::Model,
    ps: &[listing_period::Model],
) -> Vec<OutCell> {
    let v = related.view(l, ps);
    vec![
        text(v.id.as_str()),
        text(&v.uscc),
        text(&v.operator_name),
        text(&v.list_code),
        text(&v.list_name),
        text(&v.authority),
        text(&v.penalty_doc_no),
        OutCell::opt_text(v.decision_doc_no.as_deref()),
        v.decision_date.map_or(OutCell::Empty, OutCell::Date),
        opt_instant(v.listed_at),
        opt_instant(v.expires_at),
        text(&v.violation_category),
        text(&v.reason),
        text(&v.legal_basis),
    ]
}

/// A listing in the import template's columns.
fn listing_cells(
    related: &Related,
    l: &listing::Model,
    ps: &[listing_period::Model],
    measures: &[String],
    now: DateTime<Utc>,
) -> Vec<OutCell> {
    let op = related.operators.get(&l.operator_id);
    let list = related.lists.get(&l.list_id);
    let removal = ps.last().and_then(|p| match p.removed_at {
        Some(t) => Some((
            china_date(t),
            p.removal_kind.clone().unwrap_or_else(|| "REVOKED".into()),
        )),
        None if !in_force_at(&to_periods(std::slice::from_ref(p)), now) && p.ends_at <= now => {
            Some((china_date(p.ends_at), "EXPIRED".to_string()))
        }
        None => None,
    });
    let waived = l.decision_date.is_some_and(|d| d <= l.defence_deadline);
    vec![
        OutCell::opt_text(op.map(|o| o.uscc.as_str())),
        OutCell::opt_text(op.map(|o| o.name.as_str())),
        OutCell::opt_text(list.map(|x| x.code.as_str())),
        text(&l.authority),
        text(&l.penalty_doc_no),
        OutCell::Date(l.penalty_date),
        text(&l.violation_category),
        text(&l.reason),
        text(&l.legal_basis),
        OutCell::Date(l.notice_date),
        OutCell::opt_text(l.decision_doc_no.as_deref()),
        l.decision_date.map_or(OutCell::Empty, OutCell::Date),
        OutCell::Text(measures.join(";")),
        removal
            .as_ref()
            .map_or(OutCell::Empty, |(d, _)| OutCell::Date(*d)),
        removal.map_or(OutCell::Empty, |(_, k)| OutCell::Text(k)),
        if waived {
            OutCell::Bool(true)
        } else {
            OutCell::Empty
        },
        // Always the months the period applies, not only an override: an empty cell means
        // the list's default to an import, and the list's default may have changed since
        // the decision (the period did not).
        ps.first().map_or(OutCell::Empty, |p| {
            OutCell::Int(i64::from(recorded_period_months(
                l.period_months_override,
                p.starts_at,
                p.ends_at,
            )))
        }),
        text(&l.authority_region),
    ]
}

/// An operator in the import template's columns, personal fields included: only admins
/// (the CLI) export operators.
fn operator_cells(o: &operator::Model) -> Vec<OutCell> {
    vec![
        text(&o.uscc),
        text(&o.name),
        OutCell::opt_text(o.entity_type.as_deref()),
        text(&o.region_code),
        OutCell::opt_text(o.legal_representative.as_deref()),
        OutCell::opt_text(o.legal_rep_id_number.as_deref()),
        OutCell::opt_text(o.address.as_deref()),
        OutCell::Bool(o.address_is_personal),
        OutCell::opt_text(o.check_digit_override.as_deref()),
    ]
}

fn json_text(v: &serde_json::Value) -> OutCell {
    OutCell::Text(v.to_string())
}

fn check_cells(r: &check_record::Model) -> Vec<OutCell> {
    vec![
        text(&r.id),
        instant(r.checked_at),
        text(&r.subject),
        text(&r.role),
        text(&r.domain.to_value()),
        text(&r.uscc),
        instant(r.as_of),
        opt_instant(r.known_at),
        OutCell::opt_text(r.reference.as_deref()),
        text(&r.decision.to_value()),
        json_text(&r.hit_listing_ids),
        json_text(&r.warnings),
        OutCell::opt_text(r.batch_id.as_deref()),
        text(&r.request_id),
    ]
}

fn audit_cells(e: &audit_event::Model) -> Vec<OutCell> {
    vec![
        OutCell::Int(e.id),
        instant(e.occurred_at),
        text(&e.actor),
        text(&e.role),
        text(&e.action),
        text(&e.entity_type),
        text(&e.entity_id),
        OutCell::opt_text(e.reason.as_deref()),
        text(&e.request_id),
        e.before.as_ref().map_or(OutCell::Empty, json_text),
        e.after.as_ref().map_or(OutCell::Empty, json_text),
        text(&e.prev_hash),
        text(&e.hash),
    ]
}

/// What the public list's cache validators rest on: the newest listing revision (every
/// recorded change) and the number of listings in force now (an expiry changes it even
/// before the expiry job records it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicVersion {
    /// The newest audit event of what the public list shows (see [`PUBLIC_ENTITIES`]).
    pub change_id: i64,
    pub recorded_at: Option<DateTime<Utc>>,
    pub in_force: u64,
}

/// What the public list's rows are made of: its listings, their operators (a rename
/// changes the name column without any listing revision), the lists and the measures
/// (their names and codes). A change to anything else (a partner, a repair application,
/// a feedback report) leaves the file as it was, so it keeps its version.
pub const PUBLIC_ENTITIES: [&str; 4] = ["listing", "operator", "credit_list", "measure"];

/// The id and time of the newest audit event of [`PUBLIC_ENTITIES`] (0 and `None` when
/// nothing was ever recorded): every change to them is an audit event, committed in the
/// chain's order, so a higher id is a later change. Read backwards along the primary key,
/// which stops at the first match (recent events are mostly of these).
pub async fn newest_public_change<C: ConnectionTrait>(
    db: &C,
) -> AppResult<(i64, Option<DateTime<Utc>>)> {
    use entity::audit_event;
    let newest: Option<(i64, DateTime<Utc>)> = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Id)
        .column(audit_event::Column::OccurredAt)
        .filter(audit_event::Column::EntityType.is_in(PUBLIC_ENTITIES))
        .order_by_desc(audit_event::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.map_or((0, None), |(id, at)| (id, Some(at))))
}

/// What identifies the public list in force at `now` (the registry's clock).
pub async fn public_version<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
) -> AppResult<PublicVersion> {
    use sea_orm::PaginatorTrait;
    let (change_id, recorded_at) = newest_public_change(db).await?;
    let filter = ListingFilter {
        in_force_at: Some(now),
        ..Default::default()
    };
    let in_force = listing::Entity::find()
        .filter(listing_search::condition(
            &filter,
            now,
            db.get_database_backend(),
        ))
        .count(db)
        .await?;
    Ok(PublicVersion {
        change_id,
        recorded_at,
        in_force,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_a_kind_does_not_use_is_refused() {
        let region = ExportFilter {
            region: Some("441802".into()),
            ..Default::default()
        };
        assert!(region.check_applies_to(ExportKind::Operators).is_ok());
        assert!(region.check_applies_to(ExportKind::CheckRecords).is_err());
        assert!(region.check_applies_to(ExportKind::AuditEvents).is_err());
        let dates = ExportFilter {
            from: NaiveDate::from_ymd_opt(2026, 1, 1),
            ..Default::default()
        };
        assert!(dates.check_applies_to(ExportKind::AuditEvents).is_ok());
        assert!(dates.check_applies_to(ExportKind::PublicList).is_err());
        let as_of = ExportFilter {
            as_of: Some(Utc::now()),
            ..Default::default()
        };
        assert!(as_of.check_applies_to(ExportKind::Listings).is_ok());
        assert!(as_of.check_applies_to(ExportKind::Operators).is_err());
        let own = ExportFilter {
            subject: Some("partner-a".into()),
            ..Default::default()
        };
        assert!(own.check_applies_to(ExportKind::CheckRecords).is_ok());
        assert!(own.check_applies_to(ExportKind::AuditEvents).is_err());
    }
}
