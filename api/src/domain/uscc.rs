//! The unified social credit code (统一社会信用代码), GB 32100-2015.
//!
//! 18 characters over an alphabet of 31 symbols (`0-9A-Z` without `I O Z S V`):
//! position 1 the registration authority, 2 the entity type, 3-8 the administrative
//! division, 9-17 the organisation code (position 17 is its GB 11714 check digit)
//! and 18 the final check digit over positions 1-17.

use std::fmt;

/// The 31 symbols in value order (0..=30).
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights `3^(i-1) mod 31` for positions 1-17.
const FINAL_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// GB 11714 weights over positions 9-16.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

pub const USCC_LEN: usize = 18;

/// A syntactically valid code: right length and alphabet. Whether its check digits hold
/// is a separate question (`check_digit_problem`), because some real older codes fail
/// them and must still be checkable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

/// Why a string is not a usable code. Each variant has its own message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error("a unified social credit code has 18 characters, this one has {0}")]
    Length(usize),
    #[error(
        "character '{ch}' at position {position} is not allowed in a unified social credit code (digits and capital letters except I, O, Z, S, V)"
    )]
    Charset { position: usize, ch: char },
    #[error(transparent)]
    CheckDigit(#[from] CheckDigitProblem),
}

/// A code in the right format whose check digits do not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckDigitProblem {
    #[error(
        "the organisation code check digit (position 17) is '{found}' but should be '{expected}'"
    )]
    OrganisationCode { expected: char, found: char },
    #[error("the final check digit (position 18) is '{found}' but should be '{expected}'")]
    Final { expected: char, found: char },
}

fn symbol_value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// GB 11714 value of a character: digits 0-9, letters A=10 ... Z=35.
fn org_value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        _ => u32::from(b - b'A') + 10,
    }
}

/// GB 11714 check digit over the 8 characters of the organisation code body.
fn organisation_check_digit(body: &[u8]) -> char {
    let sum: u32 = body
        .iter()
        .zip(ORG_WEIGHTS)
        .map(|(&c, w)| org_value(c) * w)
        .sum();
    match 11 - (sum % 11) {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('0'),
    }
}

/// GB 32100 final check digit over positions 1-17 (all in the alphabet).
fn final_check_digit(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(FINAL_WEIGHTS)
        .map(|(&c, w)| symbol_value(c).unwrap_or(0) * w)
        .sum();
    ALPHABET[((31 - sum % 31) % 31) as usize] as char
}

impl Uscc {
    /// Normalises (trims white space, upper-cases) and checks length and alphabet.
    pub fn parse_format(input: &str) -> Result<Self, UsccError> {
        let normalised: String = input.trim().to_uppercase();
        let len = normalised.chars().count();
        if len != USCC_LEN {
            return Err(UsccError::Length(len));
        }
        for (i, ch) in normalised.chars().enumerate() {
            if !ch.is_ascii() || symbol_value(ch as u8).is_none() {
                return Err(UsccError::Charset {
                    position: i + 1,
                    ch,
                });
            }
        }
        Ok(Self(normalised))
    }

    /// Format and both check digits: what admins must enter unless they override.
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let code = Self::parse_format(input)?;
        match code.check_digit_problem() {
            Some(problem) => Err(problem.into()),
            None => Ok(code),
        }
    }

    /// The first failing check digit, if any. The final digit is checked first: it covers
    /// the whole code, and it is the one every validator of these codes checks.
    pub fn check_digit_problem(&self) -> Option<CheckDigitProblem> {
        let b = self.0.as_bytes();
        let expected_final = final_check_digit(&b[..17]);
        if b[17] as char != expected_final {
            return Some(CheckDigitProblem::Final {
                expected: expected_final,
                found: b[17] as char,
            });
        }
        let expected_org = organisation_check_digit(&b[8..16]);
        if b[16] as char != expected_org {
            return Some(CheckDigitProblem::OrganisationCode {
                expected: expected_org,
                found: b[16] as char,
            });
        }
        None
    }

    /// Positions 3-8: the division of the registration authority.
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a valid code from a 16-character prefix (positions 1-16) by computing both
/// check digits. Used by the benchmark data generator and tests.
pub fn complete_code(prefix16: &str) -> Option<Uscc> {
    if prefix16.len() != 16 {
        return None;
    }
    Uscc::parse_format(&format!("{prefix16}00")).ok()?;
    let org = organisation_check_digit(&prefix16.as_bytes()[8..16]);
    let first17 = format!("{prefix16}{org}");
    let last = final_check_digit(first17.as_bytes());
    Uscc::parse(&format!("{first17}{last}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_valid_examples() {
        for code in [
            "91350100M000100Y43",
            "91110000101623741K",
            "9135010026017703XW",
        ] {
            assert_eq!(
                Uscc::parse(code).map(|c| c.into_string()),
                Ok(code.to_string())
            );
        }
    }

    #[test]
    fn rejects_a_wrong_final_check_digit_naming_it() {
        let err = Uscc::parse("91310115MA1H8R7C6D").unwrap_err();
        assert!(matches!(
            err,
            UsccError::CheckDigit(CheckDigitProblem::Final {
                found: 'D',
                expected: '7'
            })
        ));
        assert!(err.to_string().contains("final check digit"), "{err}");
    }

    #[test]
    fn format_parse_keeps_a_code_with_bad_check_digit() {
        let code = Uscc::parse_format("91310115MA1H8R7C6D").unwrap();
        assert!(code.check_digit_problem().is_some());
    }

    #[test]
    fn rejects_wrong_organisation_check_digit() {
        // Position 17 of the valid 91110000101623741K is '1'; change it.
        let code = format!(
            "91110000101623742{}",
            final_check_digit(b"91110000101623742")
        );
        let err = Uscc::parse(&code).unwrap_err();
        assert!(matches!(
            err,
            UsccError::CheckDigit(CheckDigitProblem::OrganisationCode {
                expected: '1',
                found: '2'
            })
        ));
    }

    #[test]
    fn normalises_case_and_white_space() {
        let code = Uscc::parse("  91110000101623741k\t").unwrap();
        assert_eq!(code.as_str(), "91110000101623741K");
    }

    #[test]
    fn length_and_charset_errors_are_distinct() {
        assert_eq!(Uscc::parse("9111000010162374"), Err(UsccError::Length(16)));
        assert_eq!(Uscc::parse(""), Err(UsccError::Length(0)));
        assert_eq!(
            Uscc::parse("9111000010162374IK"),
            Err(UsccError::Charset {
                position: 17,
                ch: 'I'
            })
        );
        assert_eq!(
            Uscc::parse("91110000101623741-"),
            Err(UsccError::Charset {
                position: 18,
                ch: '-'
            })
        );
        assert!(matches!(
            Uscc::parse("9111000010162374１K"),
            Err(UsccError::Charset { position: 17, .. })
        ));
    }

    #[test]
    fn every_forbidden_letter_is_refused() {
        for ch in ['I', 'O', 'Z', 'S', 'V'] {
            let code = format!("9{ch}110000101623741K");
            assert!(matches!(
                Uscc::parse(&code),
                Err(UsccError::Charset { position: 2, .. })
            ));
        }
    }

    #[test]
    fn division_is_positions_3_to_8() {
        assert_eq!(
            Uscc::parse("91350100M000100Y43").unwrap().division(),
            "350100"
        );
    }

    #[test]
    fn complete_code_produces_valid_codes() {
        let code = complete_code("9144180212345678").unwrap();
        assert!(code.check_digit_problem().is_none());
        assert_eq!(complete_code("short"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Uscc::parse(&s);
        }

        #[test]
        fn a_changed_final_digit_is_always_caught(prefix in "[0-9A-HJ-NP-RTUW-Y]{16}", delta in 1u32..31) {
            if let Some(code) = complete_code(&prefix) {
                let s = code.as_str();
                let last = symbol_value(s.as_bytes()[17]).unwrap();
                let other = ALPHABET[((last + delta) % 31) as usize] as char;
                let tampered = format!("{}{}", &s[..17], other);
                proptest::prop_assert!(Uscc::parse(&tampered).is_err());
            }
        }

        #[test]
        fn accepted_formats_are_normalised_codes(s in "[ \t]{0,2}[0-9A-Za-z]{16,20}[ \t]{0,2}|\\PC{0,30}") {
            if let Ok(code) = Uscc::parse_format(&s) {
                let text = code.as_str();
                proptest::prop_assert_eq!(text.len(), USCC_LEN);
                proptest::prop_assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
                proptest::prop_assert_eq!(text, s.trim().to_uppercase());
                proptest::prop_assert_eq!(Uscc::parse_format(text).ok(), Some(code.clone()));
                // Only the check digits can still fail; they never panic either.
                let _ = code.check_digit_problem();
            }
        }

        #[test]
        fn completed_codes_always_parse(prefix in "[0-9A-HJ-NP-RTUW-Y]{16}") {
            let code = complete_code(&prefix).expect("every alphabet prefix completes");
            proptest::prop_assert!(code.as_str().starts_with(&prefix));
            proptest::prop_assert_eq!(Uscc::parse(code.as_str()).ok(), Some(code.clone()));
            proptest::prop_assert_eq!(Uscc::parse(&code.as_str().to_lowercase()).ok(), Some(code));
        }

        /// 31 is prime and no weight is 0 mod 31, so the final check digit catches any single
        /// changed symbol in positions 1-17 and any swap of two different neighbours there.
        #[test]
        fn single_substitutions_and_adjacent_swaps_are_caught(
            prefix in "[0-9A-HJ-NP-RTUW-Y]{16}",
            position in 0usize..17,
            delta in 1u32..31,
        ) {
            let code = complete_code(&prefix).expect("completes");
            let mut bytes = code.as_str().as_bytes().to_vec();
            let value = symbol_value(bytes[position]).unwrap();
            bytes[position] = ALPHABET[((value + delta) % 31) as usize];
            let changed = String::from_utf8(bytes).unwrap();
            proptest::prop_assert!(Uscc::parse(&changed).is_err(), "{} -> {}", code, changed);

            let mut bytes = code.as_str().as_bytes().to_vec();
            let next = (position + 1).min(16);
            if bytes[position] != bytes[next] {
                bytes.swap(position, next);
                let swapped = String::from_utf8(bytes).unwrap();
                proptest::prop_assert!(Uscc::parse(&swapped).is_err(), "{} -> {}", code, swapped);
            }
        }
    }
}
