//! A file's columns: mapping a CSV header to the table's columns, and reporting unknown,
//! misspelt (with a did-you-mean), duplicate and missing ones — each name once, and many as one.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::annotate;
use crate::diagnostic::{Diagnostic, Diagnostics, shown};

use super::{Column, MAX_COLUMNS, MAX_LISTED_COLUMNS, Reader, SourceFile, Table};

impl Reader {
    /// Maps header positions to known columns, reporting unknown, misspelt, duplicate and missing
    /// ones, in header order; `header_line` is where the header is (1 in a CSV file).
    pub(super) fn map_header(
        &mut self,
        names: &[String],
        header_line: u64,
        diags: &mut Diagnostics,
    ) -> Vec<Option<usize>> {
        enum Seen {
            Known(usize),
            Unknown(Option<&'static str>),
            Again,
            Annotation,
        }
        let table = self.file.table;
        let columns = table.columns();
        let present: Vec<bool> = columns
            .iter()
            .map(|c| names.iter().any(|n| n == c.name))
            .collect();
        let mut times = vec![0usize; columns.len()];
        let mut unknown_of_kind = [0usize; 2];
        let seen: Vec<Seen> = names
            .iter()
            .map(|name| match columns.iter().position(|c| c.name == name) {
                None if annotate::is_annotation_column(name) => Seen::Annotation,
                Some(i) => {
                    times[i] += 1;
                    Seen::Known(i)
                }
                None if self.unknown.first_sight(name) => {
                    let near = near_miss(name, columns, &present);
                    unknown_of_kind[usize::from(near.is_some())] += 1;
                    Seen::Unknown(near)
                }
                None => Seen::Again,
            })
            .collect();
        let grouped = unknown_of_kind.map(|n| n > MAX_LISTED_COLUMNS);
        let mut groups = [Unlisted::default(), Unlisted::default()];
        let mut suggested = HashSet::new();
        let mut mapping = Vec::with_capacity(names.len());
        let mut taken = vec![false; columns.len()];
        for (name, seen) in names.iter().zip(seen) {
            match seen {
                Seen::Known(i) if taken[i] => {
                    mapping.push(None);
                    // Reported once, at the second appearance, with the number of appearances.
                    if times[i] > 0 {
                        diags.push(duplicate_column(
                            &self.file.display,
                            header_line,
                            columns[i].name,
                            times[i],
                        ));
                        times[i] = 0;
                    }
                }
                Seen::Known(i) => {
                    taken[i] = true;
                    mapping.push(Some(i));
                }
                Seen::Unknown(near) => {
                    mapping.push(None);
                    suggested.extend(near);
                    let kind = usize::from(near.is_some());
                    if grouped[kind] {
                        groups[kind].add(name, Some(header_line));
                    } else {
                        diags.push(unknown_column(
                            &self.file.display,
                            Some(header_line),
                            name,
                            near,
                        ));
                    }
                }
                Seen::Again | Seen::Annotation => mapping.push(None),
            }
        }
        if names.iter().any(|n| annotate::is_annotation_column(n)) {
            diags.push(annotate::ignored_columns_note(
                &self.file.display,
                header_line,
                self.file.format == super::Format::Sheet,
            ));
        }
        for (kind, group) in groups.iter().enumerate() {
            if grouped[kind] {
                diags.push(self.unknown.group(&self.file, group, kind == 1, ""));
            }
        }
        for (i, column) in columns.iter().enumerate() {
            if column.required && !taken[i] {
                self.missing_columns.push(column.name);
                if !suggested.contains(column.name) {
                    diags.push(
                        Diagnostic::error(
                            &self.file.display,
                            "file.missing_column",
                            format!("required column `{}` is missing", column.name),
                        )
                        .at(header_line)
                        .column(column.name)
                        .hint(header_hint(table)),
                    );
                }
            }
        }
        mapping
    }
}

/// Unknown and misspelt columns (or JSON keys) of one file. Each distinct name is reported once,
/// and at most [`MAX_LISTED_COLUMNS`] of a kind one by one: a CSV header with more has them all in
/// one diagnostic; a JSON file, whose keys come one record at a time, lists the first ones as they
/// come and the rest in one diagnostic at the end. Ten thousand unknown columns are one warning,
/// not ten thousand.
#[derive(Default)]
pub(super) struct UnknownColumns {
    /// Digests of the names seen, at most [`MAX_COLUMNS`] of them.
    seen: HashSet<u64>,
    /// More distinct names came than `seen` holds: the counts below are lower bounds.
    saturated: bool,
    unknown: Unlisted,
    misspelt: Unlisted,
}

/// The names of one kind beyond those listed one by one.
#[derive(Default)]
struct Unlisted {
    listed: usize,
    more: u64,
    names: Vec<String>,
    line: Option<u64>,
}

impl Unlisted {
    fn add(&mut self, name: &str, line: Option<u64>) {
        self.more += 1;
        if self.names.len() < MAX_LISTED_COLUMNS {
            self.names.push(name.to_string());
        }
        if self.line.is_none() {
            self.line = line;
        }
    }
}

impl UnknownColumns {
    /// Whether `name` is seen here for the first time (and should be reported).
    pub(super) fn first_sight(&mut self, name: &str) -> bool {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        let digest = hasher.finish();
        if self.seen.contains(&digest) {
            return false;
        }
        if self.seen.len() >= MAX_COLUMNS {
            self.saturated = true;
            return false;
        }
        self.seen.insert(digest)
    }

    /// Reports a name found in a record: one by one until the kind has had its
    /// [`MAX_LISTED_COLUMNS`], then kept for [`UnknownColumns::finish`].
    pub(super) fn report(
        &mut self,
        file: &str,
        line: Option<u64>,
        name: &str,
        near: Option<&'static str>,
        diags: &mut Diagnostics,
    ) {
        let kind = if near.is_some() {
            &mut self.misspelt
        } else {
            &mut self.unknown
        };
        if kind.listed < MAX_LISTED_COLUMNS {
            kind.listed += 1;
            diags.push(unknown_column(file, line, name, near));
        } else {
            kind.add(name, line);
        }
    }

    /// The names a JSON file had beyond those listed one by one.
    pub(super) fn finish(&mut self, file: &SourceFile, diags: &mut Diagnostics) {
        if self.unknown.more > 0 {
            diags.push(self.group(file, &self.unknown, false, "more "));
        }
        if self.misspelt.more > 0 {
            diags.push(self.group(file, &self.misspelt, true, "more "));
        }
    }

    fn group(&self, file: &SourceFile, group: &Unlisted, misspelt: bool, more: &str) -> Diagnostic {
        let at_least = if self.saturated { "at least " } else { "" };
        let n = group.more;
        let columns = if n == 1 { "column" } else { "columns" };
        let list = name_list(&group.names, n);
        let mut d = if misspelt {
            Diagnostic::error(
                &file.display,
                "file.misspelt_column",
                format!("{at_least}{n} {more}unknown {columns} close to known ones: {list}"),
            )
            .hint(format!("check the spelling; {}", header_hint(file.table)))
        } else {
            let its = if n == 1 {
                "its values are"
            } else {
                "their values are"
            };
            Diagnostic::warning(
                &file.display,
                "file.unknown_column",
                format!("{at_least}{n} {more}unknown {columns}: {list}: {its} not imported"),
            )
            .hint(format!(
                "check that this is a {} file; {}",
                file.table.stem(),
                header_hint(file.table)
            ))
        };
        d.line = group.line;
        d.column(group.names.first().map_or("", String::as_str))
    }
}

/// "`a`, `b` and 7 others", each name cut to what a diagnostic shows.
fn name_list(names: &[String], total: u64) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", shown(n))).collect();
    match total.saturating_sub(names.len() as u64) {
        0 => quoted.join(", "),
        1 => format!("{} and 1 other", quoted.join(", ")),
        others => format!("{} and {others} others", quoted.join(", ")),
    }
}
fn duplicate_column(file: &str, line: u64, name: &str, times: usize) -> Diagnostic {
    let (times, hint) = if times == 2 {
        ("twice".to_string(), "keep one of the two columns")
    } else {
        (format!("{times} times"), "keep one of the columns")
    };
    Diagnostic::error(
        file,
        "file.duplicate_column",
        format!("column `{name}` appears {times}"),
    )
    .at(line)
    .column(name)
    .hint(hint)
}
pub(super) fn unknown_column(
    file: &str,
    line: Option<u64>,
    name: &str,
    near: Option<&str>,
) -> Diagnostic {
    let name_shown = shown(name);
    let mut d = match near {
        Some(known) => Diagnostic::error(
            file,
            "file.misspelt_column",
            format!("unknown column `{name_shown}`"),
        )
        .hint(format!("did you mean `{known}`?")),
        None => Diagnostic::warning(
            file,
            "file.unknown_column",
            format!("unknown column `{name_shown}`: its values are not imported"),
        ),
    };
    d.line = line;
    d.column(name)
}

pub(super) fn header_hint(table: Table) -> String {
    let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
    format!("the first line names the columns: {}", names.join(","))
}

/// A known column within edit distance 2 of `name` that the header does not already have
/// (`present[i]`: the header has column `i`; JSON passes nothing).
pub(super) fn near_miss(
    name: &str,
    columns: &'static [Column],
    present: &[bool],
) -> Option<&'static str> {
    // The distance is at least the difference in length, so a long name is no near miss of
    // anything and is never compared character by character.
    let chars = name.chars().take(64).count();
    let candidate = |(i, c): &(usize, &Column)| {
        !present.get(*i).copied().unwrap_or(false) && chars.abs_diff(c.name.len()) <= 2
    };
    if !columns.iter().enumerate().any(|ic| candidate(&ic)) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    columns
        .iter()
        .enumerate()
        .filter(candidate)
        .map(|(_, c)| (edit_distance(&lower, c.name), c.name))
        .filter(|(d, known)| *d <= 2 && (known.len() > 3 || *d == 0))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: insertions, deletions, substitutions and swaps of neighbours
    // (`emial`) each count one.
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MEMBER_COLUMNS;

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(near_miss("emial", MEMBER_COLUMNS, &[]), Some("email"));
        assert_eq!(near_miss("ens_nme", MEMBER_COLUMNS, &[]), Some("ens_name"));
        assert_eq!(near_miss("Email", MEMBER_COLUMNS, &[]), Some("email"));
        assert_eq!(near_miss("favourite_colour", MEMBER_COLUMNS, &[]), None);
    }
}
