//! Rules with no I/O: codes, names, regions, working days, listing states, decisions.
//! Everything here is a small pure function with unit tests.

pub mod audit_chain;
pub mod decision;
pub mod document;
pub mod history;
pub mod idempotency;
pub mod input;
pub mod lifecycle;
pub mod listing_rules;
pub mod measures;
pub mod names;
pub mod privacy;
pub mod refusal;
pub mod region;
pub mod repair;
pub mod uscc;
pub mod working_days;

use chrono::{DateTime, Offset, SubsecRound, Utc};

/// Instants are kept at microsecond precision everywhere, which is what PostgreSQL
/// stores; SQLite then holds exactly the same values.
pub fn truncate_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The current instant at storage precision.
pub fn now() -> DateTime<Utc> {
    truncate_instant(Utc::now())
}

/// China Standard Time (UTC+8, no daylight saving): legal dates are Beijing dates.
pub fn china_date(t: DateTime<Utc>) -> chrono::NaiveDate {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix());
    t.with_timezone(&offset).date_naive()
}

/// The first instant of a Beijing date.
pub fn china_midnight(d: chrono::NaiveDate) -> DateTime<Utc> {
    let local = d.and_time(chrono::NaiveTime::MIN);
    DateTime::<Utc>::from_naive_utc_and_offset(local, Utc) - chrono::Duration::hours(8)
}

/// The years typical cases and yearly reports may name: a plausible calendar year.
pub fn check_reporting_year(year: i32) -> Result<(), String> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(format!("year {year} is outside 2000-2100"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn reporting_years_are_plausible() {
        assert!(check_reporting_year(2026).is_ok());
        assert!(check_reporting_year(1999).is_err());
        assert!(check_reporting_year(2101).is_err());
    }

    #[test]
    fn beijing_dates() {
        let late_utc = Utc.with_ymd_and_hms(2026, 2, 13, 17, 0, 0).unwrap();
        assert_eq!(
            china_date(late_utc),
            chrono::NaiveDate::from_ymd_opt(2026, 2, 14).unwrap()
        );
        let d = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(
            china_midnight(d),
            Utc.with_ymd_and_hms(2026, 2, 28, 16, 0, 0).unwrap()
        );
    }
}
