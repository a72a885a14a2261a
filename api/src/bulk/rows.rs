//! One row of an import file as typed values: each cell is checked on its own (format,
//! the input guard's text rules, dates), every problem of the row reported by column.
//! Rules that need the registry's data (codes' check digits against registered
//! overrides, catalogue codes, date order against the calendar, scope) are applied by
//! `service::import` with the domain's functions.

use super::RowError;
use super::columns::Header;
use super::read::Cell;
use crate::domain::input::{InputRules, TextKind};
use chrono::NaiveDate;

/// How a listing already removed left the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemovalKind {
    /// Its period ran out.
    Expired,
    /// Early removal after credit repair.
    Repaired,
    /// Its penalty was revoked (Order 44 Art. 19).
    Revoked,
}

impl RemovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "EXPIRED",
            Self::Repaired => "REPAIRED",
            Self::Revoked => "REVOKED",
        }
    }

    /// The codes, or the words authorities' lists use.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "EXPIRED" | "期满移出" | "期满" => Some(Self::Expired),
            "REPAIRED" | "信用修复" | "信用修复移出" | "提前移出" => {
                Some(Self::Repaired)
            }
            "REVOKED" | "撤销" | "撤销列入" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A listing row, each value checked for its own format.
#[derive(Clone, Debug, PartialEq)]
pub struct ListingRow {
    /// Spreadsheet row number.
    pub row: u64,
    /// Trimmed and upper-cased; its format and check digits are checked by the service.
    pub uscc: String,
    pub name: Option<String>,
    pub list: String,
    pub authority: String,
    pub penalty_doc_no: String,
    pub penalty_date: NaiveDate,
    pub category: String,
    pub reason: String,
    pub legal_basis: String,
    pub notice_date: NaiveDate,
    pub decision_doc_no: String,
    pub decision_date: NaiveDate,
    /// `None`: the list's default measures.
    pub measures: Option<Vec<String>>,
    pub removal: Option<(NaiveDate, RemovalKind)>,
    pub defence_waived: bool,
    pub period_months: Option<i32>,
    pub authority_region: Option<String>,
}

/// An operator row (the fields of `upsertOperator`).
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorRow {
    pub row: u64,
    pub uscc: String,
    pub name: String,
    pub entity_type: Option<String>,
    pub region_code: Option<String>,
    pub legal_representative: Option<String>,
    pub legal_rep_id_number: Option<String>,
    pub address: Option<String>,
    pub address_is_personal: Option<bool>,
    pub check_digit_override_reason: Option<String>,
}

/// Parses the cells of one row against a matched header, collecting every problem.
struct Cells<'a> {
    header: &'a Header,
    cells: &'a [Cell],
    row: u64,
    rules: InputRules,
    errors: Vec<RowError>,
}

impl<'a> Cells<'a> {
    fn new(header: &'a Header, cells: &'a [Cell], row: u64, rules: InputRules) -> Self {
        let mut errors = Vec::new();
        if cells.len() > header.width()
            && cells[header.width()..]
                .iter()
                .any(|c| !matches!(c, Cell::Empty))
        {
            errors.push(RowError::new(
                row,
                None,
                format!(
                    "the row has {} cells but the header only {}",
                    cells.len(),
                    header.width()
                ),
            ));
        }
        Self {
            header,
            cells,
            row,
            rules,
            errors,
        }
    }

    fn fail(&mut self, key: &str, message: impl Into<String>) {
        let column = self.header.name(key);
        self.errors
            .push(RowError::new(self.row, Some(column), message.into()));
    }

    fn cell(&self, key: &str) -> &Cell {
        self.header
            .position(key)
            .and_then(|p| self.cells.get(p))
            .unwrap_or(&Cell::Empty)
    }

    /// Text under the input guard's rules (control characters, length).
    fn optional(&mut self, key: &str, kind: TextKind, max: usize) -> Option<String> {
        let text = self.cell(key).text()?;
        if let Err(refused) = self.rules.text(&text, kind) {
            self.fail(
                key,
                format!("{} {}", self.header.name(key), refused.message),
            );
            return None;
        }
        if text.chars().count() > max {
            self.fail(key, format!("is longer than {max} characters"));
            return None;
        }
        Some(text)
    }

    fn required(&mut self, key: &str, kind: TextKind, max: usize) -> String {
        if self.cell(key).text().is_none() {
            self.fail(key, "must not be empty");
            return String::new();
        }
        self.optional(key, kind, max).unwrap_or_default()
    }

    fn date(&mut self, key: &str) -> Option<NaiveDate> {
        let parsed = match self.cell(key) {
            Cell::Empty => return None,
            Cell::Date(d) => Ok(*d),
            Cell::Text(t) => parse_date(t),
        };
        match parsed.and_then(|d| {
            self.rules
                .date(d)
                .map(|()| d)
                .map_err(|refused| refused.message)
        }) {
            Ok(d) => Some(d),
            Err(message) => {
                self.fail(key, message);
                None
            }
        }
    }

    fn required_date(&mut self, key: &str) -> NaiveDate {
        match self.date(key) {
            Some(d) => d,
            None => {
                if matches!(self.cell(key), Cell::Empty) {
                    self.fail(key, "must not be empty");
                }
                NaiveDate::MIN
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        let text = self.cell(key).text()?;
        match parse_bool(&text) {
            Some(b) => Some(b),
            None => {
                self.fail(key, format!("'{text}' is not 是/否 (yes/no, true/false)"));
                None
            }
        }
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<RowError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }
}

/// `YYYY-MM-DD` or `YYYY/M/D` (a time after the date, as spreadsheets export it, is
/// ignored only when it is midnight).
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let t = text.trim();
    let day = t
        .strip_suffix(" 00:00:00")
        .or_else(|| t.strip_suffix("T00:00:00"))
        .unwrap_or(t);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(day, "%Y/%m/%d"))
        .map_err(|_| format!("'{t}' is not a date (YYYY-MM-DD or YYYY/M/D)"))
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "是" | "yes" | "y" | "true" | "1" => Some(true),
        "否" | "no" | "n" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// The measure codes of a cell: separated by `;` (or `；`), empty parts ignored.
pub fn parse_measures(text: &str) -> Vec<String> {
    text.split([';', '；'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses one listing row.
pub fn listing_row(
    header: &Header,
    cells: &[Cell],
    row: u64,
    rules: InputRules,
) -> Result<ListingRow, Vec<RowError>> {
    use TextKind::{Line, Prose};
    let mut c = Cells::new(header, cells, row, rules);
    let uscc = c.required("uscc", Line, 64).to_uppercase();
    let name = c.optional("name", Line, 200);
    let list = c.required("list", Line, 64);
    let authority = c.required("authority", Line, 200);
    let penalty_doc_no = c.required("penaltyDocNo", Line, 200);
    let penalty_date = c.required_date("penaltyDate");
    let category = c.required("category", Line, 64);
    let reason = c.required("reason", Prose, 5000);
    let legal_basis = c.required("legalBasis", Prose, 2000);
    let notice_date = c.required_date("noticeDate");
    let decision_doc_no = c.required("decisionDocNo", Line, 200);
    let decision_date = c.required_date("decisionDate");
    let measures = c
        .optional("measures", Line, 2000)
        .map(|t| parse_measures(&t))
        .filter(|m| !m.is_empty());
    let removed_date = c.date("removedDate");
    let kind_text = c.optional("removalKind", Line, 64);
    let kind = match kind_text.as_deref().map(|t| (t, RemovalKind::parse(t))) {
        None => None,
        Some((_, Some(k))) => Some(k),
        Some((t, None)) => {
            c.fail(
                "removalKind",
                format!("'{t}' is not a removal kind (EXPIRED, REPAIRED or REVOKED)"),
            );
            None
        }
    };
    let removal = match (removed_date, kind) {
        (Some(d), Some(k)) => Some((d, k)),
        (Some(_), None) => {
            if kind_text.is_none() {
                c.fail("removalKind", "a removed listing needs its removal kind");
            }
            None
        }
        (None, Some(_)) => {
            if matches!(c.cell("removedDate"), Cell::Empty) {
                c.fail("removedDate", "a removal kind needs the removal date");
            }
            None
        }
        (None, None) => None,
    };
    let defence_waived = c.boolean("defenceWaived").unwrap_or(false);
    let period_months = match c.optional("periodMonths", Line, 8) {
        None => None,
        Some(t) => match t.parse::<i32>() {
            Ok(m) => Some(m),
            Err(_) => {
                c.fail("periodMonths", format!("'{t}' is not a number of months"));
                None
            }
        },
    };
    let authority_region = c.optional("authorityRegion", Line, 6);
    if let Some(r) = &authority_region
        && !crate::domain::region::is_division_code(r)
    {
        c.fail(
            "authorityRegion",
            format!("'{r}' is not a six-digit division code"),
        );
    }
    c.finish(ListingRow {
        row,
        uscc,
        name,
        list,
        authority,
        penalty_doc_no,
        penalty_date,
        category,
        reason,
        legal_basis,
        notice_date,
        decision_doc_no,
        decision_date,
        measures,
        removal,
        defence_waived,
        period_months,
        authority_region,
    })
}

/// Parses one operator row.
pub fn operator_row(
    header: &Header,
    cells: &[Cell],
    row: u64,
    rules: InputRules,
) -> Result<OperatorRow, Vec<RowError>> {
    use TextKind::{Line, Prose};
    let mut c = Cells::new(header, cells, row, rules);
    let uscc = c.required("uscc", Line, 64).to_uppercase();
    let name = c.required("name", Line, 200);
    let entity_type = c.optional("entityType", Line, 500);
    let region_code = c.optional("regionCode", Line, 6);
    if let Some(r) = &region_code
        && !crate::domain::region::is_division_code(r)
    {
        c.fail(
            "regionCode",
            format!("'{r}' is not a six-digit division code"),
        );
    }
    let legal_representative = c.optional("legalRepresentative", Line, 500);
    let legal_rep_id_number = c.optional("legalRepIdNumber", Line, 500);
    let address = c.optional("address", Line, 500);
    let address_is_personal = c.boolean("addressIsPersonal");
    let check_digit_override_reason = c.optional(
        "checkDigitOverrideReason",
        Prose,
        crate::service::operators::MAX_OVERRIDE_REASON_CHARS,
    );
    c.finish(OperatorRow {
        row,
        uscc,
        name,
        entity_type,
        region_code,
        legal_representative,
        legal_rep_id_number,
        address,
        address_is_personal,
        check_digit_override_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::Kind;
    use crate::bulk::columns::LISTING_COLUMNS;

    const RULES: InputRules = InputRules {
        min_year: 1900,
        max_year: 2200,
        max_string_chars: 10_000,
    };

    fn header() -> Header {
        let names: Vec<String> = LISTING_COLUMNS.iter().map(|c| c.zh.to_string()).collect();
        Header::match_row(Kind::Listings, &names).unwrap()
    }

    fn cells(values: &[&str]) -> Vec<Cell> {
        values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(v.to_string())
                }
            })
            .collect()
    }

    fn good() -> Vec<&'static str> {
        vec![
            "91441802ma4w7k3q8p",
            "清远市某某食品有限公司",
            "SAMR_SERIOUS_DISHONEST",
            "清远市市场监督管理局",
            "清市监罚〔2026〕12号",
            "2026/2/2",
            "CONSUMER_HARM",
            "收取预付款后卷款跑路",
            "第八条",
            "2026-02-12",
            "清市监列〔2026〕3号",
            "2026-03-02",
            "A; B；",
            "",
            "",
            "",
            "",
            "",
        ]
    }

    #[test]
    fn a_good_row_parses_with_both_date_spellings() {
        let r = listing_row(&header(), &cells(&good()), 2, RULES).unwrap();
        assert_eq!(r.uscc, "91441802MA4W7K3Q8P");
        assert_eq!(r.penalty_date, NaiveDate::from_ymd_opt(2026, 2, 2).unwrap());
        assert_eq!(r.measures, Some(vec!["A".to_string(), "B".to_string()]));
        assert_eq!(r.removal, None);
        assert!(!r.defence_waived);
        let mut dated = cells(&good());
        dated[11] = Cell::Date(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        assert_eq!(
            listing_row(&header(), &dated, 2, RULES)
                .unwrap()
                .decision_date,
            r.decision_date
        );
    }

    #[test]
    fn every_bad_cell_of_a_row_is_named() {
        let mut v = good();
        v[5] = "2026-13-01";
        v[7] = "";
        v[13] = "2027-01-01";
        v[15] = "maybe";
        v[3] = "清远\u{1b}局";
        let errors = listing_row(&header(), &cells(&v), 7, RULES).unwrap_err();
        let columns: Vec<&str> = errors
            .iter()
            .map(|e| e.column.as_deref().unwrap())
            .collect();
        assert_eq!(
            columns,
            vec![
                "作出决定机关",
                "处罚日期",
                "列入事由",
                "移出方式",
                "放弃陈述申辩"
            ]
        );
        assert!(errors.iter().all(|e| e.row == 7));
    }

    #[test]
    fn removal_kinds_and_booleans() {
        assert_eq!(RemovalKind::parse("revoked"), Some(RemovalKind::Revoked));
        assert_eq!(RemovalKind::parse("期满移出"), Some(RemovalKind::Expired));
        assert_eq!(RemovalKind::parse("gone"), None);
        assert_eq!(parse_bool("是"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(
            parse_date("2026-03-02 00:00:00").unwrap().to_string(),
            "2026-03-02"
        );
        assert!(parse_date("03/02/2026").is_err());
    }
}
