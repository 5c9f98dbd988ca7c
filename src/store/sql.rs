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
use std::path::Path;

use jiff::Timestamp;
use uuid::Uuid;

use super::schema::Migration;
use super::{
    Backend, BackupKind, DbUrl, InitReport, NegativeBalance, ReadBackScope, SchemaStatus, Store,
    StoreError, TableChecksum, Undo,
};
use crate::domain::{
    AllocationStatus, ContributionStatus, ContributionType, MemberStatus, PatronageScore,
    PeriodStatus, Role,
};
use crate::model::{
    Account, AllocationRow, AllocationWrites, Change, ContributionUpdate, ContributionValues,
    DigestSum, HabitatTable, Member, MemberAllocation, MemberContribution, MemberPatronage,
    MemberTotals, MissingContribution, Opening, Orphan, Outcome, Period, PeriodStanding,
    RecordedChange, Replacement, RowDigest, RunRecord, StagedContribution, StoredAllocation,
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
    Score(PatronageScore),
    Time(Timestamp),
}

/// One row of a query, decoded column by column into domain values.
pub(crate) trait ReadRow {
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// An amount (a money column or a sum of one), exact or an error, never rounded.
    fn opt_money(&self, i: usize) -> Result<Option<Money>, StoreError>;
    /// A patronage score (`numeric(19,10)`, or text in SQLite), exact or an error.
    fn opt_score(&self, i: usize) -> Result<Option<PatronageScore>, StoreError>;
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError>;
    fn opt_digest(&self, i: usize) -> Result<Option<RowDigest>, StoreError>;
    fn opt_bool(&self, i: usize) -> Result<Option<bool>, StoreError>;

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
    fn score(&self, i: usize) -> Result<PatronageScore, StoreError> {
        self.opt_score(i)?.ok_or_else(|| null(i))
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

    /// Whether the plan's earlier imports go into an indexed temporary table before the full
    /// join. SQLite joins a subquery by scanning it once per source row (quadratic: a 100,000
    /// contribution re-run took minutes); PostgreSQL hashes it, and a table would only cost a copy.
    const MATERIALIZE_EXISTING: bool;

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
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError>;

    /// Bulk-inserts rows of domain values into a table, streaming them.
    fn insert_rows(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Vec<Value>>,
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

/// What the staged plan does with one source line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagedLine {
    pub line: u64,
    /// No earlier import matches it: inserted.
    pub new: bool,
    /// It matches an earlier import whose status or approval date it changes: updated.
    pub changed: bool,
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

/// The plan of the staged rows, in one statement: every source row next to the earlier import it
/// matches, and every earlier import that no source row matches (a full join).
///
/// A source row matches an earlier import of the tool with the same member, period, type, amount
/// and description, paired by rank among identical rows (file order on one side, id order — which
/// is import order, the ids being time-ordered — on the other), so two identical rows in the file
/// match two identical earlier imports and a third is new. Only (member, period) pairs the file
/// covers are looked at: a file per quarter leaves the other quarters alone.
///
/// `hm_plan` is kept narrow (it has a row per source row): `line` (NULL: an earlier import the
/// source no longer lists), `existing_id` (NULL: a new row), `changed` (the source changes the
/// matched row's status or approval date) and the source row's `proof` (the prefix of its
/// fingerprint, what the read-back counts for a row matched unchanged). The few rows a run writes
/// carry what writing them needs — `new_id` (the id a new row gets), and for a changed row its new
/// `status`, `approved_at` and fingerprint — so that no later statement scans the stage (a
/// million rows) to find them; those columns are NULL, and cost next to nothing, on the others.
const PLAN: &str = "
CREATE TEMP TABLE hm_plan AS
SELECT line, existing_id, changed, proof,
       CASE WHEN existing_id IS NULL THEN new_id END AS new_id,
       CASE WHEN changed THEN status END AS status,
       CASE WHEN changed THEN approved_at END AS approved_at,
       CASE WHEN changed THEN row_digest END AS row_digest
  FROM (
SELECT s.line, e.id AS existing_id,
       (e.id IS NOT NULL AND s.line IS NOT NULL
        AND (e.status IS DISTINCT FROM s.status OR e.approved_at IS DISTINCT FROM s.approved_at)) AS changed,
       s.proof, s.id AS new_id, s.status, s.approved_at, s.row_digest
  FROM (SELECT line, id, member_id, period_id, contribution_type, amount, status, approved_at, proof,
               row_digest, coalesce(description, '') AS d, description IS NULL AS dn,
               row_number() OVER (PARTITION BY member_id, period_id, contribution_type, amount, description
                                  ORDER BY line) AS n
          FROM hm_stage) s
  FULL JOIN {existing} e
    ON e.member_id = s.member_id AND e.period_id = s.period_id
   AND e.contribution_type = s.contribution_type AND e.amount = s.amount
   AND e.d = s.d AND e.dn = s.dn AND e.n = s.n) j";

/// The other side of [`PLAN`]: the tool's earlier imports in the (member, period) pairs the file
/// covers, ranked among identical rows. The pairs are a semi-join (`IN`), so that SQLite walks the
/// member index once per covered member rather than the period index once per pair.
const EXISTING: &str = "
SELECT c.id, c.member_id, c.period_id, c.contribution_type, c.amount, c.status,
       c.approved_at, coalesce(c.description, '') AS d, c.description IS NULL AS dn,
       row_number() OVER (PARTITION BY c.member_id, c.period_id, c.contribution_type, c.amount, c.description
                          ORDER BY c.id) AS n
  FROM contributions c
  JOIN {tool}imported_contributions k ON k.contribution_id = c.id
 WHERE (c.member_id, c.period_id) IN (SELECT member_id, period_id FROM hm_stage_pairs)";

/// The staged rows the plan writes: new ones and changed ones (`hm_stage s` with `hm_plan p`).
pub(crate) const WRITTEN: &str = "p.line IS NOT NULL AND (p.existing_id IS NULL OR p.changed)";

/// Stages the source rows and matches them against the tool's earlier imports. Nothing outside
/// temporary tables is written.
pub(crate) fn stage_contributions<C: SqlConn>(
    c: &mut C,
    rows: &mut dyn Iterator<Item = StagedContribution>,
) -> Result<StagedCounts, StoreError> {
    let ctx = "planning contributions";
    c.create_stage()?;
    c.insert_contributions(ContributionTarget::Stage, rows)?;
    for stmt in [
        "DROP TABLE IF EXISTS hm_stage_pairs",
        "CREATE TEMP TABLE hm_stage_pairs AS SELECT DISTINCT member_id, period_id FROM hm_stage",
        // Fresh statistics, or the planner takes the new tables for empty and loops.
        "ANALYZE hm_stage",
        "ANALYZE hm_stage_pairs",
        "DROP TABLE IF EXISTS hm_plan",
        "DROP TABLE IF EXISTS hm_existing",
    ] {
        c.execute(ctx, &C::sql(stmt), &[])?;
    }
    let plan = if C::MATERIALIZE_EXISTING {
        for stmt in [
            format!("CREATE TEMP TABLE hm_existing AS {EXISTING}"),
            "CREATE INDEX hm_existing_key
                 ON hm_existing (member_id, period_id, contribution_type, amount, d, dn, n)"
                .to_string(),
            "ANALYZE hm_existing".to_string(),
        ] {
            c.execute(ctx, &C::sql(&stmt), &[])?;
        }
        PLAN.replace("{existing}", "hm_existing")
    } else {
        PLAN.replace("{existing}", &format!("({EXISTING})"))
    };
    c.execute(ctx, &C::sql(&plan), &[])?;
    // Statistics, so that the statements picking the few rows a run writes out of the plan look
    // them up by id rather than scan the contributions.
    c.execute(ctx, "ANALYZE hm_plan", &[])?;
    let mut counts = StagedCounts::default();
    let sql = "SELECT coalesce(sum(CASE WHEN line IS NOT NULL AND existing_id IS NULL THEN 1 ELSE 0 END), 0),
                      coalesce(sum(CASE WHEN line IS NOT NULL AND existing_id IS NOT NULL THEN 1 ELSE 0 END), 0),
                      coalesce(sum(CASE WHEN changed THEN 1 ELSE 0 END), 0),
                      coalesce(sum(CASE WHEN line IS NULL THEN 1 ELSE 0 END), 0)
                 FROM hm_plan";
    c.query(ctx, sql, &[], &mut |r| {
        let n = |i: usize| -> Result<u64, StoreError> { Ok(u64::try_from(r.int(i)?).unwrap_or(0)) };
        counts = StagedCounts {
            new: n(0)?,
            matched: n(1)?,
            changed: n(2)?,
            missing: n(3)?,
        };
        Ok(())
    })?;
    Ok(counts)
}

/// The read-back's share of the staged rows the run matched and left unchanged: the match itself
/// compared every source column of those rows with the database, so each counts with the
/// fingerprint of its source row (`proof`, kept in the plan).
pub(crate) fn unchanged_proof<C: SqlConn>(c: &mut C) -> Result<DigestSum, StoreError> {
    let mut sum = DigestSum::default();
    c.query(
        "reading contributions back",
        "SELECT proof FROM hm_plan WHERE line IS NOT NULL AND existing_id IS NOT NULL AND NOT changed",
        &[],
        &mut |r| {
            sum.rows += 1;
            sum.sum += i128::from(r.int(0)?);
            Ok(())
        },
    )?;
    Ok(sum)
}

/// What the staged plan does with each of `lines` (a few source lines, for the plan's samples).
pub(crate) fn staged_actions<C: SqlConn>(
    c: &mut C,
    lines: &[u64],
) -> Result<Vec<StagedLine>, StoreError> {
    let mut out = Vec::new();
    if lines.is_empty() {
        return Ok(out);
    }
    let params: Vec<Value> = lines
        .iter()
        .map(|l| Value::Int(i64::try_from(*l).unwrap_or(i64::MAX)))
        .collect();
    let placeholders: Vec<String> = (1..=lines.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT line, existing_id IS NULL, changed FROM hm_plan WHERE line IN ({}) ORDER BY line",
        placeholders.join(", ")
    );
    c.query("planning contributions", &sql, &params, &mut |r| {
        out.push(StagedLine {
            line: u64::try_from(r.int(0)?).unwrap_or(0),
            new: r.opt_bool(1)?.unwrap_or(false),
            changed: r.opt_bool(2)?.unwrap_or(false),
        });
        Ok(())
    })?;
    Ok(out)
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
    let ctx = "reading corrections";
    for stmt in [
        "DROP TABLE IF EXISTS hm_replacements",
        // The first new source row of each member, period and type.
        "CREATE TEMP TABLE hm_replacements AS
         SELECT s.member_id, s.period_id, s.contribution_type, min(s.line) AS line
           FROM hm_stage s
          WHERE s.line IN (SELECT line FROM hm_plan WHERE line IS NOT NULL AND existing_id IS NULL)
          GROUP BY s.member_id, s.period_id, s.contribution_type",
    ] {
        c.execute(ctx, stmt, &[])?;
    }
    let sql = format!(
        "SELECT c.id, m.email, p.name, k.run_id, k.row_digest, r.line, r.amount, r.description, {VALUE_COLUMNS}
           FROM hm_plan x
           JOIN contributions c ON c.id = x.existing_id
           JOIN {{tool}}imported_contributions k ON k.contribution_id = c.id
           JOIN members m ON m.id = c.member_id
           JOIN allocation_periods p ON p.id = c.period_id
           LEFT JOIN hm_replacements f ON f.member_id = c.member_id AND f.period_id = c.period_id
                 AND f.contribution_type = c.contribution_type
           LEFT JOIN hm_stage r ON r.line = f.line
          WHERE x.line IS NULL
          ORDER BY m.email, p.name, c.id"
    );
    let mut out = Vec::new();
    c.query(ctx, &C::sql(&sql), &[], &mut |r| {
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

/// How many updated contributions have their history read and recorded at a time.
const HISTORY_CHUNK: i64 = 10_000;

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
    /// The history of the deletions, for the caller to record.
    pub changes: Vec<Change>,
    /// How many changes of the updates' history were recorded (as they were read, in chunks).
    pub changes_recorded: u64,
}

/// Applies the staged plan: updates matched rows whose status or approval date changed, deletes the
/// missing earlier imports when asked to, and inserts the new rows. The updates' history is
/// recorded here, a chunk at a time; the deletions' is returned for the caller to record.
pub(crate) fn apply_staged<C: SqlConn>(
    c: &mut C,
    run_id: i64,
    now: Timestamp,
    delete_missing: bool,
    counts: StagedCounts,
) -> Result<AppliedContributions, StoreError> {
    let mut out = AppliedContributions::default();
    let ctx = "updating contributions";
    // The changed rows, numbered, so that their history can be read and recorded a chunk at a
    // time: a 1% change of ten million contributions is 100,000 updates, whose history held at once
    // took some 55 MB.
    for stmt in [
        "DROP TABLE IF EXISTS hm_changed",
        "CREATE TEMP TABLE hm_changed AS
         SELECT row_number() OVER (ORDER BY line) AS k, existing_id, status, approved_at, row_digest
           FROM hm_plan WHERE changed",
    ] {
        c.execute(ctx, stmt, &[])?;
    }
    let sql = format!(
        "SELECT c.id, m.email, per.name, u.status, u.approved_at, {VALUE_COLUMNS}
           FROM hm_changed u
           JOIN contributions c ON c.id = u.existing_id
           JOIN members m ON m.id = c.member_id
           JOIN allocation_periods per ON per.id = c.period_id
          WHERE u.k > $1 AND u.k <= $2
          ORDER BY u.k"
    );
    let mut from = 0i64;
    while from < i64::try_from(counts.changed).unwrap_or(i64::MAX) {
        let mut updates = Vec::new();
        c.query(
            "reading contribution updates",
            &sql,
            &[Value::Int(from), Value::Int(from + HISTORY_CHUNK)],
            &mut |r| {
                updates.push(ContributionUpdate {
                    id: r.uuid(0)?,
                    member_email: r.text(1)?,
                    period_name: r.text(2)?,
                    after_status: r.contribution_status(3)?,
                    after_approved_at: r.opt_time(4)?,
                    before: read_values(r, 5)?,
                });
                Ok(())
            },
        )?;
        let changes: Vec<Change> = updates.iter().flat_map(|u| u.changes()).collect();
        record_changes(c, run_id, &changes)?;
        out.changes_recorded += changes.len() as u64;
        from += HISTORY_CHUNK;
    }
    out.updated = c.execute(
        ctx,
        "UPDATE contributions SET status = u.status, approved_at = u.approved_at, updated_at = $1
           FROM hm_changed u WHERE contributions.id = u.existing_id",
        &[Value::Time(now)],
    )?;
    // What the tool last wrote is what a later correction compares against: the rows it just
    // updated, and rows imported before fingerprints were kept that the source confirms.
    c.execute(
        "recording contribution fingerprints",
        &C::sql(
            "UPDATE {tool}imported_contributions SET row_digest = u.row_digest
               FROM hm_changed u WHERE {tool}imported_contributions.contribution_id = u.existing_id",
        ),
        &[],
    )?;
    if legacy_records(c)? {
        c.execute(
            "recording contribution fingerprints",
            &C::sql(
                "UPDATE {tool}imported_contributions SET row_digest = s.row_digest
                   FROM hm_plan p JOIN hm_stage s ON s.line = p.line
                  WHERE {tool}imported_contributions.row_digest IS NULL
                    AND {tool}imported_contributions.contribution_id = p.existing_id",
            ),
            &[],
        )?;
    }
    if delete_missing {
        let missing = missing_contributions(c)?;
        out.changes
            .extend(missing.iter().map(MissingContribution::deletion));
        let removed: HashSet<Uuid> = missing.iter().map(|m| m.values.member_id).collect();
        out.removed_members = removed.into_iter().collect();
        out.deleted = c.execute(
            "deleting corrected contributions",
            "DELETE FROM contributions WHERE id IN (SELECT existing_id FROM hm_plan WHERE line IS NULL)",
            &[],
        )?;
        c.execute(
            "deleting corrected contributions",
            &C::sql(
                "DELETE FROM {tool}imported_contributions
                  WHERE contribution_id IN (SELECT existing_id FROM hm_plan WHERE line IS NULL)",
            ),
            &[],
        )?;
    }
    let new_lines = "(SELECT line FROM hm_plan WHERE line IS NOT NULL AND existing_id IS NULL)";
    if counts.new > 0 {
        out.inserted = c.execute(
        "inserting contributions",
        &format!(
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at)
             SELECT id, member_id, period_id, contribution_type, amount, description, status, approved_at
               FROM hm_stage WHERE line IN {new_lines} ORDER BY line"
        ),
        &[],
    )?;
        c.execute(
            "recording imported contributions",
            &C::sql(&format!(
                "INSERT INTO {{tool}}imported_contributions (contribution_id, run_id, row_digest)
             SELECT id, $1, row_digest FROM hm_stage WHERE line IN {new_lines}"
            )),
            &[Value::Int(run_id)],
        )?;
        out.added_members = uuids(
            c,
            "planning opening balances",
            &format!("SELECT DISTINCT member_id FROM hm_stage WHERE line IN {new_lines}"),
        )?;
    }
    out.unchanged = counts.matched - out.updated;
    if out.inserted > 0 {
        // Records of contributions deleted behind the tool's back (there is no foreign key to
        // take them along) match nothing; a run that inserts contributions clears them (it may
        // be putting back the very rows the application deleted).
        c.execute(
            "recording imported contributions",
            &C::sql(
                "DELETE FROM {tool}imported_contributions
                  WHERE NOT EXISTS (SELECT 1 FROM contributions c WHERE c.id = contribution_id)",
            ),
            &[],
        )?;
    }
    Ok(out)
}

/// Whether any record of an imported contribution predates fingerprints (schema version 3).
pub(crate) fn legacy_records<C: SqlConn>(c: &mut C) -> Result<bool, StoreError> {
    Ok(count(
        c,
        "reading contribution records",
        "SELECT count(*) FROM (SELECT 1 FROM {tool}imported_contributions WHERE row_digest IS NULL LIMIT 1) x",
    )? > 0)
}

/// Streams every capital account with the sums the balance rules need, ordered by email.
pub(crate) fn member_totals<C: SqlConn>(
    c: &mut C,
    each: &mut dyn FnMut(MemberTotals) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
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
           LEFT JOIN (SELECT member_id, sum(amount) AS total FROM allocations
                       WHERE status = 'distributed' GROUP BY member_id) a
                  ON a.member_id = ca.member_id
          ORDER BY m.email",
    );
    c.query("reading member totals", &sql, &[], &mut |r| {
        let opening = match (r.opt_money(6)?, r.opt_money(7)?) {
            (Some(balance), Some(tax_basis)) => Some(Opening { balance, tax_basis }),
            _ => None,
        };
        each(MemberTotals {
            member_id: r.uuid(0)?,
            email: r.text(1)?,
            balance: r.money(2)?,
            tax_basis: r.money(3)?,
            contributed: r.money(4)?,
            allocated: r.money(5)?,
            opening,
        })
    })
}

/// Stores opening balances under `run_id` (replacing earlier ones of the same members).
pub(crate) fn write_openings<C: SqlConn>(
    c: &mut C,
    run_id: i64,
    now: Timestamp,
    openings: &mut dyn Iterator<Item = (Uuid, Opening)>,
) -> Result<(), StoreError> {
    let mut openings = openings.peekable();
    if openings.peek().is_none() {
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
    // Streamed: a million openings as rows of values at once would cost 150 MB.
    let mut rows = openings.map(|(member, o)| {
        vec![
            Value::Uuid(member),
            Value::Money(o.balance),
            Value::Money(o.tax_basis),
        ]
    });
    c.insert_rows(
        ctx,
        "hm_new_openings",
        &["member_id", "opening_balance", "opening_tax_basis"],
        &mut rows,
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
    let mut rows = changes.iter().map(|ch| {
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
    });
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
        &mut rows,
    )?;
    Ok(())
}

/// A period by name, with its close time and its contributions counted by approval.
pub(crate) fn period_standing<C: SqlConn>(
    c: &mut C,
    name: &str,
) -> Result<Option<PeriodStanding>, StoreError> {
    let ctx = "reading the period";
    let sql = format!(
        "SELECT {}, p.closed_at,
                (SELECT count(*) FROM contributions c WHERE c.period_id = p.id AND c.status = 'approved'),
                (SELECT count(*) FROM contributions c WHERE c.period_id = p.id AND c.status = 'pending')
           FROM allocation_periods p WHERE p.name = $1",
        prefixed("p", PERIOD_COLUMNS)
    );
    let mut found = None;
    c.query(ctx, &sql, &[Value::Text(name.to_string())], &mut |r| {
        let n = |i: usize| -> Result<u64, StoreError> { Ok(u64::try_from(r.int(i)?).unwrap_or(0)) };
        found = Some(PeriodStanding {
            period: read_period(r)?,
            closed_at: r.opt_time(6)?,
            approved: n(7)?,
            pending: n(8)?,
            pending_members: Vec::new(),
        });
        Ok(())
    })?;
    let Some(mut standing) = found else {
        return Ok(None);
    };
    if standing.pending > 0 {
        let mut members = Vec::new();
        c.query(
            ctx,
            "SELECT DISTINCT m.email FROM contributions c JOIN members m ON m.id = c.member_id
              WHERE c.period_id = $1 AND c.status = 'pending' ORDER BY m.email",
            &[Value::Uuid(standing.period.id)],
            &mut |r| {
                members.push(r.text(0)?);
                Ok(())
            },
        )?;
        standing.pending_members = members;
    }
    Ok(Some(standing))
}

/// The period's approved contributions summed per member and type, one row per member.
pub(crate) fn approved_patronage<C: SqlConn>(
    c: &mut C,
    period_id: Uuid,
) -> Result<Vec<MemberPatronage>, StoreError> {
    let sum = |t: ContributionType| {
        format!("coalesce(sum(CASE WHEN c.contribution_type = '{t}' THEN c.amount END), 0)")
    };
    let sql = format!(
        "SELECT m.id, m.email, m.display_name, {}, {}, {}
           FROM contributions c JOIN members m ON m.id = c.member_id
          WHERE c.period_id = $1 AND c.status = 'approved'
          GROUP BY m.id, m.email, m.display_name
          ORDER BY m.email",
        sum(ContributionType::Labor),
        sum(ContributionType::Capital),
        sum(ContributionType::Property),
    );
    let mut out = Vec::new();
    c.query(
        "reading approved contributions",
        &sql,
        &[Value::Uuid(period_id)],
        &mut |r| {
            out.push(MemberPatronage {
                member_id: r.uuid(0)?,
                email: r.text(1)?,
                display_name: r.opt_text(2)?,
                labor: r.money(3)?,
                capital: r.money(4)?,
                property: r.money(5)?,
            });
            Ok(())
        },
    )?;
    Ok(out)
}

/// One member's contributions with their periods, for the member's statement.
pub(crate) fn member_contributions<C: SqlConn>(
    c: &mut C,
    member_id: Uuid,
) -> Result<Vec<MemberContribution>, StoreError> {
    let mut out = Vec::new();
    c.query(
        "reading the member's contributions",
        "SELECT p.name, p.start_date, c.contribution_type, c.amount, c.description, c.status,
                c.approved_at
           FROM contributions c JOIN allocation_periods p ON p.id = c.period_id
          WHERE c.member_id = $1
          ORDER BY p.start_date, p.name, c.contribution_type, c.amount, c.id",
        &[Value::Uuid(member_id)],
        &mut |r| {
            out.push(MemberContribution {
                period_name: r.text(0)?,
                period_start: r.opt_time(1)?.ok_or_else(|| null(1))?,
                contribution_type: r.contribution_type(2)?,
                amount: r.money(3)?,
                description: r.opt_text(4)?,
                status: r.contribution_status(5)?,
                approved_at: r.opt_time(6)?,
            });
            Ok(())
        },
    )?;
    Ok(out)
}

/// One member's allocations with their periods, for the member's statement.
pub(crate) fn member_allocations<C: SqlConn>(
    c: &mut C,
    member_id: Uuid,
) -> Result<Vec<MemberAllocation>, StoreError> {
    let mut out = Vec::new();
    c.query(
        "reading the member's allocations",
        "SELECT p.name, p.start_date, a.amount, a.patronage_score, a.status
           FROM allocations a JOIN allocation_periods p ON p.id = a.period_id
          WHERE a.member_id = $1
          ORDER BY p.start_date, p.name, a.id",
        &[Value::Uuid(member_id)],
        &mut |r| {
            let status = r.text(4)?;
            out.push(MemberAllocation {
                period_name: r.text(0)?,
                period_start: r.opt_time(1)?.ok_or_else(|| null(1))?,
                amount: r.money(2)?,
                patronage_score: r.score(3)?,
                status: AllocationStatus::parse(&status).ok_or_else(|| unknown_label(&status))?,
            });
            Ok(())
        },
    )?;
    Ok(out)
}

/// The period's allocations with their members' emails (an allocation whose member is gone is
/// named by the member id).
pub(crate) fn allocations<C: SqlConn>(
    c: &mut C,
    period_id: Uuid,
) -> Result<Vec<StoredAllocation>, StoreError> {
    let mut out = Vec::new();
    c.query(
        "reading allocations",
        "SELECT a.id, a.member_id, m.email, a.amount, a.patronage_score, a.status
           FROM allocations a LEFT JOIN members m ON m.id = a.member_id
          WHERE a.period_id = $1
          ORDER BY m.email, a.member_id",
        &[Value::Uuid(period_id)],
        &mut |r| {
            let member_id = r.uuid(1)?;
            let status = r.text(5)?;
            out.push(StoredAllocation {
                id: r.uuid(0)?,
                member_id,
                email: r
                    .opt_text(2)?
                    .unwrap_or_else(|| format!("(member {member_id} not found)")),
                amount: r.money(3)?,
                patronage_score: r.score(4)?,
                status: AllocationStatus::parse(&status).ok_or_else(|| unknown_label(&status))?,
            });
            Ok(())
        },
    )?;
    Ok(out)
}

/// Inserts, updates and deletes a period's allocations as decided; a row to update or delete
/// that is no longer `calculated` fails the whole write.
pub(crate) fn write_allocations<C: SqlConn>(
    c: &mut C,
    period_id: Uuid,
    now: Timestamp,
    writes: &AllocationWrites,
) -> Result<(), StoreError> {
    let ctx = "writing allocations";
    if !writes.insert.is_empty() {
        c.insert_rows(
            ctx,
            "allocations",
            &[
                "id",
                "member_id",
                "period_id",
                "amount",
                "patronage_score",
                "status",
            ],
            &mut writes.insert.iter().map(|a| {
                vec![
                    Value::Uuid(a.id),
                    Value::Uuid(a.member_id),
                    Value::Uuid(period_id),
                    Value::Money(a.amount),
                    Value::Score(a.patronage_score),
                    Value::Text(AllocationStatus::Calculated.as_str().into()),
                ]
            }),
        )?;
    }
    if !writes.update.is_empty() {
        for stmt in [
            "DROP TABLE IF EXISTS hm_allocation_updates",
            "CREATE TEMP TABLE hm_allocation_updates AS
             SELECT id, amount, patronage_score FROM allocations WHERE false",
        ] {
            c.execute(ctx, stmt, &[])?;
        }
        c.insert_rows(
            ctx,
            "hm_allocation_updates",
            &["id", "amount", "patronage_score"],
            &mut writes.update.iter().map(|a: &AllocationRow| {
                vec![
                    Value::Uuid(a.id),
                    Value::Money(a.amount),
                    Value::Score(a.patronage_score),
                ]
            }),
        )?;
        let updated = c.execute(
            ctx,
            "UPDATE allocations SET amount = s.amount, patronage_score = s.patronage_score, updated_at = $1
               FROM hm_allocation_updates s
              WHERE allocations.id = s.id AND allocations.status = 'calculated'",
            &[Value::Time(now)],
        )?;
        c.execute(ctx, "DROP TABLE hm_allocation_updates", &[])?;
        no_longer_calculated(updated, writes.update.len())?;
    }
    if !writes.delete.is_empty() {
        for stmt in [
            "DROP TABLE IF EXISTS hm_allocation_deletes",
            "CREATE TEMP TABLE hm_allocation_deletes AS SELECT id FROM allocations WHERE false",
        ] {
            c.execute(ctx, stmt, &[])?;
        }
        c.insert_rows(
            ctx,
            "hm_allocation_deletes",
            &["id"],
            &mut writes.delete.iter().map(|id| vec![Value::Uuid(*id)]),
        )?;
        let deleted = c.execute(
            ctx,
            "DELETE FROM allocations
              WHERE id IN (SELECT id FROM hm_allocation_deletes) AND status = 'calculated'",
            &[],
        )?;
        c.execute(ctx, "DROP TABLE hm_allocation_deletes", &[])?;
        no_longer_calculated(deleted, writes.delete.len())?;
    }
    Ok(())
}

/// A write that touched fewer `calculated` rows than it was given: one was distributed (or
/// deleted) after the allocation read them, inside the application.
fn no_longer_calculated(written: u64, expected: usize) -> Result<(), StoreError> {
    if usize::try_from(written).ok() == Some(expected) {
        return Ok(());
    }
    Err(StoreError::Database {
        context: "writing allocations".into(),
        message: format!(
            "{} of {expected} allocation(s) to change are no longer `calculated` (distributed or \
             deleted meanwhile); nothing was written",
            expected.saturating_sub(usize::try_from(written).unwrap_or(expected))
        ),
    })
}

/// `p.id, p.name, …` for a column list written `id, name, …`.
fn prefixed(alias: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// The one implementation of `Store`
// ---------------------------------------------------------------------------------------------

/// What only a backend can do: its transactions and lock, its schema catalogue, `COPY` or the
/// online backup API, its run-table quirks, and fingerprinting rows where they are.
pub(crate) trait Engine: SqlConn {
    fn backend(&self) -> Backend;
    fn url(&self) -> &DbUrl;
    /// Settings made once before the first write (SQLite: WAL), kept off read-only paths so that
    /// reading leaves a database file as it was.
    fn before_write(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn begin_write(&mut self) -> Result<(), StoreError>;
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self) -> Result<(), StoreError>;

    fn migrations(&self) -> &'static [Migration];
    /// Creates the table that records applied migrations, if missing.
    fn ensure_version_table(&mut self) -> Result<(), StoreError>;
    /// Recorded migrations: `(version, checksum, applied_at, how)`.
    fn recorded_versions(&mut self) -> Result<Vec<(i32, String, String, String)>, StoreError>;
    /// Whether any of the five Habitat tables already exists.
    fn habitat_tables_exist(&mut self) -> Result<bool, StoreError>;
    /// Differences between the existing Habitat tables and what the tool needs.
    fn incompatibilities(&mut self) -> Result<Vec<String>, StoreError>;
    fn apply_migration(&mut self, m: &Migration) -> Result<(), StoreError>;
    fn record_migration(&mut self, m: &Migration, how: &str) -> Result<(), StoreError>;

    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError>;
    /// Which `(table, column, referenced table)` foreign keys the database enforces for rows this
    /// connection writes.
    fn enforced_foreign_keys(&mut self) -> Result<Vec<(String, String, String)>, StoreError>;
    fn insert_run(&mut self, run: &RunRecord) -> Result<i64, StoreError>;
    fn finish_run(&mut self, run: &RunRecord) -> Result<(), StoreError>;

    /// Row count and checksum of one table in canonical form, ordered by its first column.
    fn table_checksum(&mut self, table: &str) -> Result<TableChecksum, StoreError>;
    fn write_backup(&mut self, path: &Path) -> Result<(), StoreError>;
    fn write_run_backup(&mut self, path: &Path, undo: Undo<'_>) -> Result<BackupKind, StoreError>;
    fn open_backup(&mut self, _path: &Path) -> Result<(), StoreError> {
        Ok(())
    }
    fn close_backup(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn restore_backup(&mut self, path: &Path) -> Result<(), StoreError>;
}

/// The tables a backup holds: the five Habitat tables and the tool state tied to their rows (run
/// history is deliberately not rolled back by a restore).
pub(crate) fn backup_tables<C: SqlConn>() -> Vec<String> {
    let mut t: Vec<String> = HabitatTable::ALL
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    t.push(C::sql("{tool}imported_contributions"));
    t.push(C::sql("{tool}opening_balances"));
    t
}

const MEMBER_COLUMNS: &str = "id, email, display_name, ens_name, role, status, joined_at";

fn read_member(r: &dyn ReadRow) -> Result<Member, StoreError> {
    let role = r.text(4)?;
    let status = r.text(5)?;
    Ok(Member {
        id: r.uuid(0)?,
        email: r.text(1)?,
        display_name: r.opt_text(2)?,
        ens_name: r.opt_text(3)?,
        role: Role::parse(&role).ok_or_else(|| unknown_label(&role))?,
        status: MemberStatus::parse(&status).ok_or_else(|| unknown_label(&status))?,
        joined_at: r.opt_time(6)?.ok_or_else(|| null(6))?,
    })
}

fn member_values(m: &Member) -> Vec<Value> {
    vec![
        Value::Uuid(m.id),
        Value::Text(m.email.clone()),
        m.display_name.clone().map_or(Value::Null, Value::Text),
        m.ens_name.clone().map_or(Value::Null, Value::Text),
        Value::Text(m.role.as_str().into()),
        Value::Text(m.status.as_str().into()),
        Value::Time(m.joined_at),
    ]
}

const PERIOD_COLUMNS: &str = "id, name, description, start_date, end_date, status";

fn read_period(r: &dyn ReadRow) -> Result<Period, StoreError> {
    let status = r.text(5)?;
    Ok(Period {
        id: r.uuid(0)?,
        name: r.text(1)?,
        description: r.opt_text(2)?,
        start_date: r.opt_time(3)?.ok_or_else(|| null(3))?,
        end_date: r.opt_time(4)?.ok_or_else(|| null(4))?,
        status: PeriodStatus::parse(&status).ok_or_else(|| unknown_label(&status))?,
    })
}

fn period_values(p: &Period) -> Vec<Value> {
    vec![
        Value::Uuid(p.id),
        Value::Text(p.name.clone()),
        p.description.clone().map_or(Value::Null, Value::Text),
        Value::Time(p.start_date),
        Value::Time(p.end_date),
        Value::Text(p.status.as_str().into()),
    ]
}

const ACCOUNT_COLUMNS: &str = "id, member_id, balance, tax_basis, notes";

fn read_account(r: &dyn ReadRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: r.uuid(0)?,
        member_id: r.uuid(1)?,
        balance: r.money(2)?,
        tax_basis: r.money(3)?,
        notes: r.opt_text(4)?,
    })
}

fn account_values(a: &Account) -> Vec<Value> {
    vec![
        Value::Uuid(a.id),
        Value::Uuid(a.member_id),
        Value::Money(a.balance),
        Value::Money(a.tax_basis),
        a.notes.clone().map_or(Value::Null, Value::Text),
    ]
}

/// Rows whose id is in `ids`, read through a temporary table of ids (one statement, whatever the
/// number of ids).
fn by_ids<C: SqlConn, T>(
    c: &mut C,
    context: &str,
    table: &str,
    columns: &str,
    ids: &[Uuid],
    read: fn(&dyn ReadRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    c.execute(context, "DROP TABLE IF EXISTS hm_ids", &[])?;
    c.execute(
        context,
        "CREATE TEMP TABLE hm_ids AS SELECT id FROM members WHERE false",
        &[],
    )?;
    c.insert_rows(
        context,
        "hm_ids",
        &["id"],
        &mut ids.iter().map(|id| vec![Value::Uuid(*id)]),
    )?;
    let columns: Vec<String> = columns.split(", ").map(|c| format!("t.{c}")).collect();
    let sql = format!(
        "SELECT {} FROM {table} t JOIN hm_ids i ON i.id = t.id ORDER BY t.id",
        columns.join(", ")
    );
    let mut out = Vec::with_capacity(ids.len());
    c.query(context, &sql, &[], &mut |r| {
        out.push(read(r)?);
        Ok(())
    })?;
    c.execute(context, "DROP TABLE hm_ids", &[])?;
    Ok(out)
}

/// Applies updates through a temporary copy of the table's shape: rows in, one `UPDATE … FROM`.
fn update_from<C: SqlConn>(
    c: &mut C,
    context: &str,
    table: &str,
    columns: &str,
    set: &str,
    rows: &mut dyn Iterator<Item = Vec<Value>>,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.execute(context, "DROP TABLE IF EXISTS hm_updates", &[])?;
    c.execute(
        context,
        &format!("CREATE TEMP TABLE hm_updates AS SELECT {columns} FROM {table} WHERE false"),
        &[],
    )?;
    let cols: Vec<&str> = columns.split(", ").collect();
    c.insert_rows(context, "hm_updates", &cols, rows)?;
    c.execute(
        context,
        &format!("UPDATE {table} SET {set} FROM hm_updates s WHERE {table}.id = s.id"),
        &[Value::Time(now)],
    )?;
    c.execute(context, "DROP TABLE hm_updates", &[])?;
    Ok(())
}

impl<E: Engine> Store for E {
    fn backend(&self) -> Backend {
        Engine::backend(self)
    }

    fn url(&self) -> &DbUrl {
        Engine::url(self)
    }

    fn init(&mut self) -> Result<InitReport, StoreError> {
        self.before_write()?;
        Engine::begin_write(self)?;
        match Store::migrate_schema(self) {
            Ok(report) => {
                Engine::commit(self)?;
                Ok(report)
            }
            Err(e) => {
                let _ = Engine::rollback(self);
                Err(e)
            }
        }
    }

    fn migrate_schema(&mut self) -> Result<InitReport, StoreError> {
        self.ensure_version_table()?;
        let recorded = self.recorded_versions()?;
        let mut report = InitReport::default();
        for m in self.migrations() {
            if recorded.iter().any(|r| r.0 == m.version) {
                report.already_applied += 1;
                continue;
            }
            // The application's own tables are never touched: if they exist, they are adopted
            // when compatible, and every difference is reported otherwise.
            let how = if m.habitat_tables && self.habitat_tables_exist()? {
                let problems = self.incompatibilities()?;
                if !problems.is_empty() {
                    return Err(StoreError::Incompatible(problems));
                }
                "adopted"
            } else {
                self.apply_migration(m)?;
                "applied"
            };
            self.record_migration(m, how)?;
            report
                .applied
                .push((m.version, m.name.to_string(), how.to_string()));
        }
        Ok(report)
    }

    fn status(&mut self) -> Result<SchemaStatus, StoreError> {
        let recorded = self.recorded_versions()?;
        Ok(SchemaStatus::from_recorded(
            Engine::url(self).redacted().to_string(),
            self.migrations(),
            &recorded,
        ))
    }

    fn is_initialised(&mut self) -> Result<bool, StoreError> {
        let recorded = self.recorded_versions()?;
        Ok(self
            .migrations()
            .iter()
            .all(|m| recorded.iter().any(|r| r.0 == m.version)))
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        Engine::begin_write(self)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Engine::commit(self)
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        Engine::rollback(self)
    }

    fn for_each_member(
        &mut self,
        each: &mut dyn FnMut(Member) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM members");
        self.query("reading members", &sql, &[], &mut |r| each(read_member(r)?))
    }

    fn members_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<Member>, StoreError> {
        by_ids(
            self,
            "reading members",
            "members",
            MEMBER_COLUMNS,
            ids,
            read_member,
        )
    }

    fn insert_members(
        &mut self,
        rows: &mut dyn Iterator<Item = Member>,
    ) -> Result<u64, StoreError> {
        let cols: Vec<&str> = MEMBER_COLUMNS.split(", ").collect();
        self.insert_rows(
            "writing members",
            "members",
            &cols,
            &mut rows.map(|m| member_values(&m)),
        )
    }

    fn update_members(&mut self, rows: &[Member]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        update_from(
            self,
            "updating members",
            "members",
            MEMBER_COLUMNS,
            "email = s.email, display_name = s.display_name, ens_name = s.ens_name, role = s.role,
             status = s.status, joined_at = s.joined_at, updated_at = $1",
            &mut rows.iter().map(member_values),
            Timestamp::now(),
        )
    }

    fn periods(&mut self) -> Result<Vec<Period>, StoreError> {
        let mut out = Vec::new();
        let sql =
            format!("SELECT {PERIOD_COLUMNS} FROM allocation_periods ORDER BY start_date, name");
        self.query("reading periods", &sql, &[], &mut |r| {
            out.push(read_period(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn insert_periods(&mut self, rows: &[Period]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let cols: Vec<&str> = PERIOD_COLUMNS.split(", ").collect();
        self.insert_rows(
            "writing allocation_periods",
            "allocation_periods",
            &cols,
            &mut rows.iter().map(period_values),
        )?;
        Ok(())
    }

    fn update_periods(&mut self, rows: &[Period]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        update_from(
            self,
            "updating allocation_periods",
            "allocation_periods",
            PERIOD_COLUMNS,
            "description = s.description, start_date = s.start_date, end_date = s.end_date,
             status = s.status, updated_at = $1",
            &mut rows.iter().map(period_values),
            Timestamp::now(),
        )
    }

    fn for_each_account(
        &mut self,
        each: &mut dyn FnMut(Account) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM capital_accounts");
        self.query("reading capital accounts", &sql, &[], &mut |r| {
            each(read_account(r)?)
        })
    }

    fn accounts_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<Account>, StoreError> {
        by_ids(
            self,
            "reading capital accounts",
            "capital_accounts",
            ACCOUNT_COLUMNS,
            ids,
            read_account,
        )
    }

    fn insert_accounts(
        &mut self,
        rows: &mut dyn Iterator<Item = Account>,
    ) -> Result<u64, StoreError> {
        let cols: Vec<&str> = ACCOUNT_COLUMNS.split(", ").collect();
        self.insert_rows(
            "writing capital_accounts",
            "capital_accounts",
            &cols,
            &mut rows.map(|a| account_values(&a)),
        )
    }

    fn update_accounts(&mut self, rows: &[Account]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        update_from(
            self,
            "updating capital_accounts",
            "capital_accounts",
            ACCOUNT_COLUMNS,
            "balance = s.balance, tax_basis = s.tax_basis, notes = s.notes, last_updated = $1",
            &mut rows.iter().map(account_values),
            Timestamp::now(),
        )
    }

    fn has_imported_contributions(&mut self) -> Result<bool, StoreError> {
        has_imported_contributions(self)
    }

    fn insert_new_contributions(
        &mut self,
        run_id: i64,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError> {
        self.insert_contributions(ContributionTarget::Final { run_id }, rows)
    }

    fn stage_contributions(
        &mut self,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<StagedCounts, StoreError> {
        stage_contributions(self, rows)
    }

    fn missing_contributions(&mut self) -> Result<Vec<MissingContribution>, StoreError> {
        missing_contributions(self)
    }

    fn staged_actions(&mut self, lines: &[u64]) -> Result<Vec<StagedLine>, StoreError> {
        staged_actions(self, lines)
    }

    fn apply_staged_contributions(
        &mut self,
        run_id: i64,
        plan: StagedCounts,
        delete_missing: bool,
    ) -> Result<AppliedContributions, StoreError> {
        apply_staged(self, run_id, Timestamp::now(), delete_missing, plan)
    }

    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError> {
        Engine::contributions_digest(self, scope)
    }

    fn member_contributions(
        &mut self,
        member_id: Uuid,
    ) -> Result<Vec<MemberContribution>, StoreError> {
        member_contributions(self, member_id)
    }

    fn member_allocations(&mut self, member_id: Uuid) -> Result<Vec<MemberAllocation>, StoreError> {
        member_allocations(self, member_id)
    }

    fn record_changes(&mut self, run_id: i64, changes: &[Change]) -> Result<(), StoreError> {
        record_changes(self, run_id, changes)
    }

    fn for_each_member_totals(
        &mut self,
        each: &mut dyn FnMut(MemberTotals) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        member_totals(self, each)
    }

    fn write_openings(
        &mut self,
        run_id: i64,
        openings: &mut dyn Iterator<Item = (Uuid, Opening)>,
    ) -> Result<(), StoreError> {
        write_openings(self, run_id, Timestamp::now(), openings)
    }

    fn period_standing(&mut self, name: &str) -> Result<Option<PeriodStanding>, StoreError> {
        period_standing(self, name)
    }

    fn close_period(&mut self, period_id: Uuid, closed_at: Timestamp) -> Result<(), StoreError> {
        let closed = self.execute(
            "closing the period",
            // Numbered in order of first use, as SQLite binds them.
            "UPDATE allocation_periods SET status = 'closed', closed_at = $1, updated_at = $1
              WHERE id = $2",
            &[Value::Time(closed_at), Value::Uuid(period_id)],
        )?;
        if closed == 1 {
            Ok(())
        } else {
            Err(StoreError::Database {
                context: "closing the period".into(),
                message: format!("period {period_id} not found"),
            })
        }
    }

    fn approved_patronage(&mut self, period_id: Uuid) -> Result<Vec<MemberPatronage>, StoreError> {
        approved_patronage(self, period_id)
    }

    fn allocations(&mut self, period_id: Uuid) -> Result<Vec<StoredAllocation>, StoreError> {
        allocations(self, period_id)
    }

    fn write_allocations(
        &mut self,
        period_id: Uuid,
        writes: &AllocationWrites,
    ) -> Result<(), StoreError> {
        write_allocations(self, period_id, Timestamp::now(), writes)
    }

    fn row_count(&mut self, table: HabitatTable) -> Result<u64, StoreError> {
        count(
            self,
            "counting rows",
            &format!("SELECT count(*) FROM {}", table.name()),
        )
    }

    fn accounts_without_member(&mut self) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let mut out = Vec::new();
        self.query(
            "checking capital accounts",
            "SELECT ca.id, ca.member_id FROM capital_accounts ca
               LEFT JOIN members m ON m.id = ca.member_id WHERE m.id IS NULL ORDER BY ca.id",
            &[],
            &mut |r| {
                out.push((r.uuid(0)?, r.uuid(1)?));
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn contributions_without_references(&mut self) -> Result<Vec<(Uuid, Uuid, Uuid)>, StoreError> {
        let mut out = Vec::new();
        self.query(
            "checking contributions",
            "SELECT c.id, c.member_id, c.period_id FROM contributions c
               LEFT JOIN members m ON m.id = c.member_id
               LEFT JOIN allocation_periods p ON p.id = c.period_id
              WHERE m.id IS NULL OR p.id IS NULL ORDER BY c.id",
            &[],
            &mut |r| {
                out.push((r.uuid(0)?, r.uuid(1)?, r.uuid(2)?));
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn negative_balances(&mut self) -> Result<Vec<NegativeBalance>, StoreError> {
        let mut out = Vec::new();
        self.query(
            "checking balances",
            "SELECT id, member_id, balance, tax_basis FROM capital_accounts
              WHERE balance < 0 OR tax_basis < 0 ORDER BY id",
            &[],
            &mut |r| {
                out.push(NegativeBalance {
                    account_id: r.uuid(0)?,
                    member_id: r.uuid(1)?,
                    balance: r.money(2)?,
                    tax_basis: r.money(3)?,
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn approved_without_timestamp(&mut self) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let mut out = Vec::new();
        self.query(
            "checking approvals",
            "SELECT id, member_id FROM contributions
              WHERE status = 'approved' AND approved_at IS NULL ORDER BY id",
            &[],
            &mut |r| {
                out.push((r.uuid(0)?, r.uuid(1)?));
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn orphans(&mut self) -> Result<Vec<Orphan>, StoreError> {
        // The table names are literals, so each row maps back to its static names by number.
        const KINDS: [(&str, &str); 4] = [
            ("allocations", "members"),
            ("allocations", "allocation_periods"),
            ("contributions", "members (approved_by)"),
            ("opening_balances", "members"),
        ];
        let sql = Self::sql(
            "SELECT 0, a.id FROM allocations a LEFT JOIN members m ON m.id = a.member_id WHERE m.id IS NULL
             UNION ALL SELECT 1, a.id FROM allocations a LEFT JOIN allocation_periods p ON p.id = a.period_id WHERE p.id IS NULL
             UNION ALL SELECT 2, c.id FROM contributions c LEFT JOIN members m ON m.id = c.approved_by
                        WHERE c.approved_by IS NOT NULL AND m.id IS NULL
             UNION ALL SELECT 3, o.member_id FROM {tool}opening_balances o LEFT JOIN members m ON m.id = o.member_id
                        WHERE m.id IS NULL",
        );
        let mut out = Vec::new();
        self.query("checking for orphans", &sql, &[], &mut |r| {
            let kind = usize::try_from(r.int(0)?).unwrap_or(0).min(KINDS.len() - 1);
            let (table, refers_to) = KINDS[kind];
            out.push(Orphan {
                table,
                id: r.uuid(1)?,
                refers_to,
            });
            Ok(())
        })?;
        Ok(out)
    }

    fn references_enforced(&mut self) -> Result<bool, StoreError> {
        let found = self.enforced_foreign_keys()?;
        Ok(REFERENCES.iter().all(|(t, c, r)| {
            found
                .iter()
                .any(|(ft, fc, fr)| ft.ends_with(t) && fc == c && fr.ends_with(r))
        }))
    }

    fn insert_run(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        Engine::insert_run(self, run)
    }

    fn finish_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        Engine::finish_run(self, run)
    }

    fn runs(&mut self, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        let sql = Self::sql(&format!(
            "SELECT {RUN_COLUMNS} FROM {{tool}}runs ORDER BY id DESC LIMIT $1"
        ));
        let mut out = Vec::new();
        self.query("reading runs", &sql, &[Value::Int(limit)], &mut |r| {
            out.push(read_run(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn run(&mut self, id: i64) -> Result<Option<(RunRecord, Vec<RecordedChange>)>, StoreError> {
        let sql = Self::sql(&format!(
            "SELECT {RUN_COLUMNS} FROM {{tool}}runs WHERE id = $1"
        ));
        let mut run = None;
        self.query("reading runs", &sql, &[Value::Int(id)], &mut |r| {
            run = Some(read_run(r)?);
            Ok(())
        })?;
        let Some(run) = run else {
            return Ok(None);
        };
        let mut changes = Vec::new();
        self.query(
            "reading changes",
            &Self::sql(
                "SELECT table_name, row_id, row_key, column_name, before_value, after_value
                   FROM {tool}changes WHERE run_id = $1 ORDER BY id",
            ),
            &[Value::Int(id)],
            &mut |r| {
                changes.push(RecordedChange {
                    table: r.text(0)?,
                    row_id: r.uuid(1)?,
                    row_key: r.text(2)?,
                    column: r.text(3)?,
                    before: r.opt_text(4)?,
                    after: r.opt_text(5)?,
                });
                Ok(())
            },
        )?;
        Ok(Some((run, changes)))
    }

    fn table_checksums(&mut self) -> Result<Vec<TableChecksum>, StoreError> {
        backup_tables::<Self>()
            .iter()
            .map(|t| self.table_checksum(t))
            .collect()
    }

    fn write_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        Engine::write_backup(self, path)
    }

    fn write_run_backup(&mut self, path: &Path, undo: Undo<'_>) -> Result<BackupKind, StoreError> {
        Engine::write_run_backup(self, path, undo)
    }

    fn open_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        Engine::open_backup(self, path)
    }

    fn close_backup(&mut self) -> Result<(), StoreError> {
        Engine::close_backup(self)
    }

    fn restore_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        Engine::restore_backup(self, path)
    }
}

/// The references the checks look for: `(table, column, referenced table)`.
const REFERENCES: &[(&str, &str, &str)] = &[
    ("capital_accounts", "member_id", "members"),
    ("contributions", "member_id", "members"),
    ("contributions", "period_id", "allocation_periods"),
    ("contributions", "approved_by", "members"),
    ("allocations", "member_id", "members"),
    ("allocations", "period_id", "allocation_periods"),
    ("opening_balances", "member_id", "members"),
];

/// The run columns as [`read_run`] expects them; JSON columns as text (jsonb on PostgreSQL).
const RUN_COLUMNS: &str = "id, started_at, finished_at, command, invoked_by, tool_version, database_url, dry_run, outcome, message, backup_file, CAST(sources AS TEXT), CAST(counts AS TEXT), CAST(details AS TEXT)";

fn read_run(r: &dyn ReadRow) -> Result<RunRecord, StoreError> {
    let outcome = r.text(8)?;
    let json = |i: usize| -> Result<serde_json::Value, StoreError> {
        Ok(r.opt_text(i)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null))
    };
    Ok(RunRecord {
        id: r.int(0)?,
        started_at: r.opt_time(1)?.ok_or_else(|| null(1))?,
        finished_at: r.opt_time(2)?,
        command: r.text(3)?,
        invoked_by: r.text(4)?,
        tool_version: r.text(5)?,
        database_url: r.text(6)?,
        dry_run: r.opt_bool(7)?.unwrap_or(false),
        outcome: Outcome::parse(&outcome).ok_or_else(|| unknown_label(&outcome))?,
        message: r.opt_text(9)?,
        backup_file: r.opt_text(10)?,
        sources: json(11)?,
        counts: json(12)?,
        details: json(13)?,
    })
}
