//! What any text, instant or date a caller sends must satisfy before it goes anywhere
//! near the database, whatever field it is for.
//!
//! PostgreSQL refuses what SQLite silently stores — a NUL byte in text, a year ≤ 0 in a
//! `timestamptz` — and refuses it as an error of the whole statement, so one bad value in
//! a shared lookup fails everyone's check in it. These rules are applied to every GraphQL
//! input by `graphql::input_guard`; the field-specific rules (a code's check digits, a
//! reference's length) stay with their fields.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// Why a value was refused (`extensions.details.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    ControlCharacter,
    TooLong,
    OutOfRange,
    /// An `Upload` argument that names no file of the request.
    NoSuchUpload,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ControlCharacter => "CONTROL_CHARACTER",
            Self::TooLong => "TOO_LONG",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::NoSuchUpload => "NO_SUCH_UPLOAD",
        }
    }
}

/// A refusal with a message for the caller (the field's name is added by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: Refusal,
    pub message: String,
}

/// Whether a text may span lines. Prose (reasons, notes, commentary, legal bases) is
/// pasted from documents and keeps its line breaks and tabs; names, codes, numbers and
/// search text are single-line, so a line break there is a mistake or an attack on
/// whatever later prints them (logs, CSV reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Line,
    Prose,
}

/// The bounds, from `limits.*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputRules {
    pub min_year: i32,
    pub max_year: i32,
    /// Characters (not bytes) in any one string.
    pub max_string_chars: usize,
}

impl InputRules {
    /// No control character (Unicode category Cc: C0, DEL, C1) except `\t`, `\n`, `\r`
    /// in prose, and at most `max_string_chars` characters.
    pub fn text(&self, text: &str, kind: TextKind) -> Result<(), Refused> {
        let mut chars = 0usize;
        for c in text.chars() {
            chars += 1;
            let allowed = kind == TextKind::Prose && matches!(c, '\t' | '\n' | '\r');
            if c.is_control() && !allowed {
                return Err(Refused {
                    reason: Refusal::ControlCharacter,
                    message: format!(
                        "contains the control character U+{:04X}{}",
                        u32::from(c),
                        if kind == TextKind::Line && matches!(c, '\t' | '\n' | '\r') {
                            " (line breaks and tabs are allowed only in free text)"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        if chars > self.max_string_chars {
            return Err(Refused {
                reason: Refusal::TooLong,
                message: format!(
                    "is {chars} characters long; at most {} are allowed",
                    self.max_string_chars
                ),
            });
        }
        Ok(())
    }

    /// An instant whose UTC year lies in `min_year..=max_year`, and not a leap second.
    ///
    /// chrono (and so the GraphQL `DateTime` scalar) reads a second of 60 in any minute
    /// as a "leap" instant it keeps apart from the next minute, while PostgreSQL stores
    /// it as that next minute: a receipt's `asOf` would then differ from its record's,
    /// and RFC 3339 tools elsewhere refuse the text. No partner means a leap second (the
    /// registry's instants are UTC with fixed offsets), so it is refused as not an instant.
    pub fn instant(&self, t: DateTime<Utc>) -> Result<(), Refused> {
        use chrono::Timelike;
        if t.nanosecond() >= 1_000_000_000 {
            return Err(Refused {
                reason: Refusal::OutOfRange,
                message: format!(
                    "{} is a leap second (second 60), which the registry does not record: send the next minute's instant",
                    t.to_rfc3339()
                ),
            });
        }
        self.year(t.year(), &t.to_rfc3339())
    }

    /// A date whose year lies in `min_year..=max_year`.
    pub fn date(&self, d: NaiveDate) -> Result<(), Refused> {
        self.year(d.year(), &d.to_string())
    }

    fn year(&self, year: i32, shown: &str) -> Result<(), Refused> {
        if (self.min_year..=self.max_year).contains(&year) {
            Ok(())
        } else {
            Err(Refused {
                reason: Refusal::OutOfRange,
                message: format!(
                    "{shown} is outside the years {}-{}",
                    self.min_year, self.max_year
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: InputRules = InputRules {
        min_year: 1900,
        max_year: 2200,
        max_string_chars: 5,
    };

    fn reason(r: Result<(), Refused>) -> Option<Refusal> {
        r.err().map(|e| e.reason)
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_prose() {
        assert_eq!(reason(RULES.text("清远a b", TextKind::Line)), None);
        for bad in ["a\u{0}b", "\u{1b}[2J", "a\u{7f}", "\u{85}", "\u{9f}"] {
            assert_eq!(
                reason(RULES.text(bad, TextKind::Line)),
                Some(Refusal::ControlCharacter),
                "{bad:?}"
            );
            assert_eq!(
                reason(RULES.text(bad, TextKind::Prose)),
                Some(Refusal::ControlCharacter),
                "{bad:?}"
            );
        }
        for text in ["a\nb", "a\r\nb", "a\tb"] {
            assert_eq!(reason(RULES.text(text, TextKind::Prose)), None);
            assert_eq!(
                reason(RULES.text(text, TextKind::Line)),
                Some(Refusal::ControlCharacter)
            );
        }
        let message = RULES.text("a\u{0}", TextKind::Line).unwrap_err().message;
        assert!(message.contains("U+0000"), "{message}");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(reason(RULES.text("清远市某某", TextKind::Line)), None);
        assert_eq!(
            reason(RULES.text("清远市某某公", TextKind::Line)),
            Some(Refusal::TooLong)
        );
    }

    #[test]
    fn a_leap_second_is_not_an_instant() {
        // chrono reads second 60 of any minute; PostgreSQL would store the next minute.
        let leap: DateTime<Utc> = "2026-01-15T10:20:60Z".parse().unwrap();
        let refused = RULES.instant(leap).unwrap_err();
        assert_eq!(refused.reason, Refusal::OutOfRange);
        assert!(
            refused.message.contains("leap second"),
            "{}",
            refused.message
        );
        let next: DateTime<Utc> = "2026-01-15T10:21:00Z".parse().unwrap();
        assert_eq!(reason(RULES.instant(next)), None);
    }

    #[test]
    fn instants_and_dates_must_lie_in_the_years() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(reason(RULES.instant(at("1900-01-01T00:00:00Z"))), None);
        assert_eq!(reason(RULES.instant(at("2200-12-31T23:59:59Z"))), None);
        for bad in [
            "0000-01-01T00:00:00Z",
            "1899-12-31T23:59:59Z",
            "2201-01-01T00:00:00Z",
            // The year of the UTC instant counts, not the year written.
            "1900-01-01T07:00:00+08:00",
        ] {
            assert_eq!(
                reason(RULES.instant(at(bad))),
                Some(Refusal::OutOfRange),
                "{bad}"
            );
        }
        assert_eq!(reason(RULES.date(day("2026-02-12"))), None);
        assert_eq!(
            reason(RULES.date(day("0000-01-01"))),
            Some(Refusal::OutOfRange)
        );
        assert_eq!(
            reason(RULES.date(day("9999-12-31"))),
            Some(Refusal::OutOfRange)
        );
    }
}
