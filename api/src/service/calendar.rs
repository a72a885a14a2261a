//! The working-day calendar as stored data: loaded for time-limit arithmetic, and
//! extended year by year by admins or the CLI as each State Council notice appears.

use super::Actor;
use super::audit::{self, AuditEntry};
use crate::clock::Clock;
use crate::domain::working_days::{CalendarError, WorkingCalendar};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{calendar_day, calendar_year};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use serde_json::json;

pub async fn load<C: ConnectionTrait>(db: &C) -> AppResult<WorkingCalendar> {
    let years = calendar_year::Entity::find().all(db).await?;
    let days = calendar_day::Entity::find().all(db).await?;
    Ok(WorkingCalendar::new(
        years.into_iter().map(|y| y.year),
        days.into_iter().map(|d| (d.day, d.is_working_day)),
    ))
}

pub fn calendar_error(err: CalendarError) -> AppError {
    match err {
        // Only a missing notice is CALENDAR_MISSING (clients load the year on it); a
        // count of no days is the caller's input.
        CalendarError::YearNotLoaded(_) => crate::domain::refusal::Refusal::new(
            crate::domain::refusal::Reason::CalendarMissing,
            err.to_string(),
        )
        .into(),
        CalendarError::NonPositive => {
            AppError::bad_input_with(err.to_string(), serde_json::json!({ "field": "days" }))
        }
    }
}

/// Counts a legal act's bookkeeping deadline (`add_working_days_or_weekdays`), logging a
/// warning naming `what` when days of a year with no loaded notice were counted on the
/// weekday rule: the act is recorded, and the deadline says so through
/// [`counted_without_notice`].
pub fn deadline_of_act(
    cal: &WorkingCalendar,
    start: NaiveDate,
    working_days: u32,
    what: &str,
) -> AppResult<NaiveDate> {
    let counted = cal
        .add_working_days_or_weekdays(start, working_days)
        .map_err(calendar_error)?;
    if !counted.weekday_rule_years.is_empty() {
        tracing::warn!(
            deadline = %counted.date,
            years = ?counted.weekday_rule_years,
            "{what}: no holiday notice is loaded for the years named; their days were counted Monday to Friday (load the notice with loadCalendarYear and check this deadline)"
        );
    }
    Ok(counted.date)
}

/// Whether a deadline counted at `counted_at` over `from..=to` was counted without the
/// notice now loaded for one of the years it covers: the year has no notice, so the
/// weekday rule stood in (`deadline_of_act`), or its notice was loaded (or replaced)
/// after the count. Such a deadline is provisional: the stored date is not recounted.
pub async fn counted_without_notice<C: ConnectionTrait>(
    db: &C,
    from: NaiveDate,
    to: NaiveDate,
    counted_at: DateTime<Utc>,
) -> AppResult<bool> {
    use chrono::Datelike;
    let years: Vec<i32> = (from.year()..=to.year()).collect();
    let loaded = calendar_year::Entity::find()
        .filter(calendar_year::Column::Year.is_in(years.clone()))
        .all(db)
        .await?;
    Ok(years.iter().any(|year| {
        loaded
            .iter()
            .find(|y| y.year == *year)
            .is_none_or(|y| y.loaded_at > counted_at)
    }))
}

/// One exception day of a year's notice.
#[derive(Clone, Debug)]
pub struct CalendarDayInput {
    pub day: NaiveDate,
    pub is_working_day: bool,
    pub name: String,
}

/// The rows of one notice year from a file in the project's calendar format.
pub fn days_of_year_from_csv(text: &str, year: i32) -> Result<Vec<CalendarDayInput>, String> {
    let rows: Vec<CalendarDayInput> = migration::calendar_data::parse(text)?
        .into_iter()
        .filter(|r| r.notice_year == year)
        .map(|r| CalendarDayInput {
            day: r.day,
            is_working_day: r.is_working_day,
            name: r.name,
        })
        .collect();
    if rows.is_empty() {
        return Err(format!("the file has no days for notice year {year}"));
    }
    Ok(rows)
}

/// The first date that appears twice among `days`, in the order given.
fn first_repeated_day(days: &[CalendarDayInput]) -> Option<NaiveDate> {
    let mut seen = std::collections::HashSet::with_capacity(days.len());
    days.iter().map(|d| d.day).find(|day| !seen.insert(*day))
}

/// Loads (or replaces, whole and in one transaction) one notice year: the days listed
/// are its exceptions; every other weekday works and every other weekend day rests. Returns when it was loaded
/// (read from `clock` under the audit chain's lock, `audit::begin_write_at`).
pub async fn load_year(
    db: &DatabaseConnection,
    actor: &Actor,
    clock: &Clock,
    year: i32,
    source: &str,
    days: Vec<CalendarDayInput>,
) -> AppResult<DateTime<Utc>> {
    if !(2000..=2100).contains(&year) {
        return Err(AppError::bad_input(format!("year {year} is out of range")));
    }
    if source.trim().is_empty() {
        return Err(AppError::bad_input(
            "source must name the notice the calendar comes from",
        ));
    }
    for d in &days {
        use chrono::Datelike;
        // A notice may reach a day or two into the neighbouring years.
        if (d.day.year() - year).abs() > 1 {
            return Err(AppError::bad_input(format!(
                "{} is too far from notice year {year}",
                d.day
            )));
        }
    }
    if let Some(day) = first_repeated_day(&days) {
        // The table holds one row per date: a repeated date would fail its unique key.
        return Err(AppError::bad_input_with(
            format!("{day} is given more than once; each date may appear once"),
            json!({ "reason": "DUPLICATE_DATE", "date": day.to_string() }),
        ));
    }
    let (tx, now) = audit::begin_write_at(db, clock).await?;
    let before = calendar_year::Entity::find_by_id(year).one(&tx).await?;
    // The year's notice replaces the previous one whole: every day that notice gave goes
    // (a day dropped from a corrected notice is an ordinary day again), and a date the
    // new list names is its own, whichever notice had it before.
    calendar_day::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(calendar_day::Column::NoticeYear.eq(year))
                .add(calendar_day::Column::Day.is_in(days.iter().map(|d| d.day))),
        )
        .exec(&tx)
        .await?;
    for d in &days {
        calendar_day::ActiveModel {
            day: Set(d.day),
            is_working_day: Set(d.is_working_day),
            name: Set(d.name.clone()),
            notice_year: Set(Some(year)),
        }
        .insert(&tx)
        .await?;
    }
    if before.is_some() {
        calendar_year::Entity::delete_by_id(year).exec(&tx).await?;
    }
    calendar_year::ActiveModel {
        year: Set(year),
        source: Set(source.to_string()),
        loaded_at: Set(now),
    }
    .insert(&tx)
    .await?;
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry {
            action: "calendar.load_year",
            entity_type: "calendar_year",
            entity_id: year.to_string(),
            before: before.map(|b| json!({ "year": b.year, "source": b.source })),
            after: Some(json!({
                "year": year,
                "source": source,
                "days": days.iter().map(|d| json!({"day": d.day.to_string(), "working": d.is_working_day, "name": d.name})).collect::<Vec<_>>(),
            })),
            reason: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> CalendarDayInput {
        CalendarDayInput {
            day: NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap(),
            is_working_day: false,
            name: "假日".into(),
        }
    }

    #[test]
    fn a_repeated_date_is_found() {
        assert_eq!(
            first_repeated_day(&[day("2027-01-01"), day("2027-01-02")]),
            None
        );
        let days = [
            day("2027-01-01"),
            day("2027-02-01"),
            day("2027-02-01"),
            day("2027-01-01"),
        ];
        assert_eq!(first_repeated_day(&days), Some(days[1].day));
    }
}
