//! Member capital statements: one [`Document`] per member with that member's figures and no one
//! else's — book balance and tax basis, the opening balance the import derived, approved capital
//! and property contributions by period, labor contributions (patronage, not capital),
//! allocations, and the reconciliation of the balance against them. What "the member dashboard
//! shows correct data" means, checkable before anyone logs in.
//!
//! Read through typed [`Store`] calls on either backend; nothing here computes a rule of its own:
//! the reconciliation is [`crate::balances::reconcile`], as `verify` applies it.

use std::collections::HashMap;

use jiff::Timestamp;
use uuid::Uuid;

use super::document::{Block, Cell, CheckLine, Column, Document, Mark, Table};
use super::signoff::ReportError;
use crate::balances::{self, Verdict};
use crate::domain::{AllocationStatus, ContributionStatus, ContributionType, format_instant};
use crate::model::{Account, Member, MemberAllocation, MemberContribution, MemberTotals};
use crate::money::Money;
use crate::store::Store;

/// One member's statement, with the file name it is written under.
pub struct Statement {
    pub email: String,
    /// `maya.okonkwo@example.org`: the email, with anything but letters, digits, `.`, `-`, `_`
    /// and `@` replaced by `_` (an email is unique, so the names are too).
    pub file_stem: String,
    pub document: Document,
}

/// The statements of every member, or of the one whose email is `member` (ignoring case), in
/// email order, handed to `each` one at a time (a large co-op's statements are never all in
/// memory at once).
pub fn for_each_statement(
    store: &mut dyn Store,
    member: Option<&str>,
    now: Timestamp,
    each: &mut dyn FnMut(Statement) -> Result<(), ReportError>,
) -> Result<usize, ReportError> {
    let mut members = Vec::new();
    store.for_each_member(&mut |m| {
        if member.is_none_or(|e| e.eq_ignore_ascii_case(&m.email)) {
            members.push(m);
        }
        Ok(())
    })?;
    if let (Some(email), true) = (member, members.is_empty()) {
        return Err(ReportError::NoSuchMember(email.to_string()));
    }
    members.sort_by(|a, b| a.email.cmp(&b.email));
    let wanted: std::collections::HashSet<Uuid> = members.iter().map(|m| m.id).collect();
    let mut totals: HashMap<Uuid, MemberTotals> = HashMap::new();
    store.for_each_member_totals(&mut |t| {
        if wanted.contains(&t.member_id) {
            totals.insert(t.member_id, t);
        }
        Ok(())
    })?;
    let mut accounts: HashMap<Uuid, Account> = HashMap::new();
    store.for_each_account(&mut |a| {
        if wanted.contains(&a.member_id) {
            accounts.insert(a.member_id, a);
        }
        Ok(())
    })?;
    let count = members.len();
    for m in members {
        let contributions = store.member_contributions(m.id)?;
        let allocations = store.member_allocations(m.id)?;
        let figures = Figures {
            totals: totals.remove(&m.id),
            account: accounts.remove(&m.id),
            contributions,
            allocations,
        };
        each(Statement {
            file_stem: file_stem(&m.email),
            email: m.email.clone(),
            document: statement(&m, &figures, now),
        })?;
    }
    Ok(count)
}

/// A safe file name for a member's statement.
pub fn file_stem(email: &str) -> String {
    let stem: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    // Never `.` or `..`, never hidden.
    format!("statement_{stem}")
}

/// Everything the store holds about one member's capital.
pub struct Figures {
    pub totals: Option<MemberTotals>,
    pub account: Option<Account>,
    pub contributions: Vec<MemberContribution>,
    pub allocations: Vec<MemberAllocation>,
}

fn sum(mut amounts: impl Iterator<Item = Money>) -> String {
    amounts
        .try_fold(Money::ZERO, Money::checked_add)
        .map_or_else(|| "overflow".to_string(), |m| m.to_string())
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// One member's statement.
pub fn statement(member: &Member, f: &Figures, now: Timestamp) -> Document {
    let name = member
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| member.email.clone());
    let mut blocks = vec![Block::Facts(vec![
        ("Member".into(), name.clone()),
        ("Email".into(), member.email.clone()),
        (
            "Role, status".into(),
            format!("{}, {}", member.role, member.status),
        ),
        ("Joined".into(), day(member.joined_at)),
    ])];
    capital_account(&mut blocks, f);
    capital_contributions(&mut blocks, &f.contributions);
    labor(&mut blocks, &f.contributions);
    allocations(&mut blocks, &f.allocations);
    blocks.push(Block::Note(
        "This statement shows only this member's records, as the Habitat database held them when it was made. Questions: ask the co-op's treasurer."
            .into(),
    ));
    Document {
        title: format!("Capital account statement — {name}"),
        subtitle: format!("{} · as of {}", member.email, format_instant(now)),
        blocks,
    }
}

fn capital_account(blocks: &mut Vec<Block>, f: &Figures) {
    blocks.push(Block::Heading("Capital account".into()));
    let (Some(t), account) = (&f.totals, &f.account) else {
        blocks.push(Block::Paragraph(
            "This member has no capital account in the database.".into(),
        ));
        return;
    };
    let verdict = balances::reconcile(t, false);
    let (lines, mark) = match &verdict {
        Verdict::Reconciled(lines) => (Some(lines), Mark::Pass),
        Verdict::Differs(lines) => (Some(lines), Mark::Fail),
        Verdict::NoBaseline => (None, Mark::Warn),
        Verdict::Unreadable => (None, Mark::Fail),
    };
    let figure = |m: Money| Cell::from(m.to_string());
    let mut rows = vec![vec![
        "Book balance and tax basis now".into(),
        figure(t.balance),
        figure(t.tax_basis),
    ]];
    if let Some([balance, basis]) = lines {
        let difference = |m: Money| {
            let text = if m.is_negative() || m == Money::ZERO {
                m.to_string()
            } else {
                format!("+{m}")
            };
            if m == Money::ZERO {
                Cell::from(text)
            } else {
                Cell::flagged(text)
            }
        };
        rows.extend([
            vec![
                "Opening balance (before the imported records)".into(),
                figure(balance.opening),
                figure(basis.opening),
            ],
            vec![
                "+ approved capital and property contributions".into(),
                figure(balance.contributions),
                figure(basis.contributions),
            ],
            vec![
                "+ distributed allocations".into(),
                figure(balance.allocations),
                figure(basis.allocations),
            ],
            vec![
                "= expected".into(),
                figure(balance.expected),
                figure(basis.expected),
            ],
            vec![
                "Difference (now − expected)".into(),
                difference(balance.difference),
                difference(basis.difference),
            ],
        ]);
    }
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text(""),
            Column::figure("book balance"),
            Column::figure("tax basis"),
        ],
        rows,
        footer: None,
        note: Some(
            "Labor contributions earn patronage and are not capital, so they are not in the balance. An allocation is credited to the balance when it is distributed."
                .into(),
        ),
    }));
    let text = match (&verdict, mark) {
        (Verdict::Reconciled(_), _) => {
            "The balance and the tax basis reconcile with the records".to_string()
        }
        (Verdict::Differs(_), _) => {
            "The balance or the tax basis differs from the records (highlighted)".to_string()
        }
        (Verdict::NoBaseline, _) => "No opening balance was recorded for this account, so it cannot be reconciled (it was not imported by habitat-migrate)".to_string(),
        (Verdict::Unreadable, _) => "The amounts overflow and cannot be reconciled".to_string(),
    };
    let mut checks = vec![CheckLine {
        mark,
        text,
        detail: None,
    }];
    if t.balance != t.tax_basis {
        checks.push(CheckLine {
            mark: Mark::Warn,
            text: format!(
                "Book balance {} differs from tax basis {}",
                t.balance, t.tax_basis
            ),
            detail: Some(
                account
                    .as_ref()
                    .and_then(|a| a.notes.clone())
                    .map_or_else(|| "no note on the account".into(), |n| format!("note: {n}")),
            ),
        });
    } else if let Some(note) = account.as_ref().and_then(|a| a.notes.clone()) {
        checks.push(CheckLine {
            mark: Mark::Pass,
            text: "Book balance equals tax basis".into(),
            detail: Some(format!("note: {note}")),
        });
    }
    blocks.push(Block::Checks(checks));
}

fn status_cell(c: &MemberContribution) -> Cell {
    match (c.status, c.approved_at) {
        (ContributionStatus::Approved, Some(at)) => format!("approved {}", day(at)).into(),
        (status, _) => status.to_string().into(),
    }
}

fn capital_contributions(blocks: &mut Vec<Block>, all: &[MemberContribution]) {
    blocks.push(Block::Heading(
        "Capital and property contributions by period".into(),
    ));
    let capital: Vec<&MemberContribution> = all
        .iter()
        .filter(|c| c.contribution_type != ContributionType::Labor)
        .collect();
    if capital.is_empty() {
        blocks.push(Block::Paragraph(
            "No capital or property contribution is recorded.".into(),
        ));
        return;
    }
    // Approved amounts per period (in period order), then every line with its status.
    let mut periods: Vec<(String, Money, Money)> = Vec::new();
    for c in capital
        .iter()
        .filter(|c| c.status == ContributionStatus::Approved)
    {
        if periods.last().is_none_or(|p| p.0 != c.period_name) {
            periods.push((c.period_name.clone(), Money::ZERO, Money::ZERO));
        }
        if let Some(p) = periods.last_mut() {
            let slot = if c.contribution_type == ContributionType::Capital {
                &mut p.1
            } else {
                &mut p.2
            };
            *slot = slot.checked_add(c.amount).unwrap_or(*slot);
        }
    }
    let approved = |t: ContributionType| {
        sum(capital
            .iter()
            .filter(|c| c.status == ContributionStatus::Approved && c.contribution_type == t)
            .map(|c| c.amount))
    };
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("period"),
            Column::figure("capital (approved)"),
            Column::figure("property (approved)"),
            Column::figure("total"),
        ],
        rows: periods
            .iter()
            .map(|(name, capital, property)| {
                vec![
                    name.as_str().into(),
                    capital.to_string().into(),
                    property.to_string().into(),
                    sum([*capital, *property].into_iter()).into(),
                ]
            })
            .collect(),
        footer: Some(vec![
            "total".into(),
            approved(ContributionType::Capital).into(),
            approved(ContributionType::Property).into(),
            sum(capital
                .iter()
                .filter(|c| c.status == ContributionStatus::Approved)
                .map(|c| c.amount))
            .into(),
        ]),
        note: None,
    }));
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("period"),
            Column::text("type"),
            Column::figure("amount"),
            Column::text("status"),
            Column::text("description"),
        ],
        rows: capital
            .iter()
            .map(|c| {
                vec![
                    c.period_name.as_str().into(),
                    c.contribution_type.to_string().into(),
                    c.amount.to_string().into(),
                    status_cell(c),
                    c.description.as_deref().unwrap_or("").into(),
                ]
            })
            .collect(),
        footer: None,
        note: Some(
            "Only approved contributions count in the balance; pending and rejected ones are listed for completeness."
                .into(),
        ),
    }));
}

fn labor(blocks: &mut Vec<Block>, all: &[MemberContribution]) {
    blocks.push(Block::Heading(
        "Labor contributions (patronage, not capital)".into(),
    ));
    let labor: Vec<&MemberContribution> = all
        .iter()
        .filter(|c| c.contribution_type == ContributionType::Labor)
        .collect();
    if labor.is_empty() {
        blocks.push(Block::Paragraph(
            "No labor contribution is recorded.".into(),
        ));
        return;
    }
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("period"),
            Column::figure("amount"),
            Column::text("status"),
            Column::text("description"),
        ],
        rows: labor
            .iter()
            .map(|c| {
                vec![
                    c.period_name.as_str().into(),
                    c.amount.to_string().into(),
                    status_cell(c),
                    c.description.as_deref().unwrap_or("").into(),
                ]
            })
            .collect(),
        footer: Some(vec![
            "approved total".into(),
            sum(labor
                .iter()
                .filter(|c| c.status == ContributionStatus::Approved)
                .map(|c| c.amount))
            .into(),
            "".into(),
            "".into(),
        ]),
        note: Some(
            "Labor earns a share of each period's allocation (patronage); it does not add to the capital account."
                .into(),
        ),
    }));
}

fn allocations(blocks: &mut Vec<Block>, all: &[MemberAllocation]) {
    blocks.push(Block::Heading("Allocations".into()));
    if all.is_empty() {
        blocks.push(Block::Paragraph("No allocation is recorded.".into()));
        return;
    }
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("period"),
            Column::figure("patronage score"),
            Column::figure("amount"),
            Column::text("status"),
        ],
        rows: all
            .iter()
            .map(|a| {
                vec![
                    a.period_name.as_str().into(),
                    a.patronage_score.to_string().into(),
                    a.amount.to_string().into(),
                    a.status.to_string().into(),
                ]
            })
            .collect(),
        footer: Some(vec![
            "distributed total".into(),
            "".into(),
            sum(all
                .iter()
                .filter(|a| a.status == AllocationStatus::Distributed)
                .map(|a| a.amount))
            .into(),
            "".into(),
        ]),
        note: Some(
            "A calculated allocation is credited to the capital account when it is distributed."
                .into(),
        ),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(
            file_stem("Maya.Okonkwo@example.org"),
            "statement_maya.okonkwo@example.org"
        );
        assert_eq!(
            file_stem("../x/y@example.org"),
            "statement_.._x_y@example.org"
        );
        assert!(!file_stem("a/b\\c").contains(['/', '\\']));
    }
}
