//! Validation: the rules of SPEC §3, turning source records into typed rows.
//!
//! Every rule reports through [`Diagnostics`] and validation never stops at the first problem. The
//! same per-row parsers serve both the validation pass and the import pass (which re-reads the
//! already-validated files), so there is one definition of what a valid row is. References are
//! checked against the files given and against what the database already holds ([`KnownRefs`]).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::diagnostic::{Diagnostic, Diagnostics, Severity, shown};
use crate::domain::{
    self, ContributionStatus, ContributionType, DateError, Email, MemberStatus, PeriodStatus, Role,
};
use crate::money::{Money, MoneyError};
use crate::source::{Reader, Record, SourceError, SourceFile, Table};

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
#[derive(Clone, Debug, Default)]
pub struct KnownRefs {
    /// Lower-case emails of members in the database.
    pub member_emails: HashSet<String>,
    pub period_names: HashSet<String>,
    /// ENS name → lower-case email of the member holding it.
    pub ens_names: HashMap<String, String>,
}

impl KnownRefs {
    /// Adds a member the database holds.
    pub fn add_member(&mut self, email: &str, ens_name: Option<&str>) {
        let email = email.to_lowercase();
        if let Some(ens) = ens_name {
            self.ens_names.insert(ens.to_string(), email.clone());
        }
        self.member_emails.insert(email);
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
    let mut out = Validation::default();
    let mut state = CrossState::default();
    let mut ordered: Vec<&SourceFile> = files.iter().collect();
    ordered.sort_by_key(|f| f.table);
    state.members_given = ordered.iter().any(|f| f.table == Table::Members);
    state.periods_given = ordered.iter().any(|f| f.table == Table::Periods);
    for file in ordered {
        let mut diags = Diagnostics::default();
        let mut reader = Reader::open(file, &mut diags)?;
        while reader.advance(&mut diags) {
            let record = reader.record();
            let mut fields = Fields::new(record, file, &reader.missing_columns, &mut diags);
            match file.table {
                Table::Periods => {
                    let name = fields.optional("name").map(str::to_string);
                    let row = parse_period(&mut fields);
                    state.period(file, record.line, name, row.as_ref(), &mut diags);
                }
                Table::Members => {
                    let raw = fields.optional("email").map(str::to_string);
                    let ens = fields.optional("ens_name").map(str::to_string);
                    let _ = parse_member(&mut fields);
                    state.member(file, record.line, raw.as_deref(), ens, known, &mut diags);
                }
                Table::CapitalAccounts => {
                    let email = fields.peek_email("member_email");
                    let row = parse_capital_account(&mut fields);
                    state.capital_account(
                        file,
                        record.line,
                        email,
                        row.as_ref(),
                        known,
                        &mut diags,
                    );
                }
                Table::Contributions => {
                    let email = fields.peek_email("member_email");
                    let period = fields.optional("period_name").map(str::to_string);
                    let _ = parse_contribution(&mut fields);
                    state.contribution(file, record.line, email, period, known, &mut diags);
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
        out.files.push(FileSummary {
            path: file.display.clone(),
            table: file.table,
            rows: reader.rows(),
        });
        out.diagnostics.extend(diags);
    }
    Ok(out)
}

/// Cross-row state: duplicates within a file and references between files.
#[derive(Default)]
struct CrossState {
    members_given: bool,
    members_complete: bool,
    periods_given: bool,
    periods_complete: bool,
    emails: HashMap<String, u64>,
    ens: HashMap<String, (u64, String)>,
    periods: HashMap<String, u64>,
    accounts: HashMap<String, u64>,
}

impl CrossState {
    fn period(
        &mut self,
        file: &SourceFile,
        line: u64,
        name: Option<String>,
        row: Option<&PeriodRow>,
        diags: &mut Diagnostics,
    ) {
        let Some(name) = name.or_else(|| row.map(|r| r.name.clone())) else {
            return;
        };
        if let Some(first) = self.periods.get(&name) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "period.duplicate",
                    format!(
                        "period `{}` is already defined on line {first}",
                        shown(&name)
                    ),
                )
                .at(line)
                .column("name")
                .value(&name)
                .hint("each period name appears once"),
            );
        } else {
            self.periods.insert(name, line);
        }
    }

    fn member(
        &mut self,
        file: &SourceFile,
        line: u64,
        raw_email: Option<&str>,
        ens: Option<String>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        let Some(email) = raw_email.and_then(|r| Email::parse(r).ok()) else {
            return;
        };
        let key = email.as_str().to_string();
        if let Some(first) = self.emails.get(&key) {
            let raw = raw_email.unwrap_or(&key);
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "email.duplicate",
                    format!(
                        "{} is already on line {first} (emails are compared ignoring case)",
                        shown(email.as_str())
                    ),
                )
                .at(line)
                .column("email")
                .value(raw)
                .hint("keep one row per member"),
            );
        } else {
            self.emails.insert(key.clone(), line);
        }
        if let Some(ens) = ens.filter(|e| domain::is_ens_name(e)) {
            if let Some((first, owner)) = self.ens.get(&ens) {
                if owner != &key {
                    diags.push(
                        Diagnostic::error(
                            &file.display,
                            "ens.duplicate",
                            format!(
                                "ENS name {} is already given to {} on line {first}",
                                shown(&ens),
                                shown(owner)
                            ),
                        )
                        .at(line)
                        .column("ens_name")
                        .value(&ens)
                        .hint("an ENS name belongs to one member"),
                    );
                }
            } else if let Some(owner) = known.ens_names.get(&ens).filter(|o| **o != key) {
                diags.push(
                    Diagnostic::error(
                        &file.display,
                        "ens.duplicate",
                        format!(
                            "ENS name {} already belongs to {} in the database",
                            shown(&ens),
                            shown(owner)
                        ),
                    )
                    .at(line)
                    .column("ens_name")
                    .value(&ens)
                    .hint("an ENS name belongs to one member"),
                );
            } else {
                self.ens.insert(ens, (line, key));
            }
        }
    }

    fn member_known(&self, email: &Email, known: &KnownRefs) -> bool {
        self.emails.contains_key(email.as_str())
            || known.member_emails.contains(email.as_str())
            || (self.members_given && !self.members_complete)
    }

    fn capital_account(
        &mut self,
        file: &SourceFile,
        line: u64,
        email: Option<Email>,
        row: Option<&CapitalAccountRow>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        let Some(email) = email else { return };
        if !self.member_known(&email, known) {
            diags.push(unknown_member(file, line, &email, self.members_given));
        }
        if let Some(first) = self.accounts.get(email.as_str()) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "capital.duplicate",
                    format!(
                        "{} already has a capital account on line {first}",
                        shown(email.as_str())
                    ),
                )
                .at(line)
                .column("member_email")
                .value(email.as_str())
                .hint("a member has one capital account; merge the two rows"),
            );
        } else {
            self.accounts.insert(email.as_str().to_string(), line);
        }
        if let Some(row) = row.filter(|r| r.balance != r.tax_basis) {
            diags.push(
                Diagnostic::note(
                    &file.display,
                    "balance.tax_basis_differs",
                    format!(
                        "balance {} differs from tax_basis {} (expected for a property contribution)",
                        row.balance, row.tax_basis
                    ),
                )
                .at(line)
                .column("tax_basis")
                .value(&row.tax_basis.to_string()),
            );
        }
    }

    fn contribution(
        &mut self,
        file: &SourceFile,
        line: u64,
        email: Option<Email>,
        period: Option<String>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        if let Some(email) = email
            && !self.member_known(&email, known)
        {
            diags.push(unknown_member(file, line, &email, self.members_given));
        }
        if let Some(period) = period {
            let found = self.periods.contains_key(&period)
                || known.period_names.contains(&period)
                || (self.periods_given && !self.periods_complete);
            if !found {
                diags.push(
                    Diagnostic::error(
                        &file.display,
                        "ref.period",
                        format!(
                            "no period named `{}` in the periods file or the database",
                            shown(&period)
                        ),
                    )
                    .at(line)
                    .column("period_name")
                    .value(&period)
                    .hint(
                        "add it to periods.csv, or create it with `habitat-migrate period create`",
                    ),
                );
            }
        }
    }
}

fn unknown_member(file: &SourceFile, line: u64, email: &Email, members_given: bool) -> Diagnostic {
    let hint = if members_given {
        "check the spelling, or add the member to members.csv"
    } else {
        "import members before capital accounts and contributions, or check the spelling"
    };
    Diagnostic::error(
        &file.display,
        "ref.member",
        format!("Member not found: {}", shown(email.as_str())),
    )
    .at(line)
    .column("member_email")
    .value(email.as_str())
    .hint(hint)
}

/// Reads one record's fields, reporting each bad value and remembering whether any was bad.
pub struct Fields<'a> {
    record: &'a Record,
    file: &'a SourceFile,
    missing: &'a [&'static str],
    diags: &'a mut Diagnostics,
    ok: bool,
}

impl<'a> Fields<'a> {
    pub fn new(
        record: &'a Record,
        file: &'a SourceFile,
        missing: &'a [&'static str],
        diags: &'a mut Diagnostics,
    ) -> Fields<'a> {
        Fields {
            record,
            file,
            missing,
            diags,
            // A value the reader refused was reported there, and the row is not valid.
            ok: !record.any_refused(),
        }
    }

    fn optional(&self, column: &str) -> Option<&'a str> {
        self.record.get(self.file.table.index(column))
    }

    /// The database columns are `varchar(n)`: refuse here, with a line number, what the database
    /// would refuse later without one.
    fn check_length(&mut self, column: &'static str, max: usize) {
        if let Some(v) = self.optional(column)
            && v.chars().count() > max
        {
            self.fail(
                column,
                v,
                "value.too_long",
                format!("{} characters; at most {max} fit", v.chars().count()),
                Some("shorten the value".into()),
            );
        }
    }

    fn required(&mut self, column: &'static str) -> Option<&'a str> {
        let value = self.optional(column);
        if value.is_none() {
            self.ok = false;
            let refused = self.record.refused(self.file.table.index(column));
            if !refused && !self.missing.contains(&column) {
                self.diags.push(
                    Diagnostic::error(
                        &self.file.display,
                        "value.required",
                        format!("`{column}` is required"),
                    )
                    .at(self.record.line)
                    .column(column),
                );
            }
        }
        value
    }

    fn fail(
        &mut self,
        column: &str,
        value: &str,
        rule: &'static str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.ok = false;
        let mut d = Diagnostic::error(&self.file.display, rule, message)
            .at(self.record.line)
            .column(column)
            .value(value);
        d.hint = hint;
        self.diags.push(d);
    }

    /// The email in `column` if it parses, without reporting anything (for reference checks).
    fn peek_email(&self, column: &str) -> Option<Email> {
        self.optional(column).and_then(|v| Email::parse(v).ok())
    }

    fn email(&mut self, column: &'static str) -> Option<Email> {
        let value = self.required(column)?;
        match Email::parse(value) {
            Ok(email) => Some(email),
            Err(why) => {
                self.fail(
                    column,
                    value,
                    "email.format",
                    format!("invalid email: {why}"),
                    Some("an email looks like name@example.org".into()),
                );
                None
            }
        }
    }

    fn word<T>(
        &mut self,
        column: &'static str,
        rule: &'static str,
        words: &[&str],
        parse: fn(&str) -> Option<T>,
        default: Option<T>,
    ) -> Option<T> {
        let value = match default {
            Some(_) => match self.optional(column) {
                Some(v) => v,
                None => return default,
            },
            None => self.required(column)?,
        };
        let parsed = parse(value);
        if parsed.is_none() {
            let hint = match words.iter().find(|w| w.eq_ignore_ascii_case(value)) {
                Some(w) => format!("write it in lower case: {w}"),
                None => format!("one of: {}", words.join(", ")),
            };
            self.fail(
                column,
                value,
                rule,
                format!("invalid {column} `{}`", shown(value)),
                Some(hint),
            );
        }
        parsed
    }

    fn instant(
        &mut self,
        column: &'static str,
        allow_timestamp: bool,
        required: bool,
    ) -> Option<Timestamp> {
        let value = if required {
            self.required(column)?
        } else {
            self.optional(column)?
        };
        match domain::parse_instant(value, allow_timestamp) {
            Ok(ts) => Some(ts),
            Err(DateError::Format) => {
                let hint = if allow_timestamp {
                    "write a date as YYYY-MM-DD, or a full RFC 3339 timestamp like 2025-12-31T17:00:00Z"
                } else {
                    "write the date as YYYY-MM-DD, e.g. 2025-01-31"
                };
                self.fail(
                    column,
                    value,
                    "date.format",
                    "not a YYYY-MM-DD date",
                    Some(hint.into()),
                );
                None
            }
            Err(DateError::Calendar) => {
                self.fail(
                    column,
                    value,
                    "date.calendar",
                    "not a real calendar date",
                    Some("check the day and month; e.g. February has 28 or 29 days".into()),
                );
                None
            }
        }
    }

    fn money(&mut self, column: &'static str) -> Option<Money> {
        let value = self.required(column)?;
        match Money::parse(value) {
            Ok(m) => Some(m),
            Err(e) => {
                let rule = match e {
                    MoneyError::TooManyDecimals(_) => "money.scale",
                    MoneyError::TooLarge => "money.too_large",
                    _ => "money.format",
                };
                self.fail(
                    column,
                    value,
                    rule,
                    format!("invalid amount: {e}"),
                    Some(e.hint().into()),
                );
                None
            }
        }
    }

    fn text(&self, column: &str) -> Option<String> {
        self.optional(column).map(str::to_string)
    }
}

pub fn parse_member(f: &mut Fields<'_>) -> Option<MemberRow> {
    f.check_length("email", 320);
    f.check_length("display_name", 255);
    f.check_length("ens_name", 255);
    let email = f.email("email");
    let display_name = f.required("display_name").map(str::to_string);
    let ens_name = f.text("ens_name");
    if let Some(ens) = &ens_name
        && !domain::is_ens_name(ens)
    {
        f.fail(
            "ens_name",
            ens,
            "ens.format",
            "not an ENS name",
            Some("a lower-case dotted name ending in .eth, like ada.habitat.eth".into()),
        );
    }
    let role = f.word("role", "member.role", Role::WORDS, Role::parse, None);
    let status = f.word(
        "status",
        "member.status",
        MemberStatus::WORDS,
        MemberStatus::parse,
        None,
    );
    let joined_at = f.instant("joined_at", false, true);
    if !f.ok {
        return None;
    }
    Some(MemberRow {
        line: f.record.line,
        email: email?,
        display_name: display_name?,
        ens_name,
        role: role?,
        status: status?,
        joined_at: joined_at?,
    })
}

pub fn parse_capital_account(f: &mut Fields<'_>) -> Option<CapitalAccountRow> {
    let member_email = f.email("member_email");
    let balance = f.money("balance");
    let tax_basis = f.money("tax_basis");
    for (column, value) in [("balance", balance), ("tax_basis", tax_basis)] {
        if let Some(v) = value.filter(|v| v.is_negative()) {
            let raw = f.optional(column).unwrap_or_default();
            f.fail(
                column,
                raw,
                "money.negative",
                format!("Invalid {column}: {v} (capital account {column} cannot be negative)"),
                Some("verify the source data: a capital account balance is zero or more".into()),
            );
        }
    }
    let notes = f.text("notes");
    if !f.ok {
        return None;
    }
    Some(CapitalAccountRow {
        line: f.record.line,
        member_email: member_email?,
        balance: balance?,
        tax_basis: tax_basis?,
        notes,
    })
}

pub fn parse_contribution(f: &mut Fields<'_>) -> Option<ContributionRow> {
    let member_email = f.email("member_email");
    let period_name = f.required("period_name").map(str::to_string);
    let contribution_type = f.word(
        "contribution_type",
        "contribution.type",
        ContributionType::WORDS,
        ContributionType::parse,
        None,
    );
    let amount = f.money("amount");
    if amount.is_some_and(|a| a.cents() <= 0) {
        let raw = f.optional("amount").unwrap_or_default();
        f.fail(
            "amount",
            raw,
            "money.not_positive",
            "a contribution amount must be more than zero",
            Some("leave out contributions of nothing; record reversals outside the import".into()),
        );
    }
    let description = f.text("description");
    let status = f.word(
        "status",
        "contribution.status",
        ContributionStatus::WORDS,
        ContributionStatus::parse,
        None,
    );
    let approved_at = f.instant("approved_at", true, false);
    match (status, f.optional("approved_at")) {
        (Some(ContributionStatus::Approved), None) => f.fail(
            "approved_at",
            "",
            "approval.missing_at",
            "an approved contribution needs approved_at",
            Some("give the approval date (YYYY-MM-DD), or set status to pending".into()),
        ),
        (Some(s @ (ContributionStatus::Pending | ContributionStatus::Rejected)), Some(at)) => {
            let d = Diagnostic::warning(
                &f.file.display,
                "approval.unexpected_at",
                format!("approved_at is set on a {s} contribution; it is stored as given"),
            )
            .at(f.record.line)
            .column("approved_at")
            .value(at);
            f.diags.push(d);
        }
        _ => {}
    }
    if !f.ok {
        return None;
    }
    Some(ContributionRow {
        line: f.record.line,
        member_email: member_email?,
        period_name: period_name?,
        contribution_type: contribution_type?,
        amount: amount?,
        description,
        status: status?,
        approved_at,
    })
}

pub fn parse_period(f: &mut Fields<'_>) -> Option<PeriodRow> {
    f.check_length("name", 255);
    let name = f.required("name").map(str::to_string);
    let description = f.text("description");
    let start_date = f.instant("start_date", false, true);
    let end_date = f.instant("end_date", false, true);
    let status = match f.optional("status") {
        None => Some(None),
        Some(_) => f
            .word(
                "status",
                "period.status",
                PeriodStatus::WORDS,
                PeriodStatus::parse,
                None,
            )
            .map(Some),
    };
    if let (Some(start), Some(end)) = (start_date, end_date)
        && end < start
    {
        let value = f.optional("end_date").unwrap_or_default();
        f.fail(
            "end_date",
            value,
            "period.dates",
            "end_date is before start_date",
            Some("a period ends on or after the day it starts".into()),
        );
    }
    if !f.ok {
        return None;
    }
    Some(PeriodRow {
        line: f.record.line,
        name: name?,
        description,
        start_date: start_date?,
        end_date: end_date?,
        status: status?,
    })
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
