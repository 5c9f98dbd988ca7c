//! The source reader: finds a bundle's files and streams their records with editor line numbers.
//!
//! It owns everything about the *shape* of a file — encoding, CSV quoting, JSON syntax, headers,
//! unknown and misspelt columns, field counts — and nothing about what a value means (that is
//! [`crate::validate`]). Records are streamed one at a time so memory does not grow with the number of
//! rows; the one exception is a JSON *array*, whose bytes are held while it is read (use `.jsonl` for
//! very large files). Line numbers are the line on which a record starts, as an editor shows it, so
//! a quoted CSV field that spans lines does not shift the numbers of later records.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics};

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

    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Members => MEMBER_COLUMNS,
            Table::CapitalAccounts => CAPITAL_COLUMNS,
            Table::Contributions => CONTRIBUTION_COLUMNS,
            Table::Periods => PERIOD_COLUMNS,
        }
    }

    /// Index of a column by name; the caller names only columns of this table.
    pub fn index(self, name: &str) -> usize {
        self.columns()
            .iter()
            .position(|c| c.name == name)
            .unwrap_or(usize::MAX)
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

    fn open(&self) -> Result<File, SourceError> {
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

/// The files of a migration bundle, one per table at most.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    pub files: Vec<SourceFile>,
}

impl Bundle {
    /// Finds `members.csv|json|jsonl` etc. in `dir`.
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
                .filter(|p| p.is_file())
                .collect();
            match found.len() {
                0 if table.required_in_bundle() => {
                    return Err(SourceError::MissingRequired {
                        dir: shown,
                        stem: table.stem(),
                    });
                }
                0 => {}
                1 => files.push(SourceFile::new(found.remove(0), table)),
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
            file.open()?;
        }
        Ok(())
    }
}

/// One data row: its editor line and its values in [`Table::columns`] order, trimmed, with empty
/// values as `None`.
#[derive(Clone, Debug)]
pub struct Record {
    pub line: u64,
    pub values: Vec<Option<String>>,
}

impl Record {
    pub fn get(&self, index: usize) -> Option<&str> {
        self.values.get(index).and_then(|v| v.as_deref())
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
    reported_keys: HashSet<String>,
    rows: u64,
    saw_anything: bool,
    finished: bool,
}

enum Inner {
    Csv {
        reader: csv::Reader<BufReader<File>>,
        mapping: Vec<Option<usize>>,
        header_len: usize,
        record: csv::ByteRecord,
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
        reader: BufReader<File>,
        line: u64,
        buf: Vec<u8>,
    },
    Done,
}

impl Reader {
    /// Opens a file and checks its header. Only an unreadable file is an `Err`.
    pub fn open(file: &SourceFile, diags: &mut Diagnostics) -> Result<Reader, SourceError> {
        let handle = file.open()?;
        let mut reader = Reader {
            file: file.clone(),
            inner: Inner::Done,
            missing_columns: Vec::new(),
            reported_keys: HashSet::new(),
            rows: 0,
            saw_anything: false,
            finished: false,
        };
        let unreadable = |source: io::Error| SourceError::Unreadable {
            path: file.display.clone(),
            source,
        };
        match file.format {
            Format::Csv => reader.open_csv(handle, diags).map_err(unreadable)?,
            Format::Json => {
                let mut bytes = Vec::new();
                BufReader::new(handle)
                    .read_to_end(&mut bytes)
                    .map_err(unreadable)?;
                reader.open_json(bytes, diags);
            }
            Format::JsonLines => {
                reader.inner = Inner::JsonLines {
                    reader: BufReader::new(handle),
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

    fn open_csv(&mut self, handle: File, diags: &mut Diagnostics) -> io::Result<()> {
        // `Terminator::Any(b'\n')`: with the default CRLF handling the csv crate counts a CRLF
        // file's lines one short; a stray `\r` left at the end of a value is trimmed like any space.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(BufReader::with_capacity(1 << 16, handle));
        let mut header = csv::ByteRecord::new();
        let got = match reader.read_byte_record(&mut header) {
            Ok(got) => got,
            Err(e) => return Err(csv_io_error(e)),
        };
        if !got || (header.len() == 1 && trim_bom(&header[0]).iter().all(u8::is_ascii_whitespace)) {
            self.saw_anything = false;
            self.finished = true;
            diags.push(
                Diagnostic::error(&self.file.display, "file.empty", "the file is empty")
                    .hint(header_hint(self.file.table)),
            );
            return Ok(());
        }
        self.saw_anything = true;
        let mut names = Vec::with_capacity(header.len());
        for (i, raw) in header.iter().enumerate() {
            let raw = if i == 0 { trim_bom(raw) } else { raw };
            match std::str::from_utf8(raw) {
                Ok(s) => names.push(s.trim().to_string()),
                Err(_) => {
                    diags.push(
                        Diagnostic::error(
                            &self.file.display,
                            "file.encoding",
                            "the header is not valid UTF-8",
                        )
                        .at(1)
                        .hint("save the file as UTF-8"),
                    );
                    names.push(String::from_utf8_lossy(raw).trim().to_string());
                }
            }
        }
        let mapping = self.map_header(&names, diags);
        self.inner = Inner::Csv {
            reader,
            header_len: names.len(),
            mapping,
            record: csv::ByteRecord::new(),
        };
        Ok(())
    }

    /// Maps header positions to known columns, reporting unknown, misspelt, duplicate and missing ones.
    fn map_header(&mut self, names: &[String], diags: &mut Diagnostics) -> Vec<Option<usize>> {
        let table = self.file.table;
        let columns = table.columns();
        let mut seen = vec![false; columns.len()];
        let mut mapping = Vec::with_capacity(names.len());
        let mut suggested = HashSet::new();
        for name in names {
            match columns.iter().position(|c| c.name == name) {
                Some(i) if seen[i] => {
                    diags.push(
                        Diagnostic::error(
                            &self.file.display,
                            "file.duplicate_column",
                            format!("column `{name}` appears twice"),
                        )
                        .at(1)
                        .column(name)
                        .hint("keep one of the two columns"),
                    );
                    mapping.push(None);
                }
                Some(i) => {
                    seen[i] = true;
                    mapping.push(Some(i));
                }
                None => {
                    mapping.push(None);
                    let near = near_miss(name, columns, names);
                    if let Some(near) = near {
                        suggested.insert(near);
                    }
                    diags.push(unknown_column(&self.file.display, Some(1), name, near));
                }
            }
        }
        for (i, column) in columns.iter().enumerate() {
            if column.required && !seen[i] {
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

    /// The next structurally sound record, or `None` at the end of the file.
    pub fn next_record(&mut self, diags: &mut Diagnostics) -> Option<Record> {
        if self.finished {
            return None;
        }
        loop {
            let step = match &mut self.inner {
                Inner::Csv { .. } => self.next_csv(diags),
                Inner::JsonBytes { .. } => self.next_json_bytes(diags),
                Inner::JsonLines { .. } => self.next_json_line(diags),
                Inner::Done => Step::End,
            };
            match step {
                Step::Record(r) => {
                    self.rows += 1;
                    return Some(r);
                }
                Step::Skip => {
                    self.rows += 1;
                }
                Step::Continue => {}
                Step::End => {
                    self.finish(diags);
                    return None;
                }
            }
        }
    }

    fn finish(&mut self, diags: &mut Diagnostics) {
        self.finished = true;
        self.inner = Inner::Done;
        let broken = diags
            .items()
            .iter()
            .any(|d| d.file == self.file.display && d.rule.starts_with("file."));
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

    fn next_csv(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::Csv {
            reader,
            mapping,
            header_len,
            record,
        } = &mut self.inner
        else {
            return Step::End;
        };
        let file = &self.file.display;
        match reader.read_byte_record(record) {
            Ok(false) => Step::End,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                let mut d = Diagnostic::error(file, "file.csv", format!("unreadable CSV: {e}"));
                d.line = line;
                diags.push(d);
                Step::End
            }
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                if record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace) {
                    // A blank line between records is not a record.
                    return Step::Continue;
                }
                if record.len() != *header_len {
                    diags.push(
                        Diagnostic::error(
                            file,
                            "file.field_count",
                            format!("{} fields, but the header has {}", record.len(), header_len),
                        )
                        .at(line)
                        .hint("a value with a comma must be in double quotes"),
                    );
                    return Step::Skip;
                }
                let columns = self.file.table.columns();
                let mut values = vec![None; columns.len()];
                let mut bad = false;
                for (i, raw) in record.iter().enumerate() {
                    let Some(Some(col)) = mapping.get(i) else {
                        continue;
                    };
                    match std::str::from_utf8(raw) {
                        Ok(s) => {
                            let t = s.trim();
                            if !t.is_empty() {
                                values[*col] = Some(t.to_string());
                            }
                        }
                        Err(e) => {
                            let bad_line = line + count_newlines(&raw[..e.valid_up_to()]);
                            diags.push(encoding_error(
                                file,
                                bad_line,
                                Some((columns[*col].name, raw)),
                            ));
                            bad = true;
                        }
                    }
                }
                if bad {
                    Step::Skip
                } else {
                    Step::Record(Record { line, values })
                }
            }
        }
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
        let file = self.file.display.clone();
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
                Diagnostic::error(&file, "file.json", "the JSON array is not closed")
                    .at(*line)
                    .hint("end the file with ]"),
            );
            return Step::End;
        }
        if *array && bytes[*pos] == b']' {
            return Step::End;
        }
        let start_line = *line;
        let mut stream = serde_json::Deserializer::from_slice(&bytes[*pos..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                *pos += stream.byte_offset();
                let value_text = &bytes[*counted_to..*pos];
                *line += count_newlines(value_text);
                *counted_to = *pos;
                // Anything but `,` or `]` after a value is a syntax error.
                let mut p = *pos;
                skip_ws(&mut p);
                if *array && p < bytes.len() && bytes[p] != b',' && bytes[p] != b']' {
                    let at = start_line + count_newlines(&bytes[*counted_to..p]);
                    diags.push(
                        Diagnostic::error(&file, "file.json", "expected , or ] after an object")
                            .at(at),
                    );
                    return Step::End;
                }
                self.json_value(value, start_line, diags)
            }
            Some(Err(e)) => {
                diags.push(
                    Diagnostic::error(&file, "file.json", format!("invalid JSON: {e}"))
                        .at(start_line + e.line() as u64 - 1),
                );
                Step::End
            }
            None => Step::End,
        }
    }

    fn next_json_line(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::JsonLines { reader, line, buf } = &mut self.inner else {
            return Step::End;
        };
        buf.clear();
        match reader.read_until(b'\n', buf) {
            Ok(0) => return Step::End,
            Ok(_) => {}
            Err(e) => {
                diags.push(
                    Diagnostic::error(&self.file.display, "file.unreadable", e.to_string())
                        .at(*line + 1),
                );
                return Step::End;
            }
        }
        *line += 1;
        let this_line = *line;
        let text = if this_line == 1 {
            trim_bom(buf)
        } else {
            &buf[..]
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Step::Continue;
        }
        self.saw_anything = true;
        let text = match std::str::from_utf8(text) {
            Ok(t) => t,
            Err(_) => {
                diags.push(encoding_error(&self.file.display, this_line, None));
                return Step::Skip;
            }
        };
        match serde_json::from_str::<Value>(text) {
            Ok(value) => self.json_value(value, this_line, diags),
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        &self.file.display,
                        "file.json",
                        format!("invalid JSON: {e}"),
                    )
                    .at(this_line)
                    .hint("each line of a .jsonl file is one JSON object"),
                );
                Step::Skip
            }
        }
    }

    fn json_value(&mut self, value: Value, line: u64, diags: &mut Diagnostics) -> Step {
        let file = self.file.display.clone();
        let Value::Object(map) = value else {
            diags.push(Diagnostic::error(&file, "file.json", "expected a JSON object").at(line));
            return Step::Skip;
        };
        let columns = self.file.table.columns();
        let mut values = vec![None; columns.len()];
        let mut bad = false;
        for (key, v) in map {
            let key = key.trim();
            let Some(col) = columns.iter().position(|c| c.name == key) else {
                if self.reported_keys.insert(key.to_string()) {
                    let near = near_miss(key, columns, &[]);
                    diags.push(unknown_column(&file, Some(line), key, near));
                }
                continue;
            };
            let text = match v {
                Value::Null => None,
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                    diags.push(
                        Diagnostic::error(&file, "file.json", "expected a string or a number")
                            .at(line)
                            .column(key)
                            .hint("give a string or a number"),
                    );
                    bad = true;
                    None
                }
            };
            values[col] = text.filter(|t| !t.is_empty());
        }
        if bad {
            Step::Skip
        } else {
            Step::Record(Record { line, values })
        }
    }
}

enum Step {
    Record(Record),
    Skip,
    Continue,
    End,
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

fn csv_io_error(e: csv::Error) -> io::Error {
    io::Error::other(e.to_string())
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
    let mut d = match near {
        Some(known) => Diagnostic::error(
            file,
            "file.misspelt_column",
            format!("unknown column `{name}`"),
        )
        .hint(format!("did you mean `{known}`?")),
        None => Diagnostic::warning(
            file,
            "file.unknown_column",
            format!("unknown column `{name}`: its values are not imported"),
        ),
    };
    d.line = line;
    d.column(name)
}

fn header_hint(table: Table) -> String {
    let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
    format!("the first line names the columns: {}", names.join(","))
}

/// A known column within edit distance 2 of `name` that the header does not already have.
fn near_miss(name: &str, columns: &'static [Column], header: &[String]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    columns
        .iter()
        .filter(|c| !header.iter().any(|h| h == c.name))
        .map(|c| (edit_distance(&lower, c.name), c.name))
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
    fn near_misses_are_suggested() {
        assert_eq!(near_miss("emial", MEMBER_COLUMNS, &[]), Some("email"));
        assert_eq!(near_miss("ens_nme", MEMBER_COLUMNS, &[]), Some("ens_name"));
        assert_eq!(near_miss("Email", MEMBER_COLUMNS, &[]), Some("email"));
        assert_eq!(near_miss("favourite_colour", MEMBER_COLUMNS, &[]), None);
    }
}
