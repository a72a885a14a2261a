//! The template columns: Chinese headers as the authorities' own exports name them,
//! English aliases (matched without regard to case). A file's header row is matched
//! against them once; an unknown or repeated column refuses the file, naming it.

use super::{Kind, RowError};

/// One template column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The English alias (also the JSON key of exports).
    pub key: &'static str,
    /// The Chinese header of the template.
    pub zh: &'static str,
    /// Whether a file must have the column (its cells may still be empty where the
    /// row rules allow it).
    pub required: bool,
}

const fn col(key: &'static str, zh: &'static str, required: bool) -> Column {
    Column { key, zh, required }
}

/// Listings, in template order. The first fifteen are the issue's; the last three are
/// optional and carry what the mutations take besides (a waived defence, a longer
/// statutory period, the authority's own division), so an export re-imports unchanged.
pub const LISTING_COLUMNS: &[Column] = &[
    col("uscc", "统一社会信用代码", true),
    col("name", "市场主体名称", true),
    col("list", "名单", true),
    col("authority", "作出决定机关", true),
    col("penaltyDocNo", "处罚决定书文号", true),
    col("penaltyDate", "处罚日期", true),
    col("category", "违法行为类别", true),
    col("reason", "列入事由", true),
    col("legalBasis", "法律依据", true),
    col("noticeDate", "告知日期", true),
    col("decisionDocNo", "列入决定书文号", true),
    col("decisionDate", "列入日期", true),
    col("measures", "惩戒措施", false),
    col("removedDate", "移出日期", false),
    col("removalKind", "移出方式", false),
    col("defenceWaived", "放弃陈述申辩", false),
    col("periodMonths", "列入期限（月）", false),
    col("authorityRegion", "决定机关区划代码", false),
];

/// Operators: the fields of `upsertOperator`.
pub const OPERATOR_COLUMNS: &[Column] = &[
    col("uscc", "统一社会信用代码", true),
    col("name", "市场主体名称", true),
    col("entityType", "市场主体类型", false),
    col("regionCode", "登记机关区划代码", false),
    col("legalRepresentative", "法定代表人", false),
    col("legalRepIdNumber", "法定代表人身份证件号码", false),
    col("address", "住所", false),
    col("addressIsPersonal", "住所为个人住址", false),
    col("checkDigitOverrideReason", "校验码豁免理由", false),
];

pub fn columns(kind: Kind) -> &'static [Column] {
    match kind {
        Kind::Operators => OPERATOR_COLUMNS,
        Kind::Listings => LISTING_COLUMNS,
    }
}

/// Full-width brackets and surrounding space do not make a header different.
fn normalize(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .replace('(', "（")
        .replace(')', "）")
        .trim()
        .to_lowercase()
}

/// Where each template column sits in a file, and what the file calls it.
#[derive(Clone, Debug)]
pub struct Header {
    kind: Kind,
    /// For each template column (by index into [`columns`]), its position in the file.
    positions: Vec<Option<usize>>,
    /// The file's header texts.
    names: Vec<String>,
}

impl Header {
    /// Matches a header row; every unknown, repeated or missing required column is
    /// reported (row 1).
    pub fn match_row(kind: Kind, headers: &[String]) -> Result<Self, Vec<RowError>> {
        let cols = columns(kind);
        let mut positions = vec![None; cols.len()];
        let mut errors = Vec::new();
        for (pos, raw) in headers.iter().enumerate() {
            let h = normalize(raw);
            if h.is_empty() {
                // A trailing empty header cell (spreadsheets write them) names nothing.
                continue;
            }
            let found = cols
                .iter()
                .position(|c| normalize(c.zh) == h || c.key.to_lowercase() == h);
            match found {
                Some(i) if positions[i].is_some() => errors.push(RowError::new(
                    1,
                    Some(raw.trim().to_string()),
                    format!("column '{}' appears twice", raw.trim()),
                )),
                Some(i) => positions[i] = Some(pos),
                None => errors.push(RowError::new(
                    1,
                    Some(raw.trim().to_string()),
                    format!(
                        "unknown column '{}': the {} template has {}",
                        raw.trim(),
                        kind.as_str(),
                        cols.iter()
                            .map(|c| format!("{} ({})", c.zh, c.key))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        for (i, c) in cols.iter().enumerate() {
            if c.required && positions[i].is_none() {
                errors.push(RowError::new(
                    1,
                    Some(c.zh.to_string()),
                    format!("the file has no column {} ({})", c.zh, c.key),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self {
                kind,
                positions,
                names: headers.iter().map(|h| h.trim().to_string()).collect(),
            })
        } else {
            Err(errors)
        }
    }

    fn index(&self, key: &str) -> Option<usize> {
        columns(self.kind).iter().position(|c| c.key == key)
    }

    /// The file position of column `key`, if the file has it.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index(key).and_then(|i| self.positions[i])
    }

    /// What the file calls column `key` (its template header when the file lacks it).
    pub fn name(&self, key: &str) -> String {
        match self.position(key) {
            Some(p) => self.names[p].clone(),
            None => self
                .index(key)
                .map_or_else(|| key.to_string(), |i| columns(self.kind)[i].zh.to_string()),
        }
    }

    /// The number of header cells (a row with more non-empty cells is refused).
    pub fn width(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chinese_headers_and_english_aliases_match() {
        let all: Vec<String> = LISTING_COLUMNS.iter().map(|c| c.zh.to_string()).collect();
        let header = Header::match_row(Kind::Listings, &all).unwrap();
        assert_eq!(header.position("decisionDate"), Some(11));
        let mut english: Vec<String> = LISTING_COLUMNS
            .iter()
            .filter(|c| c.required)
            .map(|c| c.key.to_uppercase())
            .collect();
        english[0] = format!("\u{feff} {}", english[0]);
        let header = Header::match_row(Kind::Listings, &english).unwrap();
        assert_eq!(header.position("uscc"), Some(0));
        assert_eq!(header.position("measures"), None);
        assert_eq!(header.name("measures"), "惩戒措施");
        // Half-width brackets are the same header.
        assert!(
            Header::match_row(
                Kind::Listings,
                &[english.clone(), h(&["列入期限(月)"])].concat()
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_repeated_and_missing_columns_are_named() {
        let mut names = h(&["uscc", "name", "list", "颜色", "uscc"]);
        names.push(String::new());
        let errors = Header::match_row(Kind::Listings, &names).unwrap_err();
        assert!(errors.iter().any(|e| e.column.as_deref() == Some("颜色")
            && e.message.starts_with("unknown column '颜色'")));
        assert!(errors.iter().any(|e| e.message.contains("appears twice")));
        assert!(
            errors
                .iter()
                .any(|e| e.column.as_deref() == Some("列入日期"))
        );
        assert!(errors.iter().all(|e| e.row == 1));
    }
}
