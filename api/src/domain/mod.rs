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

/// China Standard Time (UTC+8, no daylight saving): legal dates are Beijing dates.
pub fn china_date(t: DateTime<Utc>) -> chrono::NaiveDate {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix());
    t.with_timezone(&offset).date_naive()
}

/// The first instant of a Beijing date. The earliest date chrono can hold has no
/// instant eight hours before its midnight: it answers the earliest instant instead of
/// panicking (callers bound dates from users, this keeps a missed one harmless).
pub fn china_midnight(d: chrono::NaiveDate) -> DateTime<Utc> {
    let local = d.and_time(chrono::NaiveTime::MIN);
    DateTime::<Utc>::from_naive_utc_and_offset(local, Utc)
        .checked_sub_signed(chrono::Duration::hours(8))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The date `months` calendar months after `d`; a day the target month lacks becomes its
/// last day (31 January + 1 = 28/29 February, 29 February 2024 + 36 = 28 February 2027).
/// The registry's one month arithmetic: a listing's period and the repair minimum count
/// months alike, on Beijing dates.
pub fn months_after(d: chrono::NaiveDate, months: u32) -> Option<chrono::NaiveDate> {
    d.checked_add_months(chrono::Months::new(months))
}

/// The instant `months` calendar months after `t`, counted on the Beijing calendar (the
/// legal one): the same Beijing time of day on the date [`months_after`] gives. Counting
/// on the UTC calendar instead moves the end of a period that starts at Beijing midnight
/// (16:00 UTC the day before) to the wrong day whenever the UTC date is the last of its
/// month. China has kept UTC+8 without daylight saving since 1991, so the fixed offset is
/// exact and every local time maps back to one instant.
pub fn china_months_after(t: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600)?;
    let local = t.with_timezone(&beijing).naive_local();
    let date = months_after(local.date(), months)?;
    let end = date
        .and_time(local.time())
        .and_local_timezone(beijing)
        .single()?;
    Some(end.with_timezone(&Utc))
}

/// The name of a value of a GraphQL enum as the schema spells it (`EXPIRED`,
/// `LAND_TRANSFER`): for messages and metric labels. Stored codes come from the active
/// enums in `entity` (`ActiveEnum::to_value`); the test below holds the two equal.
pub fn enum_name<T: async_graphql::resolver_utils::EnumType>(value: T) -> &'static str {
    T::items()
        .iter()
        .find(|item| item.value == value)
        .map_or("", |item| item.name)
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

    /// Every stored code is the schema's name of the same value, and reads back as it:
    /// the columns keep exactly the strings they held before they were typed.
    fn stored_codes_are_the_schema_names<G, S>(expected: &[&str])
    where
        G: async_graphql::resolver_utils::EnumType + From<S> + std::fmt::Debug,
        S: sea_orm::ActiveEnum<Value = String>
            + sea_orm::Iterable
            + From<G>
            + PartialEq
            + std::fmt::Debug,
    {
        let stored: Vec<String> = S::iter().map(|s| s.to_value()).collect();
        assert_eq!(stored, expected);
        for s in S::iter() {
            let code = s.to_value();
            assert_eq!(S::try_from_value(&code).ok().as_ref(), Some(&s));
            let shown = G::from(s);
            assert_eq!(enum_name(shown), code, "{shown:?}");
            assert_eq!(S::from(shown), S::try_from_value(&code).unwrap());
        }
    }

    #[test]
    fn typed_columns_keep_their_codes() {
        use sea_orm::ActiveEnum;
        stored_codes_are_the_schema_names::<measures::Domain, entity::measure::Domain>(&[
            "PROCUREMENT",
            "BIDDING",
            "LAND_TRANSFER",
            "HONORS",
            "LICENSING",
            "NOTIFICATION_COMMITMENT",
            "SUPERVISION",
        ]);
        stored_codes_are_the_schema_names::<measures::Effect, entity::measure::Effect>(&[
            "PROHIBIT",
            "CONSIDER",
            "SUPERVISE",
        ]);
        stored_codes_are_the_schema_names::<decision::Decision, entity::check_record::Decision>(&[
            "CLEAR",
            "REVIEW",
            "RESTRICTED",
        ]);
        stored_codes_are_the_schema_names::<
            repair::RepairStatus,
            entity::repair_application::RepairStatus,
        >(&["INELIGIBLE", "PENDING", "APPROVED", "REJECTED", "REVOKED"]);
        // The listing's stored status has no GraphQL twin; each shows as the status of
        // the same name (and EXPIRED is never stored).
        let stored: Vec<String> = <lifecycle::StoredStatus as sea_orm::Iterable>::iter()
            .map(|s| s.to_value())
            .collect();
        assert_eq!(
            stored,
            ["PROPOSED", "LISTED", "WITHDRAWN", "REVOKED", "REPAIRED"]
        );
        for name in &stored {
            let s = lifecycle::StoredStatus::try_from_value(name).unwrap();
            let shown = lifecycle::display_status(s, &[], Utc::now());
            let shown = if s == lifecycle::StoredStatus::Listed {
                lifecycle::ListingStatus::Listed
            } else {
                shown
            };
            assert_eq!(enum_name(shown), name);
            assert_eq!(shown.stored(), s);
        }
        assert_eq!(enum_name(lifecycle::ListingStatus::Expired), "EXPIRED");
    }

    #[test]
    fn reporting_years_are_plausible() {
        assert!(check_reporting_year(2026).is_ok());
        assert!(check_reporting_year(1999).is_err());
        assert!(check_reporting_year(2101).is_err());
    }

    #[test]
    fn months_are_added_on_the_beijing_calendar() {
        let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day).unwrap();
        // A Beijing midnight is 16:00 UTC on the last day of the month before: the month
        // is counted from the Beijing date, not from the UTC one.
        let start = china_midnight(d(2025, 10, 1));
        assert_eq!(
            china_months_after(start, 18),
            Some(china_midnight(d(2027, 4, 1)))
        );
        assert_eq!(
            china_months_after(china_midnight(d(2024, 2, 29)), 36),
            Some(china_midnight(d(2027, 2, 28)))
        );
        // A decision instant keeps its Beijing time of day.
        let noon = Utc.with_ymd_and_hms(2026, 1, 31, 4, 0, 0).unwrap();
        assert_eq!(
            china_months_after(noon, 1),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 4, 0, 0).unwrap())
        );
        assert_eq!(months_after(d(2026, 1, 31), 1), Some(d(2026, 2, 28)));
        assert_eq!(china_months_after(start, u32::MAX), None);
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
