//! Writing rows out: CSV (UTF-8 with a BOM, so spreadsheets open it as UTF-8), `.xlsx`
//! (dates as Excel date cells; rows go to a temporary file as they are written —
//! rust_xlsxwriter's constant-memory mode — so memory stays flat in the row count) and
//! JSON lines (one object a line, keyed by the English column names).

use super::Kind;
use super::columns::columns;
use chrono::NaiveDate;
use std::io::Write;

/// The format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Xlsx,
    Jsonl,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "xlsx" => Some(Self::Xlsx),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Jsonl => "application/x-ndjson",
        }
    }
}

/// One value of an exported row.
#[derive(Clone, Debug, PartialEq)]
pub enum OutCell {
    Empty,
    Text(String),
    Date(NaiveDate),
    Int(i64),
    Bool(bool),
}

impl OutCell {
    pub fn opt_text(v: Option<&str>) -> Self {
        v.map_or(Self::Empty, |s| Self::Text(s.to_string()))
    }

    fn csv_text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Text(s) => csv_safe(s),
            Self::Date(d) => d.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Bool(b) => if *b { "是" } else { "否" }.to_string(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Self::Empty => serde_json::Value::Null,
            Self::Text(s) => s.clone().into(),
            Self::Date(d) => d.to_string().into(),
            Self::Int(i) => (*i).into(),
            Self::Bool(b) => (*b).into(),
        }
    }
}

/// What a spreadsheet takes a cell starting with for a formula (OWASP's CSV injection
/// list): `=`, `+`, `-`, `@`, a tab, a carriage return.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell as a CSV export writes it: one starting like a formula gets a leading
/// `'`, so that a spreadsheet opening the file (an auditor's check records, anyone's
/// public list) shows the text instead of running it: a partner's check reference, an
/// operator's name or a listing's reason is anyone's text. The import's CSV reader takes
/// the `'` off again (`read::unescape_formula`), so an export re-imports unchanged; a
/// text that itself starts with `'`s before such a character gets one more, to come
/// back whole. `.xlsx` (string cells) and JSON lines need nothing.
pub fn csv_safe(s: &str) -> String {
    if starts_like_a_formula(s) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Whether a CSV export quotes `s` (`csv_safe`): a formula's first character, after any
/// `'`s.
pub fn starts_like_a_formula(s: &str) -> bool {
    s.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// A column of an export: its JSON key and its header.
#[derive(Clone, Debug)]
pub struct OutColumn {
    pub key: &'static str,
    pub header: String,
}

/// The columns of an import template, with their Chinese headers (an export in them
/// re-imports as it is).
pub fn template_columns(kind: Kind) -> Vec<OutColumn> {
    columns(kind)
        .iter()
        .map(|c| OutColumn {
            key: c.key,
            header: c.zh.to_string(),
        })
        .collect()
}

type Out = Box<dyn Write + Send>;

enum Inner {
    Csv(Box<csv::Writer<Out>>),
    Jsonl(std::io::BufWriter<Out>),
    Xlsx(Box<XlsxSink>),
}

struct XlsxSink {
    book: rust_xlsxwriter::Workbook,
    sheet: rust_xlsxwriter::Worksheet,
    date: rust_xlsxwriter::Format,
    next_row: u32,
    out: Out,
}

/// Writes rows of one export, in order, to `out`.
pub struct Sink {
    columns: Vec<OutColumn>,
    inner: Inner,
}

/// Excel's last row (1,048,576 rows including the header).
const XLSX_MAX_ROW: u32 = 1_048_575;

impl Sink {
    pub fn new(
        format: OutputFormat,
        mut out: Out,
        columns: Vec<OutColumn>,
    ) -> anyhow::Result<Self> {
        let inner = match format {
            OutputFormat::Csv => {
                out.write_all("\u{feff}".as_bytes())?;
                let mut w = csv::WriterBuilder::new().from_writer(out);
                w.write_record(columns.iter().map(|c| c.header.as_str()))?;
                Inner::Csv(Box::new(w))
            }
            OutputFormat::Jsonl => Inner::Jsonl(std::io::BufWriter::new(out)),
            OutputFormat::Xlsx => {
                let mut book = rust_xlsxwriter::Workbook::new();
                let mut sheet = book.new_worksheet_with_constant_memory()?;
                for (i, c) in columns.iter().enumerate() {
                    sheet.write_string(0, u16::try_from(i)?, &c.header)?;
                }
                Inner::Xlsx(Box::new(XlsxSink {
                    book,
                    sheet,
                    date: rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd"),
                    next_row: 1,
                    out,
                }))
            }
        };
        Ok(Self { columns, inner })
    }

    pub fn row(&mut self, cells: &[OutCell]) -> anyhow::Result<()> {
        anyhow::ensure!(
            cells.len() == self.columns.len(),
            "an export row has {} cells for {} columns",
            cells.len(),
            self.columns.len()
        );
        match &mut self.inner {
            Inner::Csv(w) => w.write_record(cells.iter().map(OutCell::csv_text))?,
            Inner::Jsonl(w) => {
                let object: serde_json::Map<String, serde_json::Value> = self
                    .columns
                    .iter()
                    .zip(cells)
                    .map(|(c, v)| (c.key.to_string(), v.json()))
                    .collect();
                serde_json::to_writer(&mut *w, &object)?;
                w.write_all(b"\n")?;
            }
            Inner::Xlsx(x) => {
                let row = x.next_row;
                anyhow::ensure!(
                    row <= XLSX_MAX_ROW,
                    "an .xlsx sheet holds at most {XLSX_MAX_ROW} rows; export as CSV or JSON lines"
                );
                for (i, cell) in cells.iter().enumerate() {
                    let col = u16::try_from(i)?;
                    match cell {
                        OutCell::Empty => {}
                        OutCell::Text(s) => {
                            x.sheet.write_string(row, col, s)?;
                        }
                        OutCell::Int(n) => {
                            // Counts and months: far below 2^53, exact as a float.
                            x.sheet.write_number(row, col, *n as f64)?;
                        }
                        OutCell::Bool(b) => {
                            x.sheet
                                .write_string(row, col, if *b { "是" } else { "否" })?;
                        }
                        OutCell::Date(d) => {
                            use chrono::Datelike;
                            let date = rust_xlsxwriter::ExcelDateTime::from_ymd(
                                u16::try_from(d.year())?,
                                u8::try_from(d.month())?,
                                u8::try_from(d.day())?,
                            )?;
                            x.sheet
                                .write_datetime_with_format(row, col, &date, &x.date)?;
                        }
                    }
                }
                x.next_row += 1;
            }
        }
        Ok(())
    }

    /// Flushes everything; an `.xlsx` is assembled here (from its temporary file).
    pub fn finish(self) -> anyhow::Result<()> {
        match self.inner {
            Inner::Csv(mut w) => w.flush()?,
            Inner::Jsonl(mut w) => w.flush()?,
            Inner::Xlsx(x) => {
                let XlsxSink {
                    mut book,
                    sheet,
                    mut out,
                    ..
                } = *x;
                book.push_worksheet(sheet);
                let mut file = tempfile::tempfile()?;
                book.save_to_writer(&mut file)?;
                std::io::Seek::rewind(&mut file)?;
                std::io::copy(&mut file, &mut out)?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// An example row of each template (a made-up code whose check digits hold).
fn example(kind: Kind) -> Vec<OutCell> {
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).map_or(OutCell::Empty, OutCell::Date);
    let t = |s: &str| OutCell::Text(s.to_string());
    match kind {
        Kind::Listings => vec![
            t("91441802MA4W7K3Q8P"),
            t("清远市某某食品有限公司"),
            t("SAMR_SERIOUS_DISHONEST"),
            t("清远市市场监督管理局"),
            t("清市监罚〔2026〕12号"),
            date(2026, 2, 2),
            t("CONSUMER_HARM"),
            t("收取预付款后卷款跑路"),
            t("《市场监督管理严重违法失信名单管理办法》第八条"),
            date(2026, 2, 12),
            t("清市监列〔2026〕3号"),
            date(2026, 3, 2),
            OutCell::Empty,
            OutCell::Empty,
            OutCell::Empty,
            OutCell::Empty,
            OutCell::Empty,
            OutCell::Empty,
        ],
        Kind::Operators => vec![
            t("91441802MA4W7K3Q8P"),
            t("清远市某某食品有限公司"),
            t("有限责任公司"),
            t("441802"),
            t("张某"),
            OutCell::Empty,
            t("清远市清城区某路1号"),
            OutCell::Bool(false),
            OutCell::Empty,
        ],
    }
}

/// Writes the template of `kind`: its header and one example row.
pub fn template(kind: Kind, format: OutputFormat, out: Out) -> anyhow::Result<()> {
    let mut sink = Sink::new(format, out, template_columns(kind))?;
    sink.row(&example(kind))?;
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::read::{self, Cell};
    use crate::bulk::{Encoding, InputFormat};
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn written(kind: Kind, format: OutputFormat) -> Vec<u8> {
        let out = Shared::default();
        template(kind, format, Box::new(out.clone())).unwrap();
        out.0.lock().unwrap().clone()
    }

    #[test]
    fn the_templates_read_back_as_written() {
        for format in [OutputFormat::Csv, OutputFormat::Xlsx] {
            let bytes = written(Kind::Listings, format);
            let input = if format == OutputFormat::Csv {
                InputFormat::Csv
            } else {
                InputFormat::Xlsx
            };
            let rows = read::open(std::io::Cursor::new(bytes), input, Encoding::Utf8).unwrap();
            assert_eq!(rows.headers[0], "统一社会信用代码");
            assert_eq!(rows.headers.len(), columns(Kind::Listings).len());
            let first: Vec<Cell> = rows.rows.map(Result::unwrap).next().unwrap();
            let decision = &first[11];
            match format {
                // The xlsx has a real date cell, the CSV the ISO text.
                OutputFormat::Xlsx => assert_eq!(
                    decision,
                    &Cell::Date(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
                ),
                _ => assert_eq!(decision, &Cell::Text("2026-03-02".into())),
            }
        }
    }

    /// A text starting like a formula is written behind a `'` in CSV and read back as
    /// it was; others, and the other formats, are written as they are.
    #[test]
    fn formula_like_text_is_quoted_in_csv_and_read_back_as_written() {
        let texts = [
            "=1+1", "+86 20", "-", "@SUM(A1)", "\tx", "\rx", "'=kept", "''-kept", "a=b", "'plain",
        ];
        let out = Shared::default();
        let columns = vec![OutColumn {
            key: "t",
            header: "文本".into(),
        }];
        let mut sink = Sink::new(OutputFormat::Csv, Box::new(out.clone()), columns).unwrap();
        for t in texts {
            sink.row(&[OutCell::Text(t.to_string())]).unwrap();
        }
        sink.finish().unwrap();
        let bytes = out.0.lock().unwrap().clone();
        let raw = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            raw.contains("'=1+1") && raw.contains("'@SUM(A1)") && raw.contains("''=kept"),
            "{raw}"
        );
        assert!(
            raw.contains("\na=b\n") && raw.contains("\n'plain\n"),
            "{raw}"
        );
        let rows = read::open(
            std::io::Cursor::new(bytes),
            InputFormat::Csv,
            Encoding::Utf8,
        )
        .unwrap();
        let back: Vec<Cell> = rows.rows.map(|r| r.unwrap().remove(0)).collect();
        let expected: Vec<Cell> = texts.iter().map(|t| Cell::Text((*t).to_string())).collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn json_lines_are_keyed_by_english_names() {
        let bytes = written(Kind::Operators, OutputFormat::Jsonl);
        let line: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(line["uscc"], "91441802MA4W7K3Q8P");
        assert_eq!(line["addressIsPersonal"], false);
        assert_eq!(line["legalRepIdNumber"], serde_json::Value::Null);
    }
}
