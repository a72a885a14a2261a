//! Credit repair (信用修复): whether a listed operator may be taken off the list early,
//! and whether the authority decided within its time limit.
//!
//! Eligibility for early removal: listed at least the list's minimum (one year) and less
//! than the registry's maximum (three years) on the application date; any statutory
//! restriction period has run out; the penalty's obligations are performed; the harm is
//! corrected; no new listing of the same operator since; and the four documents of an
//! application received. Every condition is answered with a reason, met or not, so that
//! an ineligible applicant is told exactly why.

use super::months_after;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Where an application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(
    rename_items = "SCREAMING_SNAKE_CASE",
    remote = "entity::repair_application::RepairStatus"
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RepairStatus {
    /// Recorded and answered with the conditions it fails; nothing to decide.
    Ineligible,
    /// Accepted; the authority must decide by the due date.
    Pending,
    /// The listing was removed early (REPAIRED).
    Approved,
    Rejected,
    /// The repair was obtained by fraud: the listing is in force again.
    Revoked,
}

/// The documents of a repair application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "RepairDocumentKind")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentKind {
    /// 信用修复申请书
    RepairApplication,
    /// 守信承诺书
    CreditCommitment,
    /// Proof of legal status (e.g. the business licence).
    LegalStatusProof,
    /// Proof that the penalty's obligations were performed.
    PerformanceProof,
}

impl DocumentKind {
    pub const REQUIRED: [Self; 4] = [
        Self::RepairApplication,
        Self::CreditCommitment,
        Self::LegalStatusProof,
        Self::PerformanceProof,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RepairApplication => "REPAIR_APPLICATION",
            Self::CreditCommitment => "CREDIT_COMMITMENT",
            Self::LegalStatusProof => "LEGAL_STATUS_PROOF",
            Self::PerformanceProof => "PERFORMANCE_PROOF",
        }
    }
}

/// The eligibility conditions, each checked and explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RepairCondition {
    /// Listed at least the list's minimum (one year) on the application date.
    MinimumPeriodListed,
    /// Listed less than the maximum (three years) on the application date.
    BelowMaximumPeriod,
    /// Any statutory restriction period has run out (applicant's statement).
    StatutoryRestrictionEnded,
    /// The penalty's obligations are performed (applicant's statement).
    ObligationsPerformed,
    /// The harm is corrected (applicant's statement).
    HarmCorrected,
    /// No new heavier penalty of the same operator since this listing: no other listing
    /// (LISTED or REPAIRED) took effect after it, and none is proposed on a penalty
    /// decided after it.
    NoNewListing,
    /// The four documents of an application were received.
    DocumentsComplete,
}

/// What the applicant states about one condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub affirmed: bool,
    pub note: Option<String>,
}

/// The applicant's statements on the conditions only it can attest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statements {
    pub obligations_performed: Statement,
    pub harm_corrected: Statement,
    pub statutory_restriction_ended: Statement,
}

/// Another listing of the same operator that shows a new heavier penalty since the one
/// to repair took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaterListing {
    pub id: i64,
    pub list_code: String,
    pub since: LaterSince,
}

/// Why a later listing counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaterSince {
    /// Decided, and took effect on this date (after the listing to repair).
    Listed(NaiveDate),
    /// Only proposed (the party is being heard), resting on a penalty decided on this
    /// date, after the listing to repair took effect: the condition is about the
    /// penalty, which exists whether or not its listing is decided yet.
    Proposed { penalty_date: NaiveDate },
}

/// What eligibility is judged on.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// The Beijing date the listing first took effect.
    pub listed_on: NaiveDate,
    /// The date the application was received.
    pub received_on: NaiveDate,
    pub min_months: u32,
    pub max_months: u32,
    pub statements: &'a Statements,
    pub later_listings: &'a [LaterListing],
    pub documents: &'a [DocumentKind],
}

/// One condition's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject)]
#[graphql(name = "RepairConditionResult")]
pub struct ConditionResult {
    pub condition: RepairCondition,
    pub met: bool,
    pub explanation: String,
}

/// Where a listing stands against the list's repair minimum on a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinimumListed {
    /// Listed at least the minimum: reached on this date.
    Reached(NaiveDate),
    /// Not yet: the minimum is reached on this date.
    NotYet(NaiveDate),
    /// The minimum ends beyond the calendar.
    BeyondCalendar,
}

/// **The repair minimum** (listed at least `min_months`, one year by default, before an
/// early removal): judged on `on`, the date an application is received or an imported
/// repair took effect, for a listing in force since `listed_on` (Beijing dates). The one
/// place the rule lives: the repair procedure's assessment and the import both ask it.
pub fn minimum_listed(listed_on: NaiveDate, min_months: u32, on: NaiveDate) -> MinimumListed {
    match months_after(listed_on, min_months) {
        Some(d) if on >= d => MinimumListed::Reached(d),
        Some(d) => MinimumListed::NotYet(d),
        None => MinimumListed::BeyondCalendar,
    }
}

fn statement_result(condition: RepairCondition, s: &Statement, what: &str) -> ConditionResult {
    let note = s
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    ConditionResult {
        condition,
        met: s.affirmed,
        explanation: if s.affirmed {
            format!("the applicant states that {what}{note}")
        } else {
            format!("the applicant does not state that {what}{note}")
        },
    }
}

/// Judges every condition; the result lists all of them, met or not, in a fixed order.
pub fn assess(f: &Facts<'_>) -> Vec<ConditionResult> {
    let mut out = Vec::with_capacity(7);

    let minimum = minimum_listed(f.listed_on, f.min_months, f.received_on);
    out.push(ConditionResult {
        condition: RepairCondition::MinimumPeriodListed,
        met: matches!(minimum, MinimumListed::Reached(_)),
        explanation: match minimum {
            MinimumListed::Reached(d) => format!(
                "listed since {}: at least {} months on {} (reached on {d})",
                f.listed_on, f.min_months, f.received_on
            ),
            MinimumListed::NotYet(d) => format!(
                "listed since {}: less than {} months on {}; an application may be made from {d}",
                f.listed_on, f.min_months, f.received_on
            ),
            MinimumListed::BeyondCalendar => format!(
                "{} months after {} is beyond the calendar",
                f.min_months, f.listed_on
            ),
        },
    });

    let max_reached = months_after(f.listed_on, f.max_months);
    out.push(ConditionResult {
        condition: RepairCondition::BelowMaximumPeriod,
        met: max_reached.is_none_or(|d| f.received_on < d),
        explanation: match max_reached {
            Some(d) if f.received_on >= d => format!(
                "listed since {}: {} months or more on {} (reached on {d}); early removal is no longer available",
                f.listed_on, f.max_months, f.received_on
            ),
            _ => format!(
                "listed since {}: less than {} months on {}",
                f.listed_on, f.max_months, f.received_on
            ),
        },
    });

    out.push(statement_result(
        RepairCondition::StatutoryRestrictionEnded,
        &f.statements.statutory_restriction_ended,
        "any statutory restriction period has run out",
    ));
    out.push(statement_result(
        RepairCondition::ObligationsPerformed,
        &f.statements.obligations_performed,
        "the obligations of the penalty are performed",
    ));
    out.push(statement_result(
        RepairCondition::HarmCorrected,
        &f.statements.harm_corrected,
        "the harm is corrected",
    ));

    out.push(ConditionResult {
        condition: RepairCondition::NoNewListing,
        met: f.later_listings.is_empty(),
        explanation: if f.later_listings.is_empty() {
            "no later listing of the operator".to_string()
        } else {
            let named: Vec<String> = f
                .later_listings
                .iter()
                .map(|l| match l.since {
                    LaterSince::Listed(on) => {
                        format!("listing {} on {} since {on}", l.id, l.list_code)
                    }
                    LaterSince::Proposed { penalty_date } => format!(
                        "listing {} on {} proposed for a penalty of {penalty_date}",
                        l.id, l.list_code
                    ),
                })
                .collect();
            format!(
                "the operator received a new heavier penalty since: {}",
                named.join("; ")
            )
        },
    });

    let missing: Vec<&str> = DocumentKind::REQUIRED
        .iter()
        .filter(|k| !f.documents.contains(k))
        .map(|k| k.as_str())
        .collect();
    out.push(ConditionResult {
        condition: RepairCondition::DocumentsComplete,
        met: missing.is_empty(),
        explanation: if missing.is_empty() {
            "all four documents were received".to_string()
        } else {
            format!("missing: {}", missing.join(", "))
        },
    });
    out
}

/// Judges a pending application again when it is decided: eligibility at submission does
/// not carry to the decision, since the registry may have changed in between (the
/// operator listed again for a heavier penalty, the listing's start corrected). Every
/// condition is judged anew on the facts as they stand, except the maximum period,
/// whose verdict at submission (`recorded`) is kept: it depends only on the received
/// date, which is fixed, and on the registry's configured maximum, which the decision
/// is not given (`f.max_months` is ignored).
pub fn reassess(f: &Facts<'_>, recorded: &[ConditionResult]) -> Vec<ConditionResult> {
    let mut out = assess(&Facts {
        max_months: u32::MAX,
        ..f.clone()
    });
    if let Some(kept) = recorded
        .iter()
        .find(|r| r.condition == RepairCondition::BelowMaximumPeriod)
        && let Some(slot) = out
            .iter_mut()
            .find(|r| r.condition == RepairCondition::BelowMaximumPeriod)
    {
        *slot = kept.clone();
    }
    out
}

/// Eligible when every condition is met.
pub fn is_eligible(results: &[ConditionResult]) -> bool {
    results.iter().all(|r| r.met)
}

/// A SHA-256 digest as 64 hexadecimal characters, normalised to lower case.
pub fn parse_sha256(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{v}' is not a SHA-256 digest (64 hexadecimal characters)"
        ))
    }
}

/// A decision is on time when made on or before its due date (Beijing dates).
pub fn decided_on_time(due: NaiveDate, decided_on: NaiveDate) -> bool {
    decided_on <= due
}

/// Overdue: still pending after its due date, or decided after it.
pub fn is_overdue(
    status: RepairStatus,
    due: Option<NaiveDate>,
    decided_on: Option<NaiveDate>,
    today: NaiveDate,
) -> bool {
    let Some(due) = due else {
        return false;
    };
    match decided_on {
        Some(decided) => !decided_on_time(due, decided),
        None => status == RepairStatus::Pending && today > due,
    }
}

/// The share of decisions made on time over a period.
#[derive(Clone, Copy, Debug, PartialEq, async_graphql::SimpleObject)]
#[graphql(name = "RepairOnTimeRate")]
pub struct OnTimeRate {
    /// Decisions made in the period.
    pub decided: i64,
    /// Decided on or before the due date.
    pub on_time: i64,
    /// Decided after the due date.
    pub overdue: i64,
    /// `onTime / decided` (0–1); null when nothing was decided.
    pub rate: Option<f64>,
    /// Whether the rate reaches the plan's target (at least 98 %); null when nothing was decided.
    pub meets_target: Option<bool>,
}

/// The plan's target for time-limited handling.
pub const ON_TIME_TARGET: f64 = 0.98;

pub fn on_time_rate(decided: i64, on_time: i64) -> OnTimeRate {
    let rate = (decided > 0).then(|| on_time as f64 / decided as f64);
    OnTimeRate {
        decided,
        on_time,
        overdue: decided - on_time,
        rate,
        meets_target: rate.map(|r| r >= ON_TIME_TARGET),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn yes() -> Statement {
        Statement {
            affirmed: true,
            note: None,
        }
    }

    fn all_stated() -> Statements {
        Statements {
            obligations_performed: yes(),
            harm_corrected: yes(),
            statutory_restriction_ended: yes(),
        }
    }

    fn facts<'a>(
        listed_on: NaiveDate,
        received_on: NaiveDate,
        statements: &'a Statements,
        later: &'a [LaterListing],
        documents: &'a [DocumentKind],
    ) -> Facts<'a> {
        Facts {
            listed_on,
            received_on,
            min_months: 12,
            max_months: 36,
            statements,
            later_listings: later,
            documents,
        }
    }

    fn failed(results: &[ConditionResult]) -> Vec<RepairCondition> {
        results
            .iter()
            .filter(|r| !r.met)
            .map(|r| r.condition)
            .collect()
    }

    #[test]
    fn a_complete_application_after_a_year_is_eligible() {
        let s = all_stated();
        let r = assess(&facts(
            d(2025, 1, 1),
            d(2026, 1, 1),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert_eq!(r.len(), 7);
        assert!(is_eligible(&r), "{r:?}");
    }

    #[test]
    fn one_day_short_of_a_year_is_not_enough() {
        let s = all_stated();
        let listed = d(2025, 1, 1);
        let early = assess(&facts(
            listed,
            listed + chrono::Days::new(364),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert_eq!(failed(&early), vec![RepairCondition::MinimumPeriodListed]);
        assert!(early[0].explanation.contains("2026-01-01"), "{early:?}");
        let late = assess(&facts(
            listed,
            listed + chrono::Days::new(366),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert!(is_eligible(&late));
    }

    #[test]
    fn a_year_from_the_last_day_of_february_in_a_leap_year() {
        let s = all_stated();
        let listed = d(2024, 2, 29);
        let r = assess(&facts(
            listed,
            d(2025, 2, 27),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert_eq!(failed(&r), vec![RepairCondition::MinimumPeriodListed]);
        let r = assess(&facts(
            listed,
            d(2025, 2, 28),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert!(is_eligible(&r), "{r:?}");
    }

    #[test]
    fn the_minimum_is_reached_on_the_same_day_a_year_later() {
        let listed = d(2025, 2, 10);
        assert_eq!(
            minimum_listed(listed, 12, d(2026, 2, 9)),
            MinimumListed::NotYet(d(2026, 2, 10))
        );
        assert_eq!(
            minimum_listed(listed, 12, d(2026, 2, 10)),
            MinimumListed::Reached(d(2026, 2, 10))
        );
        assert_eq!(
            minimum_listed(listed, u32::MAX, d(2026, 2, 10)),
            MinimumListed::BeyondCalendar
        );
    }

    #[test]
    fn three_years_or_more_is_too_late() {
        let s = all_stated();
        let listed = d(2023, 3, 1);
        let r = assess(&facts(
            listed,
            d(2026, 2, 28),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert!(is_eligible(&r));
        let r = assess(&facts(
            listed,
            d(2026, 3, 1),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert_eq!(failed(&r), vec![RepairCondition::BelowMaximumPeriod]);
    }

    #[test]
    fn statements_later_listings_and_documents_are_each_named() {
        let s = Statements {
            obligations_performed: Statement {
                affirmed: false,
                note: Some("罚款尚未缴清".into()),
            },
            harm_corrected: yes(),
            statutory_restriction_ended: Statement::default(),
        };
        let later = [
            LaterListing {
                id: 7,
                list_code: "SAMR_SERIOUS_DISHONEST".into(),
                since: LaterSince::Listed(d(2025, 6, 1)),
            },
            LaterListing {
                id: 8,
                list_code: "TAX_MAJOR_VIOLATION".into(),
                since: LaterSince::Proposed {
                    penalty_date: d(2025, 9, 1),
                },
            },
        ];
        let r = assess(&facts(
            d(2025, 1, 1),
            d(2026, 2, 1),
            &s,
            &later,
            &[
                DocumentKind::RepairApplication,
                DocumentKind::CreditCommitment,
            ],
        ));
        assert_eq!(
            failed(&r),
            vec![
                RepairCondition::StatutoryRestrictionEnded,
                RepairCondition::ObligationsPerformed,
                RepairCondition::NoNewListing,
                RepairCondition::DocumentsComplete,
            ]
        );
        let text = |c| {
            r.iter()
                .find(|x| x.condition == c)
                .map(|x| x.explanation.clone())
                .unwrap()
        };
        assert!(text(RepairCondition::ObligationsPerformed).contains("罚款尚未缴清"));
        let no_new = text(RepairCondition::NoNewListing);
        assert!(no_new.contains("listing 7 on SAMR_SERIOUS_DISHONEST since 2025-06-01"));
        assert!(
            no_new
                .contains("listing 8 on TAX_MAJOR_VIOLATION proposed for a penalty of 2025-09-01")
        );
        let docs = text(RepairCondition::DocumentsComplete);
        assert!(docs.contains("LEGAL_STATUS_PROOF") && docs.contains("PERFORMANCE_PROOF"));
        assert!(!docs.contains("CREDIT_COMMITMENT"), "{docs}");
    }

    #[test]
    fn a_decision_judges_a_later_listing_again_and_keeps_the_maximum() {
        let s = all_stated();
        let listed = d(2025, 1, 1);
        let at_submission = assess(&facts(
            listed,
            d(2026, 1, 5),
            &s,
            &[],
            &DocumentKind::REQUIRED,
        ));
        assert!(is_eligible(&at_submission));
        // Unchanged registry: still eligible.
        let same = reassess(
            &facts(listed, d(2026, 1, 5), &s, &[], &DocumentKind::REQUIRED),
            &at_submission,
        );
        assert_eq!(same, at_submission);
        // Listed again since: the decision sees it.
        let later = [LaterListing {
            id: 9,
            list_code: "SAMR_SERIOUS_DISHONEST".into(),
            since: LaterSince::Listed(d(2026, 1, 10)),
        }];
        let now = reassess(
            &facts(listed, d(2026, 1, 5), &s, &later, &DocumentKind::REQUIRED),
            &at_submission,
        );
        assert_eq!(failed(&now), vec![RepairCondition::NoNewListing]);
        // The maximum's verdict is the one recorded at submission.
        let mut recorded = at_submission.clone();
        recorded[1].met = false;
        let kept = reassess(
            &facts(listed, d(2026, 1, 5), &s, &[], &DocumentKind::REQUIRED),
            &recorded,
        );
        assert_eq!(failed(&kept), vec![RepairCondition::BelowMaximumPeriod]);
    }

    #[test]
    fn digests_are_64_hex_characters() {
        let good = "AB".repeat(32);
        assert_eq!(parse_sha256(&good).unwrap(), "ab".repeat(32));
        assert!(parse_sha256(&"ab".repeat(31)).is_err());
        assert!(parse_sha256(&format!("{}zz", "ab".repeat(31))).is_err());
        assert!(parse_sha256("").is_err());
    }

    #[test]
    fn overdue_while_pending_past_the_due_date_or_decided_late() {
        let due = Some(d(2026, 3, 11));
        let p = RepairStatus::Pending;
        assert!(!is_overdue(p, due, None, d(2026, 3, 11)));
        assert!(is_overdue(p, due, None, d(2026, 3, 12)));
        let a = RepairStatus::Approved;
        assert!(!is_overdue(a, due, Some(d(2026, 3, 11)), d(2026, 9, 1)));
        assert!(is_overdue(a, due, Some(d(2026, 3, 12)), d(2026, 3, 12)));
        // A repair revoked later still counts by when it was decided.
        assert!(is_overdue(
            RepairStatus::Revoked,
            due,
            Some(d(2026, 4, 1)),
            d(2026, 9, 1)
        ));
        // An ineligible application has no deadline.
        assert!(!is_overdue(
            RepairStatus::Ineligible,
            None,
            None,
            d(2030, 1, 1)
        ));
    }

    #[test]
    fn the_on_time_rate() {
        let r = on_time_rate(4, 3);
        assert_eq!(r.overdue, 1);
        assert_eq!(r.rate, Some(0.75));
        assert_eq!(r.meets_target, Some(false));
        assert_eq!(on_time_rate(50, 49).meets_target, Some(true));
        assert_eq!(on_time_rate(0, 0).rate, None);
    }
}
