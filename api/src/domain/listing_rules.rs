//! The date and period rules every listing obeys, whichever mutation records it
//! (`proposeListing`, `decideListing`, `correctListing`; an import of an existing list
//! goes through the same functions). Pure functions: the services read the stored
//! values, ask these, and write only what they allow.
//!
//! Sources (domain.md): the party is told before listing and may state its case
//! (陈述申辩) until the defence deadline; the listing takes effect on its decision and
//! lasts the list's period (three years for the SAMR list), longer only where a law
//! sets a longer restriction.

use super::refusal::{Reason, Refusal};
use super::{china_date, china_midnight, china_months_after, truncate_instant};
use chrono::{DateTime, NaiveDate, Utc};

/// The longest period any listing may have (20 years): a bound on data-entry errors,
/// not a legal period.
pub const MAX_PERIOD_MONTHS: u32 = 240;

/// A list's rules as stored in the catalogue, validated once. A negative value in the
/// catalogue is a data fault, never silently replaced by a default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRules {
    pub period_months: u32,
    pub defence_working_days: u32,
    pub publicity_stop_working_days: u32,
    pub repair_min_months: u32,
    pub repair_decision_working_days: u32,
}

impl ListRules {
    /// A new list's rules when its `upsertList` leaves them out: the SAMR list's
    /// (Order 44: three years, 3 working days to stop publicity) and the configurable
    /// values domain.md marks unconfirmed (5 working days of defence, 12 months before
    /// repair, 15 working days to decide it).
    pub const DEFAULT: Self = Self {
        period_months: 36,
        defence_working_days: 5,
        publicity_stop_working_days: 3,
        repair_min_months: 12,
        repair_decision_working_days: 15,
    };

    pub fn of(list: &entity::credit_list::Model) -> Result<Self, String> {
        let field = |name: &str, v: i32| {
            u32::try_from(v).map_err(|_| format!("list {} has a negative {name} ({v})", list.code))
        };
        Ok(Self {
            period_months: field("default_period_months", list.default_period_months)?,
            defence_working_days: field("defence_working_days", list.defence_working_days)?,
            publicity_stop_working_days: field(
                "publicity_stop_working_days",
                list.publicity_stop_working_days,
            )?,
            repair_min_months: field("repair_min_months", list.repair_min_months)?,
            repair_decision_working_days: field(
                "repair_decision_working_days",
                list.repair_decision_working_days,
            )?,
        })
    }
}

fn in_future(field: &'static str, what: impl std::fmt::Display) -> Refusal {
    Refusal::new(Reason::InFuture, format!("{field} {what} is in the future")).on(field)
}

/// A proposal: the penalty came first, then the notice; neither lies ahead of `today`
/// (a Beijing date).
pub fn check_proposal_dates(
    penalty_date: NaiveDate,
    notice_date: NaiveDate,
    today: NaiveDate,
) -> Result<(), Refusal> {
    if penalty_date > today {
        return Err(in_future("penaltyDate", penalty_date));
    }
    if notice_date < penalty_date {
        return Err(Refusal::new(
            Reason::DateOrder,
            "noticeDate is before the penalty decision's date",
        )
        .on("noticeDate"));
    }
    if notice_date > today {
        return Err(in_future("noticeDate", notice_date));
    }
    Ok(())
}

/// What a decision rests on, from the proposal.
#[derive(Clone, Copy, Debug)]
pub struct Proposal {
    pub notice_date: NaiveDate,
    pub defence_deadline: NaiveDate,
}

/// A decision date: not ahead of today, not before the notice, and after the defence
/// deadline unless the party waived its right to state its case.
pub fn check_decision_date(
    proposal: Proposal,
    decision_date: NaiveDate,
    defence_waived: bool,
    today: NaiveDate,
) -> Result<(), Refusal> {
    if decision_date > today {
        return Err(in_future("decisionDate", decision_date));
    }
    if decision_date < proposal.notice_date {
        return Err(
            Refusal::new(Reason::DateOrder, "decisionDate is before the notice date")
                .on("decisionDate"),
        );
    }
    if decision_date <= proposal.defence_deadline && !defence_waived {
        return Err(Refusal::new(
            Reason::DefencePeriodOpen,
            format!(
                "the party may state its case until {}; decide after that date, or set defenceWaived if the party waived it",
                proposal.defence_deadline
            ),
        )
        .with("defenceDeadline", proposal.defence_deadline.to_string()));
    }
    Ok(())
}

/// When a decided listing takes effect: at the start of the decision date (Beijing
/// time) unless `effective_at` says later; never before the decision (a back-dated
/// instant would restrict the party before it was even told), never in the future.
pub fn effective_from(
    decision_date: NaiveDate,
    effective_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Refusal> {
    let decided = china_midnight(decision_date);
    let effective = truncate_instant(effective_at.unwrap_or(decided));
    if effective > now {
        return Err(in_future("effectiveAt", effective.to_rfc3339()));
    }
    if effective < decided {
        return Err(Refusal::new(
            Reason::DateOrder,
            format!(
                "effectiveAt {} is before the decision date {decision_date}: a listing takes effect on its decision",
                effective.to_rfc3339()
            ),
        )
        .on("effectiveAt")
        .with("decisionDate", decision_date.to_string()));
    }
    Ok(effective)
}

/// When a removal (a revocation) takes effect: by default now; never in the future (it
/// cannot be announced ahead), never before the listing took effect.
pub fn removal_effective_at(
    effective_at: Option<DateTime<Utc>>,
    listed_from: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Refusal> {
    let effective = truncate_instant(effective_at.unwrap_or(now));
    if effective > now {
        return Err(in_future("effectiveAt", effective.to_rfc3339()));
    }
    if let Some(start) = listed_from
        && effective < start
    {
        return Err(Refusal::new(
            Reason::DateOrder,
            "effectiveAt is before the listing took effect",
        )
        .on("effectiveAt"));
    }
    Ok(effective)
}

/// The period a decision sets: the list's, or longer where a law says so, up to the cap.
pub fn period_months(requested: Option<i32>, rules: ListRules) -> Result<u32, Refusal> {
    let Some(months) = requested else {
        return Ok(rules.period_months);
    };
    match u32::try_from(months) {
        Ok(m) if m >= rules.period_months && m <= MAX_PERIOD_MONTHS => Ok(m),
        _ => Err(Refusal::new(
            Reason::PeriodOutOfRange,
            format!(
                "periodMonths may only lengthen the list's period of {} months (at most {MAX_PERIOD_MONTHS})",
                rules.period_months
            ),
        )
        .on("periodMonths")),
    }
}

/// **A decided listing applies at least one measure.** With none it would stay LISTED,
/// on the public list and in the registry log, while every check in every domain
/// answered CLEAR, now and for every past `asOf` (checks read the listing's measures as
/// they stand): an early removal with no repair or revocation behind it. Domain.md's
/// Order 44 measures apply to every listed operator. `from_defaults` names the cause when
/// the set is the list's defaults (all of them inactive) rather than the caller's.
pub fn check_measures_present(count: usize, from_defaults: bool) -> Result<(), Refusal> {
    if count > 0 {
        return Ok(());
    }
    let message = if from_defaults {
        "the list has no active default measure: name the measures in measureCodes, or give the list active defaults (upsertList)"
    } else {
        "measureCodes is empty: a decided listing applies at least one measure (to end it early, use credit repair or revokeListing)"
    };
    Err(Refusal::new(Reason::NoMeasures, message).on("measureCodes"))
}

/// The end of a period that starts at `start` and lasts `months` calendar months of the
/// Beijing calendar (a 29 February start ends on 28 February when the end year has none):
/// see [`china_months_after`].
pub fn period_end(start: DateTime<Utc>, months: u32) -> Result<DateTime<Utc>, Refusal> {
    china_months_after(start, months).ok_or_else(|| {
        Refusal::new(
            Reason::PeriodOutOfRange,
            "the period ends beyond the supported calendar",
        )
    })
}

/// The months a recorded period applies: the listing's override where its decision set
/// one, else the whole months of the Beijing calendar from the period's start to its end
/// (as [`period_end`] counts them; rounded down for an end corrected off a month's
/// boundary). Never the list's current default: a changed default applies to decisions
/// taken after the change, not to periods already running, so an export and an import
/// must carry the months of the record itself.
pub fn recorded_period_months(
    override_months: Option<i32>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> u32 {
    if let Some(m) = override_months.and_then(|m| u32::try_from(m).ok()) {
        return m;
    }
    use chrono::Datelike;
    let (from, to) = (china_date(starts_at), china_date(ends_at));
    let estimate = (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month())
        - i64::from(from.month());
    let mut months = u32::try_from(estimate.max(0)).unwrap_or(u32::MAX);
    // The estimate counts month boundaries; a day of the month (or a time of day) short
    // of the start's makes it one too many.
    while months > 0 && period_end(starts_at, months).is_ok_and(|end| end > ends_at) {
        months -= 1;
    }
    months
}

/// **A correction of a period's end may move when a listing leaves the list, not whether
/// it is on it now.** Ending a listing in force now is an early removal, which has its
/// own procedures (credit repair, revocation); moving the end of a listing that has
/// expired past `now` puts it back on the list, which only a new decision may do. Both
/// would also change answers already given at instants the registry then called the
/// other way. A period removed early (`removed`) is not in force whatever its end says.
pub fn check_corrected_end_keeps_state(
    current_end: DateTime<Utc>,
    new_end: DateTime<Utc>,
    removed: bool,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    use super::lifecycle::Action;
    if removed {
        return Ok(());
    }
    match (current_end > now, new_end > now) {
        (true, false) => Err(Refusal::new(
            Reason::InvalidTransition,
            format!(
                "expiresAt {} would end now a listing in force until {}: an early removal is decided by credit repair ({}) or revocation ({})",
                new_end.to_rfc3339(),
                current_end.to_rfc3339(),
                Action::Repair.mutation(),
                Action::Revoke.mutation()
            ),
        )
        .on("expiresAt")),
        (false, true) => Err(Refusal::new(
            Reason::InvalidTransition,
            format!(
                "expiresAt {} would put back on the list a listing that expired at {}: a new listing is proposed and decided",
                new_end.to_rfc3339(),
                current_end.to_rfc3339()
            ),
        )
        .on("expiresAt")),
        _ => Ok(()),
    }
}

/// **A shortened end keeps a listing in force for at least the list's period.** A
/// correction may lengthen a period or fix one recorded longer than its decision says,
/// but a listing in force cut below the list's period (`period_months(None, rules)`,
/// counted from the period's start) would leave the list early, a minute from now
/// say, with no repair application or revocation document: the early removal that
/// [`check_corrected_end_keeps_state`] refuses for an end before now, a moment later.
/// An expired or removed period, and an end that does not shorten, are not concerned.
pub fn check_shortened_end_keeps_minimum(
    starts_at: DateTime<Utc>,
    current_end: DateTime<Utc>,
    new_end: DateTime<Utc>,
    removed: bool,
    rules: ListRules,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if removed || current_end <= now || new_end >= current_end {
        return Ok(());
    }
    let months = period_months(None, rules)?;
    let minimum = period_end(starts_at, months)?;
    if new_end >= minimum {
        return Ok(());
    }
    Err(Refusal::new(
        Reason::PeriodOutOfRange,
        format!(
            "expiresAt {} would shorten a listing in force below the list's period of {months} months from its start (to {}): a correction may fix an over-long record, not cut a period short; an early removal is credit repair or revocation",
            new_end.to_rfc3339(),
            minimum.to_rfc3339()
        ),
    )
    .on("expiresAt")
    .with("minimumEnd", minimum.to_rfc3339()))
}

/// **A removed period's end stays after its removal.** The period was in force until it
/// was removed (repaired, revoked); an end at or before that instant would make the
/// record say the listing had expired first, so that the removal removed nothing, and
/// flip valid-time answers for the days in between. Refused as a change of how the
/// listing left the list, like the other state changes a corrected end may not make.
pub fn check_corrected_end_after_removal(
    removed_at: DateTime<Utc>,
    new_end: DateTime<Utc>,
) -> Result<(), Refusal> {
    if new_end > removed_at {
        return Ok(());
    }
    Err(Refusal::new(
        Reason::InvalidTransition,
        format!(
            "expiresAt {} is not after the listing's removal at {}: the record would say it expired before it was removed",
            new_end.to_rfc3339(),
            removed_at.to_rfc3339()
        ),
    )
    .on("expiresAt")
    .with("removedAt", removed_at.to_rfc3339()))
}

/// The end of the period a revoked repair restores from `at`. `RESTART` counts the
/// listing's own months again, those its decision set (`recorded_period_months` of the
/// first period, whose start and end the decision wrote): not the list's current
/// default, which applies to decisions taken after it changed, and with no range check
/// against it, since the listing's period was lawful when decided. `RESUME` gives the
/// time the current period had left when it was removed (`last_end - removed_at`).
/// Either way a restoration with no time to restore is refused rather than written as an
/// empty or backwards period, which would show LISTED and restrict nobody.
pub fn restored_end(
    at: DateTime<Utc>,
    restart: bool,
    override_months: Option<i32>,
    first: (DateTime<Utc>, DateTime<Utc>),
    last: (DateTime<Utc>, Option<DateTime<Utc>>),
) -> Result<DateTime<Utc>, Refusal> {
    let nothing_left = |what: String| {
        Refusal::new(
            Reason::InvalidTransition,
            format!(
                "the repair cannot be revoked into a period: {what}; correct the listing's period first"
            ),
        )
    };
    if restart {
        let months = recorded_period_months(override_months, first.0, first.1);
        if months == 0 {
            return Err(nothing_left(format!(
                "the listing's recorded period ({} to {}) is not a whole month",
                first.0.to_rfc3339(),
                first.1.to_rfc3339()
            )));
        }
        return period_end(at, months);
    }
    let (last_end, removed_at) = last;
    let served_until = removed_at.unwrap_or(at);
    let left = last_end - served_until;
    if left <= chrono::Duration::zero() {
        return Err(nothing_left(format!(
            "the period ended at {}, not after its removal at {}, so no time was left to resume",
            last_end.to_rfc3339(),
            served_until.to_rfc3339()
        )));
    }
    Ok(at + left)
}

/// A listing's dates as they would stand after a correction.
#[derive(Clone, Copy, Debug)]
pub struct CorrectedDates {
    pub penalty_date: NaiveDate,
    pub notice_date: NaiveDate,
    pub defence_deadline: NaiveDate,
    /// `None` for a proposal.
    pub decision_date: Option<NaiveDate>,
    /// Whether the recorded decision was taken inside the defence period (so the party
    /// had waived it): a correction may keep such a date, not create one.
    pub decided_inside_defence_period: bool,
    /// The start of the first period (the decision's effect), for a decided listing.
    pub first_start: Option<DateTime<Utc>>,
}

/// A correction obeys the rules the original mutations enforce: the penalty, notice and
/// decision in that order and none in the future, and a decision that still precedes
/// the instant the listing took effect.
pub fn check_corrected_dates(d: CorrectedDates, today: NaiveDate) -> Result<(), Refusal> {
    check_proposal_dates(d.penalty_date, d.notice_date, today)?;
    let Some(decision_date) = d.decision_date else {
        return Ok(());
    };
    check_decision_date(
        Proposal {
            notice_date: d.notice_date,
            defence_deadline: d.defence_deadline,
        },
        decision_date,
        d.decided_inside_defence_period,
        today,
    )?;
    if let Some(start) = d.first_start
        && china_midnight(decision_date) > start
    {
        return Err(Refusal::new(
            Reason::DateOrder,
            format!(
                "decisionDate {decision_date} is after the listing took effect ({}, Beijing date {})",
                start.to_rfc3339(),
                china_date(start)
            ),
        )
        .on("decisionDate"));
    }
    Ok(())
}

/// A corrected end of the current period: after its start and at most
/// [`MAX_PERIOD_MONTHS`] from it, the cap `periodMonths` has at decision. Unlike a
/// decision, a correction may shorten the period: it exists to make the record match
/// the decision document, and a period recorded longer than the document says is such
/// an error.
pub fn check_corrected_end(
    starts_at: DateTime<Utc>,
    new_end: DateTime<Utc>,
) -> Result<(), Refusal> {
    if new_end <= starts_at {
        return Err(Refusal::new(
            Reason::DateOrder,
            "expiresAt must be after the period's start",
        )
        .on("expiresAt"));
    }
    if new_end > period_end(starts_at, MAX_PERIOD_MONTHS)? {
        return Err(Refusal::new(
            Reason::PeriodOutOfRange,
            format!(
                "expiresAt {} is more than {MAX_PERIOD_MONTHS} months after the period's start",
                new_end.to_rfc3339()
            ),
        )
        .on("expiresAt"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn rules() -> ListRules {
        ListRules {
            period_months: 36,
            defence_working_days: 5,
            publicity_stop_working_days: 3,
            repair_min_months: 12,
            repair_decision_working_days: 15,
        }
    }

    fn proposal() -> Proposal {
        Proposal {
            notice_date: d(2026, 3, 2),
            defence_deadline: d(2026, 3, 9),
        }
    }

    #[test]
    fn proposals_need_penalty_then_notice_and_nothing_ahead() {
        let today = d(2026, 6, 1);
        assert!(check_proposal_dates(d(2026, 2, 2), d(2026, 2, 12), today).is_ok());
        let e = check_proposal_dates(d(2026, 2, 2), d(2026, 2, 1), today).unwrap_err();
        assert_eq!(e.reason, Reason::DateOrder);
        let e = check_proposal_dates(d(2031, 1, 1), d(2031, 1, 2), today).unwrap_err();
        assert_eq!((e.reason, e.field), (Reason::InFuture, Some("penaltyDate")));
        let e = check_proposal_dates(d(2026, 2, 2), d(2026, 7, 1), today).unwrap_err();
        assert_eq!(e.field, Some("noticeDate"));
    }

    #[test]
    fn a_decision_waits_for_the_defence_unless_waived() {
        let today = d(2026, 6, 1);
        let e = check_decision_date(proposal(), d(2026, 3, 9), false, today).unwrap_err();
        assert_eq!(e.reason, Reason::DefencePeriodOpen);
        assert_eq!(e.details()["defenceDeadline"], "2026-03-09");
        assert!(check_decision_date(proposal(), d(2026, 3, 9), true, today).is_ok());
        assert!(check_decision_date(proposal(), d(2026, 3, 10), false, today).is_ok());
        let e = check_decision_date(proposal(), d(2026, 3, 1), true, today).unwrap_err();
        assert_eq!(e.reason, Reason::DateOrder);
        let e = check_decision_date(proposal(), d(2030, 1, 1), false, today).unwrap_err();
        assert_eq!(e.reason, Reason::InFuture);
    }

    #[test]
    fn a_listing_takes_effect_on_its_decision_not_before() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        // Default: the start of the decision date in Beijing (16:00 UTC the day before).
        assert_eq!(
            effective_from(d(2026, 3, 16), None, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 15, 16, 0, 0).unwrap()
        );
        // Back-dated to before the notice: refused.
        let back = Utc.with_ymd_and_hms(2026, 2, 2, 0, 0, 0).unwrap();
        let e = effective_from(d(2026, 3, 16), Some(back), now).unwrap_err();
        assert_eq!(
            (e.reason, e.field),
            (Reason::DateOrder, Some("effectiveAt"))
        );
        // Inside the defence period, i.e. before the decision date: refused as well.
        let inside = Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap();
        assert!(effective_from(d(2026, 3, 16), Some(inside), now).is_err());
        // Later than the decision (the decision says so): allowed.
        let later = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        assert_eq!(
            effective_from(d(2026, 3, 16), Some(later), now).unwrap(),
            later
        );
        let e = effective_from(d(2026, 3, 16), Some(now + chrono::Duration::hours(1)), now)
            .unwrap_err();
        assert_eq!(e.reason, Reason::InFuture);
    }

    #[test]
    fn a_removal_takes_effect_between_the_listing_and_now() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 15, 16, 0, 0).unwrap();
        assert_eq!(removal_effective_at(None, Some(start), now).unwrap(), now);
        let e =
            removal_effective_at(Some(start - Duration::days(1)), Some(start), now).unwrap_err();
        assert_eq!(e.reason, Reason::DateOrder);
        let e = removal_effective_at(Some(now + Duration::days(1)), Some(start), now).unwrap_err();
        assert_eq!(e.reason, Reason::InFuture);
    }

    #[test]
    fn periods_may_only_lengthen_up_to_the_cap() {
        assert_eq!(period_months(None, rules()).unwrap(), 36);
        assert_eq!(period_months(Some(60), rules()).unwrap(), 60);
        assert!(period_months(Some(12), rules()).is_err());
        assert!(period_months(Some(241), rules()).is_err());
        assert!(period_months(Some(-1), rules()).is_err());
    }

    #[test]
    fn a_corrected_end_neither_removes_nor_relists() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap();
        let past = now - chrono::Duration::days(30);
        let later = now + chrono::Duration::days(30);
        let much_later = now + chrono::Duration::days(300);
        // In force: may end later or sooner, not before now.
        assert!(check_corrected_end_keeps_state(later, much_later, false, now).is_ok());
        assert!(check_corrected_end_keeps_state(much_later, later, false, now).is_ok());
        let ended = check_corrected_end_keeps_state(later, past, false, now).unwrap_err();
        assert_eq!(ended.reason, Reason::InvalidTransition);
        assert!(check_corrected_end_keeps_state(later, now, false, now).is_err());
        // Expired: may be re-dated in the past, not moved past now.
        assert!(check_corrected_end_keeps_state(past, now, false, now).is_ok());
        assert!(check_corrected_end_keeps_state(past, later, false, now).is_err());
        // Removed early: the end decides nothing.
        assert!(check_corrected_end_keeps_state(later, past, true, now).is_ok());
        assert!(check_corrected_end_keeps_state(past, later, true, now).is_ok());
    }

    #[test]
    fn a_removed_periods_end_stays_after_its_removal() {
        let removed = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert!(check_corrected_end_after_removal(removed, removed + Duration::days(1)).is_ok());
        for end in [removed, removed - Duration::days(31)] {
            let e = check_corrected_end_after_removal(removed, end).unwrap_err();
            assert_eq!(
                (e.reason, e.field),
                (Reason::InvalidTransition, Some("expiresAt"))
            );
        }
    }

    #[test]
    fn a_restored_period_is_the_listings_own_and_never_empty() {
        let start = china_midnight(d(2025, 3, 3));
        let first = (start, period_end(start, 36).unwrap());
        let removed = china_midnight(d(2026, 6, 1));
        let at = china_midnight(d(2026, 9, 1));
        // RESTART: the decision's 36 months whatever the list says now, or its override.
        assert_eq!(
            restored_end(at, true, None, first, (first.1, Some(removed))).unwrap(),
            period_end(at, 36).unwrap()
        );
        assert_eq!(
            restored_end(at, true, Some(48), first, (first.1, Some(removed))).unwrap(),
            period_end(at, 48).unwrap()
        );
        // RESUME: the time left at the removal.
        assert_eq!(
            restored_end(at, false, None, first, (first.1, Some(removed))).unwrap(),
            at + (first.1 - removed)
        );
        // Nothing left: refused, not written backwards or empty.
        for end in [removed, removed - Duration::days(31)] {
            let e = restored_end(at, false, None, first, (end, Some(removed))).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidTransition);
        }
        let e = restored_end(
            at,
            true,
            None,
            (start, start + Duration::days(20)),
            (first.1, None),
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::InvalidTransition);
    }

    #[test]
    fn a_decided_listing_needs_a_measure() {
        assert!(check_measures_present(1, false).is_ok());
        for from_defaults in [false, true] {
            let e = check_measures_present(0, from_defaults).unwrap_err();
            assert_eq!(
                (e.reason, e.field),
                (Reason::NoMeasures, Some("measureCodes"))
            );
        }
    }

    #[test]
    fn a_shortened_end_keeps_the_lists_period() {
        let start = china_midnight(d(2026, 3, 16));
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap();
        let minimum = period_end(start, 36).unwrap();
        let recorded = period_end(start, 48).unwrap();
        let check = |current, new, removed| {
            check_shortened_end_keeps_minimum(start, current, new, removed, rules(), now)
        };
        // An over-long record fixed down to the list's period, or lengthened: fine.
        assert!(check(recorded, minimum, false).is_ok());
        assert!(check(minimum, recorded, false).is_ok());
        // Cut below it, a second or a day from now: refused.
        for new in [now + Duration::seconds(1), minimum - Duration::days(1)] {
            let e = check(recorded, new, false).unwrap_err();
            assert_eq!(
                (e.reason, e.field),
                (Reason::PeriodOutOfRange, Some("expiresAt"))
            );
        }
        // Not in force (expired or removed): the end decides no current answer.
        let expired = now - Duration::days(1);
        assert!(check(expired, expired - Duration::days(30), false).is_ok());
        assert!(check(recorded, now + Duration::days(1), true).is_ok());
    }

    #[test]
    fn leap_day_periods_end_on_the_last_day_of_february() {
        // Periods start at Beijing midnight (16:00 UTC the day before).
        let start = china_midnight(d(2024, 2, 29));
        assert_eq!(
            period_end(start, 36).unwrap(),
            china_midnight(d(2027, 2, 28))
        );
    }

    #[test]
    fn periods_end_on_the_beijing_date() {
        // 1 October Beijing is 30 September UTC: 18 months on the UTC calendar would end
        // on 31 March, a day early.
        let start = china_midnight(d(2025, 10, 1));
        assert_eq!(
            period_end(start, 18).unwrap(),
            china_midnight(d(2027, 4, 1))
        );
        assert_eq!(
            period_end(start, 36).unwrap(),
            china_midnight(d(2028, 10, 1))
        );
        assert_eq!(
            period_end(start, u32::MAX).unwrap_err().reason,
            Reason::PeriodOutOfRange
        );
    }

    #[test]
    fn a_recorded_period_keeps_its_own_months() {
        let start = china_midnight(d(2025, 10, 1));
        // No override: the months between start and end, whatever the list says now.
        for months in [12, 18, 36, 60] {
            let end = period_end(start, months).unwrap();
            assert_eq!(recorded_period_months(None, start, end), months);
        }
        let leap = china_midnight(d(2024, 2, 29));
        assert_eq!(
            recorded_period_months(None, leap, period_end(leap, 36).unwrap()),
            36
        );
        // An end corrected to a day short of a whole month: rounded down.
        let short = china_midnight(d(2028, 9, 30));
        assert_eq!(recorded_period_months(None, start, short), 35);
        // A decision instant later in the day than the end's time of day.
        let noon = start + Duration::hours(12);
        assert_eq!(
            recorded_period_months(None, noon, china_midnight(d(2028, 10, 1))),
            35
        );
        // The override wins.
        assert_eq!(recorded_period_months(Some(60), start, short), 60);
    }

    fn decided() -> CorrectedDates {
        CorrectedDates {
            penalty_date: d(2026, 2, 2),
            notice_date: d(2026, 3, 2),
            defence_deadline: d(2026, 3, 9),
            decision_date: Some(d(2026, 3, 16)),
            decided_inside_defence_period: false,
            first_start: Some(china_midnight(d(2026, 3, 16))),
        }
    }

    #[test]
    fn corrections_obey_the_same_date_rules() {
        let today = d(2026, 6, 1);
        assert!(check_corrected_dates(decided(), today).is_ok());
        let mut c = decided();
        c.decision_date = Some(d(2030, 1, 1));
        assert_eq!(
            check_corrected_dates(c, today).unwrap_err().reason,
            Reason::InFuture
        );
        let mut c = decided();
        c.penalty_date = d(2031, 1, 1);
        assert!(check_corrected_dates(c, today).is_err());
        // Moving the decision after the instant the listing took effect.
        let mut c = decided();
        c.decision_date = Some(d(2026, 3, 20));
        assert_eq!(
            check_corrected_dates(c, today).unwrap_err().reason,
            Reason::DateOrder
        );
        // Into the defence period: only where the recorded decision was already there.
        let mut c = decided();
        c.decision_date = Some(d(2026, 3, 5));
        c.first_start = Some(china_midnight(d(2026, 3, 5)));
        assert_eq!(
            check_corrected_dates(c, today).unwrap_err().reason,
            Reason::DefencePeriodOpen
        );
        c.decided_inside_defence_period = true;
        assert!(check_corrected_dates(c, today).is_ok());
    }

    #[test]
    fn a_corrected_end_stays_within_the_period_rules() {
        let start = Utc.with_ymd_and_hms(2026, 3, 15, 16, 0, 0).unwrap();
        let four_years = period_end(start, 48).unwrap();
        assert!(check_corrected_end(start, four_years).is_ok());
        let far = Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(
            check_corrected_end(start, far).unwrap_err().reason,
            Reason::PeriodOutOfRange
        );
        assert!(check_corrected_end(start, period_end(start, 240).unwrap()).is_ok());
        assert!(check_corrected_end(start, period_end(start, 241).unwrap()).is_err());
        // Shorter than the list's period: a correction to what the document says.
        assert!(check_corrected_end(start, period_end(start, 12).unwrap()).is_ok());
        assert_eq!(
            check_corrected_end(start, start).unwrap_err().reason,
            Reason::DateOrder
        );
    }
}
