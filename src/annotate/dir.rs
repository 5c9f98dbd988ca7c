//! `--annotate DIR`: the copies written into a directory as a bundle that runs again, and what
//! the command says about them.

use crate::annotate::SHEET_REASON;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::source::{Format, SourceFile, Table};

use super::{
    AnnotateError, Annotated, PROBLEMS_COLUMN, annotate_file, annotated_name, has_problems,
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
    /// The file had no problems; copied as it is, so the directory is a whole bundle.
    Copied { source: String, path: String },
    /// The file has problems but could not be read row by row; the report says why.
    NotAnnotated { source: String, reason: String },
}

/// The outcome of [`write_dir`].
#[derive(Clone, Debug, Serialize)]
pub struct Annotation {
    pub dir: String,
    pub files: Vec<Outcome>,
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
    if let Some(existing) = bundle_names().find(|name| dir.join(name).exists()) {
        return Err(AnnotateError::Directory(format!(
            "--annotate {shown}: the directory already holds {existing}; give a new directory (an annotated copy is never written over a file)"
        )));
    }
    Ok(())
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
    for file in ordered {
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
                Format::Sheet => {
                    outcomes.push(Outcome::NotAnnotated {
                        source: file.display.clone(),
                        reason: SHEET_REASON.to_string(),
                    });
                    continue;
                }
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
            }
        };
        outcomes.push(outcome);
    }
    Ok(Annotation {
        dir: dir.display().to_string(),
        files: outcomes,
    })
}

/// Writes `path` through `fill` under a temporary name, then renames it into place; on failure
/// the temporary file is removed.
fn write_new<T>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<T, AnnotateError>,
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
        let _ = writeln!(
            out,
            "✎ Annotated copies in {}: open them in a spreadsheet, filter on {PROBLEMS_COLUMN}, fix the cells, save as CSV, and run again on {}",
            self.dir, self.dir
        );
        for outcome in &self.files {
            let _ = match outcome {
                Outcome::Annotated { annotated, path } => writeln!(
                    out,
                    "  {path}: {} of {} row(s) with problems{}{}",
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
                Outcome::Copied { source, path } => {
                    writeln!(out, "  {path}: copied from {source} (no problems)")
                }
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
