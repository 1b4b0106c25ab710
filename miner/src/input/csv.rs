//! CSV files: a header row, then one record per row.
//!
//! Quoting follows RFC 4180 (double quotes, doubled to escape).  The delimiter is `,`
//! unless the dataset spec's `csv_read_options` (pandas' `read_csv` keywords) say
//! otherwise; `sep: null` (or a `.tsv` file) picks it from the header line.  A row with the
//! wrong number of fields, or bytes that are not UTF-8, is skipped and reported with its
//! line number, or stops the run under `strict`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::{Cell, InputError, Origin, ReadReport, Skipped};

/// How to read a CSV file: the subset of pandas' `read_csv` keywords the specs use.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// `None` picks the delimiter from the header line.
    pub delimiter: Option<u8>,
    pub quote: u8,
    /// Read at most this many records.
    pub nrows: Option<u64>,
    /// Skip this many lines before the header.
    pub skiprows: u64,
    pub comment: Option<u8>,
    /// Extra spellings of a missing value.
    pub na_values: Vec<String>,
    /// Whether pandas' default missing-value spellings apply.
    pub keep_default_na: bool,
    /// Column names to use instead of the file's header row (which is then data).
    pub names: Option<Vec<String>>,
    /// Fail on the first malformed row instead of skipping it.
    pub strict: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: Some(b','),
            quote: b'"',
            nrows: None,
            skiprows: 0,
            comment: None,
            na_values: Vec::new(),
            keep_default_na: true,
            names: None,
            strict: false,
        }
    }
}

fn single_byte(key: &str, value: &serde_json::Value) -> Result<u8, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("`{key}` must be a one-character string"))?;
    let text = match text {
        "\\t" => "\t",
        other => other,
    };
    match text.as_bytes() {
        [b] => Ok(*b),
        _ => Err(format!("`{key}` must be one character, not `{text}`")),
    }
}

impl CsvOptions {
    /// Reads `csv_read_options` from a dataset spec; an option this reader does not know is
    /// an error naming it.
    pub fn from_pandas(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let mut out = CsvOptions::default();
        for (key, value) in options {
            match key.as_str() {
                "sep" | "delimiter" => {
                    out.delimiter = if value.is_null() {
                        None
                    } else {
                        Some(single_byte(key, value)?)
                    };
                }
                "quotechar" => out.quote = single_byte(key, value)?,
                "comment" => out.comment = Some(single_byte(key, value)?),
                "nrows" => {
                    out.nrows = Some(
                        value
                            .as_u64()
                            .ok_or("`nrows` must be a non-negative integer")?,
                    );
                }
                "skiprows" => {
                    out.skiprows = value
                        .as_u64()
                        .ok_or("`skiprows` must be a non-negative integer")?;
                }
                "na_values" => {
                    out.na_values = match value {
                        serde_json::Value::String(s) => vec![s.clone()],
                        serde_json::Value::Array(items) => items
                            .iter()
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .collect(),
                        _ => return Err("`na_values` must be a string or a list".into()),
                    };
                }
                "keep_default_na" => {
                    out.keep_default_na = value
                        .as_bool()
                        .ok_or("`keep_default_na` must be true or false")?;
                }
                "names" => {
                    let names = value
                        .as_array()
                        .ok_or("`names` must be a list of column names")?;
                    out.names = Some(
                        names
                            .iter()
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_owned)
                                    .ok_or("`names` must hold strings")
                            })
                            .collect::<Result<_, _>>()?,
                    );
                }
                "encoding" => {
                    let enc = value
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                        .replace('-', "");
                    if enc != "utf8" && enc != "ascii" {
                        return Err(format!(
                            "encoding `{value}` is not supported; convert the file to UTF-8"
                        ));
                    }
                }
                "skipinitialspace" | "low_memory" | "engine" => {}
                other => {
                    return Err(format!(
                        "csv_read_options: `{other}` is not supported (supported: sep, delimiter, \
                         quotechar, comment, nrows, skiprows, na_values, keep_default_na, names, \
                         encoding)"
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A streaming CSV reader.
pub struct CsvReader {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Vec<String>,
    options: CsvOptions,
    record: csv::ByteRecord,
    /// A first data row taken from the header position when `names` was given.
    pending: Option<(csv::ByteRecord, u64)>,
    /// Lines end in CRLF (the CSV reader then counts one line short).
    crlf: bool,
    pub report: ReadReport,
}

impl std::fmt::Debug for CsvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReader")
            .field("path", &self.path)
            .field("columns", &self.columns)
            .finish()
    }
}

fn sniff_delimiter(line: &str) -> u8 {
    [b',', b'\t', b';', b'|']
        .into_iter()
        .max_by_key(|d| line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',')
}

impl CsvReader {
    pub fn open(path: &Path, options: CsvOptions) -> Result<CsvReader, InputError> {
        let io = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = String::new();
        let mut file = BufReader::new(File::open(path).map_err(io)?);
        // Skip `skiprows` lines, and peek at the header line for the delimiter.
        let mut skipped_bytes = Vec::new();
        for _ in 0..options.skiprows {
            let mut line = Vec::new();
            std::io::BufRead::read_until(&mut file, b'\n', &mut line).map_err(io)?;
            skipped_bytes.extend(line);
        }
        let mut header = Vec::new();
        std::io::BufRead::read_until(&mut file, b'\n', &mut header).map_err(io)?;
        if header.iter().all(u8::is_ascii_whitespace) {
            return Err(InputError::Format {
                path: path.to_owned(),
                message: "the file is empty: no header row".into(),
            });
        }
        text.push_str(&String::from_utf8_lossy(&header));
        let crlf = header.ends_with(b"\r\n");
        let delimiter = options.delimiter.unwrap_or_else(|| sniff_delimiter(&text));
        let rest: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(header).chain(file));
        let mut builder = csv::ReaderBuilder::new();
        builder
            .delimiter(delimiter)
            .quote(options.quote)
            .comment(options.comment)
            .flexible(true)
            .has_headers(false);
        let mut reader = builder.from_reader(rest);
        let mut first = csv::ByteRecord::new();
        let has_first = reader
            .read_byte_record(&mut first)
            .map_err(|e| csv_error(path, &e))?;
        let line_base = options.skiprows;
        let (columns, pending) = match &options.names {
            Some(names) => (
                names.clone(),
                has_first.then(|| (first.clone(), line_base + 1)),
            ),
            None => {
                let mut columns = Vec::with_capacity(first.len());
                for (i, field) in first.iter().enumerate() {
                    let name = std::str::from_utf8(field).map_err(|_| InputError::Format {
                        path: path.to_owned(),
                        message: format!("header column {} is not UTF-8", i + 1),
                    })?;
                    columns.push(name.trim().to_owned());
                }
                (columns, None)
            }
        };
        check_header(path, &columns)?;
        let report = ReadReport {
            bytes: skipped_bytes.len() as u64,
            ..ReadReport::default()
        };
        Ok(CsvReader {
            path: path.to_owned(),
            reader,
            columns,
            options,
            record: csv::ByteRecord::new(),
            pending,
            crlf,
            report,
        })
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Reads the next good record into `row`; skips (and reports) bad ones.
    pub fn next_row(&mut self, row: &mut Vec<Cell>) -> Result<Option<Origin>, InputError> {
        loop {
            if self.options.nrows.is_some_and(|n| self.report.records >= n) {
                return Ok(None);
            }
            let (record, line) = match self.pending.take() {
                Some((record, line)) => (record, line),
                None => {
                    if !self
                        .reader
                        .read_byte_record(&mut self.record)
                        .map_err(|e| csv_error(&self.path, &e))?
                    {
                        self.report.bytes += self.reader.position().byte();
                        return Ok(None);
                    }
                    let line = self.record.position().map_or(0, |p| p.line())
                        + self.options.skiprows
                        + u64::from(self.crlf);
                    (std::mem::take(&mut self.record), line)
                }
            };
            self.report.records += 1;
            let origin = Origin::Line(line);
            match self.decode(&record, row) {
                Ok(()) => {
                    self.record = record;
                    return Ok(Some(origin));
                }
                Err(mut reason) => {
                    self.record = record;
                    // A quote left open swallows the lines after it: say how many.
                    let next = self.reader.position().line()
                        + self.options.skiprows
                        + u64::from(self.crlf);
                    if next > line + 1 {
                        reason.push_str(&format!(
                            " (the record runs over lines {line} to {}: a quote left open?)",
                            next - 1
                        ));
                    }
                    if self.options.strict {
                        return Err(InputError::Record {
                            path: self.path.clone(),
                            origin,
                            message: reason,
                        });
                    }
                    self.report.skipped.push(Skipped { origin, reason });
                }
            }
        }
    }

    fn decode(&self, record: &csv::ByteRecord, row: &mut Vec<Cell>) -> Result<(), String> {
        if record.len() != self.columns.len() {
            return Err(format!(
                "expected {} fields, found {}",
                self.columns.len(),
                record.len()
            ));
        }
        row.clear();
        for (i, field) in record.iter().enumerate() {
            let text = std::str::from_utf8(field)
                .map_err(|_| format!("field `{}` is not valid UTF-8", self.columns[i]))?;
            row.push(self.cell(text));
        }
        Ok(())
    }

    fn cell(&self, text: &str) -> Cell {
        let trimmed = text.trim();
        if self.options.na_values.iter().any(|na| na == trimmed) {
            return Cell::Missing;
        }
        let cell = Cell::parse(text);
        if cell.is_missing() && !self.options.keep_default_na && !trimmed.is_empty() {
            return Cell::Text(text.to_owned());
        }
        cell
    }
}

fn check_header(path: &Path, columns: &[String]) -> Result<(), InputError> {
    let mut seen = std::collections::HashSet::new();
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            return Err(InputError::Format {
                path: path.to_owned(),
                message: format!("header column {} has no name", i + 1),
            });
        }
        if !seen.insert(name) {
            return Err(InputError::Format {
                path: path.to_owned(),
                message: format!("header names column `{name}` twice"),
            });
        }
    }
    Ok(())
}

fn csv_error(path: &Path, e: &csv::Error) -> InputError {
    match e.kind() {
        csv::ErrorKind::Io(io) => InputError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        _ => InputError::Format {
            path: path.to_owned(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type Rows = Vec<(Origin, Vec<Cell>)>;

    fn read_all(
        content: &str,
        options: CsvOptions,
    ) -> Result<(Vec<String>, Rows, ReadReport), InputError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        let mut reader = CsvReader::open(file.path(), options)?;
        let mut rows = Vec::new();
        let mut row = Vec::new();
        while let Some(origin) = reader.next_row(&mut row)? {
            rows.push((origin, row.clone()));
        }
        Ok((reader.columns().to_vec(), rows, reader.report.clone()))
    }

    #[test]
    fn reads_quoted_fields_and_counts_lines() {
        let (cols, rows, report) = read_all(
            "a,b\n1,\"x, y\"\n2,\"multi\nline\"\n3,z\n",
            CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].1, vec![Cell::Int(1), Cell::Text("x, y".into())]);
        assert_eq!(rows[2].0, Origin::Line(5));
        assert_eq!(report.records, 3);
    }

    #[test]
    fn malformed_rows_are_skipped_with_line_numbers() {
        let (_, rows, report) =
            read_all("a,b\n1,2\n3\n4,5,6\n7,8\n", CsvOptions::default()).unwrap();
        assert_eq!(rows.len(), 2);
        let lines: Vec<_> = report.skipped.iter().map(|s| s.origin).collect();
        assert_eq!(lines, [Origin::Line(3), Origin::Line(4)]);
        assert!(
            report.skipped[0]
                .reason
                .contains("expected 2 fields, found 1")
        );
    }

    #[test]
    fn crlf_files_count_lines_like_lf_files() {
        let (_, rows, _) = read_all("a,b\r\n1,2\r\n3,4\r\n", CsvOptions::default()).unwrap();
        assert_eq!(rows[1].0, Origin::Line(3));
    }

    #[test]
    fn an_open_quote_says_how_far_it_ran() {
        let (_, rows, report) = read_all(
            "a,b,c\n1,2,3\n3,\"x,y\n4,5,6\n6,7,8\n",
            CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(
            report.skipped[0].reason.contains("runs over lines 3 to 5"),
            "{:?}",
            report.skipped
        );
    }

    #[test]
    fn strict_makes_malformed_rows_fatal() {
        let options = CsvOptions {
            strict: true,
            ..CsvOptions::default()
        };
        let err = read_all("a,b\n1,2\n3\n", options).unwrap_err();
        assert!(
            err.to_string()
                .contains("line 3: expected 2 fields, found 1"),
            "{err}"
        );
    }

    #[test]
    fn sniffs_the_delimiter_and_honours_options() {
        let options = CsvOptions {
            delimiter: None,
            ..CsvOptions::default()
        };
        let (cols, rows, _) = read_all("a;b\n1;x\n", options).unwrap();
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(rows[0].1[1], Cell::Text("x".into()));
        let json = serde_json::json!({"sep": "\t", "nrows": 1, "na_values": ["-"]});
        let options = CsvOptions::from_pandas(json.as_object().unwrap()).unwrap();
        let (_, rows, _) = read_all("a\tb\n-\t2\n3\t4\n", options).unwrap();
        assert_eq!(
            rows,
            vec![(Origin::Line(2), vec![Cell::Missing, Cell::Int(2)])]
        );
        let bad = serde_json::json!({"dtype": {"a": "int"}});
        let e = CsvOptions::from_pandas(bad.as_object().unwrap()).unwrap_err();
        assert!(e.contains("`dtype` is not supported"), "{e}");
    }

    #[test]
    fn empty_files_and_bad_headers_are_errors() {
        let e = read_all("", CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("the file is empty"), "{e}");
        let e = read_all("a,a\n1,2\n", CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("names column `a` twice"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_skipped() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"a,b\n1,\xff\n2,3\n").unwrap();
        let mut reader = CsvReader::open(file.path(), CsvOptions::default()).unwrap();
        let mut row = Vec::new();
        assert_eq!(reader.next_row(&mut row).unwrap(), Some(Origin::Line(3)));
        assert!(reader.report.skipped[0].reason.contains("not valid UTF-8"));
    }
}
