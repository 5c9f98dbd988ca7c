//! Diagnostics: one finding about the source data, with everything a treasurer needs to fix it.
//!
//! Validation findings are data, not `Err`: every stage pushes them into a [`Diagnostics`] list so
//! that all problems are reported at once, and the caller decides the exit code from the worst one.

use std::borrow::Cow;

use serde::Serialize;

/// The most characters of one source value (or column name) a diagnostic shows. Longer text is cut
/// there and ends with `…`; the value's full length is kept beside it ([`Diagnostic::value_length`]),
/// so a 1 MB field costs a line of output, not a megabyte.
pub const MAX_SHOWN_CHARS: usize = 100;

/// The most characters of a message or hint. Messages quote values through [`shown`], so only a
/// message that forgot to would ever be cut here.
const MAX_MESSAGE_CHARS: usize = 500;

/// `text` as a diagnostic quotes it: whole, or its first [`MAX_SHOWN_CHARS`] characters and `…`.
pub fn shown(text: &str) -> Cow<'_, str> {
    cut(text, MAX_SHOWN_CHARS)
}

fn cut(text: &str, max_chars: usize) -> Cow<'_, str> {
    // Only text longer than `max_chars` bytes can have more than `max_chars` characters.
    if text.len() <= max_chars {
        return Cow::Borrowed(text);
    }
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

fn bounded(text: String, max_chars: usize) -> String {
    match cut(&text, max_chars) {
        Cow::Borrowed(_) => text,
        Cow::Owned(short) => short,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note = 0,
    Warning = 1,
    Error = 2,
}

/// One finding. `line` is the line as an editor shows it (1-based, the header is line 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<String>,
    pub value: Option<String>,
    /// The length in characters of a value too long to show whole: `value` then holds its first
    /// [`MAX_SHOWN_CHARS`] characters and `…`. Absent (and not serialised) when `value` is whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_length: Option<u64>,
    pub rule: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// For a workbook's sheet: the sheet, the row (the same as `line`) and the column's letter, as
    /// the spreadsheet shows them (`members!C7`). Absent (and not serialised) for other files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_letter: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &str, rule: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: None,
            column: None,
            value: None,
            value_length: None,
            rule,
            message: bounded(message.into(), MAX_MESSAGE_CHARS),
            hint: None,
            sheet: None,
            row: None,
            column_letter: None,
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
        self.column = Some(shown(column).into_owned());
        self
    }

    /// The offending value, cut to [`MAX_SHOWN_CHARS`] characters (see [`Diagnostic::value_length`]).
    pub fn value(mut self, value: &str) -> Diagnostic {
        let short = shown(value);
        if let Cow::Owned(_) = short {
            self.value_length = Some(value.chars().count() as u64);
        }
        self.value = Some(short.into_owned());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(bounded(hint.into(), MAX_MESSAGE_CHARS));
        self
    }

    /// `members.csv:4` — the form editors and terminals turn into a link; on a workbook's sheet
    /// `members!C7` for a cell and `members!7:7` for a row, which a spreadsheet's name box goes
    /// to.
    pub fn location(&self) -> String {
        match (&self.sheet, self.line, &self.column_letter) {
            (Some(sheet), Some(row), Some(letter)) => format!("{sheet}!{letter}{row}"),
            (Some(sheet), Some(row), None) => format!("{sheet}!{row}:{row}"),
            (Some(sheet), None, _) => sheet.clone(),
            (None, Some(line), _) => format!("{}:{line}", self.file),
            (None, None, _) => self.file.clone(),
        }
    }
}

/// The most findings of one rule about one file a collection lists. More are counted (the counts
/// stay exact) and named in one closing finding, so a 2 GB file with a mistake on every line costs a
/// thousand diagnostics, not twenty million.
pub const MAX_LISTED_PER_RULE: usize = 1_000;

/// An ordered collection of findings.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// Findings pushed, per severity (note, warning, error), listed or not.
    totals: [usize; 3],
    /// Per file and rule: how many were pushed, and the first one that was not listed.
    per_rule: Vec<RuleCount>,
}

#[derive(Clone, Debug)]
struct RuleCount {
    file: String,
    rule: &'static str,
    pushed: usize,
    first_unlisted: Option<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.totals[diagnostic.severity as usize] += 1;
        let count = match self
            .per_rule
            .iter_mut()
            .find(|c| c.rule == diagnostic.rule && c.file == diagnostic.file)
        {
            Some(count) => count,
            None => {
                self.per_rule.push(RuleCount {
                    file: diagnostic.file.clone(),
                    rule: diagnostic.rule,
                    pushed: 0,
                    first_unlisted: None,
                });
                let last = self.per_rule.len() - 1;
                &mut self.per_rule[last]
            }
        };
        count.pushed += 1;
        if count.pushed <= MAX_LISTED_PER_RULE {
            self.items.push(diagnostic);
        } else if count.first_unlisted.is_none() {
            count.first_unlisted = Some(diagnostic);
        }
    }

    /// The findings listed, in order; a rule over [`MAX_LISTED_PER_RULE`] ends with one finding
    /// saying how many more there are (after [`Diagnostics::extend`] or [`Diagnostics::close`]).
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    pub fn into_items(self) -> Vec<Diagnostic> {
        self.items
    }

    /// Every finding of this severity pushed, listed or not.
    pub fn count(&self, severity: Severity) -> usize {
        self.totals[severity as usize]
    }

    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// Forgets every finding, keeping the allocation.
    pub fn clear(&mut self) {
        self.items.clear();
        self.totals = [0; 3];
        self.per_rule.clear();
    }

    /// Keeps the listed findings `keep` says; the counts lose the ones dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&Diagnostic) -> bool) {
        let totals = &mut self.totals;
        self.items.retain(|d| {
            let kept = keep(d);
            if !kept {
                totals[d.severity as usize] = totals[d.severity as usize].saturating_sub(1);
            }
            kept
        });
    }

    /// Changes every finding, listed or kept for a closing one (to place it on a sheet, say).
    pub fn for_each_mut(&mut self, mut change: impl FnMut(&mut Diagnostic)) {
        self.items.iter_mut().for_each(&mut change);
        for count in &mut self.per_rule {
            if let Some(first) = &mut count.first_unlisted {
                change(first);
            }
        }
    }

    /// Appends, for each rule with findings that were not listed, one finding saying how many.
    pub fn close(&mut self) {
        for count in &mut self.per_rule {
            let Some(first) = count.first_unlisted.take() else {
                continue;
            };
            let more = count.pushed - MAX_LISTED_PER_RULE;
            self.items.push(Diagnostic {
                column: None,
                column_letter: None,
                value: None,
                value_length: None,
                message: format!(
                    "{more} more `{}` findings in this file, from this line on, are not listed (the first {MAX_LISTED_PER_RULE} are)",
                    count.rule
                ),
                hint: Some(match first.severity {
                    Severity::Error => {
                        "the summary counts them all; fix what is listed and validate again".into()
                    }
                    Severity::Warning | Severity::Note => "the summary counts them all".into(),
                }),
                ..first
            });
        }
    }

    /// Takes in another collection (closed first, so it brings its own closing findings).
    pub fn extend(&mut self, mut other: Diagnostics) {
        other.close();
        self.items.extend(other.items);
        for (total, more) in self.totals.iter_mut().zip(other.totals) {
            *total += more;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_keep_their_length() {
        let long = "é".repeat(MAX_SHOWN_CHARS + 1);
        let d = Diagnostic::error("f.csv", "x.y", "m").value(&long);
        let shown_value = d.value.unwrap_or_default();
        assert_eq!(shown_value.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(shown_value.ends_with('…'));
        assert_eq!(d.value_length, Some(MAX_SHOWN_CHARS as u64 + 1));

        let exact = "a".repeat(MAX_SHOWN_CHARS);
        let d = Diagnostic::error("f.csv", "x.y", "m").value(&exact);
        assert_eq!(d.value.as_deref(), Some(exact.as_str()));
        assert_eq!(d.value_length, None);
    }

    #[test]
    fn each_rule_lists_at_most_a_thousand_and_counts_them_all() {
        let mut file = Diagnostics::default();
        for line in 2..2_502 {
            file.push(Diagnostic::error("a.csv", "file.field_count", "m").at(line));
        }
        file.push(Diagnostic::warning("a.csv", "file.unknown_column", "w").at(1));
        assert_eq!(file.items().len(), MAX_LISTED_PER_RULE + 1);
        let mut all = Diagnostics::default();
        all.extend(file);
        assert_eq!(all.count(Severity::Error), 2_500);
        assert_eq!(all.count(Severity::Warning), 1);
        let last = all.items().last().cloned();
        assert_eq!(last.as_ref().map(|d| d.rule), Some("file.field_count"));
        assert_eq!(last.as_ref().and_then(|d| d.line), Some(1_002));
        assert_eq!(
            last.map(|d| d.message),
            Some("1500 more `file.field_count` findings in this file, from this line on, are not listed (the first 1000 are)".to_string())
        );
        assert_eq!(all.items().len(), MAX_LISTED_PER_RULE + 2);
    }

    #[test]
    fn messages_hints_and_columns_are_bounded() {
        let long = "x".repeat(10_000);
        let d = Diagnostic::warning("f.csv", "x.y", long.clone())
            .hint(long.clone())
            .column(&long);
        assert_eq!(d.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            d.hint.map(|h| h.chars().count()),
            Some(MAX_MESSAGE_CHARS + 1)
        );
        assert_eq!(
            d.column.map(|c| c.chars().count()),
            Some(MAX_SHOWN_CHARS + 1)
        );
    }
}
