//! The yearly report (plan section 三(三): each county reports its year by 20 January):
//! per county-level division — listings decided, removals by reason, repair
//! applications and the on-time rate of their decisions, checks by domain and
//! decision, partner feedback by measure.
//!
//! Everything is attributed to the division where the operator is registered
//! (`operators.region_code`); a check on an unregistered code is attributed to the
//! division in positions 3-8 of the code when that is a Qingyuan division, and otherwise
//! to one row outside Qingyuan (`OUTSIDE`). The year is a Beijing calendar year.

use crate::domain::region::{DivisionCode, QINGYUAN_DIVISIONS, qingyuan_name, scope_covers};
use crate::domain::{china_date, china_midnight};
use crate::error::{AppError, AppResult};
use crate::store::report_sql;
use async_graphql::SimpleObject;
use chrono::{DateTime, NaiveDate, Utc};
use entity::{listing, operator, repair_application};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default, PartialEq, Serialize, SimpleObject)]
pub struct RemovalCounts {
    /// Periods that ran out in the year (up to now).
    pub expired: i64,
    /// Early removals after an approved credit repair.
    pub repaired: i64,
    /// Removals because the penalty was revoked, confirmed illegal or void.
    pub revoked: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, SimpleObject)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, SimpleObject)]
pub struct RepairCounts {
    /// Applications received in the year.
    pub received: i64,
    /// The applications received in the year, by their status now.
    pub received_by_status: Vec<StatusCount>,
    /// Applications decided in the year.
    pub decided: i64,
    /// Of those, decided on or before their due date (Beijing date).
    pub decided_on_time: i64,
    /// `decidedOnTime / decided`; null when nothing was decided.
    pub on_time_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, SimpleObject)]
pub struct CheckCount {
    pub domain: String,
    pub decision: String,
    pub count: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, SimpleObject)]
pub struct MeasureCount {
    pub measure_code: String,
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, SimpleObject)]
pub struct DivisionReport {
    pub region_code: String,
    pub region_name: String,
    /// Listings whose decision is dated in the year.
    pub listings_decided: i64,
    pub removed: RemovalCounts,
    pub repair: RepairCounts,
    pub checks_total: i64,
    pub checks: Vec<CheckCount>,
    pub feedback_total: i64,
    pub feedback: Vec<MeasureCount>,
}

#[derive(Clone, Debug, PartialEq, Serialize, SimpleObject)]
pub struct YearReport {
    pub year: i32,
    /// The division (or city) the report is limited to; null for the whole registry.
    pub region: Option<String>,
    /// The year's first instant (00:00 Beijing time on 1 January).
    pub from: DateTime<Utc>,
    /// The next year's first instant.
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub divisions: Vec<DivisionReport>,
    pub totals: DivisionReport,
}

/// The region a caller may report on: an admin limited to a division reports on it
/// (or on a part of it); anyone else on what they ask for.
pub fn effective_region(scope: Option<&str>, requested: Option<&str>) -> AppResult<Option<String>> {
    let requested = requested.map(str::trim).filter(|r| !r.is_empty());
    if let Some(r) = requested {
        DivisionCode::parse("region", r)?;
    }
    match (scope, requested) {
        (None, r) => Ok(r.map(str::to_string)),
        (Some(s), None) => Ok(Some(s.to_string())),
        (Some(s), Some(r)) if scope_covers(Some(s), r) => Ok(Some(r.to_string())),
        (Some(s), Some(r)) => Err(AppError::Forbidden(format!(
            "an admin of region {s} may not report on region {r}"
        ))),
    }
}

/// A year the registry can report on or publish cases for.
fn check_year(year: i32) -> AppResult<()> {
    crate::domain::check_reporting_year(year).map_err(AppError::bad_input)
}

/// Whether a decision was made in time: its Beijing date on or before the due date.
pub fn decided_on_time(decided_at: DateTime<Utc>, due_date: Option<NaiveDate>) -> bool {
    due_date.is_some_and(|due| china_date(decided_at) <= due)
}

pub fn division_name(code: &str) -> String {
    qingyuan_name(code).map_or_else(|| "（清远市外）".to_string(), str::to_string)
}

/// The divisions of a report as the public statistics page shows them: every Qingyuan
/// division, then at most one row (`OUTSIDE`, （清远市外）) summing every other row, and
/// that only when it has a figure the page shows. The report's other rows are operators
/// registered elsewhere and checks of codes from outside Qingyuan; one row each would tell
/// the public which divisions partners checked, and a partner could add rows at will.
pub fn public_divisions(report: &YearReport) -> Vec<DivisionReport> {
    let known = |code: &str| qingyuan_name(code).is_some();
    let (mut rows, others): (Vec<DivisionReport>, Vec<DivisionReport>) = report
        .divisions
        .iter()
        .cloned()
        .partition(|d| known(&d.region_code));
    let mut outside = finish(sum(&others));
    outside.region_code = report_sql::OUTSIDE.to_string();
    outside.region_name = division_name(report_sql::OUTSIDE);
    let shown = outside.listings_decided
        + outside.removed.expired
        + outside.removed.repaired
        + outside.removed.revoked
        + outside.repair.received
        + outside.repair.decided;
    if shown > 0 {
        rows.push(outside);
    }
    rows
}

/// Rows of `(region, key..., n)` from a grouped count.
async fn grouped<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
    keys: &[&str],
) -> AppResult<Vec<(String, Vec<String>, i64)>> {
    let rows = db
        .query_all_raw(report_sql::statement(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let region: Option<String> = row.try_get("", "region")?;
        let mut ks = Vec::with_capacity(keys.len());
        for k in keys {
            let v: Option<String> = row.try_get("", k)?;
            ks.push(v.unwrap_or_default());
        }
        let n: i64 = row.try_get("", "n")?;
        out.push((region.unwrap_or_default(), ks, n));
    }
    Ok(out)
}

/// The division of each listing's operator.
async fn listing_regions<C: ConnectionTrait>(
    db: &C,
    listing_ids: Vec<i64>,
) -> AppResult<HashMap<i64, String>> {
    if listing_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let listings = listing::Entity::find()
        .filter(listing::Column::Id.is_in(listing_ids))
        .all(db)
        .await?;
    let mut op_ids: Vec<i64> = listings.iter().map(|l| l.operator_id).collect();
    op_ids.sort_unstable();
    op_ids.dedup();
    let regions: HashMap<i64, String> = operator::Entity::find()
        .filter(operator::Column::Id.is_in(op_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.region_code))
        .collect();
    Ok(listings
        .into_iter()
        .filter_map(|l| regions.get(&l.operator_id).map(|r| (l.id, r.clone())))
        .collect())
}

/// Builds the report for `year`, limited to `region` (a division, or a city code that
/// covers its counties) when given; expiries count up to `now` (the registry's clock).
pub async fn yearly<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    year: i32,
    region: Option<&str>,
) -> AppResult<YearReport> {
    check_year(year)?;
    let region = effective_region(None, region)?;
    let first_day = NaiveDate::from_ymd_opt(year, 1, 1)
        .ok_or_else(|| AppError::bad_input(format!("year {year} has no 1 January")))?;
    let next_first_day = NaiveDate::from_ymd_opt(year + 1, 1, 1)
        .ok_or_else(|| AppError::bad_input(format!("year {} has no 1 January", year + 1)))?;
    let (from, to) = (china_midnight(first_day), china_midnight(next_first_day));
    let mut divisions: BTreeMap<String, DivisionReport> = BTreeMap::new();
    let covered = |code: &str| scope_covers(region.as_deref(), code);
    for (code, _) in QINGYUAN_DIVISIONS {
        if covered(code) {
            divisions.insert(code.to_string(), DivisionReport::default());
        }
    }

    let days = vec![Value::from(first_day), Value::from(next_first_day)];
    let instants = || vec![Value::from(from), Value::from(to)];

    for (r, _, n) in grouped(db, report_sql::DECIDED_SQL, days, &[]).await? {
        if let Some(d) = slot(&mut divisions, region.as_deref(), &r) {
            d.listings_decided += n;
        }
    }
    for (r, kind, n) in grouped(db, report_sql::REMOVED_SQL, instants(), &["kind"]).await? {
        if let Some(d) = slot(&mut divisions, region.as_deref(), &r) {
            match kind[0].as_str() {
                "REPAIRED" => d.removed.repaired += n,
                "REVOKED" => d.removed.revoked += n,
                other => tracing::warn!(kind = other, "report: unknown removal kind"),
            }
        }
    }
    let mut expired_values = instants();
    expired_values.push(Value::from(now));
    for (r, _, n) in grouped(db, report_sql::EXPIRED_SQL, expired_values, &[]).await? {
        if let Some(d) = slot(&mut divisions, region.as_deref(), &r) {
            d.removed.expired += n;
        }
    }
    for (r, k, n) in grouped(
        db,
        &report_sql::CHECKS_SQL,
        instants(),
        &["domain", "decision"],
    )
    .await?
    {
        if let Some(d) = slot(&mut divisions, region.as_deref(), &r) {
            d.checks_total += n;
            let [domain, decision] = [k[0].clone(), k[1].clone()];
            d.checks.push(CheckCount {
                domain,
                decision,
                count: n,
            });
        }
    }
    for (r, k, n) in grouped(db, &report_sql::FEEDBACK_SQL, instants(), &["measure"]).await? {
        if let Some(d) = slot(&mut divisions, region.as_deref(), &r) {
            d.feedback_total += n;
            d.feedback.push(MeasureCount {
                measure_code: k[0].clone(),
                count: n,
            });
        }
    }

    // Repair applications: few per year, read as rows.
    let received = repair_application::Entity::find()
        .filter(repair_application::Column::ReceivedDate.gte(first_day))
        .filter(repair_application::Column::ReceivedDate.lt(next_first_day))
        .all(db)
        .await?;
    let decided = repair_application::Entity::find()
        .filter(repair_application::Column::DecidedAt.gte(from))
        .filter(repair_application::Column::DecidedAt.lt(to))
        .all(db)
        .await?;
    let mut ids: Vec<i64> = received
        .iter()
        .chain(decided.iter())
        .map(|a| a.listing_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let regions = listing_regions(db, ids).await?;
    let mut by_status: BTreeMap<(String, String), i64> = BTreeMap::new();
    for a in &received {
        let Some(r) = regions.get(&a.listing_id) else {
            continue;
        };
        if let Some(d) = slot(&mut divisions, region.as_deref(), r) {
            d.repair.received += 1;
            *by_status
                .entry((r.clone(), sea_orm::ActiveEnum::to_value(&a.status)))
                .or_default() += 1;
        }
    }
    for ((r, status), count) in by_status {
        if let Some(d) = slot(&mut divisions, region.as_deref(), &r) {
            d.repair
                .received_by_status
                .push(StatusCount { status, count });
        }
    }
    for a in &decided {
        let (Some(r), Some(decided_at)) = (regions.get(&a.listing_id), a.decided_at) else {
            continue;
        };
        if let Some(d) = slot(&mut divisions, region.as_deref(), r) {
            d.repair.decided += 1;
            if decided_on_time(decided_at, a.due_date) {
                d.repair.decided_on_time += 1;
            }
        }
    }

    let mut divisions: Vec<DivisionReport> = divisions
        .into_iter()
        .map(|(code, mut d)| {
            d.region_name = division_name(&code);
            d.region_code = code;
            finish(d)
        })
        .collect();
    divisions.sort_by(|a, b| a.region_code.cmp(&b.region_code));
    let totals = finish(sum(&divisions));
    Ok(YearReport {
        year,
        region,
        from,
        to,
        generated_at: now,
        divisions,
        totals,
    })
}

/// The division's row, when the division lies in the requested region: rows outside it
/// are dropped, and inside it every division seen gets a row.
fn slot<'a>(
    divisions: &'a mut BTreeMap<String, DivisionReport>,
    region: Option<&str>,
    code: &str,
) -> Option<&'a mut DivisionReport> {
    scope_covers(region, code).then(|| divisions.entry(code.to_string()).or_default())
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Sorted breakdowns and the on-time rate.
fn finish(mut d: DivisionReport) -> DivisionReport {
    d.checks
        .sort_by(|a, b| (&a.domain, &a.decision).cmp(&(&b.domain, &b.decision)));
    d.feedback
        .sort_by(|a, b| a.measure_code.cmp(&b.measure_code));
    d.repair
        .received_by_status
        .sort_by(|a, b| a.status.cmp(&b.status));
    d.repair.on_time_rate = rate(d.repair.decided_on_time, d.repair.decided);
    d
}

/// The sum of the divisions, breakdowns merged by key.
pub fn sum(divisions: &[DivisionReport]) -> DivisionReport {
    let mut t = DivisionReport {
        region_code: "TOTAL".into(),
        region_name: "合计".into(),
        ..Default::default()
    };
    let mut checks: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut feedback: BTreeMap<String, i64> = BTreeMap::new();
    let mut statuses: BTreeMap<String, i64> = BTreeMap::new();
    for d in divisions {
        t.listings_decided += d.listings_decided;
        t.removed.expired += d.removed.expired;
        t.removed.repaired += d.removed.repaired;
        t.removed.revoked += d.removed.revoked;
        t.repair.received += d.repair.received;
        t.repair.decided += d.repair.decided;
        t.repair.decided_on_time += d.repair.decided_on_time;
        t.checks_total += d.checks_total;
        t.feedback_total += d.feedback_total;
        for c in &d.checks {
            *checks
                .entry((c.domain.clone(), c.decision.clone()))
                .or_default() += c.count;
        }
        for f in &d.feedback {
            *feedback.entry(f.measure_code.clone()).or_default() += f.count;
        }
        for s in &d.repair.received_by_status {
            *statuses.entry(s.status.clone()).or_default() += s.count;
        }
    }
    t.checks = checks
        .into_iter()
        .map(|((domain, decision), count)| CheckCount {
            domain,
            decision,
            count,
        })
        .collect();
    t.feedback = feedback
        .into_iter()
        .map(|(measure_code, count)| MeasureCount {
            measure_code,
            count,
        })
        .collect();
    t.repair.received_by_status = statuses
        .into_iter()
        .map(|(status, count)| StatusCount { status, count })
        .collect();
    t
}

/// One CSV field, quoted when it has to be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The report as CSV, one figure a line: `year,region_code,region_name,section,item,value`
/// (the totals under region code `TOTAL`).
pub fn to_csv(report: &YearReport) -> String {
    let mut out = String::from("year,region_code,region_name,section,item,value\n");
    for d in report
        .divisions
        .iter()
        .chain(std::iter::once(&report.totals))
    {
        let mut line = |section: &str, item: &str, value: String| {
            let fields = [
                report.year.to_string(),
                d.region_code.clone(),
                d.region_name.clone(),
                section.to_string(),
                item.to_string(),
                value,
            ];
            let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        };
        line("listings", "decided", d.listings_decided.to_string());
        line("removed", "expired", d.removed.expired.to_string());
        line("removed", "repaired", d.removed.repaired.to_string());
        line("removed", "revoked", d.removed.revoked.to_string());
        line("repair", "received", d.repair.received.to_string());
        for s in &d.repair.received_by_status {
            line("repair_received_by_status", &s.status, s.count.to_string());
        }
        line("repair", "decided", d.repair.decided.to_string());
        line(
            "repair",
            "decided_on_time",
            d.repair.decided_on_time.to_string(),
        );
        line(
            "repair",
            "on_time_rate",
            d.repair
                .on_time_rate
                .map_or_else(String::new, |r| format!("{r:.4}")),
        );
        line("checks", "total", d.checks_total.to_string());
        for c in &d.checks {
            line(
                "checks",
                &format!("{}/{}", c.domain, c.decision),
                c.count.to_string(),
            );
        }
        line("feedback", "total", d.feedback_total.to_string());
        for f in &d.feedback {
            line("feedback", &f.measure_code, f.count.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn on_time_means_the_beijing_date_is_not_after_the_due_date() {
        let due = NaiveDate::from_ymd_opt(2026, 3, 10);
        // 2026-03-10 23:30 Beijing = 15:30 UTC.
        let late_evening = Utc.with_ymd_and_hms(2026, 3, 10, 15, 30, 0).unwrap();
        assert!(decided_on_time(late_evening, due));
        // 2026-03-11 00:30 Beijing = 2026-03-10 16:30 UTC.
        let next_day = Utc.with_ymd_and_hms(2026, 3, 10, 16, 30, 0).unwrap();
        assert!(!decided_on_time(next_day, due));
        assert!(!decided_on_time(late_evening, None));
    }

    #[test]
    fn region_admins_report_on_their_region_only() {
        assert_eq!(effective_region(None, None).unwrap(), None);
        assert_eq!(
            effective_region(Some("441802"), None).unwrap().as_deref(),
            Some("441802")
        );
        assert_eq!(
            effective_region(Some("441800"), Some("441881"))
                .unwrap()
                .as_deref(),
            Some("441881")
        );
        assert!(matches!(
            effective_region(Some("441802"), Some("441881")),
            Err(AppError::Forbidden(_))
        ));
        assert!(effective_region(None, Some("4418")).is_err());
    }

    #[test]
    fn totals_add_up_and_merge_breakdowns() {
        let a = DivisionReport {
            region_code: "441802".into(),
            listings_decided: 2,
            checks_total: 3,
            checks: vec![
                CheckCount {
                    domain: "BIDDING".into(),
                    decision: "CLEAR".into(),
                    count: 1,
                },
                CheckCount {
                    domain: "PROCUREMENT".into(),
                    decision: "RESTRICTED".into(),
                    count: 2,
                },
            ],
            ..Default::default()
        };
        let b = DivisionReport {
            region_code: "441881".into(),
            listings_decided: 1,
            checks_total: 4,
            checks: vec![CheckCount {
                domain: "PROCUREMENT".into(),
                decision: "RESTRICTED".into(),
                count: 4,
            }],
            repair: RepairCounts {
                decided: 4,
                decided_on_time: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        let t = finish(sum(&[a, b]));
        assert_eq!(t.listings_decided, 3);
        assert_eq!(t.checks_total, 7);
        assert_eq!(t.checks.len(), 2);
        assert_eq!(t.checks[1].count, 6);
        assert_eq!(t.repair.on_time_rate, Some(0.75));
    }

    #[test]
    fn the_public_page_has_the_known_divisions_and_at_most_one_outside_row() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let row = |code: &str, listed: i64, checks: i64| DivisionReport {
            region_code: code.into(),
            region_name: division_name(code),
            listings_decided: listed,
            checks_total: checks,
            ..Default::default()
        };
        let mut report = YearReport {
            year: 2026,
            region: None,
            from: t,
            to: t,
            generated_at: t,
            divisions: vec![
                row("441802", 2, 1),
                row("441881", 0, 0),
                row("OUTSIDE", 0, 40),
                row("440100", 0, 3),
            ],
            totals: DivisionReport::default(),
        };
        // Only checks outside Qingyuan: no outside row at all.
        let codes = |r: &YearReport| -> Vec<String> {
            public_divisions(r)
                .into_iter()
                .map(|d| d.region_code)
                .collect()
        };
        assert_eq!(codes(&report), ["441802", "441881"]);
        // Operators registered elsewhere with listings: one row, their sum.
        report.divisions.push(row("110000", 1, 0));
        report.divisions.push(row("440300", 2, 0));
        let rows = public_divisions(&report);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].region_code, "OUTSIDE");
        assert_eq!(rows[2].region_name, "（清远市外）");
        assert_eq!(rows[2].listings_decided, 3);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let report = YearReport {
            year: 2026,
            region: None,
            from: t,
            to: t,
            generated_at: t,
            divisions: vec![DivisionReport {
                region_code: "441802".into(),
                region_name: "清城区".into(),
                listings_decided: 5,
                ..Default::default()
            }],
            totals: DivisionReport {
                region_code: "TOTAL".into(),
                region_name: "合计".into(),
                listings_decided: 5,
                ..Default::default()
            },
        };
        let csv = to_csv(&report);
        assert!(csv.starts_with("year,region_code,region_name,section,item,value\n"));
        assert!(csv.contains("2026,441802,清城区,listings,decided,5\n"));
        assert!(csv.contains("2026,TOTAL,合计,listings,decided,5\n"));
        assert!(csv.contains("2026,441802,清城区,repair,on_time_rate,\n"));
    }
}
