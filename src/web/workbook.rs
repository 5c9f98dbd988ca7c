//! A workbook (`.xlsx`, `.ods`) given to the page: each table's sheet becomes a CSV working copy
//! holding the text the workbook reader reads from each cell, so that the page's grid, its edits
//! and its repairs, made for CSV files, work on a workbook too, and a validation of the copies
//! finds what a validation of the workbook finds (DESIGN.md, "The web page", on why).
//!
//! What a CSV file cannot carry stays with the copy as the sheet's own findings: a cell the reader
//! could not read as text (an error value, a boolean, a formula with no saved result) is written
//! empty and keeps its finding until the cell is edited on the page; empty rows and values right
//! of the header keep theirs. Each copy remembers the sheet row of each of its records and the
//! column letter of each header, so every finding is shown where the spreadsheet shows it
//! (`members!C7`).

use std::fs::{self, File};
use std::path::Path;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{
    BookInput, BookKind, Bundle, CellValue, Reader, SheetMessage, SourceFile, Table,
    column_letters, stream_sheet,
};

use super::workspace::{WorkspaceError, quote};

/// Where a working copy came from: one sheet of a workbook.
#[derive(Clone, Debug)]
pub struct SheetOrigin {
    /// The workbook's file name, as given.
    pub book: String,
    pub sheet: String,
    /// The row the header is on.
    pub header_row: u64,
    /// Each header name (trimmed, as diagnostics name the column) with its column letter.
    pub letters: Vec<(String, String)>,
    /// The sheet row of each data record of the copy, in order.
    pub rows: Vec<u64>,
    /// The reader's findings about the sheet that the CSV copy cannot carry, on sheet rows.
    pub findings: Vec<Diagnostic>,
}

impl SheetOrigin {
    /// The column letter of a header name.
    pub fn letter(&self, column: &str) -> Option<&str> {
        self.letters
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, letter)| letter.as_str())
    }
}

/// One sheet as a CSV working copy.
pub struct Converted {
    pub table: Table,
    pub csv: Vec<u8>,
    pub origin: SheetOrigin,
}

/// Whether a file name is a workbook's.
pub fn is_workbook(name: &str) -> bool {
    BookKind::of(Path::new(name)).is_some()
}

/// Reads the workbook `bytes` (named `name`) into one CSV copy per table's sheet. `scratch` is a
/// private directory the workbook is written to while it is read (the reader opens paths);
/// `limit` bounds each copy as an upload is bounded.
pub fn convert(
    name: &str,
    bytes: &[u8],
    scratch: &Path,
    limit: usize,
) -> Result<Vec<Converted>, WorkspaceError> {
    let ext = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let path = scratch.join(format!("workbook.{ext}"));
    let io = |source| WorkspaceError::Io {
        dir: scratch.display().to_string(),
        source,
    };
    fs::write(&path, bytes).map_err(io)?;
    let converted = convert_at(&path, name, limit);
    let _ = fs::remove_file(&path);
    converted
}

fn convert_at(path: &Path, name: &str, limit: usize) -> Result<Vec<Converted>, WorkspaceError> {
    let shown = path.display().to_string();
    // The library names the file by its path: the treasurer knows it by its name.
    let refused = |message: String| WorkspaceError::Refused(message.replace(&shown, name));
    let bundle = Bundle::discover(path).map_err(|e| refused(e.to_string()))?;
    let mut out = Vec::new();
    for file in &bundle.files {
        let sheet = file.sheet.clone().unwrap_or_default();
        let findings = sheet_findings(file, name).map_err(&refused)?;
        let (csv, letters, header_row, rows) =
            sheet_as_csv(path, &sheet, name, limit).map_err(&refused)?;
        out.push(Converted {
            table: file.table,
            csv,
            origin: SheetOrigin {
                book: name.to_string(),
                sheet,
                header_row,
                letters,
                rows,
                findings,
            },
        });
    }
    Ok(out)
}

/// The reader's findings about a sheet that a CSV copy cannot carry (`cell.*`, `sheet.*`), named
/// by `book[sheet]`; an unreadable sheet refuses the workbook.
fn sheet_findings(file: &SourceFile, book: &str) -> Result<Vec<Diagnostic>, String> {
    let mut diags = Diagnostics::default();
    let mut reader = Reader::open(file, &mut diags).map_err(|e| e.to_string())?;
    while reader.advance(&mut diags) {}
    // Past a thousand of one rule, the finding that counts the rest.
    diags.close();
    let sheet = file.sheet.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for d in diags.into_items() {
        if d.rule == "file.unreadable" {
            return Err(format!("{book}, sheet {sheet}: {}", d.message));
        }
        if d.rule.starts_with("cell.") || d.rule.starts_with("sheet.") {
            out.push(d);
        }
    }
    Ok(out)
}

/// The CSV text of one sheet: header names as typed, then each row's values in the header's
/// columns, each cell's text as the reader reads it. Returns the copy, each header name with its
/// letter, the header's row and each record's row.
#[allow(clippy::type_complexity)]
fn sheet_as_csv(
    path: &Path,
    sheet: &str,
    book: &str,
    limit: usize,
) -> Result<(Vec<u8>, Vec<(String, String)>, u64, Vec<u64>), String> {
    let file = File::open(path).map_err(|e| format!("{book}: cannot read: {e}"))?;
    let kind = BookKind::of(path).unwrap_or(BookKind::Xlsx);
    let rows = stream_sheet(
        BookInput::File(file),
        kind,
        sheet.to_string(),
        book.to_string(),
    );
    let stopped = || format!("{book}, sheet {sheet}: the sheet could not be read to its end");
    let too_large = || {
        format!(
            "{book}, sheet {sheet}: as CSV it is larger than the limit of {} MiB (restart serve with a larger --max-upload, or use `habitat-migrate migrate` with the workbook)",
            limit >> 20
        )
    };
    let mut csv = Vec::new();
    let mut columns: Vec<u32> = Vec::new();
    let mut letters = Vec::new();
    let mut header_row = 1;
    let mut records = Vec::new();
    let mut header_seen = false;
    loop {
        let row = match rows.recv() {
            Ok(SheetMessage::Row(row)) => row,
            Ok(SheetMessage::End) => break,
            Ok(SheetMessage::Failed(reason)) => {
                return Err(format!("{book}, sheet {sheet}: {reason}"));
            }
            Err(_) => return Err(stopped()),
        };
        let text_of = |value: &CellValue| value.text().unwrap_or_default().to_string();
        if !header_seen {
            // The first row with a value is the header, as the reader has it.
            header_seen = true;
            header_row = row.row;
            let mut names = Vec::new();
            for (col, value) in &row.cells {
                let name = match value {
                    CellValue::Problem(p) => p.describe().2,
                    _ => value
                        .text()
                        .unwrap_or_default()
                        .trim_matches(is_space)
                        .to_string(),
                };
                if !name.is_empty() {
                    columns.push(*col);
                    letters.push((name.clone(), column_letters(*col)));
                    names.push(name);
                }
            }
            write_record(&mut csv, names.iter().map(String::as_str));
            if names.is_empty() {
                // A header of nothing but blanks: nothing below it can be read either.
                break;
            }
            continue;
        }
        let values: Vec<String> = columns
            .iter()
            .map(|col| {
                row.cells
                    .iter()
                    .find(|(c, _)| c == col)
                    .map(|(_, v)| text_of(v))
                    .unwrap_or_default()
            })
            .collect();
        write_record(&mut csv, values.iter().map(String::as_str));
        records.push(row.row);
        if csv.len() > limit {
            return Err(too_large());
        }
    }
    Ok((csv, letters, header_row, records))
}

/// The reader's white space: ASCII only.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// One CSV record. A record of one empty value is written `""`, since an empty line is no record.
fn write_record<'a>(out: &mut Vec<u8>, values: impl Iterator<Item = &'a str>) {
    let start = out.len();
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(quote(value).as_bytes());
    }
    if out.len() == start {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}
