//! Reading an import file: its SHA-256 and encoding in one pass, then its rows as
//! cells. CSV is streamed (a row at a time, whatever the file's size); GB18030 is
//! transcoded on the fly. An `.xlsx` sheet is read with calamine, date cells as dates.

use super::{Encoding, InputFormat};
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};

/// One cell of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// An Excel date cell.
    Date(NaiveDate),
}

impl Cell {
    /// The cell's text, trimmed; `None` when empty.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Empty => None,
            Self::Text(s) => {
                let t = s.trim();
                (!t.is_empty()).then(|| t.to_string())
            }
            Self::Date(d) => Some(d.to_string()),
        }
    }
}

/// What one pass over the raw bytes tells: the file's SHA-256 (hex) and whether it is
/// valid UTF-8 (a leading BOM is UTF-8 too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub sha256: String,
    pub valid_utf8: bool,
    pub bytes: u64,
}

/// Hashes the whole input and checks it is UTF-8, in bounded memory.
pub fn fingerprint<R: Read>(mut input: R) -> std::io::Result<Fingerprint> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    // The bytes of a character split across two reads wait here for the rest.
    let mut carry: Vec<u8> = Vec::new();
    let mut valid = true;
    let mut bytes = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
        if valid {
            carry.extend_from_slice(&buf[..n]);
            match std::str::from_utf8(&carry) {
                Ok(_) => carry.clear(),
                Err(e) if e.error_len().is_none() => {
                    let rest = carry.split_off(e.valid_up_to());
                    carry = rest;
                }
                Err(_) => valid = false,
            }
        }
    }
    Ok(Fingerprint {
        sha256: hex::encode(hasher.finalize()),
        valid_utf8: valid && carry.is_empty(),
        bytes,
    })
}

/// The encoding of a CSV file: forced, or UTF-8 when the bytes are UTF-8, else GB18030.
pub fn detect_encoding(print: &Fingerprint, forced: Option<Encoding>) -> Encoding {
    forced.unwrap_or(if print.valid_utf8 {
        Encoding::Utf8
    } else {
        Encoding::Gb18030
    })
}

/// Why a row could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// This row alone (a CSV record): the rows after it are read on.
    Row(String),
    /// The file from this row on (an `.xlsx` sheet whose XML stops making sense, a
    /// value beyond the columns read): nothing after it can be read, so an import
    /// refuses the file whole, even one that writes the valid rows.
    File(String),
}

impl ReadError {
    pub fn message(&self) -> &str {
        match self {
            Self::Row(m) | Self::File(m) => m,
        }
    }
}

type RowIter = Box<dyn Iterator<Item = Result<Vec<Cell>, ReadError>> + Send>;

/// A file's header and its data rows (the first data row is spreadsheet row 2).
pub struct Rows {
    pub headers: Vec<String>,
    pub rows: RowIter,
}

/// How much of an `.xlsx` a reader takes in, whatever the file claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most a zip part calamine reads whole (shared strings, styles, the workbook)
    /// may inflate to; a worksheet, which is streamed, may also inflate to
    /// [`WORKSHEET_INFLATION`] times its compressed size when that is more.
    pub max_part_bytes: u64,
    /// Characters in one cell.
    pub max_cell_chars: usize,
}

/// The part cap for `max_import_bytes` (the upload's own cap): 8 times it, 512 MiB by
/// default. Spreadsheet XML inflates about 5 to 20 times; deflate can make 1000 times,
/// and calamine holds the shared-strings part and each cell's text whole in memory.
pub fn max_part_bytes(max_import_bytes: usize) -> u64 {
    u64::try_from(max_import_bytes)
        .unwrap_or(u64::MAX)
        .saturating_mul(8)
}

/// How many times its compressed size a streamed worksheet may inflate to (a large
/// export's sheet exceeds the part cap; its text inflates tens of times, not hundreds).
pub const WORKSHEET_INFLATION: u64 = 100;

/// Rows of a sheet (Excel's own limit).
pub const MAX_SHEET_ROWS: u32 = 1_048_576;

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_part_bytes: max_part_bytes(64 * 1024 * 1024),
            max_cell_chars: 10_000,
        }
    }
}

/// Opens the rows of `input` (rewound first), within the default [`ReadLimits`].
pub fn open<R: Read + Seek + Send + 'static>(
    input: R,
    format: InputFormat,
    encoding: Encoding,
) -> Result<Rows, String> {
    open_with(input, format, encoding, ReadLimits::default())
}

/// Opens the rows of `input` (rewound first).
pub fn open_with<R: Read + Seek + Send + 'static>(
    mut input: R,
    format: InputFormat,
    encoding: Encoding,
    limits: ReadLimits,
) -> Result<Rows, String> {
    input
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    match format {
        InputFormat::Csv => open_csv(input, encoding),
        InputFormat::Xlsx => {
            check_xlsx_parts(&mut input, limits)?;
            input
                .seek(SeekFrom::Start(0))
                .map_err(|e| format!("cannot read the file: {e}"))?;
            open_xlsx(input, limits)
        }
    }
}

/// The refusal of a file that is not a workbook an import can read, with why.
fn not_xlsx(why: impl std::fmt::Display) -> String {
    format!("not an .xlsx workbook: {why}")
}

/// Sizes every part of the workbook from its zip directory, before calamine inflates
/// any (it reads the shared strings whole when it opens the book). The declared size is
/// also what the zip reader lets a part inflate to: a part whose data inflates past it
/// fails there ("larger than its declared uncompressed size"), so the declared sizes
/// checked here bound what is actually inflated.
fn check_xlsx_parts<R: Read + Seek>(input: &mut R, limits: ReadLimits) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(input).map_err(not_xlsx)?;
    for i in 0..archive.len() {
        let part = archive.by_index_raw(i).map_err(not_xlsx)?;
        let name = part.name().map_err(not_xlsx)?.into_owned();
        let bound = if name.starts_with("xl/worksheets/") {
            limits
                .max_part_bytes
                .max(part.compressed_size().saturating_mul(WORKSHEET_INFLATION))
        } else {
            limits.max_part_bytes
        };
        if part.size() > bound {
            return Err(format!(
                "not an .xlsx workbook an import reads: its part {} inflates to {} bytes, more than the {bound} allowed (8 times limits.max_import_bytes; a worksheet also {WORKSHEET_INFLATION} times its compressed size)",
                name,
                part.size()
            ));
        }
    }
    Ok(())
}

fn open_csv<R: Read + Send + 'static>(input: R, encoding: Encoding) -> Result<Rows, String> {
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(match encoding {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gb18030 => encoding_rs::GB18030,
        }))
        .strip_bom(true)
        .build(input);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        // Short rows are padded with empty cells; long rows are refused by the row rules.
        .flexible(true)
        .from_reader(decoded);
    let headers = reader
        .headers()
        .map_err(|e| format!("the header row cannot be read: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader.into_records().map(|record| {
        record
            .map(|r| {
                r.iter()
                    .map(|s| {
                        let s = unescape_formula(s);
                        if s.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(s.to_string())
                        }
                    })
                    .collect()
            })
            .map_err(|e| ReadError::Row(format!("the row cannot be read as CSV: {e}")))
    });
    Ok(Rows {
        headers,
        rows: Box::new(rows),
    })
}

/// A CSV cell as written before a CSV export quoted it: one leading `'` before a
/// character a spreadsheet starts a formula with (after any further `'`s) is the
/// export's (`write::csv_safe`), and comes off; any other `'` is the text's own.
pub fn unescape_formula(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if super::write::starts_like_a_formula(rest) => rest,
        _ => s,
    }
}

/// An integer-valued number as a spreadsheet shows it (codes typed as numbers lose
/// nothing; `12.0` is `12`).
fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn xlsx_cell(data: &calamine::Data) -> Cell {
    use calamine::{Data, DataType};
    match data {
        Data::Empty => Cell::Empty,
        Data::String(s) if s.trim().is_empty() => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Text(i.to_string()),
        Data::Float(f) => Cell::Text(number_text(*f)),
        Data::Bool(b) => Cell::Text(if *b { "true" } else { "false" }.into()),
        Data::DateTime(_) | Data::DateTimeIso(_) => match data.as_date() {
            Some(d) => Cell::Date(d),
            None => Cell::Text(data.to_string()),
        },
        Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

/// Rows read ahead of the import by the sheet's reader thread.
const XLSX_ROWS_AHEAD: usize = 1_024;

/// A row of the sheet as the reader thread sends it: its index (0-based, the sheet's
/// own) and its cells from column A.
type SheetRow = Result<(u32, Vec<Cell>), String>;

/// The first sheet of a workbook, streamed: calamine's cell reader walks the sheet's XML
/// in order on a thread of its own, which hands complete rows over a bounded channel,
/// so memory holds a few rows, not the sheet (an `.xlsx` of 250,000 listings took
/// 779 MiB when the sheet was read whole). What a workbook keeps whole is calamine's
/// shared-strings table (the distinct texts of the file; exports of this registry write
/// their strings inline).
///
/// The first row with a cell is the header, numbered row 1 as in a CSV file; data rows
/// follow with the numbers of their distance from it, empty rows included, so a row
/// number in a report is the spreadsheet's row when the header is in row 1. Columns
/// start at the header's first cell.
fn open_xlsx<R: Read + Seek + Send + 'static>(
    input: R,
    limits: ReadLimits,
) -> Result<Rows, String> {
    let (send, receive) = std::sync::mpsc::sync_channel::<SheetRow>(XLSX_ROWS_AHEAD);
    std::thread::Builder::new()
        .name("xlsx-reader".into())
        .spawn(move || read_sheet(input, limits, &send))
        .map_err(|e| format!("the sheet cannot be read: {e}"))?;
    let (header_index, header) = match receive.recv() {
        Ok(Ok(first)) => first,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("the first sheet is empty: it needs a header row".into()),
    };
    let first_column = header.iter().position(|c| *c != Cell::Empty).unwrap_or(0);
    let headers = header[first_column..]
        .iter()
        .map(|c| c.text().unwrap_or_default())
        .collect();
    let mut next = header_index.saturating_add(1);
    let mut pending: Option<(u32, Vec<Cell>)> = None;
    let rows = std::iter::from_fn(move || {
        if pending.is_none() {
            match receive.recv() {
                Ok(Ok(row)) => pending = Some(row),
                // The reader thread stopped at this error: the sheet ends here unread.
                Ok(Err(e)) => return Some(Err(ReadError::File(e))),
                Err(_) => return None,
            }
        }
        let (index, _) = pending.as_ref()?;
        if *index > next {
            // A row the sheet leaves out is an empty row.
            next += 1;
            return Some(Ok(Vec::new()));
        }
        let (_, mut cells) = pending.take()?;
        next = next.saturating_add(1);
        cells.drain(..first_column.min(cells.len()));
        Some(Ok(cells))
    });
    Ok(Rows {
        headers,
        rows: Box::new(rows),
    })
}

/// Columns of a sheet an import reads: a template has fewer than twenty; a value beyond
/// this is not a registry sheet (and an unbounded column would let a tiny file claim
/// gigabytes).
pub const MAX_SHEET_COLUMNS: usize = 256;

/// The reader thread: sends the first sheet's rows in order, or the error that stopped
/// it; stops early when the import stops listening.
fn read_sheet<R: Read + Seek>(
    input: R,
    limits: ReadLimits,
    send: &std::sync::mpsc::SyncSender<SheetRow>,
) {
    use calamine::Reader;
    let failed = |e: String| {
        let _ = send.send(Err(e));
    };
    let mut book: calamine::Xlsx<R> = match calamine::open_workbook_from_rs(input) {
        Ok(b) => b,
        Err(e) => return failed(not_xlsx(e)),
    };
    let Some(name) = book.sheet_names().first().cloned() else {
        return failed("the workbook has no sheet".into());
    };
    let mut cells = match book.worksheet_cells_reader(&name) {
        Ok(c) => c,
        Err(e) => return failed(format!("the first sheet cannot be read: {e}")),
    };
    let mut row: Option<(u32, Vec<Cell>)> = None;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => return failed(format!("the sheet cannot be read: {e}")),
        };
        let (r, c) = cell.get_position();
        if r >= MAX_SHEET_ROWS {
            // The row number is the file's say (calamine takes any u32): `A4294967295`
            // in a 1 KiB sheet would otherwise make four billion empty rows to skip.
            return failed(format!(
                "row {} is beyond the {MAX_SHEET_ROWS} rows of a sheet",
                u64::from(r) + 1
            ));
        }
        let value = xlsx_cell(&calamine::Data::from(cell.get_value().clone()));
        if let Cell::Text(t) = &value
            && t.chars().nth(limits.max_cell_chars).is_some()
        {
            return failed(format!(
                "row {}, column {}: a cell of more than {} characters",
                u64::from(r) + 1,
                c + 1,
                limits.max_cell_chars
            ));
        }
        if row.as_ref().is_some_and(|(index, _)| *index != r)
            && let Some(done) = row.take()
            && send.send(Ok(done)).is_err()
        {
            return;
        }
        let c = c as usize;
        if c >= MAX_SHEET_COLUMNS {
            // A cell's reference is the file's say: `ZZZZZZ2` in a 1 KiB upload would
            // otherwise make a row of 321 million cells. Styled empty cells far to the
            // right are common in real exports and carry nothing.
            if value == Cell::Empty || matches!(&value, Cell::Text(t) if t.trim().is_empty()) {
                continue;
            }
            return failed(format!(
                "row {} has a value in column {}, beyond the {MAX_SHEET_COLUMNS} columns an import reads",
                u64::from(r) + 1,
                c + 1
            ));
        }
        let (_, cells_of_row) = row.get_or_insert_with(|| (r, Vec::new()));
        if cells_of_row.len() <= c {
            cells_of_row.resize(c + 1, Cell::Empty);
        }
        cells_of_row[c] = value;
    }
    if let Some(done) = row {
        let _ = send.send(Ok(done));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn utf8_with_or_without_bom_is_utf8_and_gb18030_is_not() {
        let text = "统一社会信用代码,市场主体名称\n";
        assert!(fingerprint(text.as_bytes()).unwrap().valid_utf8);
        let bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
        assert!(fingerprint(&bom[..]).unwrap().valid_utf8);
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        let print = fingerprint(&gb[..]).unwrap();
        assert!(!print.valid_utf8);
        assert_eq!(detect_encoding(&print, None), Encoding::Gb18030);
        assert_eq!(
            detect_encoding(&print, Some(Encoding::Utf8)),
            Encoding::Utf8
        );
    }

    #[test]
    fn a_character_split_across_reads_is_still_utf8() {
        // A reader that hands out one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let print = fingerprint(Trickle("清远市".as_bytes())).unwrap();
        assert!(print.valid_utf8);
        assert_eq!(print.bytes, 9);
        // A truncated last character is not UTF-8.
        assert!(!fingerprint(&"清".as_bytes()[..2]).unwrap().valid_utf8);
    }

    #[test]
    fn gb18030_csv_reads_as_the_same_cells() {
        let text = "名单,列入事由\nSAMR_SERIOUS_DISHONEST,\"收取预付款后\n卷款跑路\"\n";
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        let rows = open(
            Cursor::new(gb.into_owned()),
            InputFormat::Csv,
            Encoding::Gb18030,
        )
        .unwrap();
        assert_eq!(rows.headers, vec!["名单", "列入事由"]);
        let all: Vec<Vec<Cell>> = rows.rows.map(Result::unwrap).collect();
        assert_eq!(
            all,
            vec![vec![
                Cell::Text("SAMR_SERIOUS_DISHONEST".into()),
                Cell::Text("收取预付款后\n卷款跑路".into())
            ]]
        );
        let bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
        let rows = open(Cursor::new(bom), InputFormat::Csv, Encoding::Utf8).unwrap();
        assert_eq!(rows.headers[0], "名单");
    }

    /// The streamed sheet: header first, rows in order with the empty one the sheet
    /// leaves out, a date cell as a date, a code typed as a number as its digits,
    /// columns from the header's first cell; every row, well past the read-ahead.
    #[test]
    fn an_xlsx_sheet_streams_as_its_rows() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 1, "名单").unwrap();
        sheet.write_string(0, 2, "列入日期").unwrap();
        sheet.write_string(1, 1, "A").unwrap();
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 3, 2).unwrap();
        let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        sheet
            .write_datetime_with_format(1, 2, &date, &format)
            .unwrap();
        sheet.write_number(3, 1, 36.0).unwrap();
        let many = 3 * XLSX_ROWS_AHEAD as u32;
        for r in 4..4 + many {
            sheet.write_string(r, 1, format!("row {r}")).unwrap();
        }
        let bytes = book.save_to_buffer().unwrap();
        let rows = open(Cursor::new(bytes), InputFormat::Xlsx, Encoding::Utf8).unwrap();
        assert_eq!(rows.headers, vec!["名单", "列入日期"]);
        let all: Vec<Vec<Cell>> = rows.rows.map(Result::unwrap).collect();
        assert_eq!(
            all[0],
            vec![
                Cell::Text("A".into()),
                Cell::Date(chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
            ]
        );
        assert_eq!(all[1], Vec::<Cell>::new(), "the row the sheet leaves out");
        assert_eq!(all[2], vec![Cell::Text("36".into())]);
        assert_eq!(all.len(), 3 + many as usize);
        assert_eq!(
            all.last().unwrap(),
            &vec![Cell::Text(format!("row {}", 3 + many))]
        );
    }

    #[test]
    fn a_file_that_is_not_a_workbook_is_refused_by_name() {
        let err = open(
            Cursor::new(b"not a zip".to_vec()),
            InputFormat::Xlsx,
            Encoding::Utf8,
        )
        .err()
        .unwrap();
        assert!(err.starts_with("not an .xlsx workbook"), "{err}");
        let mut book = rust_xlsxwriter::Workbook::new();
        book.add_worksheet();
        let empty = book.save_to_buffer().unwrap();
        let err = open(Cursor::new(empty), InputFormat::Xlsx, Encoding::Utf8)
            .err()
            .unwrap();
        assert!(err.contains("empty"), "{err}");
    }

    /// A cell's column comes from the file: a value far to the right is refused instead
    /// of making a row that wide; a styled blank there (as real exports have) is skipped.
    #[test]
    fn a_value_beyond_the_columns_an_import_reads_is_refused() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "名单").unwrap();
        sheet.write_string(1, 0, "A").unwrap();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        sheet.write_blank(1, 16_000, &bold).unwrap();
        sheet.write_string(2, 0, "B").unwrap();
        sheet.write_string(2, 300, "far").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let mut rows = open(Cursor::new(bytes), InputFormat::Xlsx, Encoding::Utf8)
            .unwrap()
            .rows;
        assert_eq!(rows.next().unwrap().unwrap(), vec![Cell::Text("A".into())]);
        let err = rows.next().unwrap().unwrap_err();
        let ReadError::File(err) = err else {
            panic!("a sheet that stops is the file's failure: {err:?}")
        };
        assert!(
            err.contains("row 3") && err.contains("column 301") && err.contains("256"),
            "{err}"
        );
        assert!(rows.next().is_none());
    }

    /// A workbook's parts rewritten, stored (uncompressed), through `edit`.
    fn rewritten(bytes: Vec<u8>, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> Vec<u8> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for i in 0..archive.len() {
            let mut part = archive.by_index(i).unwrap();
            let name = part.name().unwrap().into_owned();
            let mut data = Vec::new();
            part.read_to_end(&mut data).unwrap();
            out.start_file(name.as_str(), stored).unwrap();
            std::io::Write::write_all(&mut out, &edit(&name, data)).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    fn two_rows(text: &str) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "名单").unwrap();
        sheet.write_string(1, 0, text).unwrap();
        book.save_to_buffer().unwrap()
    }

    fn read_all(bytes: Vec<u8>, limits: ReadLimits) -> Result<Vec<Vec<Cell>>, String> {
        let rows = open_with(
            Cursor::new(bytes),
            InputFormat::Xlsx,
            Encoding::Utf8,
            limits,
        )?;
        rows.rows
            .map(|r| r.map_err(|e| e.message().to_string()))
            .collect()
    }

    /// A row number past a sheet's last is refused at once (not four billion empty rows
    /// later); so is a cell longer than the input rules allow.
    #[test]
    fn a_row_beyond_a_sheet_and_an_over_long_cell_are_refused() {
        let far = rewritten(two_rows("A"), |name, data| {
            if name != "xl/worksheets/sheet1.xml" {
                return data;
            }
            String::from_utf8(data)
                .unwrap()
                .replace("<row r=\"2\"", "<row r=\"2000000\"")
                .replace("r=\"A2\"", "r=\"A2000000\"")
                .into_bytes()
        });
        let started = std::time::Instant::now();
        let err = read_all(far, ReadLimits::default()).unwrap_err();
        assert!(
            err.contains("row 2000000") && err.contains("1048576"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let limits = ReadLimits {
            max_cell_chars: 10,
            ..ReadLimits::default()
        };
        assert_eq!(
            read_all(two_rows("0123456789"), limits).unwrap(),
            vec![vec![Cell::Text("0123456789".into())]]
        );
        let err = read_all(two_rows("0123456789X"), limits).unwrap_err();
        assert!(
            err.contains("row 2, column 1") && err.contains("10 characters"),
            "{err}"
        );
    }

    /// A part that inflates past the cap is refused before calamine reads it, by its
    /// directory entry; one that inflates past the size its entry declares is stopped by
    /// the zip reader.
    #[test]
    fn a_part_inflating_past_the_cap_or_its_declared_size_is_refused() {
        let long = "长".repeat(4_000);
        let limits = ReadLimits {
            max_part_bytes: 8_000,
            ..ReadLimits::default()
        };
        let err = read_all(two_rows(&long), limits).unwrap_err();
        assert!(
            err.starts_with("not an .xlsx workbook") && err.contains("xl/sharedStrings.xml"),
            "{err}"
        );
        assert!(read_all(two_rows("A"), limits).is_ok());
        // The shared strings' declared size cut to 100 bytes in both headers: within any
        // cap, and still refused as it inflates to more.
        let mut bytes = rewritten(two_rows(&long), |_, data| data);
        let name = b"xl/sharedStrings.xml";
        let mut patched = 0;
        for at in 0..bytes.len().saturating_sub(46 + name.len()) {
            // A local header's uncompressed size and name, or a central directory entry's.
            let (size_at, name_at) = match &bytes[at..at + 4] {
                b"PK\x03\x04" => (at + 22, at + 30),
                b"PK\x01\x02" => (at + 24, at + 46),
                _ => continue,
            };
            if &bytes[name_at..name_at + name.len()] == name {
                bytes[size_at..size_at + 4].copy_from_slice(&100u32.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2);
        let err = read_all(bytes, ReadLimits::default()).unwrap_err();
        assert!(err.starts_with("not an .xlsx workbook"), "{err}");
    }

    #[test]
    fn numbers_read_as_a_spreadsheet_shows_them() {
        assert_eq!(number_text(36.0), "36");
        assert_eq!(number_text(1.5), "1.5");
    }
}
