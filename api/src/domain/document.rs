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

    /// The key two spellings of one document number share, for finding the same decision
    /// typed twice: the number is kept exactly as entered, but `清市监罚〔2026〕12号`,
    /// `清市监罚[2026]12号` and `清市监罚（2026）１２号` name one decision, and an invisible
    /// format character (a zero-width space pasted from a web page) must not make a second.
    /// Full-width forms fold to half-width (as operator names do), every bracket pair
    /// to `[` `]`, and white space and format characters are dropped.
    pub fn matching_key(number: &str) -> String {
        let visible: String = number
            .chars()
            .filter(|c| !is_format_character(*c))
            .collect();
        // Width and spaces as operator names fold them, then brackets to one pair.
        super::names::normalize_name(&visible)
            .chars()
            .map(|c| match c {
                '(' | '〔' | '【' | '[' | '〖' | '〘' | '{' => '[',
                ')' | '〕' | '】' | ']' | '〗' | '〙' | '}' => ']',
                other => other,
            })
            .collect()
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Unicode format characters that are pasted along with text and show as nothing.
fn is_format_character(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
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

    #[test]
    fn spellings_of_one_number_share_a_matching_key() {
        let key = DocumentNumber::matching_key("清市监罚〔2026〕12号");
        for same in [
            "清市监罚[2026]12号",
            "清市监罚（2026）１２号",
            "清市监罚【2026】12号",
            "清市监罚〔2026〕\u{200B}12号",
            "清市监罚 〔2026〕 12号\u{FEFF}",
        ] {
            assert_eq!(DocumentNumber::matching_key(same), key, "{same:?}");
        }
        assert_ne!(DocumentNumber::matching_key("清市监罚〔2026〕13号"), key);
        assert_ne!(DocumentNumber::matching_key("清市监罚〔2025〕12号"), key);
    }
}
