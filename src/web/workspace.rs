//! The page's workspace: the files the treasurer gave, as bytes, each with the table it holds, the
//! edits made on the page, and the latest validation of them all together.
//!
//! The files live in a private temporary directory too, because the import reads paths; the bytes
//! here are the truth and the directory is rewritten from them after every change. An edit replaces
//! exactly the bytes of one CSV field, so the corrected file is the uploaded one but for the edited
//! cells (quoting of other fields, line endings, a BOM and blank lines are left as they were).
//!
//! A workbook comes in as one CSV working copy per sheet (see `workbook`): its findings are then
//! placed on the sheet (`members!C7`), and the copies download as CSV.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::source::{Format, SourceFile, Table};
use crate::validate::{self, KnownRefs, Validation};

use super::workbook::{self, SheetOrigin};

/// Why a change to the workspace was refused; the message is shown on the page as it is.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot write the working copy in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// One file as given, and as it stands after the page's edits.
#[derive(Clone, Debug)]
pub struct Upload {
    pub table: Table,
    /// The file's name as the treasurer gave it: every diagnostic names the file this way.
    pub name: String,
    pub format: Format,
    pub bytes: Vec<u8>,
    /// Where each CSV record starts and ends, for paging and editing (empty for JSON).
    pub records: Vec<RecordSpan>,
    /// Cells changed on the page: (line, column name) → the value written.
    pub edits: BTreeMap<(u64, String), String>,
    /// The workbook sheet this CSV copy was made from, if it was.
    pub origin: Option<SheetOrigin>,
}

/// Where a CSV record lies in the file: the editor line it starts on, and its bytes without the
/// line ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSpan {
    pub line: u64,
    pub start: usize,
    pub end: usize,
}

/// The files of one session, the directory holding their working copies, and their validation.
pub struct Workspace {
    dir: PathBuf,
    files: BTreeMap<Table, Upload>,
    validation: Option<Validation>,
}

impl Workspace {
    /// A workspace over a new private directory (owner-only on Unix).
    pub fn create(dir: PathBuf) -> Result<Workspace, WorkspaceError> {
        let io = |source| WorkspaceError::Io {
            dir: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(Workspace {
            dir,
            files: BTreeMap::new(),
            validation: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn files(&self) -> impl Iterator<Item = &Upload> {
        self.files.values()
    }

    pub fn get(&self, table: Table) -> Option<&Upload> {
        self.files.get(&table)
    }

    /// The required tables no file was given for.
    pub fn missing(&self) -> Vec<Table> {
        Table::ALL
            .into_iter()
            .filter(|t| t.required_in_bundle() && !self.files.contains_key(t))
            .collect()
    }

    /// Adds (or replaces) a file. Its table is told by its name, else by its header.
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) -> Result<Table, WorkspaceError> {
        let name = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let format = Format::from_path(Path::new(&name));
        if workbook::is_workbook(&name) {
            return Err(WorkspaceError::Refused(format!(
                "{name}: a workbook holds the whole bundle; give it alone"
            )));
        }
        let table = table_of(&name, &bytes).ok_or_else(|| {
            WorkspaceError::Refused(format!(
                "{name}: cannot tell which table this file holds; name it members, capital_accounts, \
                 contributions or periods (.csv, .json or .jsonl)"
            ))
        })?;
        let records = match format {
            Format::Csv => record_spans(&bytes),
            _ => Vec::new(),
        };
        self.files.insert(
            table,
            Upload {
                table,
                name,
                format,
                bytes,
                records,
                edits: BTreeMap::new(),
                origin: None,
            },
        );
        self.changed()?;
        Ok(table)
    }

    /// Takes a workbook as the whole bundle: every file given before is forgotten, and each
    /// table's sheet becomes a CSV working copy named `book[sheet]`. `limit` bounds each copy.
    /// Returns the tables found.
    pub fn add_workbook(
        &mut self,
        name: &str,
        bytes: &[u8],
        limit: usize,
    ) -> Result<Vec<Table>, WorkspaceError> {
        let name = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scratch = self.dir.join("workbook");
        fs::create_dir_all(&scratch).map_err(|source| WorkspaceError::Io {
            dir: scratch.display().to_string(),
            source,
        })?;
        let converted = workbook::convert(&name, bytes, &scratch, limit);
        let _ = fs::remove_dir_all(&scratch);
        let converted = converted?;
        self.files.clear();
        let mut tables = Vec::new();
        for c in converted {
            tables.push(c.table);
            let records = record_spans(&c.csv);
            self.files.insert(
                c.table,
                Upload {
                    table: c.table,
                    name: format!("{name}[{}]", c.origin.sheet),
                    format: Format::Csv,
                    bytes: c.csv,
                    records,
                    edits: BTreeMap::new(),
                    origin: Some(c.origin),
                },
            );
        }
        self.changed()?;
        Ok(tables)
    }

    /// Forgets every file.
    pub fn clear(&mut self) -> Result<(), WorkspaceError> {
        self.files.clear();
        self.changed()
    }

    /// The source files for the library: the working copies, named as the treasurer named them.
    pub fn source_files(&self) -> Vec<SourceFile> {
        self.files
            .values()
            .map(|u| SourceFile {
                path: self.path_of(u),
                display: u.name.clone(),
                table: u.table,
                format: u.format,
                sheet: None,
            })
            .collect()
    }

    fn path_of(&self, u: &Upload) -> PathBuf {
        let ext = match u.format {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::JsonLines => "jsonl",
            // Not an upload's format: a workbook is kept as CSV working copies (`web::workbook`).
            Format::Sheet => "xlsx",
        };
        self.dir.join(format!("{}.{ext}", u.table.stem()))
    }

    /// Writes the working copies again and forgets the validation.
    fn changed(&mut self) -> Result<(), WorkspaceError> {
        self.validation = None;
        let io = |source| WorkspaceError::Io {
            dir: self.dir.display().to_string(),
            source,
        };
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() {
                fs::remove_file(&path).map_err(io)?;
            }
        }
        for u in self.files.values() {
            fs::write(self.path_of(u), &u.bytes).map_err(io)?;
        }
        Ok(())
    }

    /// The validation of the files as they stand, made once per change.
    pub fn validation(&mut self, known: &KnownRefs) -> &Validation {
        if self.validation.is_none() {
            let sources: Vec<(SourceFile, Vec<u8>)> = self
                .source_files()
                .into_iter()
                .zip(self.files.values().map(|u| u.bytes.clone()))
                .collect();
            let mut validation = validate::validate_bytes(&sources, known);
            self.on_sheets(&mut validation.diagnostics);
            self.validation = Some(validation);
        }
        self.validation.get_or_insert_with(Validation::default)
    }

    /// Places the findings about copies of sheets on their sheets, and adds the sheets' own
    /// findings the copies cannot carry (a cell that held `#REF!`, say), each until its cell is
    /// edited; the copy's finding about such a cell (it is empty) gives way to the sheet's.
    fn on_sheets(&self, diagnostics: &mut Diagnostics) {
        let mut own = Diagnostics::default();
        for u in self.files.values() {
            let Some(origin) = &u.origin else {
                continue;
            };
            let mut held = Vec::new();
            for f in &origin.findings {
                let mut d = f.clone();
                d.file.clone_from(&u.name);
                d.line = f.line.and_then(|row| u.line_of_row(row));
                if let (Some(line), Some(column)) = (d.line, &d.column) {
                    if u.edits.contains_key(&(line, column.clone())) {
                        continue;
                    }
                    held.push((line, column.clone()));
                }
                // A note on an empty row, which is no record: the file's, at its row.
                d.row = f.line;
                own.push(d);
            }
            diagnostics.retain(|d| {
                d.file != u.name
                    || !matches!((d.line, &d.column), (Some(l), Some(c)) if held.contains(&(l, c.clone())))
            });
        }
        for u in self.files.values() {
            let Some(origin) = &u.origin else {
                continue;
            };
            let place = |d: &mut Diagnostic| {
                if d.file != u.name {
                    return;
                }
                d.sheet = Some(origin.sheet.clone());
                if d.row.is_none() {
                    d.row = d.line.and_then(|line| u.row_of_line(line));
                }
                if let Some(letter) = d.column.as_deref().and_then(|c| origin.letter(c)) {
                    d.column_letter = Some(letter.to_string());
                }
            };
            own.for_each_mut(place);
            diagnostics.for_each_mut(place);
        }
        own.extend(std::mem::take(diagnostics));
        *diagnostics = own;
    }

    /// The last validation made, if the files have not changed since.
    pub fn last_validation(&self) -> Option<&Validation> {
        self.validation.as_ref()
    }

    /// The value of one cell (untrimmed), if the file is CSV and the cell exists.
    pub fn cell(&self, table: Table, line: u64, column: &str) -> Option<String> {
        let u = self.files.get(&table)?;
        let index = u.column_index(column)?;
        let span = u.record_at(line)?;
        let fields = field_spans(&u.bytes[span.start..span.end]);
        let (start, end) = *fields.get(index)?;
        Some(unquote(&u.bytes[span.start + start..span.start + end]))
    }

    /// Writes `value` into one cell of a CSV file, touching no other byte of the file.
    pub fn edit(
        &mut self,
        table: Table,
        line: u64,
        column: &str,
        value: &str,
    ) -> Result<(), WorkspaceError> {
        let refuse = |m: String| Err(WorkspaceError::Refused(m));
        let Some(u) = self.files.get_mut(&table) else {
            return refuse(format!("no {} file has been given", table.stem()));
        };
        if u.format != Format::Csv {
            return refuse(format!(
                "{}: cells can be edited on the page in CSV files only; correct this file in the program that wrote it",
                u.name
            ));
        }
        let Some(index) = u.column_index(column) else {
            return refuse(format!("{}: no column {column}", u.name));
        };
        let Some(span) = u.record_at(line) else {
            return refuse(format!("{}: no row starts on line {line}", u.name));
        };
        let fields = field_spans(&u.bytes[span.start..span.end]);
        let Some(&(start, end)) = fields.get(index) else {
            return refuse(format!(
                "{}:{line}: this row has fewer fields than the header; correct it in the spreadsheet",
                u.name
            ));
        };
        let mut bytes = Vec::with_capacity(u.bytes.len() + value.len());
        bytes.extend_from_slice(&u.bytes[..span.start + start]);
        bytes.extend_from_slice(quote(value).as_bytes());
        bytes.extend_from_slice(&u.bytes[span.start + end..]);
        u.bytes = bytes;
        u.records = record_spans(&u.bytes);
        u.edits
            .insert((line, column.to_string()), value.to_string());
        self.changed()
    }
}

impl Upload {
    /// The name a download of this file takes: a workbook's sheet downloads as `members.csv`.
    pub fn download_name(&self) -> String {
        match &self.origin {
            Some(_) => format!("{}.csv", self.table.stem()),
            None => self.name.clone(),
        }
    }

    /// The sheet row of a line of a copy of a sheet.
    pub fn row_of_line(&self, line: u64) -> Option<u64> {
        let origin = self.origin.as_ref()?;
        if self.records.first().is_some_and(|h| h.line == line) {
            return Some(origin.header_row);
        }
        let i = self.data().binary_search_by_key(&line, |r| r.line).ok()?;
        origin.rows.get(i).copied()
    }

    /// The line of a copy of a sheet that holds a sheet row.
    pub fn line_of_row(&self, row: u64) -> Option<u64> {
        let origin = self.origin.as_ref()?;
        if row == origin.header_row {
            return self.records.first().map(|h| h.line);
        }
        let i = origin.rows.binary_search(&row).ok()?;
        self.data().get(i).map(|r| r.line)
    }

    /// The header's names (CSV), as written.
    pub fn header(&self) -> Vec<String> {
        match self.records.first() {
            Some(span) if span.line >= 1 => field_spans(&self.bytes[span.start..span.end])
                .iter()
                .map(|&(s, e)| {
                    unquote(&self.bytes[span.start + s..span.start + e])
                        .trim_start_matches('\u{feff}')
                        .trim()
                        .to_string()
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn column_index(&self, column: &str) -> Option<usize> {
        self.header().iter().position(|h| h == column)
    }

    /// The data records (CSV), after the header.
    pub fn data(&self) -> &[RecordSpan] {
        self.records.get(1..).unwrap_or_default()
    }

    fn record_at(&self, line: u64) -> Option<RecordSpan> {
        let data = self.data();
        let i = data.binary_search_by_key(&line, |r| r.line).ok()?;
        data.get(i).copied()
    }

    /// The values of one record, unquoted.
    pub fn values(&self, span: RecordSpan) -> Vec<String> {
        field_spans(&self.bytes[span.start..span.end])
            .iter()
            .map(|&(s, e)| unquote(&self.bytes[span.start + s..span.start + e]))
            .collect()
    }
}

/// Which table a file holds: by its name (`members.csv`, `Capital accounts.csv`), else by the
/// columns of its header.
pub fn table_of(name: &str, bytes: &[u8]) -> Option<Table> {
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase().replace(['-', ' '], "_"))
        .unwrap_or_default();
    // Longest first: `capital_accounts` before anything it contains.
    let by_name = [
        Table::CapitalAccounts,
        Table::Contributions,
        Table::Members,
        Table::Periods,
    ]
    .into_iter()
    .find(|t| stem.contains(t.stem()));
    by_name.or_else(|| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_lowercase();
        let has = |c: &str| head.contains(c);
        if has("balance") && has("tax_basis") {
            Some(Table::CapitalAccounts)
        } else if has("contribution_type") {
            Some(Table::Contributions)
        } else if has("display_name") {
            Some(Table::Members)
        } else if has("start_date") && has("end_date") {
            Some(Table::Periods)
        } else {
            None
        }
    })
}

/// Every CSV record's line and bytes (without its line ending), header included. Blank lines are
/// not records, as the reader has it. Lines are counted as an editor counts them (a quoted field
/// that spans lines moves the next record down), which is how diagnostics name them.
pub fn record_spans(bytes: &[u8]) -> Vec<RecordSpan> {
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1u64);
    while i < bytes.len() {
        let (start, start_line) = (i, line);
        let mut quoted = false;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => break,
                b'\n' => line += 1,
                _ => {}
            }
            i += 1;
        }
        let mut end = i;
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        if i < bytes.len() {
            i += 1;
            line += 1;
        }
        if end > start {
            out.push(RecordSpan {
                line: start_line,
                start,
                end,
            });
        }
    }
    out
}

/// Where each field of one CSV record lies, quotes included.
pub fn field_spans(record: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        if record.get(i) == Some(&b'"') {
            i += 1;
            while i < record.len() {
                if record[i] == b'"' {
                    if record.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
        }
        while i < record.len() && record[i] != b',' {
            i += 1;
        }
        spans.push((start, i));
        if i >= record.len() {
            return spans;
        }
        i += 1;
    }
}

/// A field's text: without its quotes, doubled quotes made single; invalid UTF-8 shown as �.
fn unquote(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let trimmed = text.trim();
    match trimmed.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if trimmed.len() >= 2 => inner.replace("\"\"", "\""),
        _ => text.into_owned(),
    }
}

/// A value as a CSV field: quoted only when it must be.
pub(crate) fn quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// The diagnostics of one file, by line, for the grid.
pub fn by_line<'a>(
    diagnostics: &'a [Diagnostic],
    file: &str,
) -> BTreeMap<u64, Vec<&'a Diagnostic>> {
    let mut out: BTreeMap<u64, Vec<&Diagnostic>> = BTreeMap::new();
    for d in diagnostics.iter().filter(|d| d.file == file) {
        if let Some(line) = d.line {
            out.entry(line).or_default().push(d);
        }
    }
    out
}

/// Where a finding is, as the person knows the file: `members!C7` on a workbook's sheet, else the
/// file, line and column.
pub fn place(d: &Diagnostic) -> String {
    match (&d.sheet, d.row, &d.column_letter) {
        (Some(sheet), Some(row), Some(letter)) => format!("{sheet}!{letter}{row}"),
        (Some(sheet), Some(row), None) => format!("{sheet}!{row}:{row}"),
        (Some(sheet), None, _) => sheet.clone(),
        (None, ..) => match &d.column {
            Some(column) => format!("{} {column}", d.location()),
            None => d.location(),
        },
    }
}

/// How many findings of each severity a file has.
pub fn counts(diagnostics: &[Diagnostic], file: &str) -> (usize, usize) {
    let of = |s: Severity| {
        diagnostics
            .iter()
            .filter(|d| d.file == file && d.severity == s)
            .count()
    };
    (of(Severity::Error), of(Severity::Warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_quotes_commas_and_newlines() {
        let rec = br#"a,"b,c","d ""e""",,"f
g""#;
        let spans = field_spans(rec);
        let texts: Vec<String> = spans.iter().map(|&(s, e)| unquote(&rec[s..e])).collect();
        assert_eq!(texts, ["a", "b,c", "d \"e\"", "", "f\ng"]);
    }

    #[test]
    fn an_edit_changes_only_its_cell() {
        let dir = std::env::temp_dir().join(format!("hm-ws-test-{}", std::process::id()));
        let mut ws = Workspace::create(dir.clone()).expect("workspace");
        let original = "\u{feff}member_email,balance,tax_basis,notes\r\n\
                        a@example.org,\"1,000.00\",1000.00,\"keep \"\"this\"\"\"\r\n\
                        \r\n\
                        b@example.org,5,5,\"two\nlines\"\r\n";
        ws.add("capital_accounts.csv", original.as_bytes().to_vec())
            .expect("add");
        assert_eq!(
            ws.cell(Table::CapitalAccounts, 2, "balance").as_deref(),
            Some("1,000.00")
        );
        ws.edit(Table::CapitalAccounts, 2, "balance", "1000.00")
            .expect("edit");
        ws.edit(Table::CapitalAccounts, 4, "notes", "one, \"quoted\"")
            .expect("edit");
        let expected = "\u{feff}member_email,balance,tax_basis,notes\r\n\
                        a@example.org,1000.00,1000.00,\"keep \"\"this\"\"\"\r\n\
                        \r\n\
                        b@example.org,5,5,\"one, \"\"quoted\"\"\"\r\n";
        let upload = ws.get(Table::CapitalAccounts).expect("file");
        assert_eq!(String::from_utf8_lossy(&upload.bytes), expected);
        assert_eq!(
            fs::read(dir.join("capital_accounts.csv")).expect("copy"),
            expected.as_bytes()
        );
        assert!(ws.edit(Table::CapitalAccounts, 3, "notes", "x").is_err());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn tables_by_name_or_header() {
        assert_eq!(
            table_of("Capital Accounts.csv", b""),
            Some(Table::CapitalAccounts)
        );
        assert_eq!(table_of("members-2025.csv", b""), Some(Table::Members));
        assert_eq!(
            table_of("export.csv", b"name,start_date,end_date\n"),
            Some(Table::Periods)
        );
        assert_eq!(table_of("export.csv", b"a,b\n"), None);
    }
}
