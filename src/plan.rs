//! The plan: every source row classified as insert, update or unchanged against the database,
//! before anything is written.
//!
//! Periods are few and are compared in memory. Members and capital accounts are one row per
//! member, which at a million members is too much to hold as rows: the database's rows are kept
//! as a compact index instead ([`MemberIndex`], [`AccountIndex`]: a key, an id and a 64-bit
//! fingerprint each), a source row is compared by fingerprint, and only the rows that differ are
//! read back whole, to record what changed, column by column. New rows are not held either: they
//! are streamed from the file again when they are written. Contributions can be tens of millions
//! of rows: here they are only resolved to ids ([`ContributionResolver`]); the store stages them
//! and matches them in bulk against the tool's earlier imports.

use std::collections::HashMap;

use md5::{Digest, Md5};
use uuid::Uuid;

use crate::balances::RunEffects;
use crate::domain::{PeriodStatus, format_instant};
use crate::model::{
    Account, Change, ContributionValues, DigestSum, Member, Period, StagedContribution,
};
use crate::store::{StoreError, TableCounts};
use crate::validate::{CapitalAccountRow, ContributionRow, MemberRow, PeriodRow};

/// What will happen to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Insert,
    Update,
    Unchanged,
}

/// A row shown in the plan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    pub action: Option<Action>,
    pub line: u64,
    pub key: String,
    pub detail: String,
}

/// How many rows of a table to show in the plan.
pub const SAMPLES: usize = 5;

/// What a table's plan counts and shows, whatever the table.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub counts: TableCounts,
    pub samples: Vec<Sample>,
    /// The fingerprints of the source rows as they will stand in the database, for the read-back.
    pub source: DigestSum,
}

impl Tally {
    fn add(&mut self, action: Action, line: u64, key: &str, detail: impl FnOnce() -> String) {
        if self.samples.len() < SAMPLES {
            self.samples.push(Sample {
                action: Some(action),
                line,
                key: key.to_string(),
                detail: detail(),
            });
        }
        match action {
            Action::Insert => self.counts.inserted += 1,
            Action::Update => self.counts.updated += 1,
            Action::Unchanged => self.counts.unchanged += 1,
        }
    }

    /// Whether applying the plan writes anything.
    pub fn writes(&self) -> bool {
        self.counts.inserted > 0 || self.counts.updated > 0
    }
}

/// Records each differing column of one row.
struct Diff<'a> {
    table: &'static str,
    row_id: Uuid,
    key: &'a str,
    changes: Vec<Change>,
}

impl Diff<'_> {
    fn field(&mut self, column: &'static str, before: Option<String>, after: Option<String>) {
        if before != after {
            self.changes.push(Change {
                table: self.table,
                row_id: self.row_id,
                row_key: self.key.to_string(),
                column,
                before,
                after,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Periods
// ---------------------------------------------------------------------------------------------

/// The plan for the periods file: few rows, held whole.
#[derive(Clone, Debug, Default)]
pub struct PeriodPlan {
    pub tally: Tally,
    pub insert: Vec<Period>,
    pub update: Vec<Period>,
    pub changes: Vec<Change>,
    /// The names the file lists (the read-back compares these rows).
    pub names: Vec<String>,
}

impl PeriodPlan {
    pub fn writes(&self) -> bool {
        self.tally.writes()
    }
}

pub fn plan_periods(rows: Vec<PeriodRow>, existing: Vec<Period>) -> PeriodPlan {
    let mut by_name: HashMap<String, Period> =
        existing.into_iter().map(|p| (p.name.clone(), p)).collect();
    let mut plan = PeriodPlan::default();
    for row in rows {
        let old = by_name.remove(&row.name);
        // A blank status keeps the stored one: a re-import must not reopen a closed period.
        let status = match (row.status, &old) {
            (Some(s), _) => s,
            (None, Some(o)) => o.status,
            (None, None) => PeriodStatus::Open,
        };
        let target = Period {
            id: old.as_ref().map_or_else(Uuid::now_v7, |o| o.id),
            name: row.name.clone(),
            description: row.description.clone(),
            start_date: row.start_date,
            end_date: row.end_date,
            status,
        };
        plan.tally.source.add(target.digest());
        plan.names.push(row.name.clone());
        let detail = || {
            format!(
                "{} .. {} {}",
                row.start_date.strftime("%Y-%m-%d"),
                row.end_date.strftime("%Y-%m-%d"),
                status
            )
        };
        let Some(old) = old else {
            plan.tally.add(Action::Insert, row.line, &row.name, detail);
            plan.insert.push(target);
            continue;
        };
        let mut d = Diff {
            table: "allocation_periods",
            row_id: old.id,
            key: &row.name,
            changes: Vec::new(),
        };
        d.field("description", old.description, target.description.clone());
        d.field(
            "start_date",
            Some(format_instant(old.start_date)),
            Some(format_instant(target.start_date)),
        );
        d.field(
            "end_date",
            Some(format_instant(old.end_date)),
            Some(format_instant(target.end_date)),
        );
        d.field(
            "status",
            Some(old.status.to_string()),
            Some(target.status.to_string()),
        );
        if d.changes.is_empty() {
            plan.tally
                .add(Action::Unchanged, row.line, &row.name, detail);
        } else {
            plan.tally.add(Action::Update, row.line, &row.name, detail);
            plan.changes.extend(d.changes);
            plan.update.push(target);
        }
    }
    plan
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

/// A 128-bit key of a lower-case email: what the indexes are keyed by, so that a million members
/// cost sixteen bytes of key each rather than a string. Two different emails would have to share
/// an MD5 prefix of 128 bits to be confused.
pub fn email_key(email: &str) -> u128 {
    let digest: [u8; 16] = Md5::digest(email.to_lowercase().as_bytes()).into();
    u128::from_be_bytes(digest)
}

/// The 64-bit prefix of a fingerprint, as the indexes keep it. A changed row could pass as
/// unchanged only if its fingerprint collided with the old one's in 64 bits.
fn short(digest: crate::model::RowDigest) -> u64 {
    u64::from_ne_bytes(digest.prefix().to_ne_bytes())
}

#[derive(Clone, Copy, Debug)]
struct MemberEntry {
    id: Uuid,
    digest: u64,
    in_file: bool,
    new: bool,
}

/// The members of the database (and, once planned, of the file): email key → id and fingerprint.
#[derive(Debug, Default)]
pub struct MemberIndex {
    entries: HashMap<u128, MemberEntry>,
}

impl MemberIndex {
    pub fn with_capacity(n: usize) -> MemberIndex {
        MemberIndex {
            entries: HashMap::with_capacity(n),
        }
    }

    /// Adds a member as the database holds it.
    pub fn add_existing(&mut self, m: &Member) {
        self.entries.insert(
            email_key(&m.email),
            MemberEntry {
                id: m.id,
                digest: short(m.digest()),
                in_file: false,
                new: false,
            },
        );
    }

    /// The id of the member with this email, in the database or planned.
    pub fn id(&self, email: &str) -> Option<Uuid> {
        self.entries.get(&email_key(email)).map(|e| e.id)
    }

    /// Whether the source's members file lists this email.
    pub fn in_file(&self, email: &str) -> bool {
        self.entries
            .get(&email_key(email))
            .is_some_and(|e| e.in_file)
    }

    fn is_new(&self, email: &str) -> bool {
        self.entries.get(&email_key(email)).is_some_and(|e| e.new)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ids the plan gave to new members.
    pub fn new_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.entries.values().filter(|e| e.new).map(|e| e.id)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A member as the source row would store it.
fn member_of(row: &MemberRow, id: Uuid) -> Member {
    Member {
        id,
        email: row.email.as_str().to_string(),
        display_name: Some(row.display_name.clone()),
        ens_name: row.ens_name.clone(),
        role: row.role,
        status: row.status,
        joined_at: row.joined_at,
    }
}

/// The plan for the members file: counts, samples, and the members whose values change.
#[derive(Clone, Debug, Default)]
pub struct MemberPlan {
    pub tally: Tally,
    /// The new values of changed members (with their ids).
    pub update: Vec<Member>,
}

/// Classifies the file's members against the index, giving new members their ids in it.
pub fn plan_members(rows: impl Iterator<Item = MemberRow>, index: &mut MemberIndex) -> MemberPlan {
    let mut plan = MemberPlan::default();
    for row in rows {
        let key = email_key(row.email.as_str());
        let detail = || format!("{} ({}, {})", row.display_name, row.role, row.status);
        let email = row.email.as_str();
        match index.entries.get_mut(&key) {
            None => {
                let member = member_of(&row, Uuid::now_v7());
                let digest = member.digest();
                plan.tally.source.add(digest);
                index.entries.insert(
                    key,
                    MemberEntry {
                        id: member.id,
                        digest: short(digest),
                        in_file: true,
                        new: true,
                    },
                );
                plan.tally.add(Action::Insert, row.line, email, detail);
            }
            Some(entry) => {
                let member = member_of(&row, entry.id);
                let digest = member.digest();
                plan.tally.source.add(digest);
                entry.in_file = true;
                if entry.digest == short(digest) {
                    plan.tally.add(Action::Unchanged, row.line, email, detail);
                } else {
                    entry.digest = short(digest);
                    plan.tally.add(Action::Update, row.line, email, detail);
                    plan.update.push(member);
                }
            }
        }
    }
    plan
}

/// The members the plan found new, from a second pass over the file.
pub fn new_members<'a>(
    rows: impl Iterator<Item = MemberRow> + 'a,
    index: &'a MemberIndex,
) -> impl Iterator<Item = Member> + 'a {
    rows.filter(|r| index.is_new(r.email.as_str()))
        .filter_map(|r| index.id(r.email.as_str()).map(|id| member_of(&r, id)))
}

/// The change history of updated members: every differing column, before and after.
pub fn member_changes(old: &[Member], new: &[Member]) -> Vec<Change> {
    let old: HashMap<Uuid, &Member> = old.iter().map(|m| (m.id, m)).collect();
    let mut out = Vec::new();
    for m in new {
        let Some(o) = old.get(&m.id) else { continue };
        let mut d = Diff {
            table: "members",
            row_id: m.id,
            key: &m.email,
            changes: Vec::new(),
        };
        d.field("email", Some(o.email.clone()), Some(m.email.clone()));
        d.field(
            "display_name",
            o.display_name.clone(),
            m.display_name.clone(),
        );
        d.field("ens_name", o.ens_name.clone(), m.ens_name.clone());
        d.field("role", Some(o.role.to_string()), Some(m.role.to_string()));
        d.field(
            "status",
            Some(o.status.to_string()),
            Some(m.status.to_string()),
        );
        d.field(
            "joined_at",
            Some(format_instant(o.joined_at)),
            Some(format_instant(m.joined_at)),
        );
        out.extend(d.changes);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Capital accounts
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct AccountEntry {
    id: Uuid,
    digest: u64,
    in_file: bool,
    effects: RunEffects,
}

/// The capital accounts of the database (and, once planned, of the file), by member: the
/// account's id, its fingerprint, and what this run does to the member (which decides whether
/// the member's opening balance is re-derived).
#[derive(Debug, Default)]
pub struct AccountIndex {
    entries: HashMap<Uuid, AccountEntry>,
}

impl AccountIndex {
    pub fn with_capacity(n: usize) -> AccountIndex {
        AccountIndex {
            entries: HashMap::with_capacity(n),
        }
    }

    /// Adds an account as the database holds it.
    pub fn add_existing(&mut self, a: &Account) {
        self.entries.insert(
            a.member_id,
            AccountEntry {
                id: a.id,
                digest: short(a.digest()),
                in_file: false,
                effects: RunEffects::default(),
            },
        );
    }

    /// The ids the plan gave to new accounts.
    pub fn new_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.entries
            .values()
            .filter(|e| e.effects.new_account)
            .map(|e| e.id)
    }

    /// Whether the source's capital accounts file lists the member's account.
    pub fn in_file(&self, member_id: &Uuid) -> bool {
        self.entries.get(member_id).is_some_and(|e| e.in_file)
    }

    /// What this run does to the member, for the opening balance rules (nothing known: default).
    pub fn effects(&self, member_id: &Uuid) -> RunEffects {
        self.entries
            .get(member_id)
            .map(|e| e.effects)
            .unwrap_or_default()
    }

    /// Notes that the run added (or removed) contributions of these members.
    pub fn mark(&mut self, members: impl IntoIterator<Item = Uuid>, added: bool) {
        for m in members {
            if let Some(e) = self.entries.get_mut(&m) {
                if added {
                    e.effects.contributions_added = true;
                } else {
                    e.effects.contributions_removed = true;
                }
            }
        }
    }

    /// Notes that the run added contributions to every member it knows an account of.
    pub fn mark_all_added(&mut self) {
        for e in self.entries.values_mut() {
            e.effects.contributions_added = true;
        }
    }
}

/// The plan for the capital accounts file.
#[derive(Clone, Debug, Default)]
pub struct AccountPlan {
    pub tally: Tally,
    /// The new values of changed accounts (with their ids).
    pub update: Vec<Account>,
}

/// The account a source row would store, for the member `member_id`.
fn account_of(row: &CapitalAccountRow, id: Uuid, member_id: Uuid) -> Account {
    Account {
        id,
        member_id,
        balance: row.balance,
        tax_basis: row.tax_basis,
        notes: row.notes.clone(),
    }
}

fn member_not_found(email: &str) -> StoreError {
    StoreError::Other(format!(
        "Member not found: {email} (import members before capital accounts)"
    ))
}

/// Classifies the file's accounts against the index, giving new accounts their ids in it.
pub fn plan_accounts(
    rows: impl Iterator<Item = CapitalAccountRow>,
    members: &MemberIndex,
    index: &mut AccountIndex,
) -> Result<AccountPlan, StoreError> {
    let mut plan = AccountPlan::default();
    for row in rows {
        let email = row.member_email.as_str();
        let member_id = members.id(email).ok_or_else(|| member_not_found(email))?;
        let detail = || format!("balance {} tax_basis {}", row.balance, row.tax_basis);
        match index.entries.get_mut(&member_id) {
            None => {
                let account = account_of(&row, Uuid::now_v7(), member_id);
                let digest = account.digest();
                plan.tally.source.add(digest);
                index.entries.insert(
                    member_id,
                    AccountEntry {
                        id: account.id,
                        digest: short(digest),
                        in_file: true,
                        effects: RunEffects {
                            new_account: true,
                            ..RunEffects::default()
                        },
                    },
                );
                plan.tally.add(Action::Insert, row.line, email, detail);
            }
            Some(entry) => {
                let account = account_of(&row, entry.id, member_id);
                let digest = account.digest();
                plan.tally.source.add(digest);
                entry.in_file = true;
                if entry.digest == short(digest) {
                    plan.tally.add(Action::Unchanged, row.line, email, detail);
                } else {
                    entry.digest = short(digest);
                    plan.tally.add(Action::Update, row.line, email, detail);
                    plan.update.push(account);
                }
            }
        }
    }
    Ok(plan)
}

/// The accounts the plan found new, from a second pass over the file.
pub fn new_accounts<'a>(
    rows: impl Iterator<Item = CapitalAccountRow> + 'a,
    members: &'a MemberIndex,
    index: &'a AccountIndex,
) -> impl Iterator<Item = Account> + 'a {
    rows.filter_map(|r| {
        let member_id = members.id(r.member_email.as_str())?;
        let entry = index.entries.get(&member_id)?;
        entry
            .effects
            .new_account
            .then(|| account_of(&r, entry.id, member_id))
    })
}

/// The change history of updated accounts, and notes in the index which members' balance or tax
/// basis changed (their opening balances are re-derived).
pub fn account_changes(
    old: &[Account],
    new: &[Account],
    emails: &HashMap<Uuid, String>,
    index: &mut AccountIndex,
) -> Vec<Change> {
    let old: HashMap<Uuid, &Account> = old.iter().map(|a| (a.id, a)).collect();
    let mut out = Vec::new();
    for a in new {
        let Some(o) = old.get(&a.id) else { continue };
        let key = emails.get(&a.member_id).map_or("", String::as_str);
        let mut d = Diff {
            table: "capital_accounts",
            row_id: a.id,
            key,
            changes: Vec::new(),
        };
        d.field(
            "balance",
            Some(o.balance.to_string()),
            Some(a.balance.to_string()),
        );
        d.field(
            "tax_basis",
            Some(o.tax_basis.to_string()),
            Some(a.tax_basis.to_string()),
        );
        d.field("notes", o.notes.clone(), a.notes.clone());
        if o.balance != a.balance || o.tax_basis != a.tax_basis {
            if let Some(e) = index.entries.get_mut(&a.member_id) {
                e.effects.balance_changed = true;
            }
        }
        out.extend(d.changes);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Contributions
// ---------------------------------------------------------------------------------------------

/// Turns validated contribution rows into rows for the store: member and period resolved to ids,
/// a new id in case the row is new, the row's fingerprint.
pub struct ContributionResolver<'a> {
    members: &'a MemberIndex,
    period_ids: HashMap<String, Uuid>,
}

impl<'a> ContributionResolver<'a> {
    pub fn new(members: &'a MemberIndex, period_ids: HashMap<String, Uuid>) -> Self {
        ContributionResolver {
            members,
            period_ids,
        }
    }

    /// The row for the store; `Err` names a reference that validation should have caught.
    pub fn resolve(&self, row: &ContributionRow) -> Result<StagedContribution, StoreError> {
        let email = row.member_email.as_str();
        let member_id = self
            .members
            .id(email)
            .ok_or_else(|| StoreError::Other(format!("Member not found: {email}")))?;
        let period_id = *self
            .period_ids
            .get(&row.period_name)
            .ok_or_else(|| StoreError::Other(format!("Period not found: {}", row.period_name)))?;
        Ok(StagedContribution::new(
            row.line,
            ContributionValues {
                member_id,
                period_id,
                contribution_type: row.contribution_type,
                amount: row.amount,
                description: row.description.clone(),
                status: row.status,
                approved_at: row.approved_at,
                approved_by: None,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContributionStatus, ContributionType, Email, MemberStatus, Role};
    use crate::money::Money;

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap_or_else(|_| unreachable!())
    }

    fn member_row(address: &str, role: Role) -> MemberRow {
        MemberRow {
            line: 2,
            email: email(address),
            display_name: "Ada Lovelace".into(),
            ens_name: None,
            role,
            status: MemberStatus::Active,
            joined_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn row(amount: i64, status: ContributionStatus) -> ContributionRow {
        ContributionRow {
            line: 2,
            member_email: email("ada@example.org"),
            period_name: "Q1 2026".into(),
            contribution_type: ContributionType::Labor,
            amount: Money::from_cents(amount),
            description: Some("work".into()),
            status,
            approved_at: None,
        }
    }

    #[test]
    fn members_are_classified_by_fingerprint_and_emails_ignore_case() {
        let mut index = MemberIndex::default();
        let existing = member_of(
            &member_row("ada@example.org", Role::Member),
            Uuid::from_u128(9),
        );
        index.add_existing(&existing);
        let plan = plan_members(
            [
                member_row("Ada@Example.org", Role::Member),
                member_row("grace@example.org", Role::Steward),
            ]
            .into_iter(),
            &mut index,
        );
        assert_eq!(
            (plan.tally.counts.inserted, plan.tally.counts.unchanged),
            (1, 1)
        );
        assert_eq!(index.id("ADA@example.org"), Some(Uuid::from_u128(9)));
        assert!(index.in_file("grace@example.org"));
        let changed = plan_members(
            std::iter::once(member_row("ada@example.org", Role::Admin)),
            &mut index,
        );
        assert_eq!(changed.update.len(), 1);
        let history = member_changes(&[existing], &changed.update);
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].column, "role");
        assert_eq!(history[0].after.as_deref(), Some("admin"));
    }

    #[test]
    fn rows_resolve_to_ids_and_fingerprints() {
        let mut index = MemberIndex::default();
        index.add_existing(&member_of(
            &member_row("ada@example.org", Role::Member),
            Uuid::from_u128(1),
        ));
        let resolver =
            ContributionResolver::new(&index, [("Q1 2026".to_string(), Uuid::from_u128(2))].into());
        let staged = resolver.resolve(&row(100, ContributionStatus::Pending));
        let Ok(staged) = staged else {
            panic!("resolves: {staged:?}")
        };
        assert_eq!(staged.values.member_id, Uuid::from_u128(1));
        assert_eq!(staged.values.period_id, Uuid::from_u128(2));
        assert_eq!(staged.digest, staged.values.digest());
        let other = resolver.resolve(&row(100, ContributionStatus::Approved));
        assert_ne!(other.map(|o| o.digest).ok(), Some(staged.digest));
    }

    #[test]
    fn an_unknown_member_is_an_error_not_a_panic() {
        let index = MemberIndex::default();
        let r = ContributionResolver::new(&index, HashMap::new());
        assert!(r.resolve(&row(100, ContributionStatus::Pending)).is_err());
    }
}
