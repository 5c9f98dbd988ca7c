//! The reader's core: opening a file, stepping through its records, and CSV records; the
//! diagnostics about sizes, encodings and NUL bytes that CSV and JSON share.

use std::io::{self, BufRead};

use crate::annotate;
use crate::diagnostic::{Diagnostic, Diagnostics};

use super::csv::{Overflow, Raw, RawCsv};
use super::header::header_hint;
use super::json::read_json_file;
use super::{
    Format, Inner, Input, MAX_COLUMNS, MAX_FIELD_BYTES, MAX_RECORD_BYTES, Reader, Record,
    SourceError, SourceFile, Step, UnknownColumns,
};

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
            place: None,
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
            Format::Sheet => reader.open_sheet(input, diags),
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
                Inner::Sheet(_) => self.next_sheet_row(diags),
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
        let mapping = self.map_header(&names, 1, diags);
        let annotated = names.iter().any(|n| annotate::is_annotation_column(n));
        self.inner = Inner::Csv {
            raw: Box::new(raw),
            mapping,
            header: names,
            annotated,
        };
        Ok(())
    }
    fn next_csv(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::Csv {
            raw,
            mapping,
            header,
            annotated,
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
                let (mut from, mut to) = trim_bounds(value);
                if *annotated {
                    (from, to) = unguard_bounds(value, from, to);
                }
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
                    let mut value = trim(s);
                    if *annotated {
                        value = annotate::unguard(value);
                    }
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
}

/// "1 MiB (1048576 bytes)".
pub(super) fn size(bytes: usize) -> String {
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

pub(super) fn field_too_large(file: &str, line: u64, column: &str, format: &str) -> Diagnostic {
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
pub(super) fn nul_error(file: &str, line: u64, column: &str, value: &str) -> Diagnostic {
    Diagnostic::error(file, "value.nul", "the value contains a NUL byte (\\0)")
        .at(line)
        .column(column)
        .value(value)
        .hint("remove the NUL characters; they come from a broken export or a binary file, and PostgreSQL cannot store them")
}

/// `str::trim`, with a fast path for the ASCII spaces that are all a normal file has.
pub(crate) fn trim(s: &str) -> &str {
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

/// [`annotate::unguard`] of `value[from..to]` (a trimmed span), as a span of `value`.
fn unguard_bounds(value: &str, from: usize, to: usize) -> (usize, usize) {
    let trimmed = &value[from..to];
    let unguarded = annotate::unguard(trimmed);
    if unguarded.len() == trimmed.len() {
        return (from, to);
    }
    // `unguard` returns a suffix of its argument.
    let start = from + trimmed.len() - unguarded.len();
    (start, start + unguarded.len())
}

/// Whether `bytes` hold a NUL; branch-free, so it compiles to vector compares.
fn has_nul(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |any, &b| any | u8::from(b == 0)) != 0
}

pub(super) fn trim_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

pub(super) fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

pub(super) fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + count_newlines(&bytes[..offset.min(bytes.len())])
}

pub(super) fn encoding_error(file: &str, line: u64, column: Option<(&str, &[u8])>) -> Diagnostic {
    let mut d = Diagnostic::error(file, "file.encoding", "not valid UTF-8")
        .at(line)
        .hint("save the file as UTF-8 (in a spreadsheet: CSV UTF-8)");
    if let Some((name, raw)) = column {
        d = d.column(name).value(&String::from_utf8_lossy(raw));
    }
    d
}
