//! Why a rule refused an input: the `extensions.details.reason` values partners and
//! admin tools program against, in one enum so that no string is spelled twice.

use serde_json::{Map, Value, json};

/// The stable machine-readable reasons of `BAD_USER_INPUT` refusals. The strings are a
/// contract: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The listing's state does not allow the mutation.
    InvalidTransition,
    /// A decision inside the party's defence period, without a waiver.
    DefencePeriodOpen,
    /// A working-day limit reaches into a year with no calendar.
    CalendarMissing,
    /// A document's SHA-256 is not 64 hex digits.
    InvalidSha256,
    /// A repair application names a listing that is not in force.
    ListingNotInForce,
    /// A typical case must be a decided listing.
    NotDecided,
    /// `first` above the maximum page size.
    PageTooLarge,
    /// Two dates of a listing in the wrong order (notice before penalty, effect before
    /// decision, a period ending before it starts, …).
    DateOrder,
    /// A date or instant that has not happened yet.
    InFuture,
    /// A period shorter than the list's or longer than the cap.
    PeriodOutOfRange,
    /// Feedback names a measure that was not among the check's hits.
    MeasureNotAHit,
    /// Search text too short for the name index (fewer than three characters).
    SearchTooShort,
    /// Not a six-digit administrative division code.
    InvalidDivisionCode,
    /// A document number (文号) that is empty, too long or not one line.
    InvalidDocumentNumber,
    /// A pending repair application that fails a condition when it is decided (a later
    /// listing since its submission, say): it can be rejected, not approved.
    NoLongerEligible,
    /// A decided listing left with no measure (an explicitly empty set, or list defaults
    /// that are all inactive): it would stay LISTED and public while restricting nobody.
    NoMeasures,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::DefencePeriodOpen => "DEFENCE_PERIOD_OPEN",
            Self::CalendarMissing => "CALENDAR_MISSING",
            Self::InvalidSha256 => "INVALID_SHA256",
            Self::ListingNotInForce => "LISTING_NOT_IN_FORCE",
            Self::NotDecided => "NOT_DECIDED",
            Self::PageTooLarge => "PAGE_TOO_LARGE",
            Self::DateOrder => "DATE_ORDER",
            Self::InFuture => "IN_FUTURE",
            Self::PeriodOutOfRange => "PERIOD_OUT_OF_RANGE",
            Self::MeasureNotAHit => "MEASURE_NOT_A_HIT",
            Self::SearchTooShort => "SEARCH_TOO_SHORT",
            Self::InvalidDivisionCode => "INVALID_DIVISION_CODE",
            Self::InvalidDocumentNumber => "INVALID_DOCUMENT_NUMBER",
            Self::NoLongerEligible => "NO_LONGER_ELIGIBLE",
            Self::NoMeasures => "NO_MEASURES",
        }
    }
}

/// A rule's refusal of an input: a message for people, a reason and details for programs.
/// Converted into `BAD_USER_INPUT` at the service boundary (`AppError::from`).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub message: String,
    pub reason: Reason,
    /// The input field the refusal is about (GraphQL name), when there is one.
    pub field: Option<&'static str>,
    /// Further details (merged into `extensions.details` next to `reason`).
    pub extra: Map<String, Value>,
}

impl Refusal {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reason,
            field: None,
            extra: Map::new(),
        }
    }

    pub fn on(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// `extensions.details`: `{reason, field?, ...extra}`.
    pub fn details(&self) -> Value {
        let mut details = self.extra.clone();
        details.insert("reason".into(), json!(self.reason.as_str()));
        if let Some(field) = self.field {
            details.insert("field".into(), json!(field));
        }
        Value::Object(details)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_strings_stay_as_published() {
        let published = [
            (Reason::InvalidTransition, "INVALID_TRANSITION"),
            (Reason::DefencePeriodOpen, "DEFENCE_PERIOD_OPEN"),
            (Reason::CalendarMissing, "CALENDAR_MISSING"),
            (Reason::InvalidSha256, "INVALID_SHA256"),
            (Reason::ListingNotInForce, "LISTING_NOT_IN_FORCE"),
            (Reason::NotDecided, "NOT_DECIDED"),
            (Reason::PageTooLarge, "PAGE_TOO_LARGE"),
            (Reason::NoLongerEligible, "NO_LONGER_ELIGIBLE"),
            (Reason::NoMeasures, "NO_MEASURES"),
        ];
        for (reason, text) in published {
            assert_eq!(reason.as_str(), text);
        }
    }

    #[test]
    fn details_carry_the_reason_field_and_extras() {
        let r = Refusal::new(Reason::DateOrder, "x")
            .on("effectiveAt")
            .with("decisionDate", "2026-03-16");
        assert_eq!(
            r.details(),
            json!({"reason": "DATE_ORDER", "field": "effectiveAt", "decisionDate": "2026-03-16"})
        );
    }
}
