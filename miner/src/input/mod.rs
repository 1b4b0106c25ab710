//! Readers of raw records: CSV files and packet captures.
//!
//! A reader yields one row of [`Cell`]s per record, in the order of its column names, with
//! the record's [`Origin`] (its line in a CSV file, its frame number in a capture) so that
//! every later error and every example of a violation points back into the input.

pub mod csv;
pub mod pcap;

use std::fmt;
use std::path::{Path, PathBuf};

/// One raw value, as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Missing,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    /// Reads a CSV cell the way pandas does by default: blank and the usual NA spellings
    /// are missing, integers and finite reals are numbers, everything else is text.
    pub fn parse(text: &str) -> Cell {
        let t = text.trim();
        if t.is_empty() || NA_SPELLINGS.contains(&t) {
            return Cell::Missing;
        }
        if let Ok(i) = t.parse::<i64>() {
            return Cell::Int(i);
        }
        let digits = t.strip_prefix('-').unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            // An integer too large for 64 bits: keep its text, so errors quote it.
            return Cell::Text(text.to_owned());
        }
        let numeric_looking = t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        if numeric_looking
            && let Ok(r) = t.parse::<f64>()
            && r.is_finite()
        {
            return Cell::Real(r);
        }
        Cell::Text(text.to_owned())
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Cell::Missing)
    }

    /// The cell as text, the way pandas prints it (`53`, `0.5`, `TCP`).
    pub fn text(&self) -> String {
        match self {
            Cell::Missing => String::new(),
            Cell::Int(i) => i.to_string(),
            Cell::Real(r) => rulepacks::value::format_real(*r),
            Cell::Text(s) => s.clone(),
        }
    }

    /// The cell as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Real(r) => Some(*r),
            _ => None,
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Missing => f.write_str("<missing>"),
            other => write!(f, "`{}`", other.text()),
        }
    }
}

/// The spellings pandas reads as missing by default.
const NA_SPELLINGS: [&str; 14] = [
    "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "<NA>", "#N/A",
    "#NA", "-1.#IND",
];

/// Where a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A line of a text file (1-based, counting the header).
    Line(u64),
    /// A packet of a capture (1-based, as tshark numbers frames).
    Frame(u64),
}

impl Origin {
    pub fn number(self) -> u64 {
        match self {
            Origin::Line(n) | Origin::Frame(n) => n,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Frame(n) => write!(f, "frame {n}"),
        }
    }
}

/// A problem with the input that stops reading it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: {origin}: {message}")]
    Record {
        path: PathBuf,
        origin: Origin,
        message: String,
    },
}

/// A record the reader could not use, kept for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub origin: Origin,
    pub reason: String,
}

/// What a reader noticed on the way: unusable records, and damage it read past.
#[derive(Clone, Debug, Default)]
pub struct ReadReport {
    /// Records read (good and skipped).
    pub records: u64,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    /// Bytes read from the file.
    pub bytes: u64,
}

/// The kinds of input the miner reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Csv,
    Capture,
}

impl SourceKind {
    /// The kind a file name suggests: `.csv`, or `.pcap`/`.pcapng`/`.cap`.
    pub fn from_path(path: &Path) -> Option<SourceKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(SourceKind::Csv),
            "pcap" | "pcapng" | "cap" => Some(SourceKind::Capture),
            _ => None,
        }
    }
}

/// Rows of cells under named columns, with where each came from.
#[derive(Clone, Debug, Default)]
pub struct RawTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub origins: Vec<Origin>,
    pub report: ReadReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse_like_pandas() {
        assert_eq!(Cell::parse("53"), Cell::Int(53));
        assert_eq!(Cell::parse(" 0.5 "), Cell::Real(0.5));
        assert_eq!(Cell::parse("1e3"), Cell::Real(1000.0));
        assert_eq!(Cell::parse(""), Cell::Missing);
        assert_eq!(Cell::parse("NaN"), Cell::Missing);
        assert_eq!(Cell::parse("inf"), Cell::Text("inf".into()));
        assert_eq!(Cell::parse(".A...."), Cell::Text(".A....".into()));
        assert_eq!(Cell::parse("192.168.1.1"), Cell::Text("192.168.1.1".into()));
        assert_eq!(Cell::parse("10081_164"), Cell::Text("10081_164".into()));
    }
}
