//! The legal lifecycle of a listing (SAMR Order No. 44) as a state machine, and the
//! rule that decides whether a listing is in force at an instant.
//!
//! ```text
//! PROPOSED ──decide──▶ LISTED ──(period ends)──▶ EXPIRED   (computed, never stored)
//!    │                   ├──revoke──▶ REVOKED
//!    └──withdraw──▶ WITHDRAWN          └──repair──▶ REPAIRED ──revoke repair──▶ LISTED
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What is stored (the column's type, `entity::listing::StoredStatus`). `EXPIRED` is not
/// stored: it follows from the dates.
pub use entity::listing::StoredStatus;

/// What callers see: the stored status, with `LISTED` turned into `EXPIRED` once the
/// period has run out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListingStatus {
    Proposed,
    Listed,
    Expired,
    Withdrawn,
    Revoked,
    Repaired,
}

impl ListingStatus {
    /// The stored status of a listing shown in this status (`EXPIRED` is a `LISTED`
    /// listing whose periods have run out).
    pub fn stored(self) -> StoredStatus {
        match self {
            Self::Proposed => StoredStatus::Proposed,
            Self::Listed | Self::Expired => StoredStatus::Listed,
            Self::Withdrawn => StoredStatus::Withdrawn,
            Self::Revoked => StoredStatus::Revoked,
            Self::Repaired => StoredStatus::Repaired,
        }
    }
}

/// A stretch of time during which the listing is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl Period {
    /// **The in-force rule.** In force at `t`: started at or before it, not yet ended,
    /// not removed at or before it. Every query that asks "in force at T" uses this, or
    /// its one SQL translation in `store::in_force` (tested to agree with it).
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.starts_at <= t && t < self.ends_at && self.removed_at.is_none_or(|r| t < r)
    }

    /// **Open** at `t`: not removed and not yet ended. A listed listing with no open
    /// period has expired; a removal (revocation, repair) closes the periods open at its
    /// instant. SQL translation: `store::in_force::period_open_*`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.removed_at.is_none() && t < self.ends_at
    }
}

/// Whether a listing with these periods is in force at `t`.
pub fn in_force_at(periods: &[Period], t: DateTime<Utc>) -> bool {
    periods.iter().any(|p| p.covers(t))
}

/// What callers see, given the stored status, the periods and the present instant.
pub fn display_status(
    stored: StoredStatus,
    periods: &[Period],
    now: DateTime<Utc>,
) -> ListingStatus {
    match stored {
        StoredStatus::Proposed => ListingStatus::Proposed,
        StoredStatus::Withdrawn => ListingStatus::Withdrawn,
        StoredStatus::Revoked => ListingStatus::Revoked,
        StoredStatus::Repaired => ListingStatus::Repaired,
        StoredStatus::Listed => {
            if periods.iter().any(|p| p.is_open(now)) {
                ListingStatus::Listed
            } else {
                ListingStatus::Expired
            }
        }
    }
}

/// The actions on a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Decide,
    Withdraw,
    Revoke,
    Correct,
    Repair,
    RevokeRepair,
}

impl Action {
    pub fn mutation(self) -> &'static str {
        match self {
            Self::Decide => "decideListing",
            Self::Withdraw => "withdrawListing",
            Self::Revoke => "revokeListing",
            Self::Correct => "correctListing",
            Self::Repair => "decideRepairApplication",
            Self::RevokeRepair => "revokeRepair",
        }
    }
}

/// The actions allowed in each visible state. A correction is allowed in every state:
/// it fixes recorded data, it does not move the listing.
pub fn allowed_actions(status: ListingStatus) -> &'static [Action] {
    use Action::*;
    match status {
        ListingStatus::Proposed => &[Decide, Withdraw, Correct],
        ListingStatus::Listed => &[Revoke, Repair, Correct],
        // Nothing leaves EXPIRED: the listing is no longer in force, so there is nothing
        // to revoke (the state diagram has no transition out of it).
        ListingStatus::Expired => &[Correct],
        ListingStatus::Repaired => &[RevokeRepair, Revoke, Correct],
        ListingStatus::Withdrawn | ListingStatus::Revoked => &[Correct],
    }
}

/// Refuses an action the state does not allow, naming the state and what is allowed.
pub fn ensure_allowed(status: ListingStatus, action: Action) -> Result<(), String> {
    let allowed = allowed_actions(status);
    if allowed.contains(&action) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|a| a.mutation()).collect();
    Err(format!(
        "{} is not allowed on a listing in state {}; allowed: {}",
        action.mutation(),
        super::enum_name(status),
        names.join(", ")
    ))
}

/// A removal before the period's end, as recorded or as an imported row states it: by
/// repair (`Repaired`) or by revocation (`Revoked`), on a Beijing date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlyRemoval {
    pub kind: StoredStatus,
    pub on: chrono::NaiveDate,
}

/// **What an import may do to a listing recorded here.** It may correct the listing's
/// facts and its period's length (as `correctListing` may), but an early removal is a
/// lifecycle step with its own procedure: the import may not remove a listing (repair
/// needs a decided application, revocation a revoked penalty), nor reinstate, re-date or
/// re-kind a recorded removal (a repair is undone only by `revokeRepair`, for fraud; a
/// revocation not at all). So the row's early removal must be the recorded one, if any.
/// Refused with the mutation to use instead.
pub fn check_imported_removal(
    listing_id: i64,
    recorded: Option<EarlyRemoval>,
    row: Option<EarlyRemoval>,
) -> Result<(), super::refusal::Refusal> {
    use super::refusal::{Reason, Refusal};
    if recorded == row {
        return Ok(());
    }
    let kind = |k: StoredStatus| match k {
        StoredStatus::Repaired => "REPAIRED",
        _ => "REVOKED",
    };
    let message = match (recorded, row) {
        (None, Some(r)) => format!(
            "listing {listing_id} is not removed here: an import may not remove it as {} on {}; {}",
            kind(r.kind),
            r.on,
            if r.kind == StoredStatus::Repaired {
                format!(
                    "an early removal by credit repair is decided through the repair procedure (submitRepairApplication, then {})",
                    Action::Repair.mutation()
                )
            } else {
                format!(
                    "a revoked penalty's listing is revoked with {}",
                    Action::Revoke.mutation()
                )
            }
        ),
        (Some(rec), row) => format!(
            "listing {listing_id} was removed here as {} on {}: an import may not {}; {}",
            kind(rec.kind),
            rec.on,
            match row {
                None => "reinstate it".to_string(),
                Some(r) if r.kind == rec.kind => format!("move its removal to {}", r.on),
                Some(r) => format!("record it as {} instead", kind(r.kind)),
            },
            if rec.kind == StoredStatus::Repaired {
                format!(
                    "a repair obtained by fraud is undone with {}; a revoked penalty's listing is revoked with {}",
                    Action::RevokeRepair.mutation(),
                    Action::Revoke.mutation()
                )
            } else {
                "a recorded revocation stands (leave the row's removal as recorded)".to_string()
            }
        ),
        (None, None) => return Ok(()),
    };
    Err(Refusal::new(Reason::InvalidTransition, message).on("removedDate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn three_years_from(start: DateTime<Utc>) -> Period {
        Period {
            starts_at: start,
            ends_at: crate::domain::listing_rules::period_end(start, 36).unwrap(),
            removed_at: None,
        }
    }

    #[test]
    fn in_force_from_the_decision_until_one_instant_before_expiry() {
        let p = three_years_from(t(2023, 3, 1));
        assert!(!in_force_at(&[p], t(2023, 3, 1) - Duration::seconds(1)));
        assert!(in_force_at(&[p], t(2023, 3, 1)));
        assert!(in_force_at(&[p], t(2026, 3, 1) - Duration::seconds(1)));
        assert!(!in_force_at(&[p], t(2026, 3, 1)));
        assert!(!in_force_at(&[p], t(2026, 3, 1) + Duration::seconds(1)));
    }

    #[test]
    fn removal_ends_force_at_the_removal_instant() {
        let mut p = three_years_from(t(2023, 3, 1));
        p.removed_at = Some(t(2024, 6, 1));
        assert!(in_force_at(&[p], t(2024, 6, 1) - Duration::seconds(1)));
        assert!(!in_force_at(&[p], t(2024, 6, 1)));
    }

    #[test]
    fn a_second_period_after_a_revoked_repair_counts() {
        let mut first = three_years_from(t(2023, 3, 1));
        first.removed_at = Some(t(2024, 6, 1));
        let second = three_years_from(t(2024, 9, 1));
        let periods = [first, second];
        assert!(!in_force_at(&periods, t(2024, 7, 1)));
        assert!(in_force_at(&periods, t(2024, 9, 2)));
    }

    #[test]
    fn expiry_is_computed() {
        let p = three_years_from(t(2023, 3, 1));
        assert_eq!(
            display_status(StoredStatus::Listed, &[p], t(2025, 1, 1)),
            ListingStatus::Listed
        );
        assert_eq!(
            display_status(StoredStatus::Listed, &[p], t(2026, 3, 1)),
            ListingStatus::Expired
        );
        assert_eq!(
            display_status(StoredStatus::Revoked, &[p], t(2025, 1, 1)),
            ListingStatus::Revoked
        );
    }

    #[test]
    fn transitions_follow_the_regulation() {
        assert!(ensure_allowed(ListingStatus::Proposed, Action::Decide).is_ok());
        assert!(ensure_allowed(ListingStatus::Proposed, Action::Withdraw).is_ok());
        assert!(ensure_allowed(ListingStatus::Listed, Action::Revoke).is_ok());
        let err = ensure_allowed(ListingStatus::Listed, Action::Decide).unwrap_err();
        assert!(err.contains("state LISTED"), "{err}");
        assert!(err.contains("revokeListing"), "{err}");
        assert!(ensure_allowed(ListingStatus::Withdrawn, Action::Decide).is_err());
        assert!(ensure_allowed(ListingStatus::Revoked, Action::Revoke).is_err());
        assert!(ensure_allowed(ListingStatus::Expired, Action::Withdraw).is_err());
        let err = ensure_allowed(ListingStatus::Expired, Action::Revoke).unwrap_err();
        assert!(err.contains("state EXPIRED"), "{err}");
        for s in [
            ListingStatus::Proposed,
            ListingStatus::Listed,
            ListingStatus::Expired,
            ListingStatus::Withdrawn,
            ListingStatus::Revoked,
            ListingStatus::Repaired,
        ] {
            assert!(ensure_allowed(s, Action::Correct).is_ok());
        }
    }

    #[test]
    fn an_import_keeps_the_recorded_removal() {
        let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let repaired = EarlyRemoval {
            kind: StoredStatus::Repaired,
            on: day(16),
        };
        let revoked = EarlyRemoval {
            kind: StoredStatus::Revoked,
            on: day(16),
        };
        // The same removal, or none on either side: allowed.
        assert!(check_imported_removal(1, None, None).is_ok());
        assert!(check_imported_removal(1, Some(repaired), Some(repaired)).is_ok());
        // Removing a listing that is not removed here.
        let e = check_imported_removal(1, None, Some(repaired)).unwrap_err();
        assert_eq!(e.reason, crate::domain::refusal::Reason::InvalidTransition);
        assert_eq!(e.field, Some("removedDate"));
        assert!(
            e.message.contains("decideRepairApplication"),
            "{}",
            e.message
        );
        let e = check_imported_removal(1, None, Some(revoked)).unwrap_err();
        assert!(e.message.contains("revokeListing"), "{}", e.message);
        // Reinstating, re-dating or re-kinding a recorded removal.
        let e = check_imported_removal(1, Some(repaired), None).unwrap_err();
        assert!(e.message.contains("reinstate") && e.message.contains("revokeRepair"));
        let later = EarlyRemoval {
            on: day(20),
            ..repaired
        };
        let e = check_imported_removal(1, Some(repaired), Some(later)).unwrap_err();
        assert!(e.message.contains("2026-03-20"), "{}", e.message);
        let e = check_imported_removal(1, Some(revoked), Some(repaired)).unwrap_err();
        assert!(e.message.contains("as REPAIRED instead"), "{}", e.message);
        assert!(check_imported_removal(1, Some(revoked), None).is_err());
    }

    #[test]
    fn every_shown_status_names_the_stored_one_it_came_from() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let open = Period {
            starts_at: now - chrono::Duration::days(1),
            ends_at: now + chrono::Duration::days(1),
            removed_at: None,
        };
        let stored = [
            StoredStatus::Proposed,
            StoredStatus::Listed,
            StoredStatus::Withdrawn,
            StoredStatus::Revoked,
            StoredStatus::Repaired,
        ];
        for s in stored {
            for periods in [vec![], vec![open]] {
                let shown = display_status(s, &periods, now);
                assert_eq!(shown.stored(), s, "{s:?} shown as {shown:?}");
            }
        }
    }
}
