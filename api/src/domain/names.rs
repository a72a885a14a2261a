//! Operator name normalisation for matching: the same company is written with
//! full-width or half-width characters, Chinese or ASCII brackets, and stray spaces.

/// Folds full-width forms to half-width, `（）` to `()`, drops all white space and
/// upper-cases ASCII letters.
pub fn normalize_name(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            let c = match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            };
            if c.is_whitespace() {
                None
            } else {
                Some(c.to_ascii_uppercase())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_width_and_spaces_fold_together() {
        let a = normalize_name("清远市 某某食品（有限）公司");
        let b = normalize_name("清远市某某食品(有限)公司");
        assert_eq!(a, b);
        assert_eq!(normalize_name("ＡＢＣ　Ｃｏ．"), "ABCCO.");
        assert_eq!(normalize_name("abc co"), "ABCCO");
    }
}
