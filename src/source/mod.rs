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

mod csv;
mod json;

use std::collections::HashSet;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, shown};

use self::csv::{Overflow, Raw, RawCsv};
use self::json::{Key, Object, Scalar};

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
}

impl Format {
    fn from_path(path: &Path) -> Format {
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
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, table: Table) -> SourceFile {
        let path = path.into();
        SourceFile {
            display: path.display().to_string(),
            format: Format::from_path(&path),
            path,
            table,
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
    /// Finds `members.csv|json|jsonl` etc. in `dir`. A name that exists but is not a regular file
    /// (a directory called `members.csv`) is an error saying so, not a missing file.
    pub fn discover(dir: &Path) -> Result<Bundle, SourceError> {
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
}

enum Inner {
    Csv {
        raw: Box<RawCsv>,
        /// For each header position, the known column it holds.
        mapping: Vec<Option<usize>>,
        /// The header's names, for diagnostics about a field of an unknown column.
        header: Vec<String>,
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

impl Reader {
    /// Opens a file and checks its header. Only an unreadable file is an `Err`.
    pub fn open(file: &SourceFile, diags: &mut Diagnostics) -> Result<Reader, SourceError> {
        let handle = file.open()?;
        Reader::start(file, Input::File(handle), diags).map_err(|source| SourceError::Unreadable {
            path: file.display.clone(),
            source,
        })
    }

    /// Reads `bytes` as if they were the contents of `file` (whose path is only used in
    /// diagnostics): for tests and fuzzing, which need no file on disk.
    pub fn from_bytes(file: &SourceFile, bytes: Vec<u8>, diags: &mut Diagnostics) -> Reader {
        Reader::start(file, Input::Bytes(bytes), diags).unwrap_or_else(|e| {
            diags.push(Diagnostic::error(
                &file.display,
                "file.unreadable",
                e.to_string(),
            ));
            Reader::empty(file)
        })
    }

    fn empty(file: &SourceFile) -> Reader {
        Reader {
            file: file.clone(),
            inner: Inner::Done,
            missing_columns: Vec::new(),
            unknown: UnknownColumns::default(),
            record: Record::default(),
            rows: 0,
            saw_anything: false,
            finished: false,
        }
    }

    fn start(file: &SourceFile, input: Input, diags: &mut Diagnostics) -> io::Result<Reader> {
        let mut reader = Reader::empty(file);
        match file.format {
            Format::Csv => reader.open_csv(input.buffered(), diags)?,
            Format::Json => {
                if let Some(bytes) = read_json_file(file, input, diags)? {
                    reader.open_json(bytes, diags);
                } else {
                    reader.saw_anything = true;
                    reader.finished = true;
                }
            }
            Format::JsonLines => {
                reader.inner = Inner::JsonLines {
                    input: input.buffered(),
                    line: 0,
                    buf: Vec::new(),
                };
            }
        }
        Ok(reader)
    }

    pub fn file(&self) -> &SourceFile {
        &self.file
    }

    /// Data rows read so far (including ones with problems).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The next structurally sound record, or `None` at the end of the file. Allocates a copy;
    /// [`Reader::advance`] and [`Reader::record`] read without one.
    pub fn next_record(&mut self, diags: &mut Diagnostics) -> Option<Record> {
        self.advance(diags).then(|| self.record.clone())
    }

    /// The record [`Reader::advance`] last moved to.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Moves to the next structurally sound record; `false` at the end of the file.
    pub fn advance(&mut self, diags: &mut Diagnostics) -> bool {
        if self.finished {
            return false;
        }
        loop {
            let step = match &self.inner {
                Inner::Csv { .. } => self.next_csv(diags),
                Inner::JsonBytes { .. } => self.next_json_bytes(diags),
                Inner::JsonLines { .. } => self.next_json_line(diags),
                Inner::Done => Step::End,
            };
            match step {
                Step::Record => {
                    self.rows += 1;
                    return true;
                }
                Step::Skip => {
                    self.rows += 1;
                }
                Step::Continue => {}
                Step::End => {
                    self.finish(diags);
                    return false;
                }
            }
        }
    }

    fn finish(&mut self, diags: &mut Diagnostics) {
        self.finished = true;
        self.inner = Inner::Done;
        self.unknown.finish(&self.file, diags);
        // An unknown column's warning is no reason to leave out "no rows"; a broken file is.
        let broken = diags.items().iter().any(|d| {
            d.file == self.file.display
                && d.severity == crate::diagnostic::Severity::Error
                && d.rule.starts_with("file.")
        });
        if self.rows == 0 && self.saw_anything && !broken {
            diags.push(
                Diagnostic::error(
                    &self.file.display,
                    "file.no_rows",
                    "the file has no data rows",
                )
                .hint(format!(
                    "a {} file needs at least one row after the header",
                    self.file.table.stem()
                )),
            );
        } else if self.rows == 0 && !self.saw_anything && diags.items().is_empty() {
            diags.push(Diagnostic::error(
                &self.file.display,
                "file.empty",
                "the file is empty",
            ));
        }
    }

    fn open_csv(
        &mut self,
        input: Box<dyn BufRead + Send>,
        diags: &mut Diagnostics,
    ) -> io::Result<()> {
        let mut raw = RawCsv::new(input);
        let got = match raw.read_header() {
            Raw::Record(_) => true,
            Raw::End => false,
            Raw::Error(e) => return Err(e),
            Raw::Overflow(line, what) => {
                self.saw_anything = true;
                self.finished = true;
                diags.push(header_overflow(&self.file, line, what));
                return Ok(());
            }
        };
        if !got || (raw.len() == 1 && trim_bom(raw.field(0)).iter().all(u8::is_ascii_whitespace)) {
            self.saw_anything = false;
            self.finished = true;
            diags.push(
                Diagnostic::error(&self.file.display, "file.empty", "the file is empty")
                    .hint(header_hint(self.file.table)),
            );
            return Ok(());
        }
        self.saw_anything = true;
        let mut names = Vec::with_capacity(raw.len());
        let mut reported_encoding = false;
        for (i, field) in raw.fields().enumerate() {
            let field = if i == 0 { trim_bom(field) } else { field };
            match std::str::from_utf8(field) {
                Ok(s) => names.push(trim(s).to_string()),
                Err(_) => {
                    if !reported_encoding {
                        reported_encoding = true;
                        diags.push(
                            Diagnostic::error(
                                &self.file.display,
                                "file.encoding",
                                "the header is not valid UTF-8",
                            )
                            .at(1)
                            .hint("save the file as UTF-8"),
                        );
                    }
                    names.push(trim(&String::from_utf8_lossy(field)).to_string());
                }
            }
        }
        let mapping = self.map_header(&names, diags);
        self.inner = Inner::Csv {
            raw: Box::new(raw),
            mapping,
            header: names,
        };
        Ok(())
    }

    /// Maps header positions to known columns, reporting unknown, misspelt, duplicate and missing
    /// ones, in header order.
    fn map_header(&mut self, names: &[String], diags: &mut Diagnostics) -> Vec<Option<usize>> {
        enum Seen {
            Known(usize),
            Unknown(Option<&'static str>),
            Again,
        }
        let table = self.file.table;
        let columns = table.columns();
        let present: Vec<bool> = columns
            .iter()
            .map(|c| names.iter().any(|n| n == c.name))
            .collect();
        let mut times = vec![0usize; columns.len()];
        let mut unknown_of_kind = [0usize; 2];
        let seen: Vec<Seen> = names
            .iter()
            .map(|name| match columns.iter().position(|c| c.name == name) {
                Some(i) => {
                    times[i] += 1;
                    Seen::Known(i)
                }
                None if self.unknown.first_sight(name) => {
                    let near = near_miss(name, columns, &present);
                    unknown_of_kind[usize::from(near.is_some())] += 1;
                    Seen::Unknown(near)
                }
                None => Seen::Again,
            })
            .collect();
        let grouped = unknown_of_kind.map(|n| n > MAX_LISTED_COLUMNS);
        let mut groups = [Unlisted::default(), Unlisted::default()];
        let mut suggested = HashSet::new();
        let mut mapping = Vec::with_capacity(names.len());
        let mut taken = vec![false; columns.len()];
        for (name, seen) in names.iter().zip(seen) {
            match seen {
                Seen::Known(i) if taken[i] => {
                    mapping.push(None);
                    // Reported once, at the second appearance, with the number of appearances.
                    if times[i] > 0 {
                        diags.push(duplicate_column(
                            &self.file.display,
                            columns[i].name,
                            times[i],
                        ));
                        times[i] = 0;
                    }
                }
                Seen::Known(i) => {
                    taken[i] = true;
                    mapping.push(Some(i));
                }
                Seen::Unknown(near) => {
                    mapping.push(None);
                    suggested.extend(near);
                    let kind = usize::from(near.is_some());
                    if grouped[kind] {
                        groups[kind].add(name, Some(1));
                    } else {
                        diags.push(unknown_column(&self.file.display, Some(1), name, near));
                    }
                }
                Seen::Again => mapping.push(None),
            }
        }
        for (kind, group) in groups.iter().enumerate() {
            if grouped[kind] {
                diags.push(self.unknown.group(&self.file, group, kind == 1, ""));
            }
        }
        for (i, column) in columns.iter().enumerate() {
            if column.required && !taken[i] {
                self.missing_columns.push(column.name);
                if !suggested.contains(column.name) {
                    diags.push(
                        Diagnostic::error(
                            &self.file.display,
                            "file.missing_column",
                            format!("required column `{}` is missing", column.name),
                        )
                        .at(1)
                        .column(column.name)
                        .hint(header_hint(table)),
                    );
                }
            }
        }
        mapping
    }

    fn open_json(&mut self, bytes: Vec<u8>, diags: &mut Diagnostics) {
        let body = trim_bom(&bytes);
        if body.iter().all(u8::is_ascii_whitespace) {
            self.finished = true;
            diags.push(
                Diagnostic::error(&self.file.display, "file.empty", "the file is empty")
                    .hint("give a JSON array of objects, or one object per line in a .jsonl file"),
            );
            return;
        }
        self.saw_anything = true;
        if let Err(e) = std::str::from_utf8(&bytes) {
            let line = line_of(&bytes, e.valid_up_to());
            diags.push(encoding_error(&self.file.display, line, None));
            self.finished = true;
            return;
        }
        let start = bytes.len() - body.len();
        let first = body.iter().position(|b| !b.is_ascii_whitespace());
        match first.map(|p| body[p]) {
            Some(open @ (b'[' | b'{')) => {
                let array = open == b'[';
                let pos = start + first.unwrap_or(0) + usize::from(array);
                self.inner = Inner::JsonBytes {
                    line: line_of(&bytes, pos),
                    counted_to: pos,
                    bytes,
                    pos,
                    array,
                };
            }
            _ => {
                self.finished = true;
                diags.push(
                    Diagnostic::error(
                        &self.file.display,
                        "file.json",
                        "expected a JSON array of objects",
                    )
                    .at(line_of(&bytes, start + first.unwrap_or(0)))
                    .hint("the file should look like [{\"email\": \"…\", …}, …]"),
                );
            }
        }
    }

    fn next_csv(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::Csv {
            raw,
            mapping,
            header,
        } = &mut self.inner
        else {
            return Step::End;
        };
        let file = &self.file.display;
        let line = match raw.read() {
            Raw::End => return Step::End,
            Raw::Error(e) => {
                diags.push(Diagnostic::error(
                    file,
                    "file.csv",
                    format!("unreadable CSV: {e}"),
                ));
                return Step::End;
            }
            Raw::Overflow(line, what) => {
                diags.push(row_overflow(
                    &self.file,
                    line,
                    what,
                    header,
                    mapping.as_slice(),
                ));
                return Step::Skip;
            }
            Raw::Record(line) => line,
        };
        if raw.len() == 1 && raw.field(0).iter().all(u8::is_ascii_whitespace) {
            // A blank line between records is not a record.
            return Step::Continue;
        }
        if raw.len() != header.len() {
            diags.push(
                Diagnostic::error(
                    file,
                    "file.field_count",
                    format!("{} fields, but the header has {}", raw.len(), header.len()),
                )
                .at(line)
                .hint("a value with a comma must be in double quotes"),
            );
            return Step::Skip;
        }
        let columns = self.file.table.columns();
        // The common case in one pass each: the whole row is UTF-8 with no NUL byte, so it is
        // checked and copied once, and each value is a trimmed span of it.
        let whole = raw.record_bytes();
        if let Ok(text) = std::str::from_utf8(whole)
            && !has_nul(whole)
        {
            self.record.start(line, columns.len());
            self.record.text.push_str(text);
            let spans = mapping.iter().enumerate().filter_map(|(i, col)| {
                let (start, end) = raw.range(i);
                Some((col.as_ref()?, start, text.get(start..end)))
            });
            let mut split_char = false;
            for (&col, start, value) in spans {
                let Some(value) = value else {
                    // A character split between two fields: each field is not valid UTF-8.
                    split_char = true;
                    break;
                };
                let (from, to) = trim_bounds(value);
                if from < to {
                    self.record.spans[col] = Some((start + from, start + to));
                }
            }
            if !split_char {
                return Step::Record;
            }
        }
        self.record.start(line, columns.len());
        let mut bad = false;
        for (i, col) in mapping.iter().enumerate() {
            let Some(col) = *col else {
                continue;
            };
            let field = raw.field(i);
            match std::str::from_utf8(field) {
                Ok(s) => {
                    let value = trim(s);
                    if let Some(at) = field.iter().position(|&b| b == 0) {
                        let nul_line = line + count_newlines(&field[..at]);
                        diags.push(nul_error(file, nul_line, columns[col].name, value));
                        self.record.refuse(col);
                    } else if !value.is_empty() {
                        self.record.set(col, value);
                    }
                }
                Err(e) => {
                    let bad_line = line + count_newlines(&field[..e.valid_up_to()]);
                    diags.push(encoding_error(
                        file,
                        bad_line,
                        Some((columns[col].name, field)),
                    ));
                    bad = true;
                }
            }
        }
        if bad { Step::Skip } else { Step::Record }
    }

    fn next_json_bytes(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::JsonBytes {
            bytes,
            pos,
            line,
            counted_to,
            array,
        } = &mut self.inner
        else {
            return Step::End;
        };
        let file = &self.file.display;
        let skip_ws = |p: &mut usize| {
            while *p < bytes.len() && bytes[*p].is_ascii_whitespace() {
                *p += 1;
            }
        };
        skip_ws(pos);
        if *array && *pos < bytes.len() && bytes[*pos] == b',' && self.rows > 0 {
            *pos += 1;
            skip_ws(pos);
        }
        *line += count_newlines(&bytes[*counted_to..*pos]);
        *counted_to = *pos;
        if *pos >= bytes.len() && !*array {
            return Step::End;
        }
        if *pos >= bytes.len() {
            diags.push(
                Diagnostic::error(file, "file.json", "the JSON array is not closed")
                    .at(*line)
                    .hint("end the file with ]"),
            );
            return Step::End;
        }
        if *array && bytes[*pos] == b']' {
            return Step::End;
        }
        let start_line = *line;
        // The whole file was checked to be UTF-8 when it was opened.
        let Ok(rest) = std::str::from_utf8(&bytes[*pos..]) else {
            return Step::End;
        };
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<json::Checked>();
        match stream.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                diags.push(
                    Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                        .at(start_line + e.line() as u64 - 1),
                );
                return Step::End;
            }
            None => return Step::End,
        }
        let text = &rest[..stream.byte_offset()];
        *pos += stream.byte_offset();
        *line += count_newlines(&bytes[*counted_to..*pos]);
        *counted_to = *pos;
        // Anything but `,` or `]` after a value is a syntax error.
        let mut p = *pos;
        skip_ws(&mut p);
        if *array && p < bytes.len() && bytes[p] != b',' && bytes[p] != b']' {
            let at = start_line + count_newlines(&bytes[*counted_to..p]);
            diags.push(
                Diagnostic::error(file, "file.json", "expected , or ] after an object").at(at),
            );
            return Step::End;
        }
        if text.len() > MAX_RECORD_BYTES {
            diags.push(
                Diagnostic::error(
                    file,
                    "file.record_too_large",
                    format!(
                        "the object is longer than {}, the most one record may hold; it is skipped",
                        size(MAX_RECORD_BYTES)
                    ),
                )
                .at(start_line)
                .hint("split the record's text, or give it in fewer characters"),
            );
            return Step::Skip;
        }
        let unknown = &mut self.unknown;
        let parsed = json::object(text, self.file.table.columns(), &mut |k| {
            unknown.first_sight(k)
        });
        match parsed {
            Ok(Some(object)) => json_record(
                &self.file,
                start_line,
                object,
                &mut self.record,
                &mut self.unknown,
                diags,
            ),
            Ok(None) => {
                diags.push(
                    Diagnostic::error(file, "file.json", "expected a JSON object").at(start_line),
                );
                Step::Skip
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                        .at(start_line + e.line() as u64 - 1),
                );
                Step::End
            }
        }
    }

    fn next_json_line(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::JsonLines { input, line, buf } = &mut self.inner else {
            return Step::End;
        };
        let file = &self.file.display;
        buf.clear();
        let read = match read_line_bounded(input.as_mut(), buf, MAX_RECORD_BYTES) {
            Ok(read) => read,
            Err(e) => {
                diags.push(Diagnostic::error(file, "file.unreadable", e.to_string()).at(*line + 1));
                return Step::End;
            }
        };
        if read == LineRead::End {
            return Step::End;
        }
        *line += 1;
        let this_line = *line;
        self.saw_anything |= read == LineRead::TooLong;
        if read == LineRead::TooLong {
            diags.push(
                Diagnostic::error(
                    file,
                    "file.record_too_large",
                    format!(
                        "the line is longer than {}, the most one record may hold; it is skipped",
                        size(MAX_RECORD_BYTES)
                    ),
                )
                .at(this_line)
                .hint("each line of a .jsonl file is one JSON object"),
            );
            return Step::Skip;
        }
        let text = if this_line == 1 {
            trim_bom(buf)
        } else {
            &buf[..]
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Step::Continue;
        }
        self.saw_anything = true;
        let Ok(text) = std::str::from_utf8(text) else {
            diags.push(encoding_error(file, this_line, None));
            return Step::Skip;
        };
        if let Err(e) = serde_json::from_str::<json::Checked>(text) {
            diags.push(
                Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                    .at(this_line)
                    .hint("each line of a .jsonl file is one JSON object"),
            );
            return Step::Skip;
        }
        let unknown = &mut self.unknown;
        let parsed = json::object(text, self.file.table.columns(), &mut |k| {
            unknown.first_sight(k)
        });
        match parsed {
            Ok(Some(object)) => json_record(
                &self.file,
                this_line,
                object,
                &mut self.record,
                &mut self.unknown,
                diags,
            ),
            Ok(None) => {
                diags.push(
                    Diagnostic::error(file, "file.json", "expected a JSON object").at(this_line),
                );
                Step::Skip
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                        .at(this_line)
                        .hint("each line of a .jsonl file is one JSON object"),
                );
                Step::Skip
            }
        }
    }
}

/// Fills `record` from one parsed object, reporting its unknown keys and unusable values.
fn json_record(
    file: &SourceFile,
    line: u64,
    object: Object<'_>,
    record: &mut Record,
    unknown: &mut UnknownColumns,
    diags: &mut Diagnostics,
) -> Step {
    let columns = file.table.columns();
    record.start(line, columns.len());
    let mut bad = false;
    for key in &object.keys {
        let col = match key {
            Key::Unknown(name) => {
                let near = near_miss(name, columns, &[]);
                unknown.report(&file.display, Some(line), name, near, diags);
                continue;
            }
            Key::Known(col) => *col,
        };
        let name = columns[col].name;
        let Some(raw) = object.values[col] else {
            continue;
        };
        match json::scalar(raw) {
            Ok(Scalar::Null) => {}
            Ok(Scalar::Text(text)) => {
                let value = trim(&text);
                if value.len() > MAX_FIELD_BYTES {
                    diags.push(field_too_large(&file.display, line, name, ".json"));
                    bad = true;
                } else if value.contains('\0') {
                    diags.push(nul_error(&file.display, line, name, value));
                    record.refuse(col);
                } else if !value.is_empty() {
                    record.set(col, value);
                }
            }
            Ok(Scalar::Other) => {
                diags.push(
                    Diagnostic::error(&file.display, "file.json", "expected a string or a number")
                        .at(line)
                        .column(name)
                        .hint("give a string or a number"),
                );
                bad = true;
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(&file.display, "file.json", format!("invalid JSON: {e}"))
                        .at(line)
                        .column(name),
                );
                bad = true;
            }
        }
    }
    if bad { Step::Skip } else { Step::Record }
}

/// Reads a `.json` file whole, unless it is larger than [`MAX_JSON_FILE_BYTES`] (then `None`,
/// with the diagnostic saying so).
fn read_json_file(
    file: &SourceFile,
    input: Input,
    diags: &mut Diagnostics,
) -> io::Result<Option<Vec<u8>>> {
    let limit = MAX_JSON_FILE_BYTES;
    let bytes = match input {
        Input::Bytes(bytes) => bytes,
        Input::File(handle) => {
            if handle.metadata()?.len() > limit {
                diags.push(json_too_large(file));
                return Ok(None);
            }
            let mut bytes = Vec::new();
            // `take`: the size from the file system is only a hint for a file still being written.
            BufReader::new(handle)
                .take(limit + 1)
                .read_to_end(&mut bytes)?;
            bytes
        }
    };
    if bytes.len() as u64 > limit {
        diags.push(json_too_large(file));
        return Ok(None);
    }
    Ok(Some(bytes))
}

fn json_too_large(file: &SourceFile) -> Diagnostic {
    Diagnostic::error(
        &file.display,
        "file.too_large",
        format!(
            "a .json file is read whole and may hold at most {}; this one is larger",
            size(usize::try_from(MAX_JSON_FILE_BYTES).unwrap_or(usize::MAX))
        ),
    )
    .hint("write one object per line in a .jsonl file, which is read a line at a time")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineRead {
    Line,
    /// The line was longer than the limit; it was read to its end and dropped.
    TooLong,
    End,
}

/// `read_until(b'\n')` that keeps at most `max` bytes of a line.
fn read_line_bounded(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        input.consume(take);
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => LineRead::End,
        (true, true) => LineRead::TooLong,
        (true, false) => LineRead::Line,
    })
}

enum Step {
    /// The reader's record holds the next row.
    Record,
    /// A row was read but has a problem that was reported.
    Skip,
    Continue,
    End,
}

/// Unknown and misspelt columns (or JSON keys) of one file. Each distinct name is reported once,
/// and at most [`MAX_LISTED_COLUMNS`] of a kind one by one: a CSV header with more has them all in
/// one diagnostic; a JSON file, whose keys come one record at a time, lists the first ones as they
/// come and the rest in one diagnostic at the end. Ten thousand unknown columns are one warning,
/// not ten thousand.
#[derive(Default)]
struct UnknownColumns {
    /// Digests of the names seen, at most [`MAX_COLUMNS`] of them.
    seen: HashSet<u64>,
    /// More distinct names came than `seen` holds: the counts below are lower bounds.
    saturated: bool,
    unknown: Unlisted,
    misspelt: Unlisted,
}

/// The names of one kind beyond those listed one by one.
#[derive(Default)]
struct Unlisted {
    listed: usize,
    more: u64,
    names: Vec<String>,
    line: Option<u64>,
}

impl Unlisted {
    fn add(&mut self, name: &str, line: Option<u64>) {
        self.more += 1;
        if self.names.len() < MAX_LISTED_COLUMNS {
            self.names.push(name.to_string());
        }
        if self.line.is_none() {
            self.line = line;
        }
    }
}

impl UnknownColumns {
    /// Whether `name` is seen here for the first time (and should be reported).
    fn first_sight(&mut self, name: &str) -> bool {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        let digest = hasher.finish();
        if self.seen.contains(&digest) {
            return false;
        }
        if self.seen.len() >= MAX_COLUMNS {
            self.saturated = true;
            return false;
        }
        self.seen.insert(digest)
    }

    /// Reports a name found in a record: one by one until the kind has had its
    /// [`MAX_LISTED_COLUMNS`], then kept for [`UnknownColumns::finish`].
    fn report(
        &mut self,
        file: &str,
        line: Option<u64>,
        name: &str,
        near: Option<&'static str>,
        diags: &mut Diagnostics,
    ) {
        let kind = if near.is_some() {
            &mut self.misspelt
        } else {
            &mut self.unknown
        };
        if kind.listed < MAX_LISTED_COLUMNS {
            kind.listed += 1;
            diags.push(unknown_column(file, line, name, near));
        } else {
            kind.add(name, line);
        }
    }

    /// The names a JSON file had beyond those listed one by one.
    fn finish(&mut self, file: &SourceFile, diags: &mut Diagnostics) {
        if self.unknown.more > 0 {
            diags.push(self.group(file, &self.unknown, false, "more "));
        }
        if self.misspelt.more > 0 {
            diags.push(self.group(file, &self.misspelt, true, "more "));
        }
    }

    fn group(&self, file: &SourceFile, group: &Unlisted, misspelt: bool, more: &str) -> Diagnostic {
        let at_least = if self.saturated { "at least " } else { "" };
        let n = group.more;
        let columns = if n == 1 { "column" } else { "columns" };
        let list = name_list(&group.names, n);
        let mut d = if misspelt {
            Diagnostic::error(
                &file.display,
                "file.misspelt_column",
                format!("{at_least}{n} {more}unknown {columns} close to known ones: {list}"),
            )
            .hint(format!("check the spelling; {}", header_hint(file.table)))
        } else {
            let its = if n == 1 {
                "its values are"
            } else {
                "their values are"
            };
            Diagnostic::warning(
                &file.display,
                "file.unknown_column",
                format!("{at_least}{n} {more}unknown {columns}: {list}: {its} not imported"),
            )
            .hint(format!(
                "check that this is a {} file; {}",
                file.table.stem(),
                header_hint(file.table)
            ))
        };
        d.line = group.line;
        d.column(group.names.first().map_or("", String::as_str))
    }
}

/// "`a`, `b` and 7 others", each name cut to what a diagnostic shows.
fn name_list(names: &[String], total: u64) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", shown(n))).collect();
    match total.saturating_sub(names.len() as u64) {
        0 => quoted.join(", "),
        1 => format!("{} and 1 other", quoted.join(", ")),
        others => format!("{} and {others} others", quoted.join(", ")),
    }
}

/// "1 MiB (1048576 bytes)".
fn size(bytes: usize) -> String {
    format!("{} MiB ({bytes} bytes)", bytes >> 20)
}

fn header_overflow(file: &SourceFile, line: u64, what: Overflow) -> Diagnostic {
    let (rule, message) = match what {
        Overflow::Fields => (
            "file.too_many_columns",
            format!("the header has more than {MAX_COLUMNS} columns, the most a file may have"),
        ),
        Overflow::Field(_) | Overflow::Record => (
            "file.record_too_large",
            format!(
                "the header is longer than {}, the most one line may hold",
                size(if what == Overflow::Record {
                    MAX_RECORD_BYTES
                } else {
                    MAX_FIELD_BYTES
                })
            ),
        ),
    };
    Diagnostic::error(&file.display, rule, message)
        .at(line)
        .hint(format!(
            "check that this is a {} CSV file; {}",
            file.table.stem(),
            header_hint(file.table)
        ))
}

fn row_overflow(
    file: &SourceFile,
    line: u64,
    what: Overflow,
    header: &[String],
    mapping: &[Option<usize>],
) -> Diagnostic {
    let display = &file.display;
    match what {
        Overflow::Field(i) => {
            let column = match mapping.get(i).copied().flatten() {
                Some(col) => file.table.columns()[col].name,
                None => header.get(i).map_or("", String::as_str),
            };
            field_too_large(display, line, column, ".csv")
        }
        Overflow::Record => Diagnostic::error(
            display,
            "file.record_too_large",
            format!(
                "the row is longer than {}, the most one row may hold; it is skipped",
                size(MAX_RECORD_BYTES)
            ),
        )
        .at(line)
        .hint(UNCLOSED_QUOTE_HINT),
        Overflow::Fields => Diagnostic::error(
            display,
            "file.field_count",
            format!(
                "more than {MAX_COLUMNS} fields, but the header has {}",
                header.len()
            ),
        )
        .at(line)
        .hint("a value with a comma must be in double quotes"),
    }
}

const UNCLOSED_QUOTE_HINT: &str = "text this long is usually a double quote that is never closed: check the quotes from this line on";

fn field_too_large(file: &str, line: u64, column: &str, format: &str) -> Diagnostic {
    let d = Diagnostic::error(
        file,
        "file.field_too_large",
        format!(
            "the value is longer than {}, the most one field may hold; the row is skipped",
            size(MAX_FIELD_BYTES)
        ),
    )
    .at(line)
    .column(column);
    if format == ".csv" {
        d.hint(UNCLOSED_QUOTE_HINT)
    } else {
        d.hint("shorten the value")
    }
}

fn duplicate_column(file: &str, name: &str, times: usize) -> Diagnostic {
    let (times, hint) = if times == 2 {
        ("twice".to_string(), "keep one of the two columns")
    } else {
        (format!("{times} times"), "keep one of the columns")
    };
    Diagnostic::error(
        file,
        "file.duplicate_column",
        format!("column `{name}` appears {times}"),
    )
    .at(1)
    .column(name)
    .hint(hint)
}

fn nul_error(file: &str, line: u64, column: &str, value: &str) -> Diagnostic {
    Diagnostic::error(file, "value.nul", "the value contains a NUL byte (\\0)")
        .at(line)
        .column(column)
        .value(value)
        .hint("remove the NUL characters; they come from a broken export or a binary file, and PostgreSQL cannot store them")
}

/// `str::trim`, with a fast path for the ASCII spaces that are all a normal file has.
fn trim(s: &str) -> &str {
    let (from, to) = trim_bounds(s);
    &s[from..to]
}

/// Where `s.trim()` starts and ends in `s`.
fn trim_bounds(s: &str) -> (usize, usize) {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let bytes = s.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    // Other Unicode white space (a no-break space, say) starts with a byte >= 0x80.
    match (
        bytes.get(start),
        end.checked_sub(1).and_then(|i| bytes.get(i)),
    ) {
        (Some(&first), Some(&last)) if start < end && (first >= 0x80 || last >= 0x80) => {
            let inner = &s[start..end];
            let trimmed_start = inner.trim_start();
            let from = start + inner.len() - trimmed_start.len();
            (from, from + trimmed_start.trim_end().len())
        }
        _ => (start, end),
    }
}

/// Whether `bytes` hold a NUL; branch-free, so it compiles to vector compares.
fn has_nul(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |any, &b| any | u8::from(b == 0)) != 0
}

fn trim_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + count_newlines(&bytes[..offset.min(bytes.len())])
}

fn encoding_error(file: &str, line: u64, column: Option<(&str, &[u8])>) -> Diagnostic {
    let mut d = Diagnostic::error(file, "file.encoding", "not valid UTF-8")
        .at(line)
        .hint("save the file as UTF-8 (in a spreadsheet: CSV UTF-8)");
    if let Some((name, raw)) = column {
        d = d.column(name).value(&String::from_utf8_lossy(raw));
    }
    d
}

fn unknown_column(file: &str, line: Option<u64>, name: &str, near: Option<&str>) -> Diagnostic {
    let name_shown = shown(name);
    let mut d = match near {
        Some(known) => Diagnostic::error(
            file,
            "file.misspelt_column",
            format!("unknown column `{name_shown}`"),
        )
        .hint(format!("did you mean `{known}`?")),
        None => Diagnostic::warning(
            file,
            "file.unknown_column",
            format!("unknown column `{name_shown}`: its values are not imported"),
        ),
    };
    d.line = line;
    d.column(name)
}

fn header_hint(table: Table) -> String {
    let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
    format!("the first line names the columns: {}", names.join(","))
}

/// A known column within edit distance 2 of `name` that the header does not already have
/// (`present[i]`: the header has column `i`; JSON passes nothing).
fn near_miss(name: &str, columns: &'static [Column], present: &[bool]) -> Option<&'static str> {
    // The distance is at least the difference in length, so a long name is no near miss of
    // anything and is never compared character by character.
    let chars = name.chars().take(64).count();
    let candidate = |(i, c): &(usize, &Column)| {
        !present.get(*i).copied().unwrap_or(false) && chars.abs_diff(c.name.len()) <= 2
    };
    if !columns.iter().enumerate().any(|ic| candidate(&ic)) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    columns
        .iter()
        .enumerate()
        .filter(candidate)
        .map(|(_, c)| (edit_distance(&lower, c.name), c.name))
        .filter(|(d, known)| *d <= 2 && (known.len() > 3 || *d == 0))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: insertions, deletions, substitutions and swaps of neighbours
    // (`emial`) each count one.
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(near_miss("emial", MEMBER_COLUMNS, &[]), Some("email"));
        assert_eq!(near_miss("ens_nme", MEMBER_COLUMNS, &[]), Some("ens_name"));
        assert_eq!(near_miss("Email", MEMBER_COLUMNS, &[]), Some("email"));
        assert_eq!(near_miss("favourite_colour", MEMBER_COLUMNS, &[]), None);
    }
}
