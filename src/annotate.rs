//! Annotated copies of source files: the fix-and-rerun loop a treasurer works in a spreadsheet.
//!
//! For a file with problems it writes a CSV copy holding every original row in order, the
//! original values unchanged, with two leading columns: `_problems` (each problem of the row,
//! naming its column) and `_hints` (how to fix them). The reader accepts such a copy as input: it
//! ignores the two columns with a note and removes the formula guard below, so the treasurer
//! filters on `_problems`, fixes the cells, saves, and runs again on the copy.
//!
//! **The formula guard.** A spreadsheet opening a CSV file runs a cell that starts with `=`, `+`,
//! `-` or `@` as a formula (and some also after a leading tab or carriage return; OWASP's list),
//! so a hostile `=HYPERLINK(…)` in a member's name would run on the treasurer's machine. Such a
//! value is written with a `'` in front, which makes every spreadsheet show it as text; reading an
//! annotated file removes one `'` where it stands before one of those characters (or before
//! another `'`), and nowhere else. So a round trip gives back exactly the original value:
//! [`guard`] and [`unguard`] are inverses over every value, including one that genuinely starts
//! with `'` (written with a second `'`). A plain number with a sign (`-12.50`) is not guarded: a
//! spreadsheet reads it as a number, not a formula, and a `'` would make the treasurer see
//! `'-12.50` in an amount column. See DESIGN.md, *The annotated fix-and-rerun loop*.
//!
//! A workbook (`.xlsx`, `.ods`) gets one copy, an `.xlsx` workbook with the bad cells
//! highlighted and commented and the same two columns right of each table (`workbook`); it needs
//! no guard, since its cells are typed and text is never a formula there.
//!
//! Here: the guard, the copies ([`annotate_file`], [`annotate_bytes`]) and CSV files; in `json`,
//! JSON files copied as CSV; in `workbook`, the copy of a workbook; in `dir`, writing the copies
//! into a directory ([`write_dir`]). The CLI and the web page call the same functions.

mod dir;
mod json;
mod workbook;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Write};
use std::path::Path;

use serde::Serialize;

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::{Format, Raw, RawCsv, SourceFile, Table};

pub use self::dir::{Annotation, BookCopy, Outcome, check_dir, write_dir};
use self::json::json_copy;

/// The leading column listing a row's problems.
pub const PROBLEMS_COLUMN: &str = "_problems";
/// The leading column with a hint for each problem.
pub const HINTS_COLUMN: &str = "_hints";

/// How the problems (and hints) of one row are joined in one cell: never a line break, which
/// would move every later row to another line than the original's.
const JOIN: &str = " | ";

/// What a spreadsheet may take for the start of a formula (OWASP, *CSV Injection*).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
const GUARD: char = '\'';

/// Whether a header names one of the columns [`annotate_file`] adds.
pub fn is_annotation_column(name: &str) -> bool {
    name == PROBLEMS_COLUMN || name == HINTS_COLUMN
}

/// The note the reader gives for an annotated file (or `sheet`) whose header is on `line`: the
/// two columns are not data.
pub fn ignored_columns_note(file: &str, line: u64, sheet: bool) -> Diagnostic {
    Diagnostic::note(
        file,
        "file.annotated",
        format!("an annotated copy: the columns `{PROBLEMS_COLUMN}` and `{HINTS_COLUMN}` are ignored"),
    )
    .at(line)
    .column(PROBLEMS_COLUMN)
    .hint(if sheet {
        "leave them in or delete them; they are written anew by the next --annotate"
    } else {
        "the ' that --annotate put before a value starting with =, +, -, @ is removed as the file is read"
    })
}

/// The value a trimmed value of an annotated file stands for: without the `'` that [`guard`] put
/// in front of it. A suffix of `value`.
pub fn unguard(value: &str) -> &str {
    let mut chars = value.chars();
    if chars.next() != Some(GUARD) {
        return value;
    }
    match chars.next() {
        Some(c) if c == GUARD || FORMULA_START.contains(&c) => value[1..].trim_start(),
        _ => value,
    }
}

/// `raw` (a field as the file holds it) as it is written in an annotated file: with a `'` in
/// front when a spreadsheet would run it as a formula, or when [`unguard`] would otherwise take a
/// `'` of its own away. White space before such a value is dropped (the reader trims it anyway),
/// and so is white space holding a tab or a carriage return, which some spreadsheets also take
/// for the start of a formula.
pub fn guard(raw: &[u8]) -> Cow<'_, [u8]> {
    let rest = &raw[leading_space(raw)..];
    let second = rest.get(1).copied().map(char::from);
    let needed = match rest.first().copied().map(char::from) {
        None => false,
        Some('+' | '-') => !is_plain_number(rest.trim_ascii_end()),
        Some('=' | '@') => true,
        Some(GUARD) => second.is_some_and(|c| c == GUARD || FORMULA_START.contains(&c)),
        Some(_) => false,
    };
    if needed {
        let mut out = Vec::with_capacity(rest.len() + 1);
        out.push(b'\'');
        out.extend_from_slice(rest);
        Cow::Owned(out)
    } else if raw[..raw.len() - rest.len()]
        .iter()
        .any(|&b| b == b'\t' || b == b'\r')
    {
        Cow::Borrowed(rest)
    } else {
        Cow::Borrowed(raw)
    }
}

/// The length of the white space the reader trims from the start of `raw`.
fn leading_space(raw: &[u8]) -> usize {
    match std::str::from_utf8(raw) {
        Ok(text) => text.len() - text.trim_start().len(),
        Err(_) => raw.len() - raw.trim_ascii_start().len(),
    }
}

/// `-12.50`, `+3`: a spreadsheet reads these as numbers, never as formulas.
fn is_plain_number(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").or_else(|| text.strip_prefix(b"+"));
    let Some(digits) = digits else {
        return false;
    };
    let (whole, fraction) = match digits.iter().position(|&b| b == b'.') {
        Some(at) => (&digits[..at], Some(&digits[at + 1..])),
        None => (digits, None),
    };
    !whole.is_empty()
        && whole.iter().all(u8::is_ascii_digit)
        && fraction.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// A raw field of a file that is itself an annotated copy, without its guard: what [`guard`]
/// starts from, so annotating an annotated file adds no second `'`.
fn unguard_raw(raw: &[u8]) -> Cow<'_, [u8]> {
    let rest = &raw[leading_space(raw)..];
    let second = rest.get(1).copied().map(char::from);
    if rest.first() == Some(&b'\'')
        && second.is_some_and(|c| c == GUARD || FORMULA_START.contains(&c))
    {
        Cow::Borrowed(&rest[1..])
    } else {
        Cow::Borrowed(raw)
    }
}

/// Why a file with problems has no annotated copy.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    /// The file cannot be read row by row (broken JSON, a row over the reader's limits, an empty
    /// file): the treasurer fixes what the report says first.
    #[error("{file}: not annotated: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: io::Error },
    #[error("{path}: cannot write the annotated copy: {source}")]
    Write { path: String, source: io::Error },
    /// `--annotate DIR` names a directory that cannot take the copies.
    #[error("{0}")]
    Directory(String),
}

/// One annotated copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Annotated {
    /// The source file, as diagnostics name it.
    pub source: String,
    #[serde(serialize_with = "table_stem")]
    pub table: Table,
    /// The copy's file name: `members.csv` whatever the source was called; for a workbook's sheet,
    /// the workbook copy's (`books.annotated.xlsx`).
    pub name: String,
    /// The copy's sheet, for a workbook's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Data rows written.
    pub rows: u64,
    pub rows_with_problems: u64,
    /// Problems of the file as a whole (a missing column, an unknown one): in the report, not in
    /// a row.
    pub file_problems: u64,
    /// The source was JSON and the copy is CSV.
    pub from_json: bool,
}

fn table_stem<S: serde::Serializer>(table: &Table, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(table.stem())
}

/// The copy's name in a bundle: `members.csv`, `capital_accounts.csv`, ….
pub fn annotated_name(table: Table) -> String {
    format!("{}.csv", table.stem())
}

/// Whether `diagnostics` hold a problem (an error or a warning) of `file`.
pub fn has_problems(file: &SourceFile, diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|d| d.file == file.display && d.severity >= Severity::Warning)
}

/// Writes the annotated copy of `file` (read from disk) to `out`.
pub fn annotate_file(
    file: &SourceFile,
    diagnostics: &[Diagnostic],
    out: &mut dyn Write,
) -> Result<Annotated, AnnotateError> {
    annotate_from(file, &Input::Path(&file.path), diagnostics, out)
}

/// The annotated copy of `file` whose contents are `bytes` (an uploaded file; the path is only
/// used in diagnostics).
pub fn annotate_bytes(
    file: &SourceFile,
    bytes: &[u8],
    diagnostics: &[Diagnostic],
) -> Result<(Annotated, Vec<u8>), AnnotateError> {
    let mut out = Vec::new();
    let annotated = annotate_from(file, &Input::Bytes(bytes), diagnostics, &mut out)?;
    Ok((annotated, out))
}

/// Where a file's bytes come from; JSON is read twice (its columns, then its rows).
enum Input<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

impl Input<'_> {
    fn open(&self) -> io::Result<Box<dyn BufRead + Send + '_>> {
        Ok(match self {
            Input::Path(path) => Box::new(BufReader::with_capacity(1 << 16, File::open(path)?)),
            Input::Bytes(bytes) => Box::new(Cursor::new(*bytes)),
        })
    }

    /// The CSV reader takes an input it owns: a file, or a copy of the bytes.
    fn open_owned(&self) -> io::Result<Box<dyn BufRead + Send>> {
        Ok(match self {
            Input::Path(path) => Box::new(BufReader::with_capacity(1 << 16, File::open(path)?)),
            Input::Bytes(bytes) => Box::new(Cursor::new(bytes.to_vec())),
        })
    }
}

fn annotate_from(
    file: &SourceFile,
    input: &Input<'_>,
    diagnostics: &[Diagnostic],
    out: &mut dyn Write,
) -> Result<Annotated, AnnotateError> {
    let problems = RowProblems::of(file, diagnostics);
    let mut annotated = Annotated {
        source: file.display.clone(),
        table: file.table,
        name: annotated_name(file.table),
        sheet: None,
        rows: 0,
        rows_with_problems: 0,
        file_problems: 0,
        from_json: file.format != Format::Csv,
    };
    let read_err = |source| AnnotateError::Read {
        file: file.display.clone(),
        source,
    };
    let mut writer = RowWriter {
        out,
        problems,
        annotated: &mut annotated,
    };
    match file.format {
        Format::Csv => csv_copy(file, input.open_owned().map_err(read_err)?, &mut writer),
        Format::Json | Format::JsonLines => json_copy(file, input, &mut writer),
        Format::Sheet => Err(Failure::Unreadable(SHEET_REASON.to_string())),
    }
    .map_err(|e| match e {
        Failure::Read(source) => read_err(source),
        Failure::Write(source) => AnnotateError::Write {
            path: annotated_name(file.table),
            source,
        },
        Failure::Unreadable(reason) => AnnotateError::Unreadable {
            file: file.display.clone(),
            reason,
        },
    })?;
    Ok(annotated)
}

/// Why a workbook's sheet gets no copy of its own: a sheet is annotated with its whole workbook
/// (`--annotate DIR` writes `DIR/<stem>.annotated.xlsx`), never as one file.
const SHEET_REASON: &str = "a sheet is annotated with its whole workbook (--annotate DIR); the problems above name each cell (sheet!C7)";

enum Failure {
    Read(io::Error),
    Write(io::Error),
    Unreadable(String),
}

/// Each problem of a file by the line the reader gave it.
struct RowProblems<'d> {
    by_line: BTreeMap<u64, Vec<&'d Diagnostic>>,
    /// Problems with no line: the file as a whole.
    without_line: u64,
}

impl<'d> RowProblems<'d> {
    fn of(file: &SourceFile, diagnostics: &'d [Diagnostic]) -> RowProblems<'d> {
        let mut by_line: BTreeMap<u64, Vec<&Diagnostic>> = BTreeMap::new();
        let mut without_line = 0;
        for d in diagnostics
            .iter()
            .filter(|d| d.file == file.display && d.severity >= Severity::Warning)
        {
            match d.line {
                Some(line) => by_line.entry(line).or_default().push(d),
                None => without_line += 1,
            }
        }
        RowProblems {
            by_line,
            without_line,
        }
    }

    /// The problems reported on lines `from..to` (a record and the lines it spans), as the two
    /// cells of the row; `None` if there are none.
    fn cells(&self, from: u64, to: u64) -> Option<(String, String)> {
        let found: Vec<&Diagnostic> = self
            .by_line
            .range(from..to.max(from))
            .flat_map(|(_, ds)| ds.iter().copied())
            .collect();
        if found.is_empty() {
            return None;
        }
        let column = |d: &Diagnostic| d.column.clone().unwrap_or_else(|| "row".to_string());
        let problems: Vec<String> = found
            .iter()
            .map(|d| {
                let severity = match d.severity {
                    Severity::Error => "",
                    Severity::Warning | Severity::Note => "warning: ",
                };
                one_line(&format!("{}: {severity}{}", column(d), d.message))
            })
            .collect();
        let mut seen = HashSet::new();
        let hints: Vec<String> = found
            .iter()
            .filter_map(|d| Some(one_line(&format!("{}: {}", column(d), d.hint.as_ref()?))))
            .filter(|h| seen.insert(h.clone()))
            .collect();
        Some((problems.join(JOIN), hints.join(JOIN)))
    }

    fn count(&self, from: u64, to: u64) -> u64 {
        self.by_line
            .range(from..to.max(from))
            .map(|(_, ds)| ds.len() as u64)
            .sum()
    }
}

/// Text on one line: a line break in a cell would shift the lines of every later row.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Writes the rows of a copy: the two leading cells, then the fields, each guarded and quoted.
struct RowWriter<'a, 'd> {
    out: &'a mut dyn Write,
    problems: RowProblems<'d>,
    annotated: &'a mut Annotated,
}

impl RowWriter<'_, '_> {
    fn header<'f>(
        &mut self,
        names: impl Iterator<Item = &'f [u8]>,
        crlf: bool,
    ) -> Result<(), Failure> {
        let names = [PROBLEMS_COLUMN.as_bytes(), HINTS_COLUMN.as_bytes()]
            .into_iter()
            .chain(names);
        // A UTF-8 byte order mark: without it Excel reads a CSV file in the machine's legacy
        // code page and shows `é` as `Ã©`; LibreOffice, Google Sheets and the reader accept it.
        self.out
            .write_all(b"\xEF\xBB\xBF")
            .map_err(Failure::Write)?;
        self.fields(names, crlf)
    }

    /// A data row whose problems were reported on lines `from..to`.
    fn row<'f>(
        &mut self,
        from: u64,
        to: u64,
        fields: impl Iterator<Item = &'f [u8]>,
        crlf: bool,
    ) -> Result<(), Failure> {
        let (problems, hints) = match self.problems.cells(from, to) {
            Some(cells) => {
                self.annotated.rows_with_problems += 1;
                cells
            }
            None => (String::new(), String::new()),
        };
        self.annotated.rows += 1;
        for cell in [&problems, &hints] {
            write_field(self.out, &guard(cell.as_bytes())).map_err(Failure::Write)?;
            self.out.write_all(b",").map_err(Failure::Write)?;
        }
        self.fields(fields, crlf)
    }

    fn fields<'f>(
        &mut self,
        fields: impl Iterator<Item = &'f [u8]>,
        crlf: bool,
    ) -> Result<(), Failure> {
        for (i, field) in fields.enumerate() {
            if i > 0 {
                self.out.write_all(b",").map_err(Failure::Write)?;
            }
            write_field(self.out, &guard(field)).map_err(Failure::Write)?;
        }
        self.end(crlf)
    }

    fn end(&mut self, crlf: bool) -> Result<(), Failure> {
        let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        self.out.write_all(end).map_err(Failure::Write)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.out.write_all(bytes).map_err(Failure::Write)
    }
}

/// One CSV field, in double quotes when it holds a comma, a quote or a line break.
fn write_field(out: &mut dyn Write, field: &[u8]) -> io::Result<()> {
    if !field
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        return out.write_all(field);
    }
    out.write_all(b"\"")?;
    for part in field.split_inclusive(|&b| b == b'"') {
        out.write_all(part)?;
        if part.last() == Some(&b'"') {
            out.write_all(b"\"")?;
        }
    }
    out.write_all(b"\"")
}

/// One record of a CSV file as the reader sees it: the line it gave it, and its fields.
struct CsvRecord {
    line: u64,
    fields: Vec<Vec<u8>>,
}

impl CsvRecord {
    /// A line with nothing but white space, which the reader skips.
    fn blank(&self) -> bool {
        self.fields.len() == 1 && self.fields[0].iter().all(u8::is_ascii_whitespace)
    }
}

fn next_csv(raw: &mut RawCsv, header: bool) -> Result<Option<CsvRecord>, Failure> {
    let read = if header {
        raw.read_header()
    } else {
        raw.read()
    };
    match read {
        Raw::Record(line) => Ok(Some(CsvRecord {
            line,
            fields: raw.fields().map(<[u8]>::to_vec).collect(),
        })),
        Raw::End => Ok(None),
        Raw::Error(e) => Err(Failure::Read(e)),
        Raw::Overflow(line, _) => Err(Failure::Unreadable(format!(
            "line {line} is longer than the reader's limits; fix that line first"
        ))),
    }
}

/// The annotated copy of a CSV file. Lines stay where they were: a record is written on as many
/// lines as the reader counted for it (blank lines before it included), so every row of the copy
/// is reported on the same line as in the original.
fn csv_copy(
    file: &SourceFile,
    input: Box<dyn BufRead + Send>,
    w: &mut RowWriter<'_, '_>,
) -> Result<(), Failure> {
    let mut raw = RawCsv::new(input);
    let Some(mut header) = next_csv(&mut raw, true)? else {
        return Err(Failure::Unreadable(format!(
            "the file is empty; a {} file starts with its header",
            file.table.stem()
        )));
    };
    if let Some(first) = header.fields.first_mut()
        && first.starts_with(b"\xEF\xBB\xBF")
    {
        first.drain(..3);
    }
    // An annotated copy annotated again: its old `_problems` and `_hints` give way to new ones.
    let dropped: Vec<bool> = header
        .fields
        .iter()
        .map(|f| std::str::from_utf8(f).is_ok_and(|name| is_annotation_column(name.trim())))
        .collect();
    let annotated_source = dropped.contains(&true);
    let kept = |fields: &Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        fields
            .iter()
            .enumerate()
            .filter(|(i, _)| !dropped.get(*i).copied().unwrap_or(false))
            .map(|(_, f)| {
                if annotated_source {
                    unguard_raw(f).into_owned()
                } else {
                    f.clone()
                }
            })
            .collect()
    };
    let mut pending = header;
    let mut is_header = true;
    loop {
        let next = next_csv(&mut raw, false)?;
        let next_line = next.as_ref().map(|r| r.line);
        let mut fields = kept(&pending.fields);
        if pending.blank() {
            fields = pending.fields.clone();
        }
        // A CRLF file: csv-core ends the record at `\n` and leaves the `\r` in the last field.
        let crlf = fields.last_mut().is_some_and(|last| {
            let crlf = last.last() == Some(&b'\r');
            if crlf {
                last.pop();
            }
            crlf
        });
        if let Some(next_line) = next_line {
            // The lines the reader counted for this record that its fields do not hold: blank
            // lines before it (and line breaks in dropped `_problems` cells).
            let inner: u64 = fields
                .iter()
                .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
                .sum();
            let blanks = next_line
                .saturating_sub(pending.line)
                .saturating_sub(inner + 1);
            for _ in 0..blanks {
                w.raw(b"\n")?;
            }
        }
        let to = next_line.unwrap_or(u64::MAX);
        if is_header {
            // Problems on the header's lines are about the file as a whole.
            w.annotated.file_problems = w.problems.count(0, to) + w.problems.without_line;
            w.header(fields.iter().map(Vec::as_slice), crlf)?;
        } else if pending.blank() {
            w.raw(&fields.concat())?;
            w.end(crlf)?;
        } else {
            w.row(pending.line, to, fields.iter().map(Vec::as_slice), crlf)?;
        }
        is_header = false;
        match next {
            Some(record) => pending = record,
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostics;
    use crate::source::Reader;

    const HEADER: &str = "email,display_name,role,status,joined_at\n";

    fn members() -> SourceFile {
        SourceFile::new("members.csv", Table::Members)
    }

    /// The display name the reader gives for the one data row of `bytes`.
    fn display_name(bytes: &[u8]) -> Option<String> {
        let mut diags = Diagnostics::default();
        let mut reader = Reader::from_bytes(&members(), bytes.to_vec(), &mut diags);
        let record = reader.next_record(&mut diags)?;
        record
            .get(Table::Members.index("display_name"))
            .map(str::to_string)
    }

    fn csv_field(value: &str) -> String {
        format!("\"{}\"", value.replace('"', "\"\""))
    }

    fn annotated(bytes: &[u8]) -> Vec<u8> {
        annotated_at(bytes, 2)
    }

    fn annotated_at(bytes: &[u8], line: u64) -> Vec<u8> {
        let problem = Diagnostic::error("members.csv", "member.role", "invalid role")
            .at(line)
            .column("role");
        match annotate_bytes(&members(), bytes, &[problem]) {
            Ok((_, out)) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every string of up to three characters from the ones that matter: the annotated copy
    /// (and the copy of the copy) reads back as the same value, and no cell of it starts the way
    /// a formula does.
    #[test]
    fn every_short_value_survives_the_round_trip() {
        let alphabet = [
            '=', '+', '-', '@', '\t', '\r', '\'', ' ', 'a', '1', '.', '"', ',', '\n', '\u{a0}',
        ];
        let mut values = vec![String::new()];
        for len in 1..=3 {
            let mut next = Vec::new();
            for v in values.iter().filter(|v| v.chars().count() == len - 1) {
                for c in alphabet {
                    next.push(format!("{v}{c}"));
                }
            }
            values.extend(next);
        }
        values.extend(["-12.50", "+3", "'-12.50", "''", "=1+2", "@SUM(A1)"].map(String::from));
        for value in values {
            let original = format!(
                "{HEADER}a@example.org,{},member,active,2025-01-01\n",
                csv_field(&value)
            );
            let want = display_name(original.as_bytes());
            let once = annotated(original.as_bytes());
            assert_eq!(
                display_name(&once),
                want,
                "{value:?}: {}",
                String::from_utf8_lossy(&once)
            );
            let twice = annotated(&once);
            assert_eq!(twice, once, "{value:?}: annotating a copy again changes it");
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(&once[..]);
            for record in reader.records() {
                let record = record.unwrap_or_default();
                for cell in &record {
                    let start = cell.trim_start_matches(' ');
                    let risky = !cell.trim().is_empty()
                        && start.starts_with(FORMULA_START)
                        && !is_plain_number(cell.trim().as_bytes());
                    assert!(!risky, "{value:?}: cell {cell:?} would run as a formula");
                }
            }
        }
    }

    #[test]
    fn plain_numbers_are_left_alone_and_formulas_are_guarded() {
        assert_eq!(&*guard(b"-12.50"), b"-12.50");
        assert_eq!(&*guard(b"+3"), b"+3");
        assert_eq!(&*guard(b"-12.50x"), b"'-12.50x");
        assert_eq!(&*guard(b"=1+2"), b"'=1+2");
        assert_eq!(&*guard(b"  @me"), b"'@me");
        assert_eq!(&*guard(b"\tname"), b"name");
        assert_eq!(&*guard(b"\n'=x"), b"''=x");
        assert_eq!(&*guard(b"'=x"), b"''=x");
        assert_eq!(&*guard(b"'quoted'"), b"'quoted'");
        assert_eq!(unguard("'=1+2"), "=1+2");
        assert_eq!(unguard("'quoted'"), "'quoted'");
        assert_eq!(unguard("''=x"), "'=x");
    }

    #[test]
    fn lines_blank_lines_and_crlf_stay_where_they_were() {
        let original = "email,display_name,role,status,joined_at\r\n\r\n\na@example.org,\"two\r\nlines\",boss,active,2025-01-01\r\n\nb@example.org,B,member,active,2025-01-01\r\n";
        // The reader gives the first record line 3: the blank lines before it count from the
        // end of the line before (the `csv` crate's rule).
        let copy = annotated_at(original.as_bytes(), 3);
        let text = String::from_utf8_lossy(&copy);
        assert!(
            text.starts_with("\u{feff}_problems,_hints,email,"),
            "{text}"
        );
        // The blank line before the last record is not kept: no line after it could move.
        let lines = |bytes: &[u8]| -> Vec<u64> {
            let mut diags = Diagnostics::default();
            let mut reader = Reader::from_bytes(&members(), bytes.to_vec(), &mut diags);
            std::iter::from_fn(|| reader.next_record(&mut diags).map(|r| r.line)).collect()
        };
        assert_eq!(lines(&copy), lines(original.as_bytes()));
        assert!(text.contains("role: invalid role,"), "{text}");
    }

    #[test]
    fn json_becomes_csv_with_the_tables_columns_and_its_unknown_keys() {
        let file = SourceFile::new("members.jsonl", Table::Members);
        let jsonl = "{\"email\": \"a@example.org\", \"display_name\": \"=A\", \"role\": \"boss\", \"status\": \"active\", \"joined_at\": \"2025-01-01\", \"colour\": 1.50}\n\n{\"email\": \"b@example.org\", \"display_name\": null, \"role\": \"member\", \"status\": \"active\", \"joined_at\": \"2025-01-01\"}\n";
        let problem = Diagnostic::error(&file.display, "member.role", "invalid role")
            .at(1)
            .column("role");
        let (annotated, bytes) = match annotate_bytes(&file, jsonl.as_bytes(), &[problem]) {
            Ok(done) => done,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(annotated.rows, 2);
        assert_eq!(annotated.rows_with_problems, 1);
        assert!(annotated.from_json);
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "\u{feff}_problems,_hints,email,display_name,ens_name,role,status,joined_at,colour\n\
             role: invalid role,,a@example.org,'=A,,boss,active,2025-01-01,1.50\n\
             ,,b@example.org,,,member,active,2025-01-01,\n"
        );
    }

    #[test]
    fn broken_json_is_not_annotated() {
        let file = SourceFile::new("members.jsonl", Table::Members);
        let problem = Diagnostic::error(&file.display, "file.json", "invalid JSON").at(1);
        let got = annotate_bytes(&file, b"{\"email\": \n", &[problem]);
        assert!(
            matches!(got, Err(AnnotateError::Unreadable { .. })),
            "{got:?}"
        );
    }
}
