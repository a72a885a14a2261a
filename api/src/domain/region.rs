//! Administrative divisions (GB/T 2260) and the region scope of admins.

/// Qingyuan City and its county-level divisions.
pub const QINGYUAN_DIVISIONS: &[(&str, &str)] = &[
    ("441800", "清远市"),
    ("441802", "清城区"),
    ("441803", "清新区"),
    ("441821", "佛冈县"),
    ("441823", "阳山县"),
    ("441825", "连山壮族瑶族自治县"),
    ("441826", "连南瑶族自治县"),
    ("441881", "英德市"),
    ("441882", "连州市"),
];

/// A six-digit division code.
pub fn is_division_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// An administrative division code (GB/T 2260), parsed once where it enters: an
/// operator's registration, a listing's authority, a report's or an admin's region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DivisionCode(String);

impl DivisionCode {
    /// Trims `text` and checks it is six digits; `field` names the input in the refusal.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, super::refusal::Refusal> {
        let code = text.trim();
        if is_division_code(code) {
            Ok(Self(code.to_string()))
        } else {
            Err(super::refusal::Refusal::new(
                super::refusal::Reason::InvalidDivisionCode,
                format!("{field} '{code}' is not a six-digit division code"),
            )
            .on(field))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The city this registry serves (清远市).
pub const CITY_CODE: &str = "441800";

/// The name of a Qingyuan division (the city or one of its counties), `None` for any
/// other code.
pub fn qingyuan_name(code: &str) -> Option<&'static str> {
    QINGYUAN_DIVISIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
}

/// **Registry-wide administration** (catalogues, the calendar, partners): an admin with no
/// region, or one scoped to the city itself. No other code is registry-wide, whatever it
/// ends in (`441900` is another city, `000000` is no division at all).
pub fn is_registry_wide(scope: Option<&str>) -> bool {
    scope.is_none_or(|s| s == CITY_CODE)
}

/// Which division codes a scope covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeMatch<'a> {
    /// No scope: every division.
    Everything,
    /// A prefecture-level scope (`xxxx00`): every code starting with these four digits.
    Prefix(&'a str),
    /// A county-level scope: that code only.
    Exactly(&'a str),
}

/// How a scope matches division codes; SQL conditions and [`scope_covers`] both use it.
pub fn scope_match(scope: Option<&str>) -> ScopeMatch<'_> {
    match scope {
        None => ScopeMatch::Everything,
        Some(s) if s.len() == 6 && s.ends_with("00") && !s.ends_with("0000") => {
            ScopeMatch::Prefix(&s[..4])
        }
        Some(s) => ScopeMatch::Exactly(s),
    }
}

/// Whether an admin scoped to `scope` may act on something registered in `region`.
/// No scope: the whole registry. A prefecture-level scope (`xxxx00`, e.g. 441800 for
/// Qingyuan) covers every county of that city; a county scope covers only itself.
pub fn scope_covers(scope: Option<&str>, region: &str) -> bool {
    match scope_match(scope) {
        ScopeMatch::Everything => true,
        ScopeMatch::Prefix(prefix) => region.starts_with(prefix),
        ScopeMatch::Exactly(code) => code == region,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn city_scope_covers_its_counties_only() {
        assert!(scope_covers(Some("441800"), "441802"));
        assert!(scope_covers(Some("441800"), "441881"));
        assert!(!scope_covers(Some("441800"), "440103"));
    }

    #[test]
    fn county_scope_covers_itself_only() {
        assert!(scope_covers(Some("441802"), "441802"));
        assert!(!scope_covers(Some("441802"), "441803"));
        assert!(scope_covers(None, "110000"));
    }

    #[test]
    fn only_the_city_or_no_scope_is_registry_wide() {
        assert!(is_registry_wide(None));
        assert!(is_registry_wide(Some("441800")));
        for other in ["441900", "000000", "440000", "441802", "4418"] {
            assert!(!is_registry_wide(Some(other)), "{other}");
        }
    }

    #[test]
    fn a_province_code_is_no_prefix_of_everything() {
        assert_eq!(scope_match(Some("000000")), ScopeMatch::Exactly("000000"));
        assert!(!scope_covers(Some("000000"), "000001"));
        assert_eq!(scope_match(Some("441800")), ScopeMatch::Prefix("4418"));
    }

    #[test]
    fn division_codes_parse_trimmed_six_digits() {
        assert_eq!(
            DivisionCode::parse("region", " 441802 ").unwrap().as_str(),
            "441802"
        );
        let e = DivisionCode::parse("regionCode", "44180X").unwrap_err();
        assert_eq!(e.field, Some("regionCode"));
        assert!(e.message.contains("44180X"), "{}", e.message);
    }

    #[test]
    fn division_codes_are_six_digits() {
        assert!(is_division_code("441802"));
        assert!(!is_division_code("44180"));
        assert!(!is_division_code("44180A"));
    }
}
