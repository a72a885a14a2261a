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
}
