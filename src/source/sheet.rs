//! A workbook sheet's records: its first non-empty row is the header (mapped like a CSV header),
//! each later row with a value is a record whose line is the row number the spreadsheet shows.
//!
//! Spreadsheets leave empty rows and columns behind: rows after the last value, and columns right
//! of the header, are not looked at; an empty row between records is a note (it is skipped), and
//! a value in a column with no header is a warning (it is not imported): right of the header, or
//! under an empty header cell between named ones, which is what a header cell merged across two
//! columns leaves (its value is in the first). A cell the rules cannot
//! read (a boolean, an error value, a formula with no saved result) is an error on that cell,
//! and the rest of its row is still checked.

use std::sync::mpsc::Receiver;

use crate::diagnostic::{Diagnostic, Diagnostics};

use super::cell::{CellValue, column_letters};
use super::reader::{nul_error, trim};
use super::workbook::{BookInput, BookKind, Message, SheetRow, stream_sheet};
use super::{Inner, Input, Reader, Step};

/// What a reader of a sheet keeps between rows.
pub(super) struct SheetRows {
    rows: Receiver<Message>,
    /// For each sheet column up to the header's last, the table column it holds.
    mapping: Vec<Option<usize>>,
    /// For each sheet column up to the header's last, whether its header cell names it.
    headed: Vec<bool>,
    /// The last row read: a record coming after a gap has empty rows before it.
    last_row: u64,
    unheaded_reported: bool,
}

/// Where each header name is on the sheet, for diagnostics in the sheet's coordinates.
#[derive(Clone, Debug, Default)]
pub(super) struct SheetColumns {
    pub sheet: String,
    pub columns: Vec<(String, u32)>,
}

impl Reader {
    pub(super) fn open_sheet(&mut self, input: Input, diags: &mut Diagnostics) {
        let kind = BookKind::of(&self.file.path).unwrap_or(BookKind::Xlsx);
        let sheet = self.file.sheet.clone().unwrap_or_default();
        let input = match input {
            Input::File(f) => BookInput::File(f),
            Input::Bytes(b) => BookInput::Bytes(b),
        };
        let rows = stream_sheet(input, kind, sheet.clone(), self.file.display.clone());
        self.place = Some(SheetColumns {
            sheet,
            columns: Vec::new(),
        });
        let header = match rows.recv() {
            Ok(Message::Row(row)) => row,
            Ok(Message::Failed(reason)) => {
                self.saw_anything = true;
                self.finished = true;
                diags.push(unreadable(&self.file.display, &reason));
                return;
            }
            Ok(Message::End) => {
                self.finished = true;
                diags.push(
                    Diagnostic::error(&self.file.display, "file.empty", "the sheet is empty")
                        .hint(super::header::header_hint(self.file.table)),
                );
                return;
            }
            Err(_) => {
                self.saw_anything = true;
                self.finished = true;
                diags.push(unreadable(&self.file.display, STOPPED));
                return;
            }
        };
        self.saw_anything = true;
        let mut names = Vec::new();
        let mut positions = Vec::new();
        for (col, value) in &header.cells {
            let name = match value {
                CellValue::Problem(p) => p.describe().2,
                other => trim(other.text().unwrap_or_default()).to_string(),
            };
            if !name.is_empty() {
                names.push(name);
                positions.push(*col);
            }
        }
        let by_name = self.map_header(&names, header.row, diags);
        let width = positions.last().map_or(0, |&p| p as usize + 1);
        let mut mapping = vec![None; width];
        let mut headed = vec![false; width];
        for (&position, table_column) in positions.iter().zip(by_name) {
            mapping[position as usize] = table_column;
            headed[position as usize] = true;
        }
        if let Some(place) = &mut self.place {
            place.columns = names.into_iter().zip(positions).collect();
        }
        self.inner = Inner::Sheet(Box::new(SheetRows {
            rows,
            mapping,
            headed,
            last_row: header.row,
            unheaded_reported: false,
        }));
    }

    pub(super) fn next_sheet_row(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::Sheet(sheet) = &mut self.inner else {
            return Step::End;
        };
        let file = &self.file.display;
        let row: SheetRow = match sheet.rows.recv() {
            Ok(Message::Row(row)) => row,
            Ok(Message::Failed(reason)) => {
                diags.push(unreadable(file, &reason));
                return Step::End;
            }
            Ok(Message::End) => return Step::End,
            Err(_) => {
                diags.push(unreadable(file, STOPPED));
                return Step::End;
            }
        };
        if row.row > sheet.last_row + 1 {
            diags.push(empty_rows(file, sheet.last_row + 1, row.row - 1));
        }
        sheet.last_row = row.row;
        let columns = self.file.table.columns();
        self.record.start(row.row, columns.len());
        for (col, value) in row.cells {
            let (mapped, headed) = match sheet.mapping.get(col as usize) {
                Some(&mapped) => (mapped, sheet.headed.get(col as usize) == Some(&true)),
                None => (None, false),
            };
            if !headed {
                if !sheet.unheaded_reported {
                    sheet.unheaded_reported = true;
                    diags.push(unheaded(file, row.row, col));
                }
                continue;
            }
            let Some(index) = mapped else {
                continue;
            };
            let name = columns[index].name;
            match value {
                CellValue::Text(text) | CellValue::Number(text) | CellValue::Date(text) => {
                    let value = trim(&text);
                    if value.contains('\0') {
                        diags.push(nul_error(file, row.row, name, value));
                        self.record.refuse(index);
                    } else if !value.is_empty() {
                        self.record.set(index, value);
                    }
                }
                CellValue::Problem(problem) => {
                    let (rule, message, shown, hint) = problem.describe();
                    let mut d = Diagnostic::error(file, rule, message)
                        .at(row.row)
                        .column(name)
                        .hint(hint);
                    if !shown.is_empty() {
                        d = d.value(&shown);
                    }
                    diags.push(d);
                    self.record.refuse(index);
                }
            }
        }
        Step::Record
    }

    /// Gives the diagnostics about this file the sheet, row and column letter a spreadsheet shows
    /// (`members!C7`); a CSV or JSON file's are left as they are.
    pub fn locate(&self, diags: &mut Diagnostics) {
        let Some(place) = &self.place else {
            return;
        };
        let display = &self.file.display;
        diags.for_each_mut(|d| {
            if &d.file != display {
                return;
            }
            d.sheet = Some(place.sheet.clone());
            d.row = d.line;
            let letter = d.column.as_ref().and_then(|name| {
                place
                    .columns
                    .iter()
                    .find(|(header, _)| header == name)
                    .map(|(_, col)| column_letters(*col))
            });
            if letter.is_some() {
                d.column_letter = letter;
            }
        });
    }
}

/// What is said when the thread reading a sheet ended without saying it was done.
const STOPPED: &str = "the sheet could not be read to its end (the workbook reader stopped)";

fn unreadable(file: &str, reason: &str) -> Diagnostic {
    Diagnostic::error(file, "file.unreadable", reason.to_string())
        .hint("open the workbook in Excel or LibreOffice and save it again")
}

fn empty_rows(file: &str, first: u64, last: u64) -> Diagnostic {
    let message = if first == last {
        format!("row {first} is empty; it is skipped")
    } else {
        format!("rows {first} to {last} are empty; they are skipped")
    };
    Diagnostic::note(file, "sheet.empty_row", message)
        .at(first)
        .hint("nothing to fix if the gap is meant; rows after it are read as usual")
}

/// The first value in a column without a header: right of the header's last column, or under an
/// empty header cell. One message for both: an annotated copy puts its two columns right of such
/// a value, which then stands under an empty header cell, and its `_problems` must not change.
fn unheaded(file: &str, row: u64, col: u32) -> Diagnostic {
    let letter = column_letters(col);
    let mut d = Diagnostic::warning(
        file,
        "sheet.unheaded_value",
        format!(
            "a value in column {letter}, which has no header: it is not imported (only the first such cell is reported)"
        ),
    )
    .at(row)
    .hint("give the column a header (a header cell merged across columns names only the first of them), or clear the column");
    d.column_letter = Some(letter);
    d
}
