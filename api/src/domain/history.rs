//! Record time and the change feed, as pure rules: which recorded actions a partner's
//! mirror must see, when each took effect, which revision answers a record-time
//! question, and when the expiry job has to record an expiry.

use super::lifecycle::{ListingStatus, Period, StoredStatus, display_status};
use chrono::{DateTime, Utc};

/// What happened to a listing, as the change feed reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    Decided,
    Corrected,
    MeasuresChanged,
    Expired,
    Repaired,
    Revoked,
    Withdrawn,
    RepairRevoked,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 8] = [
        Self::Decided,
        Self::Corrected,
        Self::MeasuresChanged,
        Self::Expired,
        Self::Repaired,
        Self::Revoked,
        Self::Withdrawn,
        Self::RepairRevoked,
    ];

    /// The revision (and audit) action that records this kind of change.
    pub fn action(self) -> &'static str {
        match self {
            Self::Decided => "listing.decided",
            Self::Corrected => "listing.corrected",
            Self::MeasuresChanged => "listing.measures_changed",
            Self::Expired => "listing.expired",
            Self::Repaired => "listing.repaired",
            Self::Revoked => "listing.revoked",
            Self::Withdrawn => "listing.withdrawn",
            Self::RepairRevoked => "listing.repair_revoked",
        }
    }

    /// `None` for actions the feed leaves out (a proposal is not on any list yet).
    pub fn from_action(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.action() == action)
    }

    pub fn feed_actions() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.action()).collect()
    }
}

/// Whether a revision recorded at `recorded_at` and superseded at `superseded_at` is
/// what the registry held at `known_at`: `[recorded_at, superseded_at)`.
pub fn revision_covers(
    recorded_at: DateTime<Utc>,
    superseded_at: Option<DateTime<Utc>>,
    known_at: DateTime<Utc>,
) -> bool {
    recorded_at <= known_at && superseded_at.is_none_or(|s| known_at < s)
}

/// When a change took effect in valid time (a decision may be back-dated, an expiry is
/// recorded after the period ran out); `recorded_at` when the change has no date of
/// its own (a correction).
pub fn effective_at(
    kind: ChangeKind,
    periods: &[Period],
    recorded_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let last = periods.iter().max_by_key(|p| p.starts_at);
    match kind {
        ChangeKind::Decided | ChangeKind::RepairRevoked => {
            last.map_or(recorded_at, |p| p.starts_at)
        }
        ChangeKind::Expired => last.map_or(recorded_at, |p| p.ends_at),
        ChangeKind::Repaired | ChangeKind::Revoked => periods
            .iter()
            .filter_map(|p| p.removed_at)
            .max()
            .unwrap_or(recorded_at),
        ChangeKind::Corrected | ChangeKind::MeasuresChanged | ChangeKind::Withdrawn => recorded_at,
    }
}

/// The expiry job records an expiry when the listing's latest revision still showed it
/// listed when it was recorded, and it has expired since. Once recorded, the latest
/// revision shows it expired, so running the job again records nothing.
pub fn needs_expiry_event(
    stored: StoredStatus,
    periods: &[Period],
    latest_recorded_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    display_status(stored, periods, latest_recorded_at) == ListingStatus::Listed
        && display_status(stored, periods, now) == ListingStatus::Expired
}

/// A catalogue entry at an instant, from the audit events of its edits (`before` and
/// `after` documents, in chain order): the catalogue keeps only the current row.
#[derive(Clone, Debug, PartialEq)]
pub enum CatalogueStateAt<'a> {
    /// The document an edit recorded.
    Recorded(&'a serde_json::Value),
    /// It did not exist yet.
    Absent,
    /// Never edited through the API (seeded): the current row is what it was.
    Current,
}

/// Each event is `(occurred_at, before, after)`, oldest first.
pub fn catalogue_state_at<'a>(
    events: &'a [(
        DateTime<Utc>,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    )],
    at: DateTime<Utc>,
) -> CatalogueStateAt<'a> {
    if let Some((_, _, after)) = events.iter().rev().find(|(t, _, _)| *t <= at) {
        return after
            .as_ref()
            .map_or(CatalogueStateAt::Absent, CatalogueStateAt::Recorded);
    }
    match events.first() {
        Some((_, Some(before), _)) => CatalogueStateAt::Recorded(before),
        Some((_, None, _)) => CatalogueStateAt::Absent,
        None => CatalogueStateAt::Current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn period(start: DateTime<Utc>, end: DateTime<Utc>) -> Period {
        Period {
            starts_at: start,
            ends_at: end,
            removed_at: None,
        }
    }

    #[test]
    fn actions_round_trip_and_proposals_are_left_out() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::from_action(k.action()), Some(k));
        }
        assert_eq!(ChangeKind::from_action("listing.proposed"), None);
        assert_eq!(ChangeKind::feed_actions().len(), 8);
    }

    #[test]
    fn a_revision_covers_its_half_open_interval() {
        let (r, s) = (t(2026, 3, 1), t(2026, 4, 1));
        assert!(!revision_covers(r, Some(s), r - Duration::microseconds(1)));
        assert!(revision_covers(r, Some(s), r));
        assert!(revision_covers(r, Some(s), s - Duration::microseconds(1)));
        assert!(!revision_covers(r, Some(s), s));
        assert!(revision_covers(r, None, t(2099, 1, 1)));
    }

    #[test]
    fn effective_instants_follow_the_dates() {
        let recorded = t(2026, 5, 1);
        let mut p = period(t(2023, 3, 1), t(2026, 3, 1));
        assert_eq!(
            effective_at(ChangeKind::Decided, &[p], recorded),
            t(2023, 3, 1)
        );
        assert_eq!(
            effective_at(ChangeKind::Expired, &[p], recorded),
            t(2026, 3, 1)
        );
        assert_eq!(effective_at(ChangeKind::Revoked, &[p], recorded), recorded);
        p.removed_at = Some(t(2024, 1, 1));
        assert_eq!(
            effective_at(ChangeKind::Revoked, &[p], recorded),
            t(2024, 1, 1)
        );
        assert_eq!(
            effective_at(ChangeKind::Corrected, &[p], recorded),
            recorded
        );
        assert_eq!(effective_at(ChangeKind::Decided, &[], recorded), recorded);
    }

    #[test]
    fn catalogue_entries_are_rebuilt_from_their_edits() {
        let seeded = serde_json::json!({"effect": "PROHIBIT"});
        let edited = serde_json::json!({"effect": "CONSIDER"});
        let events = vec![(t(2026, 3, 1), Some(seeded.clone()), Some(edited.clone()))];
        assert_eq!(
            catalogue_state_at(&events, t(2026, 2, 1)),
            CatalogueStateAt::Recorded(&seeded)
        );
        assert_eq!(
            catalogue_state_at(&events, t(2026, 3, 1)),
            CatalogueStateAt::Recorded(&edited)
        );
        let created = vec![(t(2026, 3, 1), None, Some(edited.clone()))];
        assert_eq!(
            catalogue_state_at(&created, t(2026, 2, 1)),
            CatalogueStateAt::Absent
        );
        assert_eq!(
            catalogue_state_at(&[], t(2026, 2, 1)),
            CatalogueStateAt::Current
        );
    }

    #[test]
    fn expiry_is_recorded_once() {
        let p = period(t(2023, 3, 1), t(2026, 3, 1));
        let decided_at = t(2023, 3, 1);
        let now = t(2026, 3, 2);
        assert!(needs_expiry_event(
            StoredStatus::Listed,
            &[p],
            decided_at,
            now
        ));
        // Not yet expired.
        assert!(!needs_expiry_event(
            StoredStatus::Listed,
            &[p],
            decided_at,
            t(2026, 2, 28)
        ));
        // The latest revision (the expiry itself, or a later correction) already showed it expired.
        assert!(!needs_expiry_event(StoredStatus::Listed, &[p], now, now));
        // Revoked or repaired listings do not expire.
        assert!(!needs_expiry_event(
            StoredStatus::Revoked,
            &[p],
            decided_at,
            now
        ));
    }
}
