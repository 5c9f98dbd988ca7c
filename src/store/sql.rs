//! The SQL both backends run, written once.
//!
//! Deciding which source contributions are new, which match an earlier import, which earlier
//! imports the source no longer lists, and what a member's totals are, is set-based SQL that
//! PostgreSQL and SQLite both understand (`UPDATE … FROM`, window functions, `IS DISTINCT FROM`,
//! `INSERT … ON CONFLICT`). It lives here, once, and runs through [`SqlConn`], the small interface
//! each backend implements: execute a statement, stream a query's rows, and decode a column as a
//! domain value. The rules that are not SQL (what the change history says, how an opening balance
//! is derived) stay in Rust, in [`crate::model`] and [`crate::balances`]; this module only moves
//! rows. Nothing here is visible outside `store`: the pipeline speaks [`super::Store`].
//!
//! Table names of the tool's own bookkeeping are written `{tool}name` and become
//! `habitat_migrate.name` on PostgreSQL and `hm_name` on SQLite. Parameters are written `$1`,
//! `$2`, … in order of first use, which both drivers bind by position.

use std::collections::HashSet;

use jiff::Timestamp;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{ContributionStatus, ContributionType};
use crate::model::{
    Change, ContributionUpdate, ContributionValues, MemberTotals, MissingContribution, Opening,
    Replacement, RowDigest,
};
use crate::money::Money;

/// A parameter or a bulk-inserted value, as a domain value; each backend maps it to its type.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Uuid(Uuid),
    Money(Money),
    Time(Timestamp),
}

/// One row of a query, decoded column by column into domain values.
pub(crate) trait ReadRow {
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// An amount (a money column or a sum of one), exact or an error, never rounded.
    fn opt_money(&self, i: usize) -> Result<Option<Money>, StoreError>;
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError>;
    fn opt_digest(&self, i: usize) -> Result<Option<RowDigest>, StoreError>;

    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        self.opt_uuid(i)?.ok_or_else(|| null(i))
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or_else(|| null(i))
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| null(i))
    }
    fn money(&self, i: usize) -> Result<Money, StoreError> {
        self.opt_money(i)?.ok_or_else(|| null(i))
    }
    fn contribution_type(&self, i: usize) -> Result<ContributionType, StoreError> {
        let t = self.text(i)?;
        ContributionType::parse(&t).ok_or_else(|| unknown_label(&t))
    }
    fn contribution_status(&self, i: usize) -> Result<ContributionStatus, StoreError> {
        let t = self.text(i)?;
        ContributionStatus::parse(&t).ok_or_else(|| unknown_label(&t))
    }
}

fn null(i: usize) -> StoreError {
    StoreError::Database {
        context: "reading a row".into(),
        message: format!("column {i} is NULL where a value is required"),
    }
}

fn unknown_label(text: &str) -> StoreError {
    StoreError::Database {
        context: "reading a row".into(),
        message: format!("unknown enum label {text:?}"),
    }
}

/// What a backend offers the shared SQL.
pub(crate) trait SqlConn {
    /// `habitat_migrate.` or `hm_`: replaces `{tool}` in the statements below.
    const TOOL: &'static str;

    fn execute(&mut self, context: &str, sql: &str, params: &[Value]) -> Result<u64, StoreError>;

    /// Streams the rows of a query; the callback may stop the stream by returning an error.
    fn query(
        &mut self,
        context: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(&dyn ReadRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Creates (empty) the temporary table `hm_stage`: a source row (`line` and the contribution's
    /// columns) with the id it gets if new, its fingerprint `row_digest`, and `existing_id`, the
    /// earlier import it matches once matched.
    fn create_stage(&mut self) -> Result<(), StoreError>;

    /// Bulk-inserts contributions into `hm_stage` or, with their bookkeeping, straight into
    /// `contributions` (PostgreSQL: binary `COPY`; SQLite: one prepared statement).
    fn insert_contributions(
        &mut self,
        target: ContributionTarget,
        rows: &mut dyn Iterator<Item = crate::model::StagedContribution>,
    ) -> Result<u64, StoreError>;

    /// Bulk-inserts rows of domain values into a table.
    fn insert_rows(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, StoreError>;

    /// The statement with `{tool}` resolved.
    fn sql(text: &str) -> String {
        text.replace("{tool}", Self::TOOL)
    }
}

/// Where [`SqlConn::insert_contributions`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContributionTarget {
    Stage,
    /// Straight into `contributions` and `{tool}imported_contributions` under this run.
    Final {
        run_id: i64,
    },
}

pub(crate) fn count<C: SqlConn>(c: &mut C, context: &str, sql: &str) -> Result<u64, StoreError> {
    let mut n = 0;
    c.query(context, &C::sql(sql), &[], &mut |r| {
        n = u64::try_from(r.int(0)?).unwrap_or(0);
        Ok(())
    })?;
    Ok(n)
}

fn uuids<C: SqlConn>(c: &mut C, context: &str, sql: &str) -> Result<Vec<Uuid>, StoreError> {
    let mut out = Vec::new();
    c.query(context, &C::sql(sql), &[], &mut |r| {
        out.push(r.uuid(0)?);
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn has_imported_contributions<C: SqlConn>(c: &mut C) -> Result<bool, StoreError> {
    Ok(count(
        c,
        "planning contributions",
        "SELECT count(*) FROM (SELECT 1 FROM {tool}imported_contributions LIMIT 1) x",
    )? > 0)
}

/// How the staged rows relate to what the tool imported before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StagedCounts {
    /// Source rows no earlier import matches.
    pub new: u64,
    /// Source rows that match an earlier import.
    pub matched: u64,
    /// Of those, the ones whose status or approval date changes.
    pub changed: u64,
    /// Earlier imports in covered (member, period) pairs that no source row matches.
    pub missing: u64,
}

/// A source row matches an earlier import of the tool with the same member, period, type, amount
/// and description, paired by rank among identical rows (file order on one side, id order — which
/// is import order, the ids being time-ordered — on the other), so two identical rows in the file
/// match two identical earlier imports and a third is new. Only (member, period) pairs the file
/// covers are looked at: a file per quarter leaves the other quarters alone.
const MATCH: &str = "
UPDATE hm_stage SET existing_id = m.id
FROM (
  SELECT s.line, e.id
  FROM (SELECT line, member_id, period_id, contribution_type, amount,
               coalesce(description, '') AS d, description IS NULL AS dn,
               row_number() OVER (PARTITION BY member_id, period_id, contribution_type, amount, description
                                  ORDER BY line) AS n
          FROM hm_stage) s
  JOIN (SELECT c.id, c.member_id, c.period_id, c.contribution_type, c.amount,
               coalesce(c.description, '') AS d, c.description IS NULL AS dn,
               row_number() OVER (PARTITION BY c.member_id, c.period_id, c.contribution_type, c.amount, c.description
                                  ORDER BY c.id) AS n
          FROM contributions c
          JOIN {tool}imported_contributions k ON k.contribution_id = c.id
          JOIN hm_stage_pairs p ON p.member_id = c.member_id AND p.period_id = c.period_id) e
    ON e.member_id = s.member_id AND e.period_id = s.period_id
   AND e.contribution_type = s.contribution_type AND e.amount = s.amount
   AND e.d = s.d AND e.dn = s.dn AND e.n = s.n
) m
WHERE hm_stage.line = m.line";

/// Stages the source rows and matches them against the tool's earlier imports. Nothing outside
/// temporary tables is written.
pub(crate) fn stage_contributions<C: SqlConn>(
    c: &mut C,
    rows: &mut dyn Iterator<Item = crate::model::StagedContribution>,
) -> Result<StagedCounts, StoreError> {
    let ctx = "planning contributions";
    c.create_stage()?;
    let staged = c.insert_contributions(ContributionTarget::Stage, rows)?;
    for stmt in [
        "DROP TABLE IF EXISTS hm_stage_pairs",
        "CREATE TEMP TABLE hm_stage_pairs AS SELECT DISTINCT member_id, period_id FROM hm_stage",
        "CREATE INDEX hm_stage_pairs_idx ON hm_stage_pairs (member_id, period_id)",
        "ANALYZE hm_stage",
        "ANALYZE hm_stage_pairs",
        MATCH,
        "CREATE INDEX hm_stage_existing_idx ON hm_stage (existing_id)",
        "DROP TABLE IF EXISTS hm_missing",
        // Earlier imports in covered pairs that no source row matched.
        "CREATE TEMP TABLE hm_missing AS
         SELECT c.id FROM contributions c
           JOIN {tool}imported_contributions k ON k.contribution_id = c.id
           JOIN hm_stage_pairs p ON p.member_id = c.member_id AND p.period_id = c.period_id
          WHERE NOT EXISTS (SELECT 1 FROM hm_stage s WHERE s.existing_id = c.id)",
    ] {
        c.execute(ctx, &C::sql(stmt), &[])?;
    }
    let new = count(
        c,
        ctx,
        "SELECT count(*) FROM hm_stage WHERE existing_id IS NULL",
    )?;
    let changed = count(
        c,
        ctx,
        "SELECT count(*) FROM hm_stage s JOIN contributions c ON c.id = s.existing_id
          WHERE c.status IS DISTINCT FROM s.status OR c.approved_at IS DISTINCT FROM s.approved_at",
    )?;
    let missing = count(c, ctx, "SELECT count(*) FROM hm_missing")?;
    Ok(StagedCounts {
        new,
        matched: staged - new,
        changed,
        missing,
    })
}

/// The columns of a contribution as [`read_values`] expects them, prefixed by an alias.
const VALUE_COLUMNS: &str = "c.member_id, c.period_id, c.contribution_type, c.amount, c.description, c.status, c.approved_at, c.approved_by";

pub(crate) fn read_values(r: &dyn ReadRow, at: usize) -> Result<ContributionValues, StoreError> {
    Ok(ContributionValues {
        member_id: r.uuid(at)?,
        period_id: r.uuid(at + 1)?,
        contribution_type: r.contribution_type(at + 2)?,
        amount: r.money(at + 3)?,
        description: r.opt_text(at + 4)?,
        status: r.contribution_status(at + 5)?,
        approved_at: r.opt_time(at + 6)?,
        approved_by: r.opt_uuid(at + 7)?,
    })
}

/// The earlier imports the staged source no longer lists, each with the new source row of the
/// same member, period and type that probably replaced it.
pub(crate) fn missing_contributions<C: SqlConn>(
    c: &mut C,
) -> Result<Vec<MissingContribution>, StoreError> {
    let sql = format!(
        "SELECT c.id, m.email, p.name, k.run_id, k.row_digest, r.line, r.amount, r.description, {VALUE_COLUMNS}
           FROM hm_missing x
           JOIN contributions c ON c.id = x.id
           JOIN {{tool}}imported_contributions k ON k.contribution_id = c.id
           JOIN members m ON m.id = c.member_id
           JOIN allocation_periods p ON p.id = c.period_id
           LEFT JOIN hm_stage r ON r.line = (
                SELECT min(s.line) FROM hm_stage s
                 WHERE s.existing_id IS NULL AND s.member_id = c.member_id
                   AND s.period_id = c.period_id AND s.contribution_type = c.contribution_type)
          ORDER BY m.email, p.name, c.id"
    );
    let mut out = Vec::new();
    c.query("reading corrections", &C::sql(&sql), &[], &mut |r| {
        let replacement = match r.opt_int(5)? {
            Some(line) => Some(Replacement {
                line: u64::try_from(line).unwrap_or(0),
                amount: r.money(6)?,
                description: r.opt_text(7)?,
            }),
            None => None,
        };
        out.push(MissingContribution {
            id: r.uuid(0)?,
            member_email: r.text(1)?,
            period_name: r.text(2)?,
            run_id: r.int(3)?,
            recorded_digest: r.opt_digest(4)?,
            replacement,
            values: read_values(r, 8)?,
        });
        Ok(())
    })?;
    Ok(out)
}

/// What applying the staged plan did.
#[derive(Clone, Debug, Default)]
pub struct AppliedContributions {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Members with a contribution inserted.
    pub added_members: Vec<Uuid>,
    /// Members with a contribution deleted.
    pub removed_members: Vec<Uuid>,
    /// The change history written (updates and deletions).
    pub changes: Vec<Change>,
}

/// Applies the staged plan: updates matched rows whose status or approval date changed, deletes the
/// missing earlier imports when asked to, inserts the new rows, and returns the change history for
/// the caller to record.
pub(crate) fn apply_staged<C: SqlConn>(
    c: &mut C,
    run_id: i64,
    now: Timestamp,
    delete_missing: bool,
) -> Result<AppliedContributions, StoreError> {
    let mut out = AppliedContributions::default();
    let mut updates = Vec::new();
    let sql = format!(
        "SELECT c.id, m.email, p.name, s.status, s.approved_at, {VALUE_COLUMNS}
           FROM hm_stage s
           JOIN contributions c ON c.id = s.existing_id
           JOIN members m ON m.id = c.member_id
           JOIN allocation_periods p ON p.id = c.period_id
          WHERE c.status IS DISTINCT FROM s.status OR c.approved_at IS DISTINCT FROM s.approved_at
          ORDER BY s.line"
    );
    c.query("reading contribution updates", &sql, &[], &mut |r| {
        updates.push(ContributionUpdate {
            id: r.uuid(0)?,
            member_email: r.text(1)?,
            period_name: r.text(2)?,
            after_status: r.contribution_status(3)?,
            after_approved_at: r.opt_time(4)?,
            before: read_values(r, 5)?,
        });
        Ok(())
    })?;
    out.changes.extend(updates.iter().flat_map(|u| u.changes()));
    out.updated = c.execute(
        "updating contributions",
        "UPDATE contributions SET status = s.status, approved_at = s.approved_at, updated_at = $1
           FROM hm_stage s
          WHERE contributions.id = s.existing_id
            AND (contributions.status IS DISTINCT FROM s.status
                 OR contributions.approved_at IS DISTINCT FROM s.approved_at)",
        &[Value::Time(now)],
    )?;
    // What the tool last wrote (or confirmed) is what a later correction compares against.
    c.execute(
        "recording contribution fingerprints",
        &C::sql(
            "UPDATE {tool}imported_contributions SET row_digest = s.row_digest
               FROM hm_stage s
              WHERE {tool}imported_contributions.contribution_id = s.existing_id
                AND {tool}imported_contributions.row_digest IS DISTINCT FROM s.row_digest",
        ),
        &[],
    )?;
    if delete_missing {
        let missing = missing_contributions(c)?;
        out.changes
            .extend(missing.iter().map(MissingContribution::deletion));
        let removed: HashSet<Uuid> = missing.iter().map(|m| m.values.member_id).collect();
        out.removed_members = removed.into_iter().collect();
        out.deleted = c.execute(
            "deleting corrected contributions",
            "DELETE FROM contributions WHERE id IN (SELECT id FROM hm_missing)",
            &[],
        )?;
    }
    out.inserted = c.execute(
        "inserting contributions",
        "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at)
         SELECT id, member_id, period_id, contribution_type, amount, description, status, approved_at
           FROM hm_stage WHERE existing_id IS NULL ORDER BY line",
        &[],
    )?;
    c.execute(
        "recording imported contributions",
        &C::sql(
            "INSERT INTO {tool}imported_contributions (contribution_id, run_id, row_digest)
             SELECT id, $1, row_digest FROM hm_stage WHERE existing_id IS NULL",
        ),
        &[Value::Int(run_id)],
    )?;
    out.added_members = uuids(
        c,
        "planning opening balances",
        "SELECT DISTINCT member_id FROM hm_stage WHERE existing_id IS NULL",
    )?;
    let matched = count(
        c,
        "counting contributions",
        "SELECT count(*) FROM hm_stage WHERE existing_id IS NOT NULL",
    )?;
    out.unchanged = matched - out.updated;
    Ok(out)
}

/// Every capital account with the sums the balance rules need, ordered by email.
pub(crate) fn member_totals<C: SqlConn>(c: &mut C) -> Result<Vec<MemberTotals>, StoreError> {
    let sql = C::sql(
        "SELECT ca.member_id, m.email, ca.balance, ca.tax_basis,
                coalesce(c.total, 0), coalesce(a.total, 0),
                o.opening_balance, o.opening_tax_basis
           FROM capital_accounts ca
           JOIN members m ON m.id = ca.member_id
           LEFT JOIN {tool}opening_balances o ON o.member_id = ca.member_id
           LEFT JOIN (SELECT member_id, sum(amount) AS total FROM contributions
                       WHERE status = 'approved' AND contribution_type IN ('capital', 'property')
                       GROUP BY member_id) c ON c.member_id = ca.member_id
           LEFT JOIN (SELECT member_id, sum(amount) AS total FROM allocations GROUP BY member_id) a
                  ON a.member_id = ca.member_id
          ORDER BY m.email",
    );
    let mut out = Vec::new();
    c.query("reading member totals", &sql, &[], &mut |r| {
        let opening = match (r.opt_money(6)?, r.opt_money(7)?) {
            (Some(balance), Some(tax_basis)) => Some(Opening { balance, tax_basis }),
            _ => None,
        };
        out.push(MemberTotals {
            member_id: r.uuid(0)?,
            email: r.text(1)?,
            balance: r.money(2)?,
            tax_basis: r.money(3)?,
            contributed: r.money(4)?,
            allocated: r.money(5)?,
            opening,
        });
        Ok(())
    })?;
    Ok(out)
}

/// Stores opening balances under `run_id` (replacing earlier ones of the same members).
pub(crate) fn write_openings<C: SqlConn>(
    c: &mut C,
    run_id: i64,
    now: Timestamp,
    openings: &[(Uuid, Opening)],
) -> Result<(), StoreError> {
    if openings.is_empty() {
        return Ok(());
    }
    let ctx = "storing opening balances";
    for stmt in [
        "DROP TABLE IF EXISTS hm_new_openings",
        "CREATE TEMP TABLE hm_new_openings AS
         SELECT member_id, opening_balance, opening_tax_basis FROM {tool}opening_balances WHERE false",
    ] {
        c.execute(ctx, &C::sql(stmt), &[])?;
    }
    let rows: Vec<Vec<Value>> = openings
        .iter()
        .map(|(member, o)| {
            vec![
                Value::Uuid(*member),
                Value::Money(o.balance),
                Value::Money(o.tax_basis),
            ]
        })
        .collect();
    c.insert_rows(
        ctx,
        "hm_new_openings",
        &["member_id", "opening_balance", "opening_tax_basis"],
        &rows,
    )?;
    c.execute(
        ctx,
        &C::sql(
            "INSERT INTO {tool}opening_balances (member_id, run_id, opening_balance, opening_tax_basis, computed_at)
             SELECT member_id, $1, opening_balance, opening_tax_basis, $2 FROM hm_new_openings WHERE true
             ON CONFLICT (member_id) DO UPDATE SET run_id = excluded.run_id,
                 opening_balance = excluded.opening_balance,
                 opening_tax_basis = excluded.opening_tax_basis,
                 computed_at = excluded.computed_at",
        ),
        &[Value::Int(run_id), Value::Time(now)],
    )?;
    c.execute(ctx, "DROP TABLE hm_new_openings", &[])?;
    Ok(())
}

/// Records change history rows under `run_id`.
pub(crate) fn record_changes<C: SqlConn>(
    c: &mut C,
    run_id: i64,
    changes: &[Change],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<Value>> = changes
        .iter()
        .map(|ch| {
            let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
            vec![
                Value::Int(run_id),
                Value::Text(ch.table.to_string()),
                Value::Uuid(ch.row_id),
                Value::Text(ch.row_key.clone()),
                Value::Text(ch.column.to_string()),
                text(&ch.before),
                text(&ch.after),
            ]
        })
        .collect();
    c.insert_rows(
        "recording changes",
        &C::sql("{tool}changes"),
        &[
            "run_id",
            "table_name",
            "row_id",
            "row_key",
            "column_name",
            "before_value",
            "after_value",
        ],
        &rows,
    )?;
    Ok(())
}
