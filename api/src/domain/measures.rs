//! Domains a measure restricts and the effect it has on a partner's answer.

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
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
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

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Procurement => "PROCUREMENT",
            Domain::Bidding => "BIDDING",
            Domain::LandTransfer => "LAND_TRANSFER",
            Domain::Honors => "HONORS",
            Domain::Licensing => "LICENSING",
            Domain::NotificationCommitment => "NOTIFICATION_COMMITMENT",
            Domain::Supervision => "SUPERVISION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
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
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Effect {
    /// The operator may not take part: the check answers RESTRICTED.
    Prohibit,
    /// An important factor in the partner's own review: the check answers REVIEW.
    Consider,
    /// Internal supervision: never changes a partner's answer.
    Supervise,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Prohibit => "PROHIBIT",
            Effect::Consider => "CONSIDER",
            Effect::Supervise => "SUPERVISE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Effect::Prohibit, Effect::Consider, Effect::Supervise]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_round_trip_through_their_codes() {
        for d in Domain::ALL {
            assert_eq!(Domain::parse(d.as_str()), Some(d));
        }
        assert_eq!(Domain::parse("procurement"), Some(Domain::Procurement));
        assert_eq!(Domain::parse("FISHING"), None);
    }
}
