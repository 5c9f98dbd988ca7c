//! The plan: every source row classified as insert, update or unchanged against the database.
//!
//! Periods, members and capital accounts are small (one row per member at most), so they are
//! compared in memory with what the database holds and every changed column becomes a [`Change`]
//! for the history. Contributions can be millions of rows: here they are only resolved to ids
//! ([`ContributionResolver`]); the store stages them and matches them in bulk against the tool's
//! earlier imports (see `store::sql`).

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::{PeriodStatus, format_instant};
use crate::model::{Change, ContributionValues, StagedContribution};
use crate::store::{DbAccount, DbMember, DbPeriod, StoreError, TableCounts};
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
    /// Whether applying the plan writes anything.
    pub fn writes(&self) -> bool {
        !self.insert.is_empty() || !self.update.is_empty()
    }

    pub fn counts(&self) -> TableCounts {
        TableCounts {
            inserted: self.insert.len() as u64,
            updated: self.update.len() as u64,
            unchanged: self.unchanged,
            deleted: 0,
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

/// Turns validated contribution rows into rows for the store: member and period resolved to ids,
/// a new id in case the row is new, the row's fingerprint.
pub struct ContributionResolver {
    member_ids: HashMap<String, Uuid>,
    period_ids: HashMap<String, Uuid>,
}

impl ContributionResolver {
    pub fn new(member_ids: HashMap<String, Uuid>, period_ids: HashMap<String, Uuid>) -> Self {
        ContributionResolver {
            member_ids,
            period_ids,
        }
    }

    /// The row for the store; `Err` names a reference that validation should have caught.
    pub fn resolve(&self, row: &ContributionRow) -> Result<StagedContribution, StoreError> {
        let email = row.member_email.as_str();
        let member_id = *self
            .member_ids
            .get(email)
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

    fn resolver() -> ContributionResolver {
        ContributionResolver::new(
            [("ada@example.org".to_string(), Uuid::from_u128(1))].into(),
            [("Q1 2026".to_string(), Uuid::from_u128(2))].into(),
        )
    }

    #[test]
    fn rows_resolve_to_ids_and_fingerprints() {
        let staged = resolver().resolve(&row(100, ContributionStatus::Pending));
        let Ok(staged) = staged else {
            panic!("resolves: {staged:?}")
        };
        assert_eq!(staged.values.member_id, Uuid::from_u128(1));
        assert_eq!(staged.values.period_id, Uuid::from_u128(2));
        assert_eq!(staged.digest, staged.values.digest());
        let other = resolver().resolve(&row(100, ContributionStatus::Approved));
        assert_ne!(other.map(|o| o.digest).ok(), Some(staged.digest));
    }

    #[test]
    fn an_unknown_member_is_an_error_not_a_panic() {
        let r = ContributionResolver::new(HashMap::new(), HashMap::new());
        assert!(r.resolve(&row(100, ContributionStatus::Pending)).is_err());
    }
}
