//! `--annotate DIR`: the copies written into a directory as a bundle that runs again (or, for a
//! workbook, as one workbook that does), and what the command says about them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::source::{Format, SourceFile, Table};

use super::workbook::{BookFailure, SheetCopy, copy_name, write_book};
use super::{
    AnnotateError, Annotated, HINTS_COLUMN, PROBLEMS_COLUMN, annotate_file, annotated_name,
    has_problems,
};

/// What happened to each source file in `--annotate DIR`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// An annotated copy was written.
    Annotated {
        #[serde(flatten)]
        annotated: Annotated,
        path: String,
    },
    /// The file had no problems; copied as it is, so the directory is a whole bundle (a sheet:
    /// copied into the workbook's copy, without the two columns).
    Copied {
        source: String,
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        sheet: Option<String>,
    },
    /// The file has problems but could not be read row by row; the report says why.
    NotAnnotated { source: String, reason: String },
}

/// The outcome of [`write_dir`].
#[derive(Clone, Debug, Serialize)]
pub struct Annotation {
    pub dir: String,
    pub files: Vec<Outcome>,
    /// The workbooks copied, each as one `.xlsx` holding its sheets (listed in `files` too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workbooks: Vec<BookCopy>,
}

/// The annotated copy of one workbook.
#[derive(Clone, Debug, Serialize)]
pub struct BookCopy {
    /// The source workbook, as given.
    pub source: String,
    pub path: String,
    /// The source was an `.ods`; the copy is an `.xlsx` all the same.
    pub from_ods: bool,
}

/// The names a bundle's files may have in a directory (see [`crate::source::Bundle::discover`]).
fn bundle_names() -> impl Iterator<Item = String> {
    Table::ALL.into_iter().flat_map(|table| {
        ["csv", "json", "jsonl", "ndjson"]
            .into_iter()
            .map(move |ext| format!("{}.{ext}", table.stem()))
    })
}

/// Checks, before anything is read, that `dir` can take the copies: it is a new or existing
/// directory holding no bundle file, so nothing a treasurer is working on is overwritten (and no
/// source file, when `dir` is the bundle itself).
pub fn check_dir(dir: &Path) -> Result<(), AnnotateError> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return Err(AnnotateError::Directory(format!(
            "--annotate {shown}: not a directory"
        )));
    }
    let book_copy = || {
        let entries = fs::read_dir(dir).ok()?;
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|name| name.ends_with(".annotated.xlsx"))
    };
    if let Some(existing) = bundle_names()
        .find(|name| dir.join(name).exists())
        .or_else(book_copy)
    {
        return Err(already_holds(dir, &existing));
    }
    Ok(())
}

fn already_holds(dir: &Path, existing: &str) -> AnnotateError {
    AnnotateError::Directory(format!(
        "--annotate {}: the directory already holds {existing}; give a new directory (an annotated copy is never written over a file)",
        dir.display()
    ))
}

/// Writes into `dir` an annotated copy of each file with problems, and a plain copy of each
/// other file, so that `dir` is a bundle that `migrate` and `validate-source` take as it is. Each
/// file is written under a temporary name and renamed, owner-only (the copies hold the same
/// personal data as the sources).
pub fn write_dir(
    files: &[SourceFile],
    diagnostics: &[Diagnostic],
    dir: &Path,
) -> Result<Annotation, AnnotateError> {
    check_dir(dir)?;
    let dir_err = |source: io::Error| AnnotateError::Write {
        path: dir.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(dir_err)?;
    let mut ordered: Vec<&SourceFile> = files.iter().collect();
    ordered.sort_by_key(|f| f.table);
    let mut outcomes = Vec::new();
    let mut workbooks = Vec::new();
    let mut books: Vec<&Path> = Vec::new();
    for file in &ordered {
        if file.format == Format::Sheet && !books.contains(&file.path.as_path()) {
            books.push(&file.path);
        }
    }
    for book in books {
        let sheets: Vec<&SourceFile> = ordered
            .iter()
            .copied()
            .filter(|f| f.format == Format::Sheet && f.path == book)
            .collect();
        let path = dir.join(copy_name(book));
        if path.exists() {
            return Err(already_holds(dir, &copy_name(book)));
        }
        let written = write_new(&path, |out| {
            write_book(book, &sheets, diagnostics, out).map_err(|e| match e {
                BookFailure::Unreadable(reason) => AnnotateError::Unreadable {
                    file: book.display().to_string(),
                    reason,
                },
                BookFailure::Write(reason) => AnnotateError::Write {
                    path: path.display().to_string(),
                    source: io::Error::other(reason),
                },
            })
        });
        let copies = match written {
            Ok(copies) => copies,
            Err(AnnotateError::Unreadable { reason, .. }) => {
                outcomes.extend(sheets.iter().map(|f| Outcome::NotAnnotated {
                    source: f.display.clone(),
                    reason: reason.clone(),
                }));
                continue;
            }
            Err(e) => return Err(e),
        };
        let shown = path.display().to_string();
        for (file, copy) in sheets.iter().zip(copies) {
            outcomes.push(match copy {
                SheetCopy::Annotated(annotated) => Outcome::Annotated {
                    annotated,
                    path: shown.clone(),
                },
                SheetCopy::Copied => Outcome::Copied {
                    source: file.display.clone(),
                    path: shown.clone(),
                    sheet: file.sheet.clone(),
                },
            });
        }
        workbooks.push(BookCopy {
            source: book.display().to_string(),
            path: shown,
            from_ods: crate::source::BookKind::of(book) == Some(crate::source::BookKind::Ods),
        });
    }
    for file in ordered {
        if file.format == Format::Sheet {
            continue;
        }
        let outcome = if has_problems(file, diagnostics) {
            let name = annotated_name(file.table);
            let path = dir.join(&name);
            let written = write_new(&path, |out| annotate_file(file, diagnostics, out));
            match written {
                Ok(annotated) => Outcome::Annotated {
                    annotated,
                    path: path.display().to_string(),
                },
                Err(AnnotateError::Unreadable { reason, .. }) => {
                    outcomes.push(Outcome::NotAnnotated {
                        source: file.display.clone(),
                        reason,
                    });
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            let ext = match file.format {
                Format::Csv => "csv",
                Format::Json => "json",
                Format::JsonLines => "jsonl",
                // Written with their workbook above.
                Format::Sheet => continue,
            };
            let name = format!("{}.{ext}", file.table.stem());
            let path = dir.join(&name);
            write_new(&path, |out| {
                let mut source = File::open(&file.path).map_err(|source| AnnotateError::Read {
                    file: file.display.clone(),
                    source,
                })?;
                io::copy(&mut source, out).map_err(|source| AnnotateError::Write {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(())
            })?;
            Outcome::Copied {
                source: file.display.clone(),
                path: path.display().to_string(),
                sheet: None,
            }
        };
        outcomes.push(outcome);
    }
    Ok(Annotation {
        dir: dir.display().to_string(),
        files: outcomes,
        workbooks,
    })
}

/// Writes `path` through `fill` under a temporary name, then renames it into place; on failure
/// the temporary file is removed.
fn write_new<T>(
    path: &Path,
    fill: impl FnOnce(&mut (dyn Write + Send)) -> Result<T, AnnotateError>,
) -> Result<T, AnnotateError> {
    let write_err = |source| AnnotateError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut temporary = PathBuf::from(path);
    temporary.set_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("copy")
    ));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&temporary).map_err(write_err)?;
    let mut out = io::BufWriter::new(file);
    let result = fill(&mut out).and_then(|value| {
        let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
        file.sync_all().map_err(write_err)?;
        fs::rename(&temporary, path).map_err(write_err)?;
        Ok(value)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

impl Annotation {
    /// What was written, for a person: after the validation report.
    pub fn human(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let annotated = self
            .files
            .iter()
            .filter(|o| matches!(o, Outcome::Annotated { .. }))
            .count();
        let files = self.files.iter().any(|o| match o {
            Outcome::Annotated { annotated, .. } => annotated.sheet.is_none(),
            Outcome::Copied { sheet, .. } => sheet.is_none(),
            Outcome::NotAnnotated { .. } => false,
        });
        if files || self.workbooks.is_empty() {
            let _ = writeln!(
                out,
                "✎ Annotated copies in {}: open them in a spreadsheet, filter on {PROBLEMS_COLUMN}, fix the cells, save as CSV, and run again on {}",
                self.dir, self.dir
            );
        }
        for book in &self.workbooks {
            let _ = writeln!(
                out,
                "✎ Annotated copy of {}: {}{}: open it, fix the cells filled red (each has a comment saying what is wrong; the columns {PROBLEMS_COLUMN} and {HINTS_COLUMN} right of each table list a row's problems), save it, and run again on {}",
                book.source,
                book.path,
                if book.from_ods {
                    " (an .xlsx workbook, though the source is .ods)"
                } else {
                    ""
                },
                book.path
            );
        }
        for outcome in &self.files {
            let _ = match outcome {
                Outcome::Annotated { annotated, path } => writeln!(
                    out,
                    "  {path}{}: {} of {} row(s) with problems{}{}",
                    sheet_of(annotated.sheet.as_deref()),
                    annotated.rows_with_problems,
                    annotated.rows,
                    if annotated.file_problems > 0 {
                        format!(
                            ", and {} problem(s) of the file as a whole (see above)",
                            annotated.file_problems
                        )
                    } else {
                        String::new()
                    },
                    if annotated.from_json {
                        format!(" (from {}, written as CSV)", annotated.source)
                    } else {
                        String::new()
                    },
                ),
                Outcome::Copied {
                    source,
                    path,
                    sheet,
                } => writeln!(
                    out,
                    "  {path}{}: copied from {source} (no problems)",
                    sheet_of(sheet.as_deref())
                ),
                Outcome::NotAnnotated { source, reason } => {
                    writeln!(out, "  {source}: not annotated: {reason}")
                }
            };
        }
        if annotated == 0 {
            let _ = writeln!(
                out,
                "  (no file could be annotated; fix what the report says first)"
            );
        }
        out
    }

    /// The same, as the `annotated` member of the validation document.
    pub fn json(&self) -> Value {
        json!(self)
    }
}

/// `, sheet members` after a workbook copy's path; nothing for a file.
fn sheet_of(sheet: Option<&str>) -> String {
    sheet.map(|s| format!(", sheet {s}")).unwrap_or_default()
}
