//! Workbooks (`.xlsx`, `.ods`) as bundles: finding each table's sheet, and streaming a sheet's rows.
//!
//! A workbook is a bundle whose files are sheets, named like the files (`members`,
//! `capital_accounts`, `contributions`, `periods`) and matched ignoring case, spaces, `-` and `_`.
//! Hidden sheets are not read (a treasurer hides what is not current) but are named when a sheet
//! is missing. Each sheet then goes through the same reader as a CSV file: its rows become
//! [`SheetRow`]s of text cells ([`super::cell`]), and the header and every rule are the CSV ones.
//!
//! The reading is [calamine]'s, pure Rust. An `.xlsx` sheet is streamed cell by cell
//! (`worksheet_cells_reader`) on a thread of its own that hands rows over a bounded channel, so
//! memory holds the workbook's shared strings and styles and a few hundred rows, whatever the
//! number of rows. (The thread also makes the reader own its workbook: calamine's cell reader
//! borrows it.) An `.ods` file is parsed whole by calamine (all its sheets, in memory), so its
//! `content.xml` may be at most [`MAX_ODS_CONTENT_BYTES`] unpacked; larger books must be `.xlsx`.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{Ods, OdsError, Reader as _, SheetVisible, Xlsx, XlsxError};

use super::cell::{self, CellProblem, CellValue};
use super::xlsx_scan;
use super::{Bundle, Format, MAX_COLUMNS, SourceError, SourceFile, Table};

/// The largest `content.xml` an `.ods` workbook may unpack to (64 MiB): calamine holds an ODS
/// workbook's cells in memory, about as many bytes again as this XML.
pub const MAX_ODS_CONTENT_BYTES: u64 = 64 << 20;

/// Rows in flight between the thread reading a sheet and the validation reading the rows.
const ROWS_IN_FLIGHT: usize = 256;

/// The kind of workbook a path names, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookKind {
    Xlsx,
    Ods,
}

impl BookKind {
    pub fn of(path: &Path) -> Option<BookKind> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("xlsx" | "xlsm") => Some(BookKind::Xlsx),
            Some("ods") => Some(BookKind::Ods),
            _ => None,
        }
    }
}

/// One row of a sheet: its number as the spreadsheet shows it (1-based) and its non-empty cells,
/// each with its column index (0 for A), left to right.
#[derive(Debug, Default)]
pub(crate) struct SheetRow {
    pub row: u64,
    pub cells: Vec<(u32, CellValue)>,
}

/// What the thread reading a sheet sends.
pub(crate) enum Message {
    Row(SheetRow),
    /// The sheet could not be read on from here (broken XML, say).
    Failed(String),
    /// Every row was sent. A channel that closes without this means the reading thread died.
    End,
}

/// A sheet's name as it is matched to a table: lower case without spaces, `-` and `_`.
fn normalised(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The sheets of a workbook, in order, each with whether it is visible.
fn sheet_names(path: &Path, shown: &str) -> Result<Vec<(String, bool)>, SourceError> {
    let kind = BookKind::of(path).unwrap_or(BookKind::Xlsx);
    let file = open(path, shown)?;
    let sheets = match kind {
        BookKind::Xlsx => Xlsx::new(BufReader::new(file))
            .map_err(|e| xlsx_error(shown, e))?
            .sheets_metadata()
            .to_vec(),
        BookKind::Ods => {
            check_ods_size(BufReader::new(open(path, shown)?), shown)?;
            Ods::new(BufReader::new(file))
                .map_err(|e| ods_error(shown, e))?
                .sheets_metadata()
                .to_vec()
        }
    };
    Ok(sheets
        .into_iter()
        .map(|s| (s.name, matches!(s.visible, SheetVisible::Visible)))
        .collect())
}

fn open(path: &Path, shown: &str) -> Result<File, SourceError> {
    File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SourceError::NotFound {
            path: shown.to_string(),
        },
        _ => SourceError::Unreadable {
            path: shown.to_string(),
            source,
        },
    })
}

fn xlsx_error(shown: &str, e: XlsxError) -> SourceError {
    match e {
        XlsxError::Password => SourceError::Password {
            path: shown.to_string(),
        },
        other => SourceError::BadWorkbook {
            path: shown.to_string(),
            reason: other.to_string(),
        },
    }
}

fn ods_error(shown: &str, e: OdsError) -> SourceError {
    match e {
        OdsError::Password => SourceError::Password {
            path: shown.to_string(),
        },
        other => SourceError::BadWorkbook {
            path: shown.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Refuses an `.ods` whose `content.xml` unpacks to more than [`MAX_ODS_CONTENT_BYTES`], before
/// calamine parses it whole; reads only the zip's directory.
fn check_ods_size(input: impl Read + Seek, shown: &str) -> Result<(), SourceError> {
    let bad = |reason: String| SourceError::BadWorkbook {
        path: shown.to_string(),
        reason,
    };
    let mut zip = zip::ZipArchive::new(input).map_err(|e| bad(e.to_string()))?;
    let size = match zip.by_name("content.xml") {
        Ok(entry) => entry.size(),
        Err(zip::result::ZipError::FileNotFound) => return Ok(()),
        Err(e) => return Err(bad(e.to_string())),
    };
    if size > MAX_ODS_CONTENT_BYTES {
        return Err(SourceError::OdsTooLarge {
            path: shown.to_string(),
            size,
        });
    }
    Ok(())
}

/// The sheets of `path` as the files of a bundle.
pub(super) fn discover(path: &Path) -> Result<Bundle, SourceError> {
    let shown = path.display().to_string();
    let sheets = sheet_names(path, &shown)?;
    let mut files = Vec::new();
    for table in Table::ALL {
        if let Some(file) = find_sheet(path, &shown, &sheets, table)? {
            files.push(file);
        } else if table.required_in_bundle() {
            return Err(missing(&shown, table, &sheets));
        }
    }
    Ok(Bundle { files })
}

/// The sheet of `path` that holds `table`, as a source file.
pub(super) fn sheet_for(path: &Path, table: Table) -> Result<SourceFile, SourceError> {
    let shown = path.display().to_string();
    let sheets = sheet_names(path, &shown)?;
    find_sheet(path, &shown, &sheets, table)?.ok_or_else(|| missing(&shown, table, &sheets))
}

fn find_sheet(
    path: &Path,
    shown: &str,
    sheets: &[(String, bool)],
    table: Table,
) -> Result<Option<SourceFile>, SourceError> {
    let wanted = normalised(table.stem());
    let mut found = sheets
        .iter()
        .filter(|(name, visible)| *visible && normalised(name) == wanted);
    let Some((first, _)) = found.next() else {
        return Ok(None);
    };
    if let Some((second, _)) = found.next() {
        return Err(SourceError::AmbiguousSheets {
            path: shown.to_string(),
            stem: table.stem(),
            first: first.clone(),
            second: second.clone(),
        });
    }
    Ok(Some(SourceFile {
        path: path.to_path_buf(),
        display: format!("{shown}[{first}]"),
        table,
        format: Format::Sheet,
        sheet: Some(first.clone()),
    }))
}

fn missing(shown: &str, table: Table, sheets: &[(String, bool)]) -> SourceError {
    let names: Vec<String> = sheets
        .iter()
        .map(|(name, visible)| {
            if *visible {
                name.clone()
            } else {
                format!("{name} (hidden)")
            }
        })
        .collect();
    SourceError::MissingSheet {
        path: shown.to_string(),
        stem: table.stem(),
        found: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    }
}

/// The sheets of the workbook at `path`, in order, each with whether it is visible: what an
/// annotated copy of the workbook holds.
pub(crate) fn sheets(path: &Path) -> Result<Vec<(String, bool)>, SourceError> {
    sheet_names(path, &path.display().to_string())
}

/// The rows of the sheet `sheet` of the workbook at `path`, streamed as the reader gets them.
pub(crate) fn sheet_rows(path: &Path, sheet: &str) -> Result<Receiver<Message>, SourceError> {
    let shown = path.display().to_string();
    let file = open(path, &shown)?;
    let kind = BookKind::of(path).unwrap_or(BookKind::Xlsx);
    Ok(stream_sheet(
        BookInput::File(file),
        kind,
        sheet.to_string(),
        shown,
    ))
}

/// Where a sheet's bytes come from.
pub(crate) enum BookInput {
    File(File),
    Bytes(Vec<u8>),
}

/// Starts reading `sheet` of a workbook on a thread of its own; its rows come through the receiver
/// in order, at most [`ROWS_IN_FLIGHT`] ahead of the reader. Dropping the receiver stops it.
pub(crate) fn stream_sheet(
    input: BookInput,
    kind: BookKind,
    sheet: String,
    shown: String,
) -> Receiver<Message> {
    let (tx, rx) = sync_channel(ROWS_IN_FLIGHT);
    let spawned = std::thread::Builder::new()
        .name("sheet-reader".into())
        .spawn({
            let tx = tx.clone();
            move || {
                let result = match input {
                    BookInput::File(f) => read_sheet(BufReader::new(f), kind, &sheet, &shown, &tx),
                    BookInput::Bytes(b) => read_sheet(Cursor::new(b), kind, &sheet, &shown, &tx),
                };
                let _ = tx.send(match result {
                    Ok(()) => Message::End,
                    Err(reason) => Message::Failed(reason),
                });
            }
        });
    if let Err(e) = spawned {
        let _ = tx.send(Message::Failed(format!(
            "cannot start reading the sheet: {e}"
        )));
    }
    rx
}

/// Sends the rows of `sheet`; `Err` with what went wrong. A closed channel (the reader was
/// dropped) ends it quietly.
fn read_sheet<RS: Read + Seek>(
    input: RS,
    kind: BookKind,
    sheet: &str,
    shown: &str,
    tx: &SyncSender<Message>,
) -> Result<(), String> {
    match kind {
        BookKind::Xlsx => {
            let mut input = input;
            let without_value = xlsx_scan::formulas_without_value(&mut input, sheet);
            let mut without_value = without_value.into_iter().peekable();
            input
                .rewind()
                .map_err(|e| format!("cannot read the workbook: {e}"))?;
            let mut book = Xlsx::new(input).map_err(|e| xlsx_error(shown, e).to_string())?;
            let is_1904 = book.has_1904_epoch();
            let mut cells = book
                .worksheet_cells_reader(sheet)
                .map_err(|e| format!("cannot read the sheet: {e}"))?;
            let mut row = SheetRow::default();
            while let Some(c) = cells
                .next_cell()
                .map_err(|e| format!("cannot read the sheet: {e}"))?
            {
                let (r, col) = c.get_position();
                if col as usize >= MAX_COLUMNS {
                    // Past column XFD, where no spreadsheet writes: a crafted file.
                    continue;
                }
                let number = u64::from(r) + 1;
                if number != row.row && !row.cells.is_empty() {
                    let done = std::mem::take(&mut row);
                    if tx.send(Message::Row(done)).is_err() {
                        return Ok(());
                    }
                }
                row.row = number;
                let mut value = cell::from_ref(c.get_value().clone(), is_1904);
                while without_value.next_if(|&at| at < (r, col)).is_some() {}
                if without_value.next_if_eq(&(r, col)).is_some() {
                    let blank = match &value {
                        None => true,
                        Some(CellValue::Text(text)) => text.is_empty(),
                        Some(_) => false,
                    };
                    if blank {
                        value = Some(CellValue::Problem(CellProblem::FormulaWithoutValue));
                    }
                }
                if let Some(value) = value {
                    row.cells.push((col, value));
                }
            }
            if !row.cells.is_empty() {
                let _ = tx.send(Message::Row(row));
            }
        }
        BookKind::Ods => {
            let mut input = input;
            check_ods_size(&mut input, shown).map_err(|e| e.to_string())?;
            input
                .rewind()
                .map_err(|e| format!("cannot read the workbook: {e}"))?;
            let mut book = Ods::new(input).map_err(|e| ods_error(shown, e).to_string())?;
            let values = book
                .worksheet_range(sheet)
                .map_err(|e| format!("cannot read the sheet: {e}"))?;
            let formulas = book.worksheet_formula(sheet).ok();
            let Some((top, left)) = values.start() else {
                return Ok(());
            };
            for (i, cells) in values.rows().enumerate() {
                let r = top + u32::try_from(i).unwrap_or(u32::MAX);
                let mut row = SheetRow {
                    row: u64::from(r) + 1,
                    cells: Vec::new(),
                };
                for (j, data) in cells.iter().enumerate().take(MAX_COLUMNS) {
                    let col = left + u32::try_from(j).unwrap_or(u32::MAX);
                    let has_formula = || {
                        formulas
                            .as_ref()
                            .and_then(|f| f.get_value((r, col)))
                            .is_some_and(|f| !f.is_empty())
                    };
                    let value = match cell::from_data(data) {
                        None if has_formula() => {
                            Some(CellValue::Problem(CellProblem::FormulaWithoutValue))
                        }
                        Some(CellValue::Text(text)) if text.is_empty() && has_formula() => {
                            Some(CellValue::Problem(CellProblem::EmptyFormulaResult))
                        }
                        other => other,
                    };
                    if let Some(value) = value {
                        row.cells.push((col, value));
                    }
                }
                if !row.cells.is_empty() && tx.send(Message::Row(row)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_match_ignoring_case_spaces_and_underscores() {
        assert_eq!(
            normalised("Capital Accounts"),
            normalised("capital_accounts")
        );
        assert_eq!(normalised("MEMBERS"), "members");
        assert_ne!(normalised("members 2024"), "members");
    }
}
