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

use hashbrown::HashTable;
use uuid::Uuid;

use crate::balances::RunEffects;
use crate::domain::{PeriodStatus, format_instant};
use crate::index::{MemberKeys, TextKey, slot32};
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

/// The 64-bit prefix of a fingerprint, as the index keeps it. A changed row could pass as
/// unchanged only if its fingerprint collided with the old one's in 64 bits.
fn short(digest: crate::model::RowDigest) -> u64 {
    u64::from_ne_bytes(digest.prefix().to_ne_bytes())
}

/// A member of the database.
const IN_DB: u8 = 1;
/// A member the members file lists.
const IN_FILE: u8 = 2;
/// A member the capital accounts file gives an account.
const ACCOUNT_IN_FILE: u8 = 4;

/// What the import keeps per member of the database and of the files, in vectors indexed by the
/// member's slot among the email keys (see [`crate::index`]): about 110 bytes a member, the only
/// part of an import that grows with the data.
///
/// Members: id, fingerprint, whether in the database and in the file. Capital accounts, by their
/// member: id (nil when the member has none), fingerprint, and what this run does to the member,
/// which decides whether its opening balance is re-derived.
#[derive(Debug, Default)]
pub struct MemberIndex {
    keys: MemberKeys,
    ids: Vec<Uuid>,
    digests: Vec<u64>,
    flags: Vec<u8>,
    /// Member id → slot.
    by_id: HashTable<u32>,
    accounts_held: bool,
    account_ids: Vec<Uuid>,
    account_digests: Vec<u64>,
    effects: Vec<RunEffects>,
}

impl MemberIndex {
    pub fn with_capacity(n: usize) -> MemberIndex {
        let mut index = MemberIndex::default();
        index.reserve(n);
        index
    }

    /// Room for `n` more members, so that growing to a known size allocates once.
    pub fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
        self.ids.reserve(n);
        self.digests.reserve(n);
        self.flags.reserve(n);
        if self.accounts_held {
            let ids = &self.ids;
            self.by_id.reserve(n, |&s| id_hash(&ids[s as usize]));
            self.account_ids.reserve(n);
            self.account_digests.reserve(n);
            self.effects.reserve(n);
        }
    }

    /// The email keys of the members, for validation ([`crate::validate::KnownRefs::over`]).
    pub fn keys(&self) -> &MemberKeys {
        &self.keys
    }

    /// Adds a member as the database holds it; returns its slot.
    pub fn add_existing(&mut self, m: &Member) -> usize {
        let slot = self.add(TextKey::email(&m.email), m.id, short(m.digest()));
        self.flags[slot] |= IN_DB;
        slot
    }

    /// The slot of the member with this key, adding it with this id and fingerprint if new.
    fn add(&mut self, key: TextKey, id: Uuid, digest: u64) -> usize {
        let (slot, new) = self.keys.insert(key);
        if new {
            self.ids.push(id);
            if self.digests.len() + 1 == self.ids.len() {
                self.digests.push(digest);
            }
            self.flags.push(0);
            if self.accounts_held {
                self.account_ids.push(Uuid::nil());
                if self.account_digests.len() + 1 == self.account_ids.len() {
                    self.account_digests.push(0);
                }
                self.effects.push(RunEffects::default());
                let ids = &self.ids;
                self.by_id
                    .insert_unique(id_hash(&id), slot32(slot), |&s| id_hash(&ids[s as usize]));
            }
        }
        slot
    }

    /// Makes the account half of the index (no account yet for any member, and the table of
    /// member ids accounts are found by), unless it exists. It is made after validation, which
    /// needs only the members, so validation's own per-member state and this half are never
    /// held at once.
    pub fn hold_accounts(&mut self) {
        if self.accounts_held {
            return;
        }
        self.accounts_held = true;
        let n = self.ids.len();
        self.account_ids = vec![Uuid::nil(); n];
        self.account_digests = vec![0; n];
        self.effects = vec![RunEffects::default(); n];
        self.by_id = HashTable::with_capacity(n);
        let ids = &self.ids;
        for (slot, id) in ids.iter().enumerate() {
            self.by_id
                .insert_unique(id_hash(id), slot32(slot), |&s| id_hash(&ids[s as usize]));
        }
    }

    fn slot(&self, email: &str) -> Option<usize> {
        self.keys.get(TextKey::email(email))
    }

    fn slot_of_id(&self, id: &Uuid) -> Option<usize> {
        let ids = &self.ids;
        self.by_id
            .find(id_hash(id), |&s| ids[s as usize] == *id)
            .map(|&s| s as usize)
    }

    /// The id of the member with this email, in the database or planned.
    pub fn id(&self, email: &str) -> Option<Uuid> {
        self.slot(email).map(|s| self.ids[s])
    }

    /// Whether the source's members file lists this email.
    pub fn in_file(&self, email: &str) -> bool {
        self.slot(email)
            .is_some_and(|s| self.flags[s] & IN_FILE != 0)
    }

    fn is_new(&self, email: &str) -> bool {
        self.slot(email)
            .is_some_and(|s| self.flags[s] & (IN_DB | IN_FILE) == IN_FILE)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids the plan gave to new members.
    pub fn new_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.flags
            .iter()
            .zip(&self.ids)
            .filter(|(f, _)| **f & (IN_DB | IN_FILE) == IN_FILE)
            .map(|(_, id)| *id)
    }

    /// Adds a capital account as the database holds it (its member must be in the index).
    pub fn add_existing_account(&mut self, a: &Account) -> Result<(), StoreError> {
        self.hold_accounts();
        let slot = self.slot_of_id(&a.member_id).ok_or_else(|| {
            StoreError::Other(format!(
                "capital account {} belongs to no member of the database",
                a.id
            ))
        })?;
        self.account_ids[slot] = a.id;
        self.account_digests[slot] = short(a.digest());
        Ok(())
    }

    /// The ids the plan gave to new accounts.
    pub fn new_account_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.effects
            .iter()
            .zip(&self.account_ids)
            .filter(|(e, _)| e.new_account)
            .map(|(_, id)| *id)
    }

    /// Whether the source's capital accounts file lists the member's account.
    pub fn account_in_file(&self, member_id: &Uuid) -> bool {
        self.slot_of_id(member_id)
            .is_some_and(|s| self.flags[s] & ACCOUNT_IN_FILE != 0)
    }

    /// What this run does to the member, for the opening balance rules (nothing known: default).
    pub fn effects(&self, member_id: &Uuid) -> RunEffects {
        self.slot_of_id(member_id)
            .map(|s| self.effects[s])
            .unwrap_or_default()
    }

    /// The member's slot and what this run does to it, if the index knows the member.
    pub fn effects_at(&self, member_id: &Uuid) -> Option<(usize, RunEffects)> {
        self.slot_of_id(member_id).map(|s| (s, self.effects[s]))
    }

    /// How many members this run may re-derive the opening balance of (an upper bound of what
    /// it stores, so the store can be sized once).
    pub fn rederivable(&self) -> usize {
        self.effects.iter().filter(|e| e.reason().is_some()).count()
    }

    /// Frees the fingerprints once members and accounts are planned: the writes and the checks
    /// after them need only ids and effects (16 bytes a member at a million members).
    pub fn forget_digests(&mut self) {
        self.digests = Vec::new();
        self.account_digests = Vec::new();
    }

    /// The id of the member at a slot.
    pub fn id_at(&self, slot: usize) -> Option<Uuid> {
        self.ids.get(slot).copied()
    }

    /// Notes that the run added (or removed) contributions of these members.
    pub fn mark(&mut self, members: impl IntoIterator<Item = Uuid>, added: bool) {
        for m in members {
            if let Some(s) = self.slot_of_id(&m) {
                if self.account_ids[s].is_nil() {
                    continue;
                }
                if added {
                    self.effects[s].contributions_added = true;
                } else {
                    self.effects[s].contributions_removed = true;
                }
            }
        }
    }

    /// Notes that the run added contributions to every member with an account.
    pub fn mark_all_added(&mut self) {
        for (e, id) in self.effects.iter_mut().zip(&self.account_ids) {
            if !id.is_nil() {
                e.contributions_added = true;
            }
        }
    }
}

/// A member id's hash for the id table: version 7 ids are random in their last 64 bits.
fn id_hash(id: &Uuid) -> u64 {
    let v = id.as_u128();
    crate::index::mix64((v as u64) ^ ((v >> 64) as u64))
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
        let key = TextKey::email(row.email.as_str());
        let detail = || format!("{} ({}, {})", row.display_name, row.role, row.status);
        let email = row.email.as_str();
        match index.keys.get(key) {
            None => {
                let member = member_of(&row, Uuid::now_v7());
                let digest = member.digest();
                plan.tally.source.add(digest);
                let slot = index.add(key, member.id, short(digest));
                index.flags[slot] |= IN_FILE;
                plan.tally.add(Action::Insert, row.line, email, detail);
            }
            Some(slot) => {
                let member = member_of(&row, index.ids[slot]);
                let digest = member.digest();
                plan.tally.source.add(digest);
                index.flags[slot] |= IN_FILE;
                if index.digests[slot] == short(digest) {
                    plan.tally.add(Action::Unchanged, row.line, email, detail);
                } else {
                    index.digests[slot] = short(digest);
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
    index: &mut MemberIndex,
) -> Result<AccountPlan, StoreError> {
    let mut plan = AccountPlan::default();
    index.hold_accounts();
    for row in rows {
        let email = row.member_email.as_str();
        let slot = index.slot(email).ok_or_else(|| member_not_found(email))?;
        let member_id = index.ids[slot];
        let detail = || format!("balance {} tax_basis {}", row.balance, row.tax_basis);
        index.flags[slot] |= ACCOUNT_IN_FILE;
        if index.account_ids[slot].is_nil() {
            let account = account_of(&row, Uuid::now_v7(), member_id);
            let digest = account.digest();
            plan.tally.source.add(digest);
            index.account_ids[slot] = account.id;
            index.account_digests[slot] = short(digest);
            index.effects[slot].new_account = true;
            plan.tally.add(Action::Insert, row.line, email, detail);
        } else {
            let account = account_of(&row, index.account_ids[slot], member_id);
            let digest = account.digest();
            plan.tally.source.add(digest);
            if index.account_digests[slot] == short(digest) {
                plan.tally.add(Action::Unchanged, row.line, email, detail);
            } else {
                index.account_digests[slot] = short(digest);
                plan.tally.add(Action::Update, row.line, email, detail);
                plan.update.push(account);
            }
        }
    }
    Ok(plan)
}

/// The accounts the plan found new, from a second pass over the file.
pub fn new_accounts<'a>(
    rows: impl Iterator<Item = CapitalAccountRow> + 'a,
    index: &'a MemberIndex,
) -> impl Iterator<Item = Account> + 'a {
    rows.filter_map(|r| {
        let slot = index.slot(r.member_email.as_str())?;
        index.effects[slot]
            .new_account
            .then(|| account_of(&r, index.account_ids[slot], index.ids[slot]))
    })
}

/// The change history of updated accounts, and notes in the index which members' balance or tax
/// basis changed (their opening balances are re-derived).
pub fn account_changes(
    old: &[Account],
    new: &[Account],
    emails: &HashMap<Uuid, String>,
    index: &mut MemberIndex,
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
            if let Some(s) = index.slot_of_id(&a.member_id) {
                index.effects[s].balance_changed = true;
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
