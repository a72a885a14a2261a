//! Bulk data in and out: the file formats of imports and exports (CSV in UTF-8 or
//! GB18030, `.xlsx`, JSON lines), the template columns and the parsing of one row into
//! typed values. No database and no I/O of its own beyond the readers and writers it
//! is given: the rules a row must satisfy against the registry's data live in
//! `service::import`, which calls the same domain rules as the mutations.

pub mod columns;
pub mod read;
pub mod rows;
pub mod write;

use serde::Serialize;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Operators,
    Listings,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operators => "operators",
            Self::Listings => "listings",
        }
    }
}

/// The format of an import file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    Xlsx,
}

impl InputFormat {
    /// From the file name: `.xlsx` is a workbook, anything else is read as CSV.
    pub fn from_file_name(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".xlsx") {
            Self::Xlsx
        } else {
            Self::Csv
        }
    }
}

/// The text encoding of a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Encoding {
    Utf8,
    Gb18030,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Self::Utf8),
            "gb18030" | "gbk" | "gb2312" => Some(Self::Gb18030),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Gb18030 => "gb18030",
        }
    }
}

/// One refused row (or a refused file: `row` 1 is the header), as the import report
/// and `--errors-out` give it. Rows are numbered as a spreadsheet shows them: the
/// header is row 1, the first data row is row 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: u64,
    /// The column as the file's header names it (or its template name when the file has
    /// no such column); `None` for a problem of the whole row.
    pub column: Option<String>,
    pub message: String,
}

impl RowError {
    pub fn new(row: u64, column: Option<String>, message: impl Into<String>) -> Self {
        Self {
            row,
            column,
            message: message.into(),
        }
    }
}
