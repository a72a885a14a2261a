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

type RowIter = Box<dyn Iterator<Item = Result<Vec<Cell>, String>> + Send>;

/// A file's header and its data rows (the first data row is spreadsheet row 2).
pub struct Rows {
    pub headers: Vec<String>,
    pub rows: RowIter,
}

/// Opens the rows of `input` (rewound first).
pub fn open<R: Read + Seek + Send + 'static>(
    mut input: R,
    format: InputFormat,
    encoding: Encoding,
) -> Result<Rows, String> {
    input
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    match format {
        InputFormat::Csv => open_csv(input, encoding),
        InputFormat::Xlsx => open_xlsx(input),
    }
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
                        if s.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(s.to_string())
                        }
                    })
                    .collect()
            })
            .map_err(|e| format!("the row cannot be read as CSV: {e}"))
    });
    Ok(Rows {
        headers,
        rows: Box::new(rows),
    })
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

/// The first sheet of a workbook. (calamine reads a sheet whole: an `.xlsx` import is
/// bounded by the workbook, which Excel itself caps at 1,048,576 rows.)
fn open_xlsx<R: Read + Seek + Send + 'static>(input: R) -> Result<Rows, String> {
    use calamine::Reader;
    let mut book: calamine::Xlsx<R> = calamine::open_workbook_from_rs(input)
        .map_err(|e| format!("not an .xlsx workbook: {e}"))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| "the workbook has no sheet".to_string())?
        .map_err(|e| format!("the first sheet cannot be read: {e}"))?;
    let (height, width) = range.get_size();
    if height == 0 {
        return Err("the first sheet is empty: it needs a header row".into());
    }
    let cell = move |r: usize, c: usize| range.get((r, c)).map_or(Cell::Empty, xlsx_cell);
    let headers = (0..width)
        .map(|c| cell(0, c).text().unwrap_or_default())
        .collect();
    let rows = (1..height).map(move |r| Ok((0..width).map(|c| cell(r, c)).collect()));
    Ok(Rows {
        headers,
        rows: Box::new(rows),
    })
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

    #[test]
    fn numbers_read_as_a_spreadsheet_shows_them() {
        assert_eq!(number_text(36.0), "36");
        assert_eq!(number_text(1.5), "1.5");
    }
}
