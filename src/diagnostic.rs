//! Diagnostics: one finding about the source data, with everything a treasurer needs to fix it.
//!
//! Validation findings are data, not `Err`: every stage pushes them into a [`Diagnostics`] list so
//! that all problems are reported at once, and the caller decides the exit code from the worst one.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

/// One finding. `line` is the line as an editor shows it (1-based, the header is line 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<String>,
    pub value: Option<String>,
    pub rule: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &str, rule: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: None,
            column: None,
            value: None,
            rule,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(file: &str, rule: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, rule, message)
        }
    }

    pub fn note(file: &str, rule: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Note,
            ..Diagnostic::error(file, rule, message)
        }
    }

    pub fn at(mut self, line: u64) -> Diagnostic {
        self.line = Some(line);
        self
    }

    pub fn column(mut self, column: &str) -> Diagnostic {
        self.column = Some(column.to_string());
        self
    }

    pub fn value(mut self, value: &str) -> Diagnostic {
        self.value = Some(value.to_string());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// `members.csv:4` — the form editors and terminals turn into a link.
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file),
            None => self.file.clone(),
        }
    }
}

/// An ordered collection of findings.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    pub fn into_items(self) -> Vec<Diagnostic> {
        self.items
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}
