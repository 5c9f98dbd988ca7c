//! Validation: the rules of SPEC §3, turning source records into typed rows.
//!
//! Every rule reports through [`Diagnostics`] and validation never stops at the first problem. The
//! same per-row parsers serve both the validation pass and the import pass (which re-reads the
//! already-validated files), so there is one definition of what a valid row is. References are
//! checked against the files given and against what the database already holds ([`KnownRefs`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

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
        out.files.push(FileSummary {
            path: file.display.clone(),
            table: file.table,
            rows: reader.rows(),
        });
        out.diagnostics.extend(diags);
    }
    Ok(out)
}

/// A lower-case email cut to 128 bits: its MurmurHash3 (x64, 128-bit). The per-member maps of a
/// million-member file hold these 16 bytes instead of the text. Two different emails share a key
/// with a chance of about 2^-128 per pair, some 10^-27 for a million emails; and a shared key could
/// only cause a wrong diagnostic, never a wrong import, which resolves members by their text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EmailKey {
    h1: u64,
    h2: u64,
}

impl EmailKey {
    /// The key of a valid email as written (case is folded here), and its folded text.
    fn of(raw: &str) -> (EmailKey, Cow<'_, str>) {
        let lower = domain::fold_case(raw);
        let (h1, h2) = murmur3_x64_128(lower.as_bytes(), 0);
        (EmailKey { h1, h2 }, lower)
    }
}

/// MurmurHash3_x64_128 (Austin Appleby, public domain), as `mmh3.hash128(data, seed)` computes it.
fn murmur3_x64_128(data: &[u8], seed: u64) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let mix_k1 = |k1: u64| k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix_k2 = |k2: u64| k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    let (mut h1, mut h2) = (seed, seed);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        h1 ^= mix_k1(word(&block[..8]));
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(word(&block[8..]));
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    if tail.len() > 8 {
        h2 ^= mix_k2(word(&tail[8..]));
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(word(&tail[..tail.len().min(8)]));
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = mix(h1);
    h2 = mix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Hash for EmailKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.h1);
    }
}

/// The key already is a hash: the map uses it as it is instead of hashing it again.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Editor line by email, one 24-byte entry per member.
type EmailLines = HashMap<EmailKey, u64, BuildHasherDefault<KeyHasher>>;

/// Cross-row state: duplicates within a file and references between files.
#[derive(Default)]
struct CrossState {
    members_given: bool,
    members_complete: bool,
    periods_given: bool,
    periods_complete: bool,
    emails: EmailLines,
    ens: HashMap<String, (u64, String)>,
    periods: HashMap<String, u64>,
    accounts: EmailLines,
}

impl CrossState {
    fn period(
        &mut self,
        file: &SourceFile,
        line: u64,
        name: Option<&str>,
        row: Option<&PeriodRow>,
        diags: &mut Diagnostics,
    ) {
        let Some(name) = name.or_else(|| row.map(|r| r.name.as_str())) else {
            return;
        };
        if let Some(first) = self.periods.get(name) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "period.duplicate",
                    format!(
                        "period `{}` is already defined on line {first}",
                        shown(name)
                    ),
                )
                .at(line)
                .column("name")
                .value(name)
                .hint("each period name appears once"),
            );
        } else {
            self.periods.insert(name.to_string(), line);
        }
    }

    fn member(
        &mut self,
        file: &SourceFile,
        line: u64,
        raw_email: Option<&str>,
        ens: Option<&str>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        let Some(raw) = raw_email.filter(|r| Email::check(r).is_ok()) else {
            return;
        };
        let (key, email) = EmailKey::of(raw);
        if let Some(first) = self.emails.get(&key) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "email.duplicate",
                    format!(
                        "{} is already on line {first} (emails are compared ignoring case)",
                        shown(&email)
                    ),
                )
                .at(line)
                .column("email")
                .value(raw)
                .hint("keep one row per member"),
            );
        } else {
            self.emails.insert(key, line);
        }
        if let Some(ens) = ens.filter(|e| domain::is_ens_name(e)) {
            if let Some((first, owner)) = self.ens.get(ens) {
                if *owner != email {
                    diags.push(
                        Diagnostic::error(
                            &file.display,
                            "ens.duplicate",
                            format!(
                                "ENS name {} is already given to {} on line {first}",
                                shown(ens),
                                shown(owner)
                            ),
                        )
                        .at(line)
                        .column("ens_name")
                        .value(ens)
                        .hint("an ENS name belongs to one member"),
                    );
                }
            } else if let Some(owner) = known.ens_names.get(ens).filter(|o| **o != email) {
                diags.push(
                    Diagnostic::error(
                        &file.display,
                        "ens.duplicate",
                        format!(
                            "ENS name {} already belongs to {} in the database",
                            shown(ens),
                            shown(owner)
                        ),
                    )
                    .at(line)
                    .column("ens_name")
                    .value(ens)
                    .hint("an ENS name belongs to one member"),
                );
            } else {
                self.ens.insert(ens.to_string(), (line, email.into_owned()));
            }
        }
    }

    /// The member a valid email names: its key and its lower-case text, and whether the member is
    /// known (in the members file or the database).
    fn member_ref<'e>(&self, raw: &'e str, known: &KnownRefs) -> (EmailKey, Cow<'e, str>, bool) {
        let (key, email) = EmailKey::of(raw);
        let found = self.emails.contains_key(&key)
            || known.member_emails.contains(email.as_ref())
            || (self.members_given && !self.members_complete);
        (key, email, found)
    }

    fn capital_account(
        &mut self,
        file: &SourceFile,
        line: u64,
        // Only a valid email: an invalid one was reported with its row.
        raw_email: Option<&str>,
        amounts: Option<(Money, Money)>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        let Some(raw_email) = raw_email else {
            return;
        };
        let (key, email, found) = self.member_ref(raw_email, known);
        if !found {
            diags.push(unknown_member(file, line, &email, self.members_given));
        }
        if let Some(first) = self.accounts.get(&key) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "capital.duplicate",
                    format!(
                        "{} already has a capital account on line {first}",
                        shown(&email)
                    ),
                )
                .at(line)
                .column("member_email")
                .value(&email)
                .hint("a member has one capital account; merge the two rows"),
            );
        } else {
            self.accounts.insert(key, line);
        }
        if let Some((balance, tax_basis)) = amounts.filter(|(b, t)| b != t) {
            diags.push(
                Diagnostic::note(
                    &file.display,
                    "balance.tax_basis_differs",
                    format!(
                        "balance {balance} differs from tax_basis {tax_basis} (expected for a property contribution)"
                    ),
                )
                .at(line)
                .column("tax_basis")
                .value(&tax_basis.to_string()),
            );
        }
    }

    fn contribution(
        &mut self,
        file: &SourceFile,
        line: u64,
        raw_email: Option<&str>,
        period: Option<&str>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        if let Some((_, email, false)) = raw_email.map(|raw| self.member_ref(raw, known)) {
            diags.push(unknown_member(file, line, &email, self.members_given));
        }
        if let Some(period) = period {
            let found = self.periods.contains_key(period)
                || known.period_names.contains(period)
                || (self.periods_given && !self.periods_complete);
            if !found {
                diags.push(
                    Diagnostic::error(
                        &file.display,
                        "ref.period",
                        format!(
                            "no period named `{}` in the periods file or the database",
                            shown(period)
                        ),
                    )
                    .at(line)
                    .column("period_name")
                    .value(period)
                    .hint(
                        "add it to periods.csv, or create it with `habitat-migrate period create`",
                    ),
                );
            }
        }
    }
}

fn unknown_member(file: &SourceFile, line: u64, email: &str, members_given: bool) -> Diagnostic {
    let hint = if members_given {
        "check the spelling, or add the member to members.csv"
    } else {
        "import members before capital accounts and contributions, or check the spelling"
    };
    Diagnostic::error(
        &file.display,
        "ref.member",
        format!("Member not found: {}", shown(email)),
    )
    .at(line)
    .column("member_email")
    .value(email)
    .hint(hint)
}

/// A column a `parse_*` reads: its name, and its index in the table's columns, found at compile
/// time so that reading a field costs no search by name.
#[derive(Clone, Copy, Debug)]
struct Col {
    table: Table,
    name: &'static str,
    index: usize,
}

/// The column `name` of `table`; a name the table does not have fails the build.
const fn col(table: Table, name: &'static str) -> Col {
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
mod col {
    use super::{Col, col};
    use crate::source::Table;

    pub(super) mod member {
        use super::*;
        pub(crate) const EMAIL: Col = col(Table::Members, "email");
        pub(crate) const DISPLAY_NAME: Col = col(Table::Members, "display_name");
        pub(crate) const ENS_NAME: Col = col(Table::Members, "ens_name");
        pub(crate) const ROLE: Col = col(Table::Members, "role");
        pub(crate) const STATUS: Col = col(Table::Members, "status");
        pub(crate) const JOINED_AT: Col = col(Table::Members, "joined_at");
    }

    pub(super) mod account {
        use super::*;
        pub(crate) const MEMBER_EMAIL: Col = col(Table::CapitalAccounts, "member_email");
        pub(crate) const BALANCE: Col = col(Table::CapitalAccounts, "balance");
        pub(crate) const TAX_BASIS: Col = col(Table::CapitalAccounts, "tax_basis");
        pub(crate) const NOTES: Col = col(Table::CapitalAccounts, "notes");
    }

    pub(super) mod contribution {
        use super::*;
        pub(crate) const MEMBER_EMAIL: Col = col(Table::Contributions, "member_email");
        pub(crate) const PERIOD_NAME: Col = col(Table::Contributions, "period_name");
        pub(crate) const TYPE: Col = col(Table::Contributions, "contribution_type");
        pub(crate) const AMOUNT: Col = col(Table::Contributions, "amount");
        pub(crate) const DESCRIPTION: Col = col(Table::Contributions, "description");
        pub(crate) const STATUS: Col = col(Table::Contributions, "status");
        pub(crate) const APPROVED_AT: Col = col(Table::Contributions, "approved_at");
    }

    pub(super) mod period {
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
struct MemberParts<'a> {
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

struct CapitalAccountParts<'a> {
    line: u64,
    member_email: &'a str,
    balance: Money,
    tax_basis: Money,
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

struct ContributionParts<'a> {
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

fn member_parts<'a>(f: &mut Fields<'a>) -> Option<MemberParts<'a>> {
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

fn capital_account_parts<'a>(f: &mut Fields<'a>) -> Option<CapitalAccountParts<'a>> {
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

fn contribution_parts<'a>(f: &mut Fields<'a>) -> Option<ContributionParts<'a>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference() {
        // Reference values from `mmh3.hash128(text, 0)` (low and high 64 bits).
        for (text, h1, h2) in [
            ("", 0, 0),
            ("a", 0x8555_5565_f659_7889, 0xe6b5_3a48_510e_895a),
            ("hello", 0xcbd8_a7b3_41bd_9b02, 0x5b1e_906a_48ae_1d19),
            (
                "The quick brown fox jumps over the lazy dog",
                0xe34b_bc7b_bc07_1b6c,
                0x7a43_3ca9_c49a_9347,
            ),
            (
                "member0000001@example.org",
                0x801e_2d48_f6bd_a523,
                0x5eb5_10db_02f7_64da,
            ),
            (
                "0123456789abcdef",
                0x4be0_6d94_cf4a_d1a7,
                0x87c3_5b5c_63a7_08da,
            ),
            (
                "0123456789abcdef0",
                0xeb24_ae87_85a5_c075,
                0x73fb_68b3_3131_28ca,
            ),
        ] {
            assert_eq!(murmur3_x64_128(text.as_bytes(), 0), (h1, h2), "{text:?}");
        }
    }

    #[test]
    fn email_keys_fold_case() {
        assert_eq!(
            EmailKey::of("Ada@Example.ORG").0,
            EmailKey::of("ada@example.org").0
        );
        assert_ne!(
            EmailKey::of("ada@example.org").0,
            EmailKey::of("ada@example.com").0
        );
    }
}
