//! Working-day arithmetic (工作日) for legal time limits.
//!
//! Monday to Friday are working days and weekends are not, except where the State
//! Council's yearly notice says otherwise: holidays on weekdays and weekend days
//! turned into working days (调休). A date in a year without a calendar is an error,
//! never a guess, except for the bookkeeping deadlines of legal acts that cannot wait
//! for next year's notice ([`WorkingCalendar::add_working_days_or_weekdays`]), which
//! say which years they counted on the weekday rule.

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default)]
pub struct WorkingCalendar {
    /// Years whose notice has been loaded.
    years: BTreeSet<i32>,
    /// Exceptions: `true` = working day on a weekend, `false` = holiday on a weekday.
    exceptions: BTreeMap<NaiveDate, bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "no working-day calendar is loaded for {0}: load the State Council holiday notice for that year before computing time limits in it"
    )]
    YearNotLoaded(i32),
    #[error("a time limit must be at least one working day")]
    NonPositive,
}

/// A date counted in working days, and the years without a loaded notice whose days
/// were counted on the weekday rule (empty: the date is the notices' own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub date: NaiveDate,
    pub weekday_rule_years: Vec<i32>,
}

impl WorkingCalendar {
    pub fn new(
        years: impl IntoIterator<Item = i32>,
        exceptions: impl IntoIterator<Item = (NaiveDate, bool)>,
    ) -> Self {
        Self {
            years: years.into_iter().collect(),
            exceptions: exceptions.into_iter().collect(),
        }
    }

    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    pub fn is_working_day(&self, day: NaiveDate) -> Result<bool, CalendarError> {
        if !self.years.contains(&day.year()) {
            return Err(CalendarError::YearNotLoaded(day.year()));
        }
        if let Some(&working) = self.exceptions.get(&day) {
            return Ok(working);
        }
        Ok(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
    }

    /// The date `n` working days after `start` (the start day itself is not counted,
    /// as in "within N working days of receipt").
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        if n == 0 {
            return Err(CalendarError::NonPositive);
        }
        let mut day = start;
        let mut remaining = n;
        while remaining > 0 {
            day = day
                .succ_opt()
                .ok_or(CalendarError::YearNotLoaded(day.year() + 1))?;
            if self.is_working_day(day)? {
                remaining -= 1;
            }
        }
        Ok(day)
    }

    /// [`Self::add_working_days`] for a deadline that must be recorded even when it
    /// reaches into a year whose notice is not loaded yet: a revocation's publicity stop,
    /// a repair application's due date. Those legal acts are not refused because of the
    /// bookkeeping (domain.md asks the registry to *say* when it has no calendar, not to
    /// block a removal the law requires), so the days of such a year are counted on the
    /// weekday rule (Monday to Friday work) and the years are returned for the caller to
    /// flag. Loaded years count as usual.
    pub fn add_working_days_or_weekdays(
        &self,
        start: NaiveDate,
        n: u32,
    ) -> Result<Counted, CalendarError> {
        if n == 0 {
            return Err(CalendarError::NonPositive);
        }
        let mut day = start;
        let mut remaining = n;
        let mut weekday_rule_years = Vec::new();
        while remaining > 0 {
            day = day
                .succ_opt()
                .ok_or(CalendarError::YearNotLoaded(day.year() + 1))?;
            let working = match self.is_working_day(day) {
                Ok(working) => working,
                Err(CalendarError::YearNotLoaded(year)) => {
                    if !weekday_rule_years.contains(&year) {
                        weekday_rule_years.push(year);
                    }
                    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
                }
                Err(e) => return Err(e),
            };
            if working {
                remaining -= 1;
            }
        }
        Ok(Counted {
            date: day,
            weekday_rule_years,
        })
    }

    /// Working days strictly after `from` up to and including `to` (0 when `to <= from`).
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = day
                .succ_opt()
                .ok_or(CalendarError::YearNotLoaded(day.year() + 1))?;
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn calendar_2026() -> WorkingCalendar {
        let rows = migration::calendar_data::parse(migration::calendar_data::SHIPPED_CSV).unwrap();
        WorkingCalendar::new(
            migration::calendar_data::years(&rows),
            rows.iter().map(|r| (r.day, r.is_working_day)),
        )
    }

    #[test]
    fn the_2026_swapped_working_days_are_working_days() {
        let cal = calendar_2026();
        for day in [
            "2026-01-04",
            "2026-02-14",
            "2026-02-28",
            "2026-05-09",
            "2026-09-20",
            "2026-10-10",
        ] {
            assert_eq!(cal.is_working_day(d(day)), Ok(true), "{day}");
        }
        // Spring Festival 2026: 15-23 February off.
        for day in [
            "2026-02-16",
            "2026-02-17",
            "2026-02-18",
            "2026-02-19",
            "2026-02-20",
            "2026-02-23",
        ] {
            assert_eq!(cal.is_working_day(d(day)), Ok(false), "{day}");
        }
    }

    #[test]
    fn adding_working_days_across_spring_festival_and_a_swapped_saturday() {
        let cal = calendar_2026();
        // Thu 12 Feb: Fri 13 (1), Sat 14 swapped working day (2), then 15-23 off,
        // Tue 24 (3), Wed 25 (4), Thu 26 (5).
        assert_eq!(
            cal.add_working_days(d("2026-02-12"), 5),
            Ok(d("2026-02-26"))
        );
        // 15 working days from 12 Feb: ... 26 (5), 27 (6), Sat 28 swapped (7),
        // Mar 2-6 (8-12), Mar 9-11 (13-15).
        assert_eq!(
            cal.add_working_days(d("2026-02-12"), 15),
            Ok(d("2026-03-11"))
        );
    }

    #[test]
    fn national_day_week_is_skipped() {
        let cal = calendar_2026();
        // Wed 30 Sep 2026; 1-7 Oct off; Thu 8, Fri 9, Sat 10 (swapped) working.
        assert_eq!(
            cal.add_working_days(d("2026-09-30"), 3),
            Ok(d("2026-10-10"))
        );
    }

    #[test]
    fn a_year_without_a_calendar_is_an_error() {
        let cal = calendar_2026();
        assert_eq!(
            cal.is_working_day(d("2027-01-05")),
            Err(CalendarError::YearNotLoaded(2027))
        );
        assert_eq!(
            cal.add_working_days(d("2026-12-28"), 10),
            Err(CalendarError::YearNotLoaded(2027))
        );
        assert_eq!(
            cal.add_working_days(d("2026-12-28"), 0),
            Err(CalendarError::NonPositive)
        );
    }

    #[test]
    fn a_deadline_that_cannot_wait_counts_weekdays_in_an_unloaded_year() {
        let cal = calendar_2026();
        // Wed 30 Dec 2026: Thu 31 (1), then 2027 has no notice: Fri 1 Jan (2), Mon 4 (3).
        assert_eq!(
            cal.add_working_days_or_weekdays(d("2026-12-30"), 3),
            Ok(Counted {
                date: d("2027-01-04"),
                weekday_rule_years: vec![2027],
            })
        );
        // Inside loaded years it is the notices' own count.
        assert_eq!(
            cal.add_working_days_or_weekdays(d("2026-02-12"), 15),
            Ok(Counted {
                date: d("2026-03-11"),
                weekday_rule_years: vec![],
            })
        );
        assert_eq!(
            cal.add_working_days_or_weekdays(d("2026-12-30"), 0),
            Err(CalendarError::NonPositive)
        );
    }

    #[test]
    fn counting_working_days_between_dates() {
        let cal = calendar_2026();
        assert_eq!(
            cal.working_days_between(d("2026-02-12"), d("2026-02-26")),
            Ok(5)
        );
        assert_eq!(
            cal.working_days_between(d("2026-02-26"), d("2026-02-12")),
            Ok(0)
        );
    }
}
