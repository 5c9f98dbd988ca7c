//! The annotated copy of a workbook: `DIR/<stem>.annotated.xlsx`, every sheet's cells as the
//! reader read them, each bad cell filled red with its problems as a cell note, and the columns
//! `_problems` and `_hints` right of each table with problems.
//!
//! **It reads back as the original.** Each cell is written as the kind the reader found, with the
//! text the rules read: a text cell as that text (never a formula, whatever it starts with), a
//! number cell as the binary value whose shortest text is the text the reader gave (`1234.5`
//! gives `1234.5` again), a date cell as the serial of the date the reader gave, in a date
//! format. Each number and date is checked before it is written: the value the copy will hold,
//! turned into text the way the reader does it, must be the reader's text exactly, or the cell is
//! written as that text instead (a date-time with an offset from an `.ods`, a whole number past
//! 2^53). Cells the rules cannot read are written as the same kind of cell, so a second run
//! reports the same problem on the same cell: TRUE/FALSE as a boolean, an error value as a
//! formula that is that error (`=#REF!`, its result saved), a duration as a number in `[h]:mm:ss`.
//! A formula saved without its result has no value to copy, and the reader never keeps formula
//! text; it becomes `=NA()` saved without a result, which the next run reports as the same
//! problem (and which a spreadsheet shows as `#N/A`, an error to fix, never a blank). An `.ods`
//! formula whose result was saved as empty text (how LibreOffice saves an error there) becomes
//! `=NA()` with `#N/A` saved: `cell.error` again, the error's name now `#N/A`.
//!
//! **Coordinates stay.** Every row keeps its number and every cell its column, so `members!D7` in
//! the report is `D7` of the copy. The two columns go right of the last column holding anything
//! (found by a first pass over the sheet), so nothing moves, not even a note a treasurer keeps
//! right of the table. A copy annotated again drops its old two columns first, so the columns
//! stay where they were round after round.
//!
//! **Memory.** The source sheet streams in through the reader's own path (a bounded channel, twice
//! for a sheet with problems: once to find the free column) and
//! the copy is written with rust_xlsxwriter's constant-memory worksheets (a row at a time to a
//! temporary file, strings inline): neither grows with the rows. The notes are held until the
//! file is saved, one per bad cell, as many as the report lists (at most 1,000 per rule and file).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use rust_xlsxwriter::{Color, Format, Formula, Note, Workbook, Worksheet, XlsxError};

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::{
    CellProblem, CellValue, SheetMessage, SheetRow, SourceFile, number_text, serial_to_text, trim,
};

use super::{Annotated, HINTS_COLUMN, PROBLEMS_COLUMN, RowProblems, has_problems};

/// The name of the annotated copy of the workbook at `book`: `books.annotated.xlsx`, also for
/// `books.ods`, and for `books.annotated.xlsx` itself (a copy of a copy is not `…annotated.annotated`).
pub fn copy_name(book: &Path) -> String {
    let stem = book
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workbook".into());
    let stem = stem.strip_suffix(".annotated").unwrap_or(&stem);
    format!("{stem}.annotated.xlsx")
}

/// What was written for one sheet of the source that the reader read as a table.
pub(super) enum SheetCopy {
    /// The sheet had problems: highlighted, with notes and the two columns.
    Annotated(Annotated),
    /// The sheet had none: its cells copied as they are.
    Copied,
}

/// Why the copy could not be written.
pub(super) enum BookFailure {
    /// The source cannot be read sheet by sheet (the report says why).
    Unreadable(String),
    /// The copy cannot be written.
    Write(String),
}

/// Writes the annotated copy of the workbook `book` to `out`: every sheet in order (hidden ones
/// hidden), the sheets of `files` (the tables the reader read from it) annotated where
/// `diagnostics` name problems. Returns what became of each of `files`, in their order.
pub(super) fn write_book(
    book: &Path,
    files: &[&SourceFile],
    diagnostics: &[Diagnostic],
    out: &mut (dyn Write + Send),
) -> Result<Vec<SheetCopy>, BookFailure> {
    let name = copy_name(book);
    let sheets = crate::source::sheets(book).map_err(|e| BookFailure::Unreadable(e.to_string()))?;
    let formats = Formats::new();
    let mut workbook = Workbook::new();
    let mut copies: Vec<Option<SheetCopy>> = files.iter().map(|_| None).collect();
    let first_visible = sheets.iter().position(|(_, visible)| *visible);
    for (i, (sheet, visible)) in sheets.iter().enumerate() {
        let ws = workbook.add_worksheet_with_constant_memory();
        ws.set_name(sheet).map_err(|e| {
            BookFailure::Unreadable(format!(
                "the sheet name `{sheet}` cannot be written in an .xlsx file ({e})"
            ))
        })?;
        // `=NA()` below is written with no result saved: an empty one, not rust_xlsxwriter's 0.
        ws.set_formula_result_default("");
        if !visible {
            ws.set_hidden(true);
        } else if Some(i) == first_visible && i > 0 {
            // The sheet a workbook opens on cannot be hidden; the first one may have been.
            ws.set_active(true);
        }
        let rows = crate::source::sheet_rows(book, sheet)
            .map_err(|e| BookFailure::Unreadable(e.to_string()))?;
        let table = files
            .iter()
            .position(|f| f.path == book && f.sheet.as_deref() == Some(sheet.as_str()));
        let mut copy = SheetWriter {
            ws,
            formats: &formats,
            rows,
        };
        match table {
            Some(at) => {
                let file = files[at];
                let copied = if has_problems(file, diagnostics) {
                    let end = free_column(book, sheet)?;
                    let mut annotated = Annotated {
                        source: file.display.clone(),
                        table: file.table,
                        name: name.clone(),
                        sheet: Some(sheet.clone()),
                        rows: 0,
                        rows_with_problems: 0,
                        file_problems: 0,
                        from_json: false,
                    };
                    copy.table(Some((file, diagnostics, &mut annotated, end)))?;
                    SheetCopy::Annotated(annotated)
                } else {
                    copy.table(None)?;
                    SheetCopy::Copied
                };
                copies[at] = Some(copied);
            }
            None => copy.plain()?,
        }
    }
    workbook
        .save_to_writer(out)
        .map_err(|e| BookFailure::Write(e.to_string()))?;
    Ok(copies
        .into_iter()
        .map(|c| c.unwrap_or(SheetCopy::Copied))
        .collect())
}

/// Where each column of the source goes in the copy: where it was, but for the old `_problems`
/// and `_hints` of an annotated source, which are dropped.
struct Layout {
    old: Vec<u32>,
}

impl Layout {
    fn place(&self, col: u32) -> Option<u32> {
        (!self.old.contains(&col)).then_some(col)
    }
}

/// The header's names as the reader takes them (`source::sheet`), with their columns.
fn header_names(header: &SheetRow) -> Vec<(u32, String)> {
    let mut names = Vec::new();
    for (col, value) in &header.cells {
        let name = match value {
            CellValue::Problem(p) => p.describe().2,
            other => trim(other.text().unwrap_or_default()).to_string(),
        };
        if !name.is_empty() {
            names.push((*col, name));
        }
    }
    names
}

/// The columns of an annotated source's old `_problems` and `_hints`.
fn old_columns(names: &[(u32, String)]) -> Vec<u32> {
    names
        .iter()
        .filter(|(_, n)| super::is_annotation_column(n))
        .map(|(c, _)| *c)
        .collect()
}

/// The first column right of every value of `sheet` (old `_problems` and `_hints` aside): where
/// the two columns go, so that no cell of the source moves. A first pass over the sheet,
/// streamed like the second.
fn free_column(book: &Path, sheet: &str) -> Result<u32, BookFailure> {
    let rows = crate::source::sheet_rows(book, sheet)
        .map_err(|e| BookFailure::Unreadable(e.to_string()))?;
    let mut old: Option<Vec<u32>> = None;
    let mut end = 0;
    loop {
        match rows.recv() {
            Ok(SheetMessage::Row(row)) => {
                let old = old.get_or_insert_with(|| old_columns(&header_names(&row)));
                for (col, _) in &row.cells {
                    if !old.contains(col) {
                        end = end.max(col.saturating_add(1));
                    }
                }
            }
            Ok(SheetMessage::End) => return Ok(end),
            Ok(SheetMessage::Failed(reason)) => return Err(BookFailure::Unreadable(reason)),
            Err(_) => return Err(BookFailure::Unreadable(STOPPED.into())),
        }
    }
}

/// One sheet being copied.
struct SheetWriter<'w, 'f> {
    ws: &'w mut Worksheet,
    formats: &'f Formats,
    rows: std::sync::mpsc::Receiver<SheetMessage>,
}

/// What is said when the thread reading the source sheet stopped without saying it was done.
const STOPPED: &str = "the sheet could not be read to its end (the workbook reader stopped)";

impl SheetWriter<'_, '_> {
    fn next(&mut self) -> Result<Option<SheetRow>, BookFailure> {
        match self.rows.recv() {
            Ok(SheetMessage::Row(row)) => Ok(Some(row)),
            Ok(SheetMessage::End) => Ok(None),
            Ok(SheetMessage::Failed(reason)) => Err(BookFailure::Unreadable(reason)),
            Err(_) => Err(BookFailure::Unreadable(STOPPED.into())),
        }
    }

    /// A sheet the reader does not read (another table's old copy, notes): its cells as they are.
    fn plain(&mut self) -> Result<(), BookFailure> {
        let layout = Layout { old: Vec::new() };
        while let Some(row) = self.next()? {
            self.cells(&row, &layout, &BTreeMap::new())?;
        }
        Ok(())
    }

    /// A sheet read as a table; `annotate` gives its file, the findings, the counts to fill and
    /// the column for `_problems` ([`free_column`]) when it has problems.
    fn table(
        &mut self,
        annotate: Option<(&SourceFile, &[Diagnostic], &mut Annotated, u32)>,
    ) -> Result<(), BookFailure> {
        let Some(header) = self.next()? else {
            return Ok(());
        };
        let names = header_names(&header);
        let layout = Layout {
            old: old_columns(&names),
        };
        let Some((file, diagnostics, annotated, end)) = annotate else {
            self.cells(&header, &layout, &BTreeMap::new())?;
            while let Some(row) = self.next()? {
                self.cells(&row, &layout, &BTreeMap::new())?;
            }
            return Ok(());
        };
        let by_cell = bad_cells(file, diagnostics, &names);
        let problems = RowProblems::of(file, diagnostics);
        annotated.file_problems =
            problems.count(0, header.row.saturating_add(1)) + problems.without_line;
        let header_row = self.cells(&header, &layout, &by_cell)?;
        let titled = self.formats.title();
        for (offset, title) in [PROBLEMS_COLUMN, HINTS_COLUMN].into_iter().enumerate() {
            let col = column(end.saturating_add(u32::try_from(offset).unwrap_or(0)))?;
            self.ws
                .write_string_with_format(header_row, col, title, titled)
                .map_err(write_err)?;
        }
        while let Some(row) = self.next()? {
            let at = self.cells(&row, &layout, &by_cell)?;
            annotated.rows += 1;
            if let Some((listed, hints)) = problems.cells(row.row, row.row.saturating_add(1)) {
                annotated.rows_with_problems += 1;
                let bad = self.formats.text(true);
                self.ws
                    .write_string_with_format(at, column(end)?, listed, bad)
                    .map_err(write_err)?;
                self.ws
                    .write_string_with_format(at, column(end.saturating_add(1))?, hints, bad)
                    .map_err(write_err)?;
            }
        }
        Ok(())
    }

    /// Writes the cells of `row` where `layout` puts them, each bad one (by `by_cell`) filled and
    /// with a note, a bad cell that is empty included. Returns the row's index in the copy.
    fn cells(
        &mut self,
        row: &SheetRow,
        layout: &Layout,
        by_cell: &BTreeMap<(u64, u32), Vec<&Diagnostic>>,
    ) -> Result<u32, BookFailure> {
        let at = u32::try_from(row.row.saturating_sub(1)).map_err(|_| {
            BookFailure::Unreadable(format!("row {} is past a sheet's last", row.row))
        })?;
        let mut written = HashSet::new();
        for (col, value) in &row.cells {
            let Some(to) = layout.place(*col) else {
                continue;
            };
            let found = by_cell.get(&(row.row, *col));
            write_cell(
                self.ws,
                at,
                column(to)?,
                value,
                found.is_some(),
                self.formats,
            )?;
            if let Some(found) = found {
                self.note(at, column(to)?, found)?;
                written.insert(*col);
            }
        }
        for ((_, col), found) in by_cell.range((row.row, 0)..=(row.row, u32::MAX)) {
            if written.contains(col) {
                continue;
            }
            let Some(to) = layout.place(*col) else {
                continue;
            };
            self.ws
                .write_blank(at, column(to)?, self.formats.text(true))
                .map_err(write_err)?;
            self.note(at, column(to)?, found)?;
        }
        Ok(at)
    }

    fn note(&mut self, row: u32, col: u16, found: &[&Diagnostic]) -> Result<(), BookFailure> {
        let text: String = found
            .iter()
            .map(|d| note_text(d))
            .collect::<Vec<_>>()
            .join("\n\n")
            .chars()
            .take(MAX_NOTE_CHARS)
            .collect();
        let note = Note::new(text)
            .add_author_prefix(false)
            .set_width(360)
            .set_height(120);
        self.ws
            .insert_note(row, col, &note)
            .map_err(write_err)
            .map(drop)
    }
}

/// Excel's limit on a note's text, less room for an author's name.
const MAX_NOTE_CHARS: usize = 32_000;

/// One problem in a note: what the report says of it, on a few lines.
fn note_text(d: &Diagnostic) -> String {
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let mut text = format!("{severity}[{}]: {}", d.rule, d.message);
    if let Some(value) = &d.value {
        text.push_str(&format!(" (value: {value:?})"));
    }
    if let Some(hint) = &d.hint {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// The problems of `file` by the cell they are on (row, source column): a diagnostic names its
/// column by letter, or by a header name.
fn bad_cells<'d>(
    file: &SourceFile,
    diagnostics: &'d [Diagnostic],
    names: &[(u32, String)],
) -> BTreeMap<(u64, u32), Vec<&'d Diagnostic>> {
    let mut by_cell: BTreeMap<(u64, u32), Vec<&Diagnostic>> = BTreeMap::new();
    for d in diagnostics
        .iter()
        .filter(|d| d.file == file.display && d.severity >= Severity::Warning)
    {
        let Some(line) = d.line else {
            continue;
        };
        let col = d
            .column_letter
            .as_deref()
            .and_then(column_index)
            .or_else(|| {
                let name = d.column.as_deref()?;
                names.iter().find(|(_, n)| n == name).map(|(c, _)| *c)
            });
        if let Some(col) = col {
            by_cell.entry((line, col)).or_default().push(d);
        }
    }
    by_cell
}

/// `C` → 2, `AA` → 26: the index of a column's letters.
fn column_index(letters: &str) -> Option<u32> {
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let n = letters
        .bytes()
        .fold(0u32, |n, b| n * 26 + u32::from(b - b'A') + 1);
    n.checked_sub(1)
}

fn column(col: u32) -> Result<u16, BookFailure> {
    u16::try_from(col)
        .ok()
        .filter(|&c| usize::from(c) < crate::source::MAX_COLUMNS)
        .ok_or_else(|| {
            BookFailure::Unreadable(
                "a value in the last columns of a sheet, where the two columns would not fit; clear the cells right of the table".into(),
            )
        })
}

fn write_err(e: XlsxError) -> BookFailure {
    match e {
        XlsxError::MaxStringLengthExceeded => BookFailure::Unreadable(
            "a cell holds more than the 32,767 characters a spreadsheet cell can".into(),
        ),
        other => BookFailure::Write(other.to_string()),
    }
}

/// The error values a spreadsheet writes as such (and rust_xlsxwriter as a formula's result).
const ERROR_VALUES: [&str; 7] = [
    "#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!",
];

/// Writes one cell as the kind it was, or as its text when that kind would not read back the
/// same.
fn write_cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    value: &CellValue,
    bad: bool,
    formats: &Formats,
) -> Result<(), BookFailure> {
    let text = |ws: &mut Worksheet, t: &str| {
        ws.write_string_with_format(row, col, t, formats.text(bad))
            .map(drop)
    };
    let done = match value {
        CellValue::Text(t) => text(ws, t.as_str()),
        CellValue::Number(t) => match exact_number(t) {
            Some(n) => ws
                .write_number_with_format(row, col, n, formats.number(bad))
                .map(drop),
            None => text(ws, t.as_str()),
        },
        CellValue::Date(t) => match date_serial(t) {
            Some((serial, with_time)) => ws
                .write_number_with_format(row, col, serial, formats.date(bad, with_time))
                .map(drop),
            None => text(ws, t.as_str()),
        },
        CellValue::Problem(problem) => match problem {
            CellProblem::Boolean(b) => ws
                .write_boolean_with_format(row, col, *b, formats.text(bad))
                .map(drop),
            CellProblem::Error(e) if ERROR_VALUES.contains(&e.as_str()) => ws
                .write_formula_with_format(
                    row,
                    col,
                    Formula::new(format!("={e}")).set_result(e.as_str()),
                    formats.text(bad),
                )
                .map(drop),
            CellProblem::Error(e) => text(ws, e.as_str()),
            CellProblem::Duration(d) => match exact_number(d) {
                Some(n) => ws
                    .write_number_with_format(row, col, n, formats.duration(bad))
                    .map(drop),
                None => text(ws, d.as_str()),
            },
            CellProblem::BadDate(d) => match exact_number(d) {
                Some(n) => ws
                    .write_number_with_format(row, col, n, formats.date(bad, false))
                    .map(drop),
                None => text(ws, d.as_str()),
            },
            // The error the `.ods` saved is not known; `#N/A` keeps the cell an error.
            CellProblem::EmptyFormulaResult => ws
                .write_formula_with_format(
                    row,
                    col,
                    Formula::new("=NA()").set_result("#N/A"),
                    formats.text(bad),
                )
                .map(drop),
            CellProblem::FormulaWithoutValue => ws
                .write_formula_with_format(
                    row,
                    col,
                    Formula::new("=NA()").set_result(""),
                    formats.text(bad),
                )
                .map(drop),
        },
    };
    done.map_err(write_err)
}

/// The binary value whose shortest text is `text`, if there is one: parsing, no arithmetic.
fn exact_number(text: &str) -> Option<f64> {
    let n: f64 = text.parse().ok()?;
    (n.is_finite() && number_text(n) == text).then_some(n)
}

/// The serial of a date (`YYYY-MM-DD`) or UTC date-time (`YYYY-MM-DDTHH:MM:SS[.mmm]Z`) the reader
/// gave, and whether it has a time, if the reader turns that serial back into the same text.
fn date_serial(text: &str) -> Option<(f64, bool)> {
    let digits = |from: usize, to: usize| -> Option<u16> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let day =
        rust_xlsxwriter::ExcelDateTime::from_ymd(y, u8::try_from(m).ok()?, u8::try_from(d).ok()?)
            .ok()?;
    let (value, with_time) = if b.len() == 10 {
        (day, false)
    } else {
        if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
            return None;
        }
        let (h, mi, s) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
        let milli = match (b.get(19), b.len()) {
            (Some(b'Z'), 20) => 0,
            (Some(b'.'), 24) if b[23] == b'Z' => digits(20, 23)?,
            _ => return None,
        };
        let value = day
            .and_hms_milli(h, u8::try_from(mi).ok()?, u8::try_from(s).ok()?, milli)
            .ok()?;
        (value, true)
    };
    let serial = value.to_excel();
    (serial_to_text(&number_text(serial), false).as_deref() == Some(text))
        .then_some((serial, with_time))
}

/// The cell formats of a copy: each kind plain, and filled for a bad cell.
struct Formats {
    plain: [Format; 5],
    bad: [Format; 5],
    title: Format,
}

impl Formats {
    fn new() -> Formats {
        let kinds = || {
            [
                Format::new(),
                Format::new(),
                Format::new().set_num_format("yyyy-mm-dd"),
                Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
                Format::new().set_num_format("[h]:mm:ss"),
            ]
        };
        // Excel's own "Bad" cell style: light red fill, dark red text.
        let bad = kinds().map(|f| {
            f.set_background_color(Color::RGB(0x00FF_C7CE))
                .set_font_color(Color::RGB(0x009C_0006))
        });
        Formats {
            plain: kinds(),
            bad,
            title: Format::new()
                .set_bold()
                .set_font_color(Color::RGB(0x009C_0006)),
        }
    }

    fn pick(&self, bad: bool, kind: usize) -> &Format {
        if bad {
            &self.bad[kind]
        } else {
            &self.plain[kind]
        }
    }

    fn text(&self, bad: bool) -> &Format {
        self.pick(bad, 0)
    }

    fn number(&self, bad: bool) -> &Format {
        self.pick(bad, 1)
    }

    fn date(&self, bad: bool, with_time: bool) -> &Format {
        self.pick(bad, if with_time { 3 } else { 2 })
    }

    fn duration(&self, bad: bool) -> &Format {
        self.pick(bad, 4)
    }

    fn title(&self) -> &Format {
        &self.title
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_are_written_only_when_they_read_back_the_same() {
        assert_eq!(exact_number("1234.5"), Some(1234.5));
        assert_eq!(
            exact_number("0.30000000000000004")
                .map(number_text)
                .as_deref(),
            Some("0.30000000000000004")
        );
        // Typed as text by the reader's rules, never as a number: these would read back otherwise.
        assert_eq!(exact_number("1234.50"), None);
        assert_eq!(exact_number("12345678901234567891"), None);
        assert_eq!(exact_number("inf"), None);
        assert!(date_serial("2024-12-31").is_some_and(|(_, t)| !t));
        assert!(date_serial("2024-12-31T10:30:00Z").is_some_and(|(_, t)| t));
        assert!(date_serial("2024-12-31T10:30:00.250Z").is_some());
        // Lotus 1-2-3's 29 February 1900 is serial 60 both ways.
        assert_eq!(date_serial("1900-02-29"), Some((60.0, false)));
        // An offset, a year before 1900, no day: written as text.
        assert_eq!(date_serial("2025-12-31T10:30:00+01:00"), None);
        assert_eq!(date_serial("1899-12-31"), None);
        assert_eq!(date_serial("2024-13-01"), None);
    }

    #[test]
    fn old_annotation_columns_are_dropped_and_nothing_moves() {
        let layout = Layout { old: vec![3, 4] };
        assert_eq!(layout.place(0), Some(0));
        assert_eq!(layout.place(2), Some(2));
        assert_eq!(layout.place(3), None);
        assert_eq!(layout.place(4), None);
        assert_eq!(layout.place(6), Some(6));
        assert_eq!(column_index("A"), Some(0));
        assert_eq!(column_index("AA"), Some(26));
        assert_eq!(column_index("XFD"), Some(16_383));
        assert_eq!(column_index("a"), None);
    }

    #[test]
    fn the_copy_of_a_copy_keeps_its_name() {
        assert_eq!(
            copy_name(Path::new("/x/books.xlsx")),
            "books.annotated.xlsx"
        );
        assert_eq!(copy_name(Path::new("books.ods")), "books.annotated.xlsx");
        assert_eq!(
            copy_name(Path::new("fixes/books.annotated.xlsx")),
            "books.annotated.xlsx"
        );
    }
}
