//! Validation: the rules of SPEC §3, turning source records into typed rows.
//!
//! Every rule reports through [`Diagnostics`] and validation never stops at the first problem. The
//! same per-row parsers serve both the validation pass and the import pass (which re-reads the
//! already-validated files), so there is one definition of what a valid row is. References are
//! checked against the files given and against what the database already holds ([`KnownRefs`]).
//!
//! Here: the row types, [`validate`] and [`rows`]; in `fields`, one record's columns and the
//! `parse_*` functions; in `cross`, what is kept across rows and files.

mod cross;
mod fields;
pub mod repair;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::diagnostic::{Diagnostics, Severity};
use crate::domain::{
    ContributionStatus, ContributionType, Email, MemberStatus, PeriodStatus, Role,
};
use crate::index::{BuildKeyHasher, MemberKeys, TextKey};
use crate::money::Money;
use crate::source::{Reader, SourceError, SourceFile, Table};

use self::cross::CrossState;
use self::fields::{Col, capital_account_parts, col, contribution_parts, member_parts};
pub use self::fields::{
    Fields, parse_capital_account, parse_contribution, parse_member, parse_period,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub line: u64,
    pub email: Email,
    pub display_name: String,
    pub ens_name: Option<String>,
    pub role: Role,
    pub status: MemberStatus,
    pub joined_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapitalAccountRow {
    pub line: u64,
    pub member_email: Email,
    pub balance: Money,
    pub tax_basis: Money,
    pub notes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContributionRow {
    pub line: u64,
    pub member_email: Email,
    pub period_name: String,
    pub contribution_type: ContributionType,
    pub amount: Money,
    pub description: Option<String>,
    pub status: ContributionStatus,
    pub approved_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodRow {
    pub line: u64,
    pub name: String,
    pub description: Option<String>,
    pub start_date: Timestamp,
    pub end_date: Timestamp,
    /// `None` when the file leaves it blank: `open` for a new period, unchanged for an existing
    /// one (a re-import must not reopen a closed period).
    pub status: Option<PeriodStatus>,
}

/// What the database already holds that source rows may refer to.
///
/// The members are email keys ([`MemberKeys`]); an import lends the index it has already built of
/// the database's members ([`KnownRefs::over`]) rather than have a second copy made.
#[derive(Clone, Debug, Default)]
pub struct KnownRefs<'a> {
    members: Cow<'a, MemberKeys>,
    periods: HashSet<String>,
    /// ENS name → the slot (in `members`) of the member holding it.
    ens: HashMap<TextKey, usize, BuildKeyHasher>,
}

impl<'a> KnownRefs<'a> {
    /// The database's members as an index already holds them.
    pub fn over(members: &'a MemberKeys) -> KnownRefs<'a> {
        KnownRefs {
            members: Cow::Borrowed(members),
            ..KnownRefs::default()
        }
    }

    /// Adds a member the database holds.
    pub fn add_member(&mut self, email: &str, ens_name: Option<&str>) {
        let key = TextKey::email(email);
        let slot = match self.members.get(key) {
            Some(slot) => slot,
            None => self.members.to_mut().insert(key).0,
        };
        if let Some(ens) = ens_name {
            self.ens.insert(TextKey::exact(ens), slot);
        }
    }

    /// Notes that the member at `owner_slot` (of the keys given to [`KnownRefs::over`]) holds the
    /// ENS name whose key ([`TextKey::exact`]) is given.
    pub fn add_ens(&mut self, ens_name: TextKey, owner_slot: usize) {
        self.ens.insert(ens_name, owner_slot);
    }

    /// Adds a period the database holds.
    pub fn add_period(&mut self, name: impl Into<String>) {
        self.periods.insert(name.into());
    }

    fn knows_member(&self, key: TextKey) -> bool {
        self.members.get(key).is_some()
    }

    /// The slot of a member the database holds, among its keys.
    fn member_slot(&self, key: TextKey) -> Option<usize> {
        self.members.get(key)
    }

    /// How many members the database holds: its slots are `0..member_count()`.
    fn member_count(&self) -> usize {
        self.members.len()
    }

    fn knows_period(&self, name: &str) -> bool {
        self.periods.contains(name)
    }

    /// The email key of the member holding an ENS name.
    fn ens_owner(&self, ens: TextKey) -> Option<TextKey> {
        self.ens.get(&ens).and_then(|&slot| self.members.key(slot))
    }
}

/// What one file held.
#[derive(Clone, Debug)]
pub struct FileSummary {
    pub path: String,
    pub table: Table,
    pub rows: u64,
}

/// The outcome of validating a set of files.
#[derive(Clone, Debug, Default)]
pub struct Validation {
    pub diagnostics: Diagnostics,
    pub files: Vec<FileSummary>,
}

impl Validation {
    pub fn ok(&self) -> bool {
        !self.diagnostics.has_errors()
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// Validates the given files together: each file's rules, then references across them and to the
/// database. Files are read in import order whatever order they are given in.
pub fn validate(files: &[SourceFile], known: &KnownRefs) -> Result<Validation, SourceError> {
    validate_with(files, known, Reader::open)
}

/// [`validate`] on files given as bytes rather than paths (each file's path is only used in
/// diagnostics): for tests and fuzzing, which need nothing on disk.
pub fn validate_bytes(sources: &[(SourceFile, Vec<u8>)], known: &KnownRefs) -> Validation {
    let files: Vec<SourceFile> = sources.iter().map(|(f, _)| f.clone()).collect();
    let open = |file: &SourceFile, diags: &mut Diagnostics| {
        let bytes = sources
            .iter()
            .find(|(f, _)| f.table == file.table && f.display == file.display)
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        Ok(Reader::from_bytes(file, bytes, diags))
    };
    validate_with(&files, known, open).unwrap_or_default()
}

fn validate_with(
    files: &[SourceFile],
    known: &KnownRefs,
    mut open: impl FnMut(&SourceFile, &mut Diagnostics) -> Result<Reader, SourceError>,
) -> Result<Validation, SourceError> {
    let mut out = Validation::default();
    let mut state = CrossState::default();
    let mut ordered: Vec<&SourceFile> = files.iter().collect();
    ordered.sort_by_key(|f| f.table);
    state.members_given = ordered.iter().any(|f| f.table == Table::Members);
    state.periods_given = ordered.iter().any(|f| f.table == Table::Periods);
    for file in ordered {
        let mut diags = Diagnostics::default();
        let mut reader = open(file, &mut diags)?;
        while reader.advance(&mut diags) {
            let record = reader.record();
            let line = record.line;
            // Read from the record, not through `fields`, whose borrow of `diags` ends first.
            let value = |column: Col| record.get(column.index);
            let mut fields = Fields::new(record, file, &reader.missing_columns, &mut diags);
            match file.table {
                Table::Periods => {
                    let name = value(col::period::NAME);
                    let row = parse_period(&mut fields);
                    state.period(file, line, name, row.as_ref(), &mut diags);
                }
                Table::Members => {
                    let raw = value(col::member::EMAIL);
                    let ens = value(col::member::ENS_NAME);
                    let _ = member_parts(&mut fields);
                    state.member(file, line, raw, ens, known, &mut diags);
                }
                Table::CapitalAccounts => {
                    let email =
                        value(col::account::MEMBER_EMAIL).filter(|e| Email::check(e).is_ok());
                    let row = capital_account_parts(&mut fields);
                    let amounts = row.as_ref().map(|r| (r.balance, r.tax_basis));
                    state.capital_account(file, line, email, amounts, known, &mut diags);
                }
                Table::Contributions => {
                    let email = value(col::contribution::MEMBER_EMAIL);
                    let period = value(col::contribution::PERIOD_NAME);
                    // A row that passed has a valid email; any other is checked again here.
                    let row_ok = contribution_parts(&mut fields).is_some();
                    let email = email.filter(|e| row_ok || Email::check(e).is_ok());
                    state.contribution(file, line, email, period, known, &mut diags);
                }
            }
        }
        // A file whose structure is broken (empty, bad JSON, a missing column, rows skipped) lists
        // only some of its members or periods: references to it would only repeat that error.
        let complete = reader.missing_columns.is_empty()
            && !diags
                .items()
                .iter()
                .any(|d| d.severity == Severity::Error && d.rule.starts_with("file."));
        match file.table {
            Table::Members => state.members_complete = complete,
            Table::Periods => state.periods_complete = complete,
            _ => {}
        }
        reader.locate(&mut diags);
        out.files.push(FileSummary {
            path: file.display.clone(),
            table: file.table,
            rows: reader.rows(),
        });
        out.diagnostics.extend(diags);
    }
    Ok(out)
}
/// The typed rows of an already-validated file, read one at a time. Rows that fail to parse are
/// skipped (after a clean validation there are none).
pub struct Rows<T> {
    reader: Reader,
    parse: fn(&mut Fields<'_>) -> Option<T>,
    ignored: Diagnostics,
}

impl<T> Iterator for Rows<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if !self.reader.advance(&mut self.ignored) {
                return None;
            }
            self.ignored.clear();
            let reader = &self.reader;
            let mut fields = Fields::new(
                reader.record(),
                reader.file(),
                &reader.missing_columns,
                &mut self.ignored,
            );
            let row = (self.parse)(&mut fields);
            self.ignored.clear();
            if row.is_some() {
                return row;
            }
        }
    }
}

pub fn rows<T>(
    file: &SourceFile,
    parse: fn(&mut Fields<'_>) -> Option<T>,
) -> Result<Rows<T>, SourceError> {
    let mut ignored = Diagnostics::default();
    let reader = Reader::open(file, &mut ignored)?;
    Ok(Rows {
        reader,
        parse,
        ignored,
    })
}

/// Reads all rows of a small table into memory.
pub fn collect_rows<T>(
    file: &SourceFile,
    parse: fn(&mut Fields<'_>) -> Option<T>,
) -> Result<Vec<T>, SourceError> {
    Ok(rows(file, parse)?.collect())
}
