//! One record's fields: each column read, checked and reported with its line, and the typed rows
//! built from them.

use jiff::Timestamp;

use crate::diagnostic::{Diagnostic, Diagnostics, shown};
use crate::domain::{
    self, ContributionStatus, ContributionType, DateError, Email, MemberStatus, PeriodStatus, Role,
};
use crate::money::{Money, MoneyError};
use crate::source::{Record, SourceFile, Table};

use super::{CapitalAccountRow, ContributionRow, MemberRow, PeriodRow};

/// A column a `parse_*` reads: its name, and its index in the table's columns, found at compile
/// time so that reading a field costs no search by name.
#[derive(Clone, Copy, Debug)]
pub(super) struct Col {
    pub(super) table: Table,
    pub(super) name: &'static str,
    pub(super) index: usize,
}

/// The column `name` of `table`; a name the table does not have fails the build.
pub(super) const fn col(table: Table, name: &'static str) -> Col {
    let columns = table.columns();
    let mut index = 0;
    while index < columns.len() {
        let known = columns[index].name.as_bytes();
        let wanted = name.as_bytes();
        if known.len() == wanted.len() {
            let mut i = 0;
            while i < known.len() && known[i] == wanted[i] {
                i += 1;
            }
            if i == known.len() {
                return Col { table, name, index };
            }
        }
        index += 1;
    }
    panic!("not a column of this table")
}

/// The columns the `parse_*` functions read, per table.
pub(super) mod col {
    use super::{Col, col};
    use crate::source::Table;

    pub(crate) mod member {
        use super::*;
        pub(crate) const EMAIL: Col = col(Table::Members, "email");
        pub(crate) const DISPLAY_NAME: Col = col(Table::Members, "display_name");
        pub(crate) const ENS_NAME: Col = col(Table::Members, "ens_name");
        pub(crate) const ROLE: Col = col(Table::Members, "role");
        pub(crate) const STATUS: Col = col(Table::Members, "status");
        pub(crate) const JOINED_AT: Col = col(Table::Members, "joined_at");
    }

    pub(crate) mod account {
        use super::*;
        pub(crate) const MEMBER_EMAIL: Col = col(Table::CapitalAccounts, "member_email");
        pub(crate) const BALANCE: Col = col(Table::CapitalAccounts, "balance");
        pub(crate) const TAX_BASIS: Col = col(Table::CapitalAccounts, "tax_basis");
        pub(crate) const NOTES: Col = col(Table::CapitalAccounts, "notes");
    }

    pub(crate) mod contribution {
        use super::*;
        pub(crate) const MEMBER_EMAIL: Col = col(Table::Contributions, "member_email");
        pub(crate) const PERIOD_NAME: Col = col(Table::Contributions, "period_name");
        pub(crate) const TYPE: Col = col(Table::Contributions, "contribution_type");
        pub(crate) const AMOUNT: Col = col(Table::Contributions, "amount");
        pub(crate) const DESCRIPTION: Col = col(Table::Contributions, "description");
        pub(crate) const STATUS: Col = col(Table::Contributions, "status");
        pub(crate) const APPROVED_AT: Col = col(Table::Contributions, "approved_at");
    }

    pub(crate) mod period {
        use super::*;
        pub(crate) const NAME: Col = col(Table::Periods, "name");
        pub(crate) const DESCRIPTION: Col = col(Table::Periods, "description");
        pub(crate) const START_DATE: Col = col(Table::Periods, "start_date");
        pub(crate) const END_DATE: Col = col(Table::Periods, "end_date");
        pub(crate) const STATUS: Col = col(Table::Periods, "status");
    }
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

    /// The value of `column`, trimmed; `None` when blank (or when the file is of another table).
    fn optional(&self, column: Col) -> Option<&'a str> {
        if column.table == self.file.table {
            self.record.get(column.index)
        } else {
            None
        }
    }

    /// The database columns are `varchar(n)`: refuse here, with a line number, what the database
    /// would refuse later without one.
    fn check_length(&mut self, column: Col, max: usize) {
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

    fn required(&mut self, column: Col) -> Option<&'a str> {
        let value = self.optional(column);
        if value.is_none() {
            self.ok = false;
            let refused = self.record.refused(column.index);
            if !refused && !self.missing.contains(&column.name) {
                self.diags.push(
                    Diagnostic::error(
                        &self.file.display,
                        "value.required",
                        format!("`{}` is required", column.name),
                    )
                    .at(self.record.line)
                    .column(column.name),
                );
            }
        }
        value
    }

    fn fail(
        &mut self,
        column: Col,
        value: &str,
        rule: &'static str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.ok = false;
        let mut d = Diagnostic::error(&self.file.display, rule, message)
            .at(self.record.line)
            .column(column.name)
            .value(value);
        d.hint = hint;
        self.diags.push(d);
    }

    /// The email in `column` as written, if it is a valid one.
    fn email(&mut self, column: Col) -> Option<&'a str> {
        let value = self.required(column)?;
        match Email::check(value) {
            Ok(()) => Some(value),
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
        column: Col,
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
                format!("invalid {} `{}`", column.name, shown(value)),
                Some(hint),
            );
        }
        parsed
    }

    fn instant(&mut self, column: Col, allow_timestamp: bool, required: bool) -> Option<Timestamp> {
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

    fn money(&mut self, column: Col) -> Option<Money> {
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

    fn text(&self, column: Col) -> Option<&'a str> {
        self.optional(column)
    }
}

// Each `parse_*` runs every check of its row through `Fields` into a `*Parts` that borrows the
// record's text, and only then copies that into an owned row. Validation, which keeps no rows,
// stops at the parts: a million contributions are checked without a million allocations.

/// A member row that passed every check, its text borrowed from the record.
pub(super) struct MemberParts<'a> {
    line: u64,
    email: &'a str,
    display_name: &'a str,
    ens_name: Option<&'a str>,
    role: Role,
    status: MemberStatus,
    joined_at: Timestamp,
}

impl MemberParts<'_> {
    fn into_row(self) -> MemberRow {
        MemberRow {
            line: self.line,
            email: Email::from_checked(self.email),
            display_name: self.display_name.to_string(),
            ens_name: self.ens_name.map(str::to_string),
            role: self.role,
            status: self.status,
            joined_at: self.joined_at,
        }
    }
}

pub(super) struct CapitalAccountParts<'a> {
    line: u64,
    member_email: &'a str,
    pub(super) balance: Money,
    pub(super) tax_basis: Money,
    notes: Option<&'a str>,
}

impl CapitalAccountParts<'_> {
    fn into_row(self) -> CapitalAccountRow {
        CapitalAccountRow {
            line: self.line,
            member_email: Email::from_checked(self.member_email),
            balance: self.balance,
            tax_basis: self.tax_basis,
            notes: self.notes.map(str::to_string),
        }
    }
}

pub(super) struct ContributionParts<'a> {
    line: u64,
    member_email: &'a str,
    period_name: &'a str,
    contribution_type: ContributionType,
    amount: Money,
    description: Option<&'a str>,
    status: ContributionStatus,
    approved_at: Option<Timestamp>,
}

impl ContributionParts<'_> {
    fn into_row(self) -> ContributionRow {
        ContributionRow {
            line: self.line,
            member_email: Email::from_checked(self.member_email),
            period_name: self.period_name.to_string(),
            contribution_type: self.contribution_type,
            amount: self.amount,
            description: self.description.map(str::to_string),
            status: self.status,
            approved_at: self.approved_at,
        }
    }
}

pub fn parse_member(f: &mut Fields<'_>) -> Option<MemberRow> {
    member_parts(f).map(MemberParts::into_row)
}

pub(super) fn member_parts<'a>(f: &mut Fields<'a>) -> Option<MemberParts<'a>> {
    f.check_length(col::member::EMAIL, 320);
    f.check_length(col::member::DISPLAY_NAME, 255);
    f.check_length(col::member::ENS_NAME, 255);
    let email = f.email(col::member::EMAIL);
    let display_name = f.required(col::member::DISPLAY_NAME);
    let ens_name = f.text(col::member::ENS_NAME);
    if let Some(ens) = ens_name
        && !domain::is_ens_name(ens)
    {
        f.fail(
            col::member::ENS_NAME,
            ens,
            "ens.format",
            "not an ENS name",
            Some("a lower-case dotted name ending in .eth, like ada.habitat.eth".into()),
        );
    }
    let role = f.word(
        col::member::ROLE,
        "member.role",
        Role::WORDS,
        Role::parse,
        None,
    );
    let status = f.word(
        col::member::STATUS,
        "member.status",
        MemberStatus::WORDS,
        MemberStatus::parse,
        None,
    );
    let joined_at = f.instant(col::member::JOINED_AT, false, true);
    if !f.ok {
        return None;
    }
    Some(MemberParts {
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
    capital_account_parts(f).map(CapitalAccountParts::into_row)
}

pub(super) fn capital_account_parts<'a>(f: &mut Fields<'a>) -> Option<CapitalAccountParts<'a>> {
    let member_email = f.email(col::account::MEMBER_EMAIL);
    let balance = f.money(col::account::BALANCE);
    let tax_basis = f.money(col::account::TAX_BASIS);
    for (column, value) in [
        (col::account::BALANCE, balance),
        (col::account::TAX_BASIS, tax_basis),
    ] {
        if let Some(v) = value.filter(|v| v.is_negative()) {
            let raw = f.optional(column).unwrap_or_default();
            let name = column.name;
            f.fail(
                column,
                raw,
                "money.negative",
                format!("Invalid {name}: {v} (capital account {name} cannot be negative)"),
                Some("verify the source data: a capital account balance is zero or more".into()),
            );
        }
    }
    let notes = f.text(col::account::NOTES);
    if !f.ok {
        return None;
    }
    Some(CapitalAccountParts {
        line: f.record.line,
        member_email: member_email?,
        balance: balance?,
        tax_basis: tax_basis?,
        notes,
    })
}

pub fn parse_contribution(f: &mut Fields<'_>) -> Option<ContributionRow> {
    contribution_parts(f).map(ContributionParts::into_row)
}

pub(super) fn contribution_parts<'a>(f: &mut Fields<'a>) -> Option<ContributionParts<'a>> {
    let member_email = f.email(col::contribution::MEMBER_EMAIL);
    let period_name = f.required(col::contribution::PERIOD_NAME);
    let contribution_type = f.word(
        col::contribution::TYPE,
        "contribution.type",
        ContributionType::WORDS,
        ContributionType::parse,
        None,
    );
    let amount = f.money(col::contribution::AMOUNT);
    if amount.is_some_and(|a| a.cents() <= 0) {
        let raw = f.optional(col::contribution::AMOUNT).unwrap_or_default();
        f.fail(
            col::contribution::AMOUNT,
            raw,
            "money.not_positive",
            "a contribution amount must be more than zero",
            Some("leave out contributions of nothing; record reversals outside the import".into()),
        );
    }
    let description = f.text(col::contribution::DESCRIPTION);
    let status = f.word(
        col::contribution::STATUS,
        "contribution.status",
        ContributionStatus::WORDS,
        ContributionStatus::parse,
        None,
    );
    let approved_at = f.instant(col::contribution::APPROVED_AT, true, false);
    match (status, f.optional(col::contribution::APPROVED_AT)) {
        (Some(ContributionStatus::Approved), None) => f.fail(
            col::contribution::APPROVED_AT,
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
    Some(ContributionParts {
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
    f.check_length(col::period::NAME, 255);
    let name = f.required(col::period::NAME).map(str::to_string);
    let description = f.text(col::period::DESCRIPTION).map(str::to_string);
    let start_date = f.instant(col::period::START_DATE, false, true);
    let end_date = f.instant(col::period::END_DATE, false, true);
    let status = match f.optional(col::period::STATUS) {
        None => Some(None),
        Some(_) => f
            .word(
                col::period::STATUS,
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
        let value = f.optional(col::period::END_DATE).unwrap_or_default();
        f.fail(
            col::period::END_DATE,
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
