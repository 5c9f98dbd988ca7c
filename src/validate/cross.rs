//! What validation keeps across rows and files: the members, periods and capital accounts seen so
//! far, for duplicates within a file and references between files and to the database. Per member
//! it keeps a slot among the email keys of [`crate::index`] and two line numbers, some 50 bytes,
//! and per ENS name 33: a million members fit in about 70 MB. A member the database already holds
//! keeps the slot it has among the database's keys ([`KnownRefs`]), so a re-import of a million
//! members does not build a second table of the same million keys (some 40 MB at its peak).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Diagnostics, shown};
use crate::domain::{self, Email};
use crate::index::{BuildKeyHasher, MemberKeys, TextKey};
use crate::money::Money;
use crate::source::SourceFile;

use super::{KnownRefs, PeriodRow};

/// Cross-row state: duplicates within a file and references between files.
#[derive(Default)]
pub(super) struct CrossState {
    pub(super) members_given: bool,
    pub(super) members_complete: bool,
    pub(super) periods_given: bool,
    pub(super) periods_complete: bool,
    /// The members the files name that the database does not hold, at slots counted after the
    /// database's: a member's slot is its slot among the known keys, or `known` plus its slot here.
    emails: MemberKeys,
    /// How many members the database holds: where the slots of [`CrossState::emails`] start.
    known: usize,
    /// By slot: the members file's line listing the member; 0 when it lists none.
    member_lines: Vec<u64>,
    /// By slot: the capital accounts file's line giving the member an account; 0 when none.
    account_lines: Vec<u64>,
    /// ENS name → the line first giving it, and its owner's slot.
    ens: HashMap<TextKey, (u64, usize), BuildKeyHasher>,
    periods: HashMap<String, u64>,
}

impl CrossState {
    pub(super) fn period(
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

    pub(super) fn member(
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
        let email = domain::fold_case(raw);
        let key = TextKey::exact(&email);
        let slot = self.slot(key, known);
        let first = self.member_lines[slot];
        if first != 0 {
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
            self.member_lines[slot] = line;
        }
        let Some(ens) = ens.filter(|e| domain::is_ens_name(e)) else {
            return;
        };
        let ens_key = TextKey::exact(ens);
        let taken = match self.ens.get(&ens_key) {
            Some(&(first, owner)) => (owner != slot).then(|| {
                format!(
                    "ENS name {} is already given to the member on line {first}",
                    shown(ens)
                )
            }),
            None => match known.ens_owner(ens_key) {
                Some(owner) if owner != key => Some(format!(
                    "ENS name {} already belongs to another member in the database",
                    shown(ens)
                )),
                _ => {
                    self.ens.insert(ens_key, (line, slot));
                    None
                }
            },
        };
        if let Some(message) = taken {
            diags.push(
                Diagnostic::error(&file.display, "ens.duplicate", message)
                    .at(line)
                    .column("ens_name")
                    .value(ens)
                    .hint("an ENS name belongs to one member"),
            );
        }
    }

    /// The slot of a member the files name, giving it one on first sight.
    fn slot(&mut self, key: TextKey, known: &KnownRefs) -> usize {
        if self.member_lines.is_empty() {
            // The database's members have their slots from the start (the known references do
            // not change while the files are validated).
            self.known = known.member_count();
            self.member_lines = vec![0; self.known];
            self.account_lines = vec![0; self.known];
        }
        if let Some(slot) = known.member_slot(key) {
            return slot;
        }
        let (slot, new) = self.emails.insert(key);
        if new {
            self.member_lines.push(0);
            self.account_lines.push(0);
        }
        self.known + slot
    }

    /// The slot of a member the files named already.
    fn find(&self, key: TextKey, known: &KnownRefs) -> Option<usize> {
        if self.member_lines.is_empty() {
            return None;
        }
        known
            .member_slot(key)
            .or_else(|| self.emails.get(key).map(|slot| self.known + slot))
    }

    /// The member a valid email names: its key and its lower-case text, and whether the member is
    /// known (in the members file or the database).
    fn member_ref<'e>(&self, raw: &'e str, known: &KnownRefs) -> (TextKey, Cow<'e, str>, bool) {
        let email = domain::fold_case(raw);
        let key = TextKey::exact(&email);
        let found = self
            .find(key, known)
            .is_some_and(|slot| self.member_lines[slot] != 0)
            || known.knows_member(key)
            || (self.members_given && !self.members_complete);
        (key, email, found)
    }

    pub(super) fn capital_account(
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
        let slot = self.slot(key, known);
        let first = self.account_lines[slot];
        if first != 0 {
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
            self.account_lines[slot] = line;
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

    pub(super) fn contribution(
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
                || known.knows_period(period)
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

#[cfg(test)]
mod tests {
    use crate::source::{SourceFile, Table};
    use crate::validate::{KnownRefs, validate_bytes};

    const HEADER: &str = "email,display_name,ens_name,role,status,joined_at\n";

    /// The messages of the `ens.duplicate` diagnostics for a members file, against `known`.
    fn ens_messages(rows: &str, known: &KnownRefs) -> Vec<(u64, String)> {
        let file = SourceFile::new("members.csv", Table::Members);
        let v = validate_bytes(&[(file, format!("{HEADER}{rows}").into_bytes())], known);
        v.diagnostics
            .items()
            .iter()
            .filter(|d| d.rule == "ens.duplicate")
            .map(|d| (d.line.unwrap_or(0), d.message.clone()))
            .collect()
    }

    #[test]
    fn an_ens_name_given_twice_names_the_first_line() {
        let rows = "ada@example.org,Ada,ada.eth,member,active,2025-01-01\n\
                    bob@example.org,Bob,ada.eth,member,active,2025-01-01\n";
        assert_eq!(
            ens_messages(rows, &KnownRefs::default()),
            [(
                3,
                "ENS name ada.eth is already given to the member on line 2".to_string()
            )]
        );
    }

    #[test]
    fn an_ens_name_held_in_the_database_by_another_member_is_refused() {
        let mut known = KnownRefs::default();
        known.add_member("Ada@Example.org", Some("ada.eth"));
        // Ada keeps her name (emails compared ignoring case); Bob cannot take it.
        let rows = "ada@example.org,Ada,ada.eth,member,active,2025-01-01\n";
        assert_eq!(ens_messages(rows, &known), []);
        let rows = "bob@example.org,Bob,ada.eth,member,active,2025-01-01\n";
        assert_eq!(
            ens_messages(rows, &known),
            [(
                2,
                "ENS name ada.eth already belongs to another member in the database".to_string()
            )]
        );
    }
}
