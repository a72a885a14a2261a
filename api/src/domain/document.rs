//! Document numbers (文号) of penalty, listing and revocation decisions: the reference a
//! partner files and an auditor looks up, so they are kept exactly, as one line of text.

use super::refusal::{Reason, Refusal};

/// The longest document number kept (real ones are a few dozen characters).
pub const MAX_DOCUMENT_NUMBER_CHARS: usize = 200;

/// A decision's document number, e.g. `清市监罚〔2026〕12号`: trimmed, not empty, one line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DocumentNumber(String);

impl DocumentNumber {
    /// Parses the input `field` (its GraphQL name, for the refusal).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, Refusal> {
        let number = text.trim();
        let refuse = |why: String| {
            Err(Refusal::new(Reason::InvalidDocumentNumber, format!("{field} {why}")).on(field))
        };
        if number.is_empty() {
            return refuse("must not be empty".into());
        }
        if number.chars().count() > MAX_DOCUMENT_NUMBER_CHARS {
            return refuse(format!(
                "is longer than {MAX_DOCUMENT_NUMBER_CHARS} characters"
            ));
        }
        if number.chars().any(char::is_control) {
            return refuse("must be one line without control characters".into());
        }
        Ok(Self(number.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_numbers_are_one_trimmed_line() {
        assert_eq!(
            DocumentNumber::parse("penaltyDocNo", " 清市监罚〔2026〕12号 ")
                .unwrap()
                .as_str(),
            "清市监罚〔2026〕12号"
        );
        for bad in ["", "   ", "a\nb"] {
            let e = DocumentNumber::parse("penaltyDocNo", bad).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidDocumentNumber);
            assert_eq!(e.field, Some("penaltyDocNo"));
        }
        assert!(DocumentNumber::parse("decisionDocNo", &"号".repeat(201)).is_err());
    }
}
