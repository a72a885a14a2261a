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

/// Whether an admin scoped to `scope` may act on something registered in `region`.
/// No scope: the whole registry. A prefecture-level scope (`xxxx00`, e.g. 441800 for
/// Qingyuan) covers every county of that city; a county scope covers only itself.
pub fn scope_covers(scope: Option<&str>, region: &str) -> bool {
    match scope {
        None => true,
        Some(scope) if scope.ends_with("00") && scope.len() == 6 => region.starts_with(&scope[..4]),
        Some(scope) => scope == region,
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
    fn division_codes_are_six_digits() {
        assert!(is_division_code("441802"));
        assert!(!is_division_code("44180"));
        assert!(!is_division_code("44180A"));
    }
}
