//! The plan: every source row classified as insert, update or unchanged against the database.
//!
//! Periods, members and capital accounts are small (one row per member at most), so they are
//! compared in memory with what the database holds and every changed column becomes a [`Change`]
//! for the history. Contributions can be millions of rows: they are keyed here ([`ContributionKeyer`])
//! and classified by the store in bulk against the tool's import keys.
//!
//! The import key of a contribution is a hash of what identifies it — member, period, type, amount,
//! description — plus its occurrence number among identical rows of the file. Re-importing the same
//! file finds the same keys (no duplicates); two genuinely identical rows get keys `…#0` and `…#1`
//! and both exist; a change of status or approval date is an update of the same contribution.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::{PeriodStatus, format_instant};
use crate::store::{
    Change, DbAccount, DbMember, DbPeriod, NewContribution, StoreError, TableCounts,
};
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

/// The plan for one small table.
#[derive(Clone, Debug)]
pub struct TablePlan<T> {
    pub insert: Vec<T>,
    pub update: Vec<T>,
    pub unchanged: u64,
    pub changes: Vec<Change>,
    pub samples: Vec<Sample>,
}

impl<T> Default for TablePlan<T> {
    fn default() -> Self {
        TablePlan {
            insert: Vec::new(),
            update: Vec::new(),
            unchanged: 0,
            changes: Vec::new(),
            samples: Vec::new(),
        }
    }
}

impl<T> TablePlan<T> {
    pub fn counts(&self) -> TableCounts {
        TableCounts {
            inserted: self.insert.len() as u64,
            updated: self.update.len() as u64,
            unchanged: self.unchanged,
        }
    }

    fn add(&mut self, action: Action, row: T, line: u64, key: &str, detail: String) {
        if self.samples.len() < SAMPLES {
            self.samples.push(Sample {
                action: Some(action),
                line,
                key: key.to_string(),
                detail,
            });
        }
        match action {
            Action::Insert => self.insert.push(row),
            Action::Update => self.update.push(row),
            Action::Unchanged => self.unchanged += 1,
        }
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

pub fn plan_periods(rows: Vec<PeriodRow>, existing: Vec<DbPeriod>) -> TablePlan<DbPeriod> {
    let mut by_name: HashMap<String, DbPeriod> =
        existing.into_iter().map(|p| (p.name.clone(), p)).collect();
    let mut plan = TablePlan::default();
    for row in rows {
        let old = by_name.remove(&row.name);
        let status = match (row.status, &old) {
            (Some(s), _) => s.as_str().to_string(),
            (None, Some(o)) => o.status.clone(),
            (None, None) => PeriodStatus::Open.as_str().to_string(),
        };
        let detail = format!(
            "{} .. {} {}",
            row.start_date.strftime("%Y-%m-%d"),
            row.end_date.strftime("%Y-%m-%d"),
            status
        );
        let target = DbPeriod {
            id: Uuid::now_v7(),
            name: row.name.clone(),
            description: row.description.clone(),
            start_date: row.start_date,
            end_date: row.end_date,
            status,
        };
        match old {
            None => plan.add(Action::Insert, target, row.line, &row.name, detail),
            Some(old) => {
                let mut d = Diff {
                    table: "allocation_periods",
                    row_id: old.id,
                    key: &row.name,
                    changes: Vec::new(),
                };
                d.field(
                    "description",
                    old.description.clone(),
                    target.description.clone(),
                );
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
                    Some(old.status.clone()),
                    Some(target.status.clone()),
                );
                let action = if d.changes.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update
                };
                plan.changes.extend(d.changes);
                let row_out = DbPeriod {
                    id: old.id,
                    ..target
                };
                plan.add(action, row_out, row.line, &row.name, detail);
            }
        }
    }
    plan
}

pub fn plan_members(rows: Vec<MemberRow>, existing: Vec<DbMember>) -> TablePlan<DbMember> {
    let mut by_email: HashMap<String, DbMember> = existing
        .into_iter()
        .map(|m| (m.email.to_lowercase(), m))
        .collect();
    let mut plan = TablePlan::default();
    for row in rows {
        let key = row.email.as_str().to_string();
        let detail = format!("{} ({}, {})", row.display_name, row.role, row.status);
        let target = DbMember {
            id: Uuid::now_v7(),
            email: key.clone(),
            display_name: Some(row.display_name.clone()),
            ens_name: row.ens_name.clone(),
            role: row.role.as_str().to_string(),
            status: row.status.as_str().to_string(),
            joined_at: row.joined_at,
        };
        match by_email.remove(&key) {
            None => plan.add(Action::Insert, target, row.line, &key, detail),
            Some(old) => {
                let mut d = Diff {
                    table: "members",
                    row_id: old.id,
                    key: &key,
                    changes: Vec::new(),
                };
                d.field("email", Some(old.email.clone()), Some(target.email.clone()));
                d.field(
                    "display_name",
                    old.display_name.clone(),
                    target.display_name.clone(),
                );
                d.field("ens_name", old.ens_name.clone(), target.ens_name.clone());
                d.field("role", Some(old.role.clone()), Some(target.role.clone()));
                d.field(
                    "status",
                    Some(old.status.clone()),
                    Some(target.status.clone()),
                );
                d.field(
                    "joined_at",
                    Some(format_instant(old.joined_at)),
                    Some(format_instant(target.joined_at)),
                );
                let action = if d.changes.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update
                };
                plan.changes.extend(d.changes);
                plan.add(
                    action,
                    DbMember {
                        id: old.id,
                        ..target
                    },
                    row.line,
                    &key,
                    detail,
                );
            }
        }
    }
    plan
}

/// Lower-case email → member id, for the database's members and the planned new ones.
pub fn member_ids(existing: &[DbMember], planned: &TablePlan<DbMember>) -> HashMap<String, Uuid> {
    existing
        .iter()
        .map(|m| (m.email.to_lowercase(), m.id))
        .chain(planned.insert.iter().map(|m| (m.email.clone(), m.id)))
        .collect()
}

pub fn plan_accounts(
    rows: Vec<CapitalAccountRow>,
    existing: Vec<DbAccount>,
    member_ids: &HashMap<String, Uuid>,
) -> Result<TablePlan<DbAccount>, StoreError> {
    let mut by_member: HashMap<Uuid, DbAccount> =
        existing.into_iter().map(|a| (a.member_id, a)).collect();
    let mut plan = TablePlan::default();
    for row in rows {
        let key = row.member_email.as_str().to_string();
        let member_id = *member_ids.get(&key).ok_or_else(|| {
            StoreError::Other(format!(
                "Member not found: {key} (import members before capital accounts)"
            ))
        })?;
        let detail = format!("balance {} tax_basis {}", row.balance, row.tax_basis);
        let target = DbAccount {
            id: Uuid::now_v7(),
            member_id,
            balance: row.balance,
            tax_basis: row.tax_basis,
            notes: row.notes.clone(),
        };
        match by_member.remove(&member_id) {
            None => plan.add(Action::Insert, target, row.line, &key, detail),
            Some(old) => {
                let mut d = Diff {
                    table: "capital_accounts",
                    row_id: old.id,
                    key: &key,
                    changes: Vec::new(),
                };
                d.field(
                    "balance",
                    Some(old.balance.to_string()),
                    Some(target.balance.to_string()),
                );
                d.field(
                    "tax_basis",
                    Some(old.tax_basis.to_string()),
                    Some(target.tax_basis.to_string()),
                );
                d.field("notes", old.notes.clone(), target.notes.clone());
                let action = if d.changes.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update
                };
                plan.changes.extend(d.changes);
                plan.add(
                    action,
                    DbAccount {
                        id: old.id,
                        ..target
                    },
                    row.line,
                    &key,
                    detail,
                );
            }
        }
    }
    Ok(plan)
}

/// A contribution's import key: the hash of what identifies it and its occurrence number among
/// identical rows. Sixteen bytes and a counter in memory; `<32 hex digits>#<n>` in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImportKey {
    identity: u128,
    occurrence: u32,
}

impl ImportKey {
    /// A 64-bit digest for membership tests over a million keys (8 bytes instead of 32). A false
    /// match could only make a read-back fail, never pass.
    pub fn fingerprint(&self) -> u64 {
        ((self.identity >> 64) as u64)
            ^ (self.identity as u64)
            ^ u64::from(self.occurrence).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Reads the database form back.
    pub fn parse(text: &str) -> Option<ImportKey> {
        let (hex, n) = text.split_once('#')?;
        Some(ImportKey {
            identity: u128::from_str_radix(hex, 16).ok()?,
            occurrence: n.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ImportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}#{}", self.identity, self.occurrence)
    }
}

/// Turns contribution rows into keyed rows with resolved ids, counting identical rows.
pub struct ContributionKeyer {
    member_ids: HashMap<String, Uuid>,
    period_ids: HashMap<String, Uuid>,
    /// Occurrences so far, by the first 64 bits of the identity: half the memory of the full
    /// hash for a million rows. A 64-bit collision within one file (odds about 1 in 10^7 at a
    /// billion rows) would only interleave two identities' occurrence numbers, the same way on
    /// every re-run of that file.
    seen: HashMap<u64, u32>,
}

impl ContributionKeyer {
    pub fn new(member_ids: HashMap<String, Uuid>, period_ids: HashMap<String, Uuid>) -> Self {
        ContributionKeyer {
            member_ids,
            period_ids,
            seen: HashMap::new(),
        }
    }

    /// A keyer that only computes keys (for the read-back proof).
    pub fn for_keys_only() -> Self {
        ContributionKeyer::new(HashMap::new(), HashMap::new())
    }

    /// The keyed row; `Err` names a reference that validation should have caught.
    pub fn key(&mut self, row: &ContributionRow) -> Result<NewContribution, StoreError> {
        let email = row.member_email.as_str();
        let member_id = *self
            .member_ids
            .get(email)
            .ok_or_else(|| StoreError::Other(format!("Member not found: {email}")))?;
        let period_id = *self
            .period_ids
            .get(&row.period_name)
            .ok_or_else(|| StoreError::Other(format!("Period not found: {}", row.period_name)))?;
        Ok(NewContribution {
            import_key: self.key_only(row),
            id: Uuid::now_v7(),
            member_id,
            period_id,
            contribution_type: row.contribution_type.as_str(),
            amount: row.amount,
            description: row.description.clone(),
            status: row.status.as_str(),
            approved_at: row.approved_at,
        })
    }

    /// The import key of the next row, counting identical rows seen so far.
    pub fn key_only(&mut self, row: &ContributionRow) -> ImportKey {
        let email = row.member_email.as_str();
        let mut h = Sha256::new();
        for part in [
            email,
            &row.period_name,
            row.contribution_type.as_str(),
            &row.amount.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        match &row.description {
            Some(d) => {
                h.update([b'=']);
                h.update(d.as_bytes());
            }
            None => h.update([0]),
        }
        let digest = h.finalize();
        let mut identity = [0u8; 16];
        identity.copy_from_slice(&digest[..16]);
        let identity = u128::from_be_bytes(identity);
        let n = self.seen.entry((identity >> 64) as u64).or_insert(0);
        let occurrence = *n;
        *n += 1;
        ImportKey {
            identity,
            occurrence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContributionStatus, ContributionType, Email};
    use crate::money::Money;

    fn row(amount: i64, status: ContributionStatus) -> ContributionRow {
        ContributionRow {
            line: 2,
            member_email: Email::parse("ada@example.org").unwrap_or_else(|_| unreachable!()),
            period_name: "Q1 2026".into(),
            contribution_type: ContributionType::Labor,
            amount: Money::from_cents(amount),
            description: Some("work".into()),
            status,
            approved_at: None,
        }
    }

    fn keyer() -> ContributionKeyer {
        ContributionKeyer::new(
            [("ada@example.org".to_string(), Uuid::nil())].into(),
            [("Q1 2026".to_string(), Uuid::nil())].into(),
        )
    }

    #[test]
    fn identical_rows_get_distinct_stable_keys() {
        let mut k = keyer();
        let a = k
            .key(&row(100, ContributionStatus::Pending))
            .map(|c| c.import_key);
        let b = k
            .key(&row(100, ContributionStatus::Pending))
            .map(|c| c.import_key);
        assert_ne!(a.as_ref().ok(), b.as_ref().ok());
        let mut again = keyer();
        assert_eq!(
            again
                .key(&row(100, ContributionStatus::Pending))
                .map(|c| c.import_key)
                .ok(),
            a.ok()
        );
        assert_eq!(
            again
                .key(&row(100, ContributionStatus::Pending))
                .map(|c| c.import_key)
                .ok(),
            b.ok()
        );
    }

    #[test]
    fn keys_round_trip_through_text() {
        let key = keyer().key_only(&row(100, ContributionStatus::Pending));
        let text = key.to_string();
        assert_eq!(text.len(), 34);
        assert!(text.ends_with("#0"));
        assert_eq!(ImportKey::parse(&text), Some(key));
        assert_eq!(ImportKey::parse("zz#0"), None);
    }

    #[test]
    fn status_is_not_part_of_the_key_but_amount_is() {
        let mut k1 = keyer();
        let mut k2 = keyer();
        let pending = k1
            .key(&row(100, ContributionStatus::Pending))
            .map(|c| c.import_key)
            .ok();
        let approved = k2
            .key(&row(100, ContributionStatus::Approved))
            .map(|c| c.import_key)
            .ok();
        assert_eq!(pending, approved);
        let other = keyer()
            .key(&row(101, ContributionStatus::Pending))
            .map(|c| c.import_key)
            .ok();
        assert_ne!(pending, other);
    }
}
