//! Domains a measure restricts and the effect it has on a partner's answer.

//!
//! The stored codes are the active enums of `entity::measure`; each GraphQL enum here
//! maps to its stored twin (`remote`), which is the one place the two meet.

use sea_orm::ActiveEnum;
use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[graphql(
    rename_items = "SCREAMING_SNAKE_CASE",
    remote = "entity::measure::Domain"
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Domain {
    Procurement,
    Bidding,
    LandTransfer,
    Honors,
    Licensing,
    NotificationCommitment,
    Supervision,
}

impl Domain {
    pub const ALL: [Domain; 7] = [
        Domain::Procurement,
        Domain::Bidding,
        Domain::LandTransfer,
        Domain::Honors,
        Domain::Licensing,
        Domain::NotificationCommitment,
        Domain::Supervision,
    ];

    /// A domain named by its stored code in any case, around white space (CLI flags,
    /// token claims, partner rows).
    pub fn parse(text: &str) -> Option<Self> {
        entity::measure::Domain::try_from_value(&text.trim().to_ascii_uppercase())
            .ok()
            .map(Self::from)
    }

    /// The stored code (`PROCUREMENT`, `LAND_TRANSFER`, …).
    pub fn code(self) -> String {
        entity::measure::Domain::from(self).to_value()
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[graphql(
    rename_items = "SCREAMING_SNAKE_CASE",
    remote = "entity::measure::Effect"
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Effect {
    /// The operator may not take part: the check answers RESTRICTED.
    Prohibit,
    /// An important factor in the partner's own review: the check answers REVIEW.
    Consider,
    /// Internal supervision: never changes a partner's answer.
    Supervise,
}

/// A measure as each registry-log entry names it: its code with the domain and effect
/// that decide a check (fixed once a listing uses it: [`refusal_to_edit_in_use`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureEffect {
    pub code: String,
    pub domain: Domain,
    pub effect: Effect,
}

/// Why an edit of a measure in use is refused, or `None` if it may be saved.
///
/// A check's decision depends on the measures of the listings in force and on each
/// measure's domain and effect. The listings travel in the registry log; the catalogue
/// does not (each entry names its measures' codes with the domain and effect they have
/// when it is logged). So once any listing uses a measure, its domain and effect are
/// fixed: otherwise one edit would change the answers for every listing that uses it
/// with no change in the log, and two receipts naming the same registry head could
/// disagree. A new effect is a new code, and each listing moved to it is a correction
/// of that listing, logged like any other. Name, legal basis and `active` stay
/// editable: they change what an answer says, not what it decides.
pub fn refusal_to_edit_in_use(
    code: &str,
    first_used_at: Option<chrono::DateTime<chrono::Utc>>,
    stored: (Domain, Effect),
    requested: (Domain, Effect),
) -> Option<String> {
    let used_since = first_used_at?;
    if stored == requested {
        return None;
    }
    Some(format!(
        "measure {code} has been used by listings since {}: its domain and effect are fixed \
         ({} {}); add a measure with a new code for {} {} and correct the listings to it",
        used_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        super::enum_name(stored.0),
        super::enum_name(stored.1),
        super::enum_name(requested.0),
        super::enum_name(requested.1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_round_trip_through_their_codes() {
        for d in Domain::ALL {
            assert_eq!(Domain::parse(&d.code()), Some(d));
        }
        assert_eq!(Domain::LandTransfer.code(), "LAND_TRANSFER");
        assert_eq!(Domain::parse("procurement"), Some(Domain::Procurement));
        assert_eq!(Domain::parse("FISHING"), None);
    }

    #[test]
    fn a_measure_in_use_keeps_its_domain_and_effect() {
        let stored = (Domain::Procurement, Effect::Consider);
        let since = chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .unwrap()
            .to_utc();
        // Never used: anything goes.
        assert_eq!(
            refusal_to_edit_in_use("M", None, stored, (Domain::Honors, Effect::Prohibit)),
            None
        );
        // Used, same domain and effect (a new name or legal basis): saved.
        assert_eq!(
            refusal_to_edit_in_use("M", Some(since), stored, stored),
            None
        );
        // Used, either one changed: refused, naming what is fixed and the way out.
        let effect = refusal_to_edit_in_use(
            "M",
            Some(since),
            stored,
            (Domain::Procurement, Effect::Prohibit),
        )
        .unwrap();
        assert!(effect.contains("since 2026-03-02T08:00:00Z"), "{effect}");
        assert!(effect.contains("(PROCUREMENT CONSIDER)"), "{effect}");
        assert!(
            effect.contains("new code for PROCUREMENT PROHIBIT"),
            "{effect}"
        );
        assert!(
            refusal_to_edit_in_use(
                "M",
                Some(since),
                stored,
                (Domain::Bidding, Effect::Consider)
            )
            .is_some()
        );
    }
}
