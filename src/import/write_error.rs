//! A database error while a run writes: which step and table, which source row where the database
//! names the failing row (PostgreSQL's "Failing row contains (…)"), and that nothing was imported.
//!
//! The tool generated every id it writes, so the ids in the database's failing row lead back to
//! the source: a member's id to its email, a capital account's member id to its `member_email`, a
//! contribution's member and period ids, type and amount to the first file row with those values.
//! The file is read again only when an error happened. SQLite names no row (a `CHECK` or a
//! trigger's message only), so there the step and the table are all that can be said.

use uuid::Uuid;

use crate::plan::{ContributionResolver, MemberIndex};
use crate::source::{SourceFile, Table};
use crate::store::StoreError;
use crate::validate;

/// The source row a database error was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub file: String,
    pub line: u64,
    /// What the row is about (an email), for the message.
    pub key: String,
}

impl std::fmt::Display for SourceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} ({})", self.file, self.line, self.key)
    }
}

/// The values of the database's failing row, when it says: `Failing row contains (a, b, …)`.
fn failing_row(message: &str) -> Option<Vec<&str>> {
    let start = message.find("Failing row contains (")? + "Failing row contains (".len();
    let rest = &message[start..];
    let end = rest.rfind(')')?;
    Some(rest[..end].split(", ").collect())
}

/// Where in `file` (of `table`) the row the database refused comes from, if the database says.
pub(super) fn locate(
    e: &StoreError,
    table: Table,
    file: &SourceFile,
    members: &MemberIndex,
    resolver: Option<&ContributionResolver<'_>>,
) -> Option<SourceRow> {
    let StoreError::Database { message, .. } = e else {
        return None;
    };
    let values = failing_row(message)?;
    let ids: Vec<Uuid> = values
        .iter()
        .filter_map(|v| Uuid::try_parse(v).ok())
        .collect();
    let at = |line: u64, key: &str| SourceRow {
        file: file.display.clone(),
        line,
        key: key.to_string(),
    };
    match table {
        Table::Members => validate::rows(file, validate::parse_member)
            .ok()?
            .find(|r| {
                members
                    .id(r.email.as_str())
                    .is_some_and(|id| ids.first() == Some(&id))
            })
            .map(|r| at(r.line, r.email.as_str())),
        Table::CapitalAccounts => validate::rows(file, validate::parse_capital_account)
            .ok()?
            .find(|r| {
                members
                    .id(r.member_email.as_str())
                    .is_some_and(|id| ids.get(1) == Some(&id))
            })
            .map(|r| at(r.line, r.member_email.as_str())),
        Table::Contributions => {
            // (id, member_id, period_id, contribution_type, amount, …)
            let (kind, amount) = (values.get(3)?, values.get(4)?);
            let resolver = resolver?;
            validate::rows(file, validate::parse_contribution)
                .ok()?
                .find(|r| {
                    resolver.resolve(r).is_ok_and(|s| {
                        ids.get(1) == Some(&s.values.member_id)
                            && ids.get(2) == Some(&s.values.period_id)
                            && s.values.contribution_type.as_str() == *kind
                            && s.values.amount.to_string() == *amount
                    })
                })
                .map(|r| at(r.line, r.member_email.as_str()))
        }
        Table::Periods => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_row_is_read_from_postgresql_detail() {
        let message = "new row for relation \"members\" violates check constraint \"no_bob\" (constraint no_bob): Failing row contains (01a21e48-a454-76c9-b3e6-01046b19f3da, daniel.reyes@example.org, null, Daniel Reyes).";
        assert_eq!(
            failing_row(message),
            Some(vec![
                "01a21e48-a454-76c9-b3e6-01046b19f3da",
                "daniel.reyes@example.org",
                "null",
                "Daniel Reyes"
            ])
        );
        assert_eq!(failing_row("CHECK constraint failed: no_bob"), None);
    }
}
