//! The source reader: finds a bundle's files and streams their records with editor line numbers.
//!
//! It owns everything about the *shape* of a file — encoding, CSV quoting, JSON syntax, headers,
//! unknown and misspelt columns, field counts, size limits — and nothing about what a value means
//! (that is [`crate::validate`]). Records are streamed one at a time into one reused [`Record`], so
//! memory does not grow with the number of rows; the one exception is a JSON *array*, whose bytes
//! are held while it is read (use `.jsonl` for very large files). Line numbers are the line on which
//! a record starts, as an editor shows it, so a quoted CSV field that spans lines does not shift the
//! numbers of later records.
//!
//! Hostile input is bounded, never held whole: a field, a record and a header have the limits
//! below, each broken limit is a diagnostic naming file and line, and the reader goes on with the
//! next record (or, for a broken header, stops reading that file).
//!
//! Here: tables, files, bundles, the limits, [`Record`] and [`Reader`]; in `reader`, opening a file,
//! stepping through it, and CSV records; in `csv`, CSV records within the limits; in `json`,
//! `.json` and `.jsonl` records; in `header`, a file's columns and the unknown ones; in
//! `workbook`, `.xlsx` and `.ods` workbooks as bundles of sheets, in `sheet` a sheet's records,
//! and in `cell` what a typed cell becomes as text.

mod cell;
mod csv;
mod header;
mod json;
mod reader;
mod sheet;
mod workbook;
mod xlsx_scan;

pub use self::cell::column_letters;
pub use self::workbook::{BookKind, MAX_ODS_CONTENT_BYTES};

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};

pub(crate) use self::cell::{CellProblem, CellValue, number_text, serial_to_text};
pub(crate) use self::csv::{Raw, RawCsv};
use self::header::UnknownColumns;
pub(crate) use self::reader::trim;
pub(crate) use self::workbook::{
    BookInput, Message as SheetMessage, SheetRow, sheet_rows, sheets, stream_sheet,
};

/// The longest value one field may hold, in bytes (1 MiB). A longer CSV field is usually an
/// unclosed quote that runs on to the end of the file.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// The longest record, in bytes (4 MiB): one CSV row with all its fields, one `.jsonl` line, one
/// object of a `.json` array.
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// The most columns a header, and fields a row, may have: a spreadsheet's most (column XFD).
pub const MAX_COLUMNS: usize = 16_384;
/// The largest `.json` file, in bytes (256 MiB): a JSON array is read whole, so larger files must be
/// `.jsonl`, which is read a line at a time.
pub const MAX_JSON_FILE_BYTES: u64 = 256 << 20;
/// Unknown (or misspelt) columns reported one by one; any more are named in one diagnostic.
pub const MAX_LISTED_COLUMNS: usize = 5;

/// The four kinds of source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Periods,
    Members,
    CapitalAccounts,
    Contributions,
}

/// A column of a source file.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
}

const fn req(name: &'static str) -> Column {
    Column {
        name,
        required: true,
    }
}

const fn opt(name: &'static str) -> Column {
    Column {
        name,
        required: false,
    }
}

const MEMBER_COLUMNS: &[Column] = &[
    req("email"),
    req("display_name"),
    opt("ens_name"),
    req("role"),
    req("status"),
    req("joined_at"),
];
const CAPITAL_COLUMNS: &[Column] = &[
    req("member_email"),
    req("balance"),
    req("tax_basis"),
    opt("notes"),
];
const CONTRIBUTION_COLUMNS: &[Column] = &[
    req("member_email"),
    req("period_name"),
    req("contribution_type"),
    req("amount"),
    opt("description"),
    req("status"),
    opt("approved_at"),
];
const PERIOD_COLUMNS: &[Column] = &[
    req("name"),
    opt("description"),
    req("start_date"),
    req("end_date"),
    opt("status"),
];

impl Table {
    /// In import order: a row may only refer to tables before it.
    pub const ALL: [Table; 4] = [
        Table::Periods,
        Table::Members,
        Table::CapitalAccounts,
        Table::Contributions,
    ];

    /// The file stem in a bundle, and the name used in reports.
    pub fn stem(self) -> &'static str {
        match self {
            Table::Members => "members",
            Table::CapitalAccounts => "capital_accounts",
            Table::Contributions => "contributions",
            Table::Periods => "periods",
        }
    }

    /// The Habitat table the rows land in.
    pub fn target(self) -> &'static str {
        match self {
            Table::Periods => "allocation_periods",
            other => other.stem(),
        }
    }

    pub const fn columns(self) -> &'static [Column] {
        match self {
            Table::Members => MEMBER_COLUMNS,
            Table::CapitalAccounts => CAPITAL_COLUMNS,
            Table::Contributions => CONTRIBUTION_COLUMNS,
            Table::Periods => PERIOD_COLUMNS,
        }
    }

    /// Index of a column by name; the caller names only columns of this table. A `match`, so
    /// that a name written as a literal costs a few compares, not a search (see the test that
    /// keeps it in step with [`Table::columns`]).
    #[inline]
    pub fn index(self, name: &str) -> usize {
        match (self, name) {
            (Table::Members, "email")
            | (Table::CapitalAccounts | Table::Contributions, "member_email")
            | (Table::Periods, "name") => 0,
            (Table::Members, "display_name")
            | (Table::CapitalAccounts, "balance")
            | (Table::Contributions, "period_name")
            | (Table::Periods, "description") => 1,
            (Table::Members, "ens_name")
            | (Table::CapitalAccounts, "tax_basis")
            | (Table::Contributions, "contribution_type")
            | (Table::Periods, "start_date") => 2,
            (Table::Members, "role")
            | (Table::CapitalAccounts, "notes")
            | (Table::Contributions, "amount")
            | (Table::Periods, "end_date") => 3,
            (Table::Members, "status")
            | (Table::Contributions, "description")
            | (Table::Periods, "status") => 4,
            (Table::Members, "joined_at") | (Table::Contributions, "status") => 5,
            (Table::Contributions, "approved_at") => 6,
            _ => usize::MAX,
        }
    }

    pub fn required_in_bundle(self) -> bool {
        matches!(self, Table::Members | Table::CapitalAccounts)
    }
}

/// How a file is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    JsonLines,
    /// A sheet of an `.xlsx` or `.ods` workbook ([`SourceFile::sheet`] names it).
    Sheet,
}

impl Format {
    /// The format a file name says: `.json`, `.jsonl`/`.ndjson`, else CSV.
    pub fn from_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("jsonl" | "ndjson") => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

/// A source file named on the command line or found in a bundle.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path as the user gave it; every diagnostic names the file this way.
    pub display: String,
    pub table: Table,
    pub format: Format,
    /// The sheet, when the file is a workbook's sheet.
    pub sheet: Option<String>,
}

/// A file that cannot be read at all: exit code 4, before any validation.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: file not found")]
    NotFound { path: String },
    #[error("{path}: is a directory; give the path of a CSV or JSON file")]
    IsDirectory { path: String },
    #[error("{path}: is not a regular file ({kind}); give the path of a CSV or JSON file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path}: cannot read: {source}")]
    Unreadable { path: String, source: io::Error },
    #[error("{dir}: not a directory")]
    NotADirectory { dir: String },
    #[error("{dir}: no {stem} file (expected {stem}.csv, {stem}.json or {stem}.jsonl)")]
    MissingRequired { dir: String, stem: &'static str },
    #[error("{dir}: two files for {stem}: {first} and {second}; keep one")]
    Ambiguous {
        dir: String,
        stem: &'static str,
        first: String,
        second: String,
    },
    #[error(
        "{path}: no sheet named {stem} (sheets found: {found}); name the sheet {stem} (case, spaces and _ do not matter)"
    )]
    MissingSheet {
        path: String,
        stem: &'static str,
        found: String,
    },
    #[error("{path}: two sheets for {stem}: {first} and {second}; keep one, or hide the other")]
    AmbiguousSheets {
        path: String,
        stem: &'static str,
        first: String,
        second: String,
    },
    #[error("{path}: the workbook is password-protected; save a copy without a password")]
    Password { path: String },
    #[error("{path}: not a readable workbook: {reason}")]
    BadWorkbook { path: String, reason: String },
    #[error(
        "{path}: the .ods workbook's content unpacks to {size} bytes, more than the {MAX_ODS_CONTENT_BYTES} an .ods may hold (it is read whole); save it as .xlsx, which is read a row at a time"
    )]
    OdsTooLarge { path: String, size: u64 },
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, table: Table) -> SourceFile {
        let path = path.into();
        SourceFile {
            display: path.display().to_string(),
            format: Format::from_path(&path),
            path,
            table,
            sheet: None,
        }
    }

    /// The file holding `table` at `path`: the file itself, or for a workbook (`.xlsx`, `.ods`)
    /// the sheet named like the table.
    pub fn for_table(path: impl Into<PathBuf>, table: Table) -> Result<SourceFile, SourceError> {
        let path = path.into();
        if BookKind::of(&path).is_some() {
            let file = SourceFile::new(&path, table);
            file.check_kind()?;
            workbook::sheet_for(&path, table)
        } else {
            Ok(SourceFile::new(path, table))
        }
    }

    /// Checks that the path names a regular file, without opening it: opening a FIFO would wait
    /// for a writer, and a directory opens fine on Unix and fails only when read.
    fn check_kind(&self) -> Result<u64, SourceError> {
        let meta = fs::metadata(&self.path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => SourceError::NotFound {
                path: self.display.clone(),
            },
            _ => SourceError::Unreadable {
                path: self.display.clone(),
                source,
            },
        })?;
        if meta.is_dir() {
            return Err(SourceError::IsDirectory {
                path: self.display.clone(),
            });
        }
        if !meta.is_file() {
            return Err(SourceError::NotRegular {
                path: self.display.clone(),
                kind: file_kind(&meta.file_type()),
            });
        }
        Ok(meta.len())
    }

    /// Checks that the file exists, is a regular file and can be opened for reading.
    pub fn check_readable(&self) -> Result<(), SourceError> {
        self.open().map(drop)
    }

    fn open(&self) -> Result<File, SourceError> {
        self.check_kind()?;
        File::open(&self.path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => SourceError::NotFound {
                path: self.display.clone(),
            },
            _ => SourceError::Unreadable {
                path: self.display.clone(),
                source,
            },
        })
    }

    /// SHA-256 of the file's bytes, as `sha256sum` prints it.
    pub fn sha256(&self) -> Result<String, SourceError> {
        crate::checksum::sha256_reader(self.open()?).map_err(|source| SourceError::Unreadable {
            path: self.display.clone(),
            source,
        })
    }
}

#[cfg(unix)]
fn file_kind(kind: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a plain file"
    }
}

#[cfg(not(unix))]
fn file_kind(_: &fs::FileType) -> &'static str {
    "not a plain file"
}

/// The files of a migration bundle, one per table at most.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    pub files: Vec<SourceFile>,
}

impl Bundle {
    /// Finds `members.csv|json|jsonl` etc. in `dir`, or the sheets `members` etc. when `dir` is a
    /// workbook (`.xlsx`, `.ods`). A name that exists but is not a regular file (a directory
    /// called `members.csv`) is an error saying so, not a missing file.
    pub fn discover(dir: &Path) -> Result<Bundle, SourceError> {
        if BookKind::of(dir).is_some() && !dir.is_dir() {
            SourceFile::new(dir, Table::Members).check_kind()?;
            return workbook::discover(dir);
        }
        let shown = dir.display().to_string();
        if !dir.is_dir() {
            return Err(if dir.exists() {
                SourceError::NotADirectory { dir: shown }
            } else {
                SourceError::NotFound { path: shown }
            });
        }
        let mut files = Vec::new();
        for table in Table::ALL {
            let mut found: Vec<PathBuf> = ["csv", "json", "jsonl", "ndjson"]
                .iter()
                .map(|ext| dir.join(format!("{}.{ext}", table.stem())))
                .filter(|p| fs::metadata(p).is_ok())
                .collect();
            match found.len() {
                0 if table.required_in_bundle() => {
                    return Err(SourceError::MissingRequired {
                        dir: shown,
                        stem: table.stem(),
                    });
                }
                0 => {}
                1 => {
                    let file = SourceFile::new(found.remove(0), table);
                    file.check_kind()?;
                    files.push(file);
                }
                _ => {
                    return Err(SourceError::Ambiguous {
                        dir: shown,
                        stem: table.stem(),
                        first: found[0].display().to_string(),
                        second: found[1].display().to_string(),
                    });
                }
            }
        }
        Ok(Bundle { files })
    }

    pub fn get(&self, table: Table) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.table == table)
    }

    /// Checks every file can be opened before anything else happens.
    pub fn check_readable(&self) -> Result<(), SourceError> {
        for file in &self.files {
            file.check_readable()?;
        }
        Ok(())
    }
}

/// One data row: its editor line and its values in [`Table::columns`] order, trimmed, with empty
/// values as `None`. The reader reuses one record for every row, so reading allocates nothing per
/// row once the buffers have grown to the longest row.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub line: u64,
    /// The values one after another (or the whole row), `spans` saying where each is.
    text: String,
    spans: Vec<Option<(usize, usize)>>,
    /// Columns whose value the reader refused (and reported), one bit per column index.
    refused: u64,
}

impl Record {
    pub fn get(&self, index: usize) -> Option<&str> {
        let (start, end) = self.spans.get(index).copied().flatten()?;
        self.text.get(start..end)
    }

    /// Whether the reader refused this column's value (a NUL byte, say) and has reported why: the
    /// value reads as absent, and is not "required" again.
    pub fn refused(&self, index: usize) -> bool {
        index < 64 && self.refused & (1 << index) != 0
    }

    /// Whether any value of the row was refused.
    pub fn any_refused(&self) -> bool {
        self.refused != 0
    }

    fn start(&mut self, line: u64, columns: usize) {
        self.line = line;
        self.text.clear();
        self.spans.clear();
        self.spans.resize(columns, None);
        self.refused = 0;
    }

    fn set(&mut self, index: usize, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.spans[index] = Some((start, self.text.len()));
    }

    fn refuse(&mut self, index: usize) {
        self.spans[index] = None;
        if index < 64 {
            self.refused |= 1 << index;
        }
    }
}
/// Streams the records of one file. Structural problems go into the diagnostics passed to each call,
/// and the reader moves on to the next record.
pub struct Reader {
    file: SourceFile,
    inner: Inner,
    /// Required columns missing from the header: their absence was reported once, so per-row
    /// "required" findings for them would only repeat it.
    pub missing_columns: Vec<&'static str>,
    unknown: UnknownColumns,
    record: Record,
    rows: u64,
    saw_anything: bool,
    finished: bool,
    /// A sheet's name and columns, to place diagnostics on it ([`Reader::locate`]).
    place: Option<sheet::SheetColumns>,
}

enum Inner {
    Csv {
        raw: Box<RawCsv>,
        /// For each header position, the known column it holds.
        mapping: Vec<Option<usize>>,
        /// The header's names, for diagnostics about a field of an unknown column.
        header: Vec<String>,
        /// The file is an annotated copy (it has `_problems` or `_hints`): a value's formula
        /// guard is removed as it is read ([`crate::annotate::unguard`]).
        annotated: bool,
    },
    /// A `.json` file held in memory: an array of objects, or (`array: false`) objects one
    /// after another.
    JsonBytes {
        bytes: Vec<u8>,
        pos: usize,
        line: u64,
        counted_to: usize,
        array: bool,
    },
    JsonLines {
        input: Box<dyn BufRead + Send>,
        line: u64,
        buf: Vec<u8>,
    },
    Sheet(Box<sheet::SheetRows>),
    Done,
}

/// Where a reader's bytes come from.
enum Input {
    File(File),
    Bytes(Vec<u8>),
}

impl Input {
    fn buffered(self) -> Box<dyn BufRead + Send> {
        match self {
            Input::File(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Input::Bytes(b) => Box::new(Cursor::new(b)),
        }
    }
}

/// What reading one record came to.
enum Step {
    /// The reader's record holds the next row.
    Record,
    /// A row was read but has a problem that was reported.
    Skip,
    Continue,
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_indexes_match_the_column_lists() {
        for table in Table::ALL {
            for (i, column) in table.columns().iter().enumerate() {
                assert_eq!(table.index(column.name), i, "{table:?} {}", column.name);
            }
            assert_eq!(table.index("favourite_colour"), usize::MAX);
        }
        assert_eq!(Table::Members.index("amount"), usize::MAX);
    }
}
