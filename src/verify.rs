//! Verification: the guide's checks, orphan checks, balance reconciliation and the read-back proof.
//!
//! Each check yields the offending rows' keys, so a check that fails both before and after a run on
//! the same rows is recognisably *pre-existing* (an existing Habitat database with its own
//! problems) and does not block an import, while a check the run makes fail rolls it back.
//!
//! Reconciliation follows SPEC §6: labor earns patronage and is not capital, so per member
//! `expected = opening + Σ approved capital/property contributions + Σ allocations`, where the
//! opening balance is what the import found unexplained and stored in the tool's own table, and
//! the allocations are the distributed ones (Habitat credits an allocation to the capital account
//! when it distributes it; a `calculated` one is not in the balance yet).

use std::collections::HashSet;

use serde::Serialize;

use crate::balances;
use crate::domain::Email;
use crate::model::{DigestSum, MemberTotals, Opening};
use crate::money::Money;
use crate::store::{Store, StoreError};

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The seed guide's literal rule: any nonzero opening balance fails.
    pub strict_balances: bool,
    /// Keep every member's reconciliation lines, not only the differing ones (`--verbose`, JSON).
    pub all_rows: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One check's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub id: &'static str,
    /// The ✓ line, in the guide's words.
    pub title: String,
    pub status: Status,
    pub message: String,
    /// Failed before the run on the same rows: reported, not blocking.
    pub preexisting: bool,
    /// Column names of `rows`.
    pub columns: Vec<&'static str>,
    /// The offending rows (or, for reconciliation, every member's line).
    pub rows: Vec<Vec<String>>,
    /// The rows that made the check fail (for reconciliation, the lines with a difference); the
    /// report shows these without `--verbose`.
    pub failing_rows: Vec<Vec<String>>,
    /// Who or what the line is about, with the figure that matters ("ada@example.org (-500.00)"):
    /// every `!` and `✗` line names them. At most a hundred are kept; `named_total` counts all.
    pub named: Vec<String>,
    pub named_total: usize,
    #[serde(skip)]
    offenders: Vec<String>,
}

impl Check {
    fn new(id: &'static str, title: &str) -> Check {
        Check {
            id,
            title: title.to_string(),
            status: Status::Pass,
            message: String::new(),
            preexisting: false,
            columns: Vec::new(),
            rows: Vec::new(),
            failing_rows: Vec::new(),
            named: Vec::new(),
            named_total: 0,
            offenders: Vec::new(),
        }
    }
}

/// Source rows against what the database holds, per table.
#[derive(Clone, Debug, Serialize)]
pub struct TableProof {
    pub table: &'static str,
    pub source_rows: u64,
    pub database_rows: u64,
    pub source_checksum: String,
    pub database_checksum: String,
    pub matches: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub checks: Vec<Check>,
    pub proof: Option<Vec<TableProof>>,
}

impl VerifyReport {
    /// Whether any check failed in a way that counts (not pre-existing), or the proof failed.
    pub fn failed(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.status == Status::Fail && !c.preexisting)
            || self
                .proof
                .as_ref()
                .is_some_and(|p| p.iter().any(|t| !t.matches))
    }

    /// Marks failures whose offenders all failed already in `before` as pre-existing.
    pub fn mark_preexisting(&mut self, before: Option<&VerifyReport>) {
        let Some(before) = before else { return };
        for check in &mut self.checks {
            if check.status != Status::Fail {
                continue;
            }
            let Some(old) = before.checks.iter().find(|c| c.id == check.id) else {
                continue;
            };
            let old: HashSet<&String> = old.offenders.iter().collect();
            if !check.offenders.is_empty() && check.offenders.iter().all(|o| old.contains(o)) {
                check.preexisting = true;
            }
        }
    }
}

/// A check that fails on the rows it is given: each row's first value is the offender's key
/// (what "pre-existing" compares) and `name` says who the `✗` line names.
fn rows_check(
    id: &'static str,
    pass: &str,
    fail: &str,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    name: impl Fn(&[String]) -> String,
) -> Check {
    let mut c = Check::new(id, pass);
    c.columns = columns;
    if !rows.is_empty() {
        c.status = Status::Fail;
        c.title = fail.to_string();
        c.message = format!("{} row(s)", rows.len());
        c.offenders = rows.iter().map(|r| r[0].clone()).collect();
        c.named = rows.iter().take(NAMES_KEPT).map(|r| name(r)).collect();
        c.named_total = rows.len();
        c.rows = rows;
    }
    c
}

/// Runs every check against the database as it is (inside the caller's transaction, if any).
pub fn run(store: &mut dyn Store, opts: &Options) -> Result<VerifyReport, StoreError> {
    run_with(store, opts, None)
}

/// [`run`], with the reconciliation counting the opening balances `hook` gives (see
/// [`OpeningHook`]).
pub fn run_with(
    store: &mut dyn Store,
    opts: &Options,
    hook: Option<OpeningHook<'_>>,
) -> Result<VerifyReport, StoreError> {
    run_after(store, opts, hook, None)
}

/// The references every row written while the database's foreign keys were enforced keeps.
const ENFORCED: &[&str] = &[
    "capital_account_members",
    "contribution_references",
    "orphans",
];

/// [`run_with`] after a run whose checks before gave `before`: a reference check that passed
/// then is not scanned again when the database enforces the foreign keys behind it, because it
/// refused any row of the run that would have broken one (on PostgreSQL the constraints are
/// validated and their triggers enabled; on SQLite the run's connection has `foreign_keys` on).
/// At a million contributions this saves scans that cannot find anything.
pub fn run_after(
    store: &mut dyn Store,
    opts: &Options,
    hook: Option<OpeningHook<'_>>,
    before: Option<&VerifyReport>,
) -> Result<VerifyReport, StoreError> {
    let mut checks = Vec::new();
    let enforced = match before {
        Some(b) if store.references_enforced()? => b
            .checks
            .iter()
            .filter(|c| ENFORCED.contains(&c.id) && c.status == Status::Pass)
            .cloned()
            .map(|mut c| {
                c.message = "enforced by foreign keys: passed before the run, and the database refused any row that would break it".into();
                c
            })
            .collect(),
        _ => Vec::new(),
    };
    let reuse = |id: &str| enforced.iter().find(|c: &&Check| c.id == id).cloned();

    // An empty database passes every check; say so, rather than let "all passed" suggest that
    // something was verified (source files are checked by `validate-source`, not here).
    if store.member_count()? == 0 {
        let mut w = Check::new(
            "empty",
            "The database holds no members yet: nothing has been imported (source files are checked with `habitat-migrate validate-source`)",
        );
        w.status = Status::Warn;
        checks.push(w);
    }

    // Emails, checked by the same parser that validated the source.
    let mut bad = Vec::new();
    store.for_each_member(&mut |m| {
        if Email::parse(&m.email).is_err() {
            bad.push(vec![m.id.to_string(), m.email]);
        }
        Ok(())
    })?;
    bad.sort_by(|a, b| a[1].cmp(&b[1]));
    checks.push(rows_check(
        "emails",
        "All members have valid emails",
        "Some members have invalid emails",
        vec!["id", "email"],
        bad,
        |r| r[1].clone(),
    ));
    if let Some(c) = reuse("capital_account_members") {
        checks.push(c);
    } else {
        checks.push(rows_check(
            "capital_account_members",
            "All capital accounts have member references",
            "Some capital accounts are orphaned",
            vec!["capital_account_id", "member_id"],
            store
                .accounts_without_member()?
                .into_iter()
                .map(|(a, m)| vec![a.to_string(), m.to_string()])
                .collect(),
            |r| format!("account {} (member {})", r[0], r[1]),
        ));
    }
    if let Some(c) = reuse("contribution_references") {
        checks.push(c);
    } else {
        checks.push(rows_check(
            "contribution_references",
            "All contributions have member and period references",
            "Some contributions have invalid references",
            vec!["contribution_id", "member_id", "period_id"],
            store
                .contributions_without_references()?
                .into_iter()
                .map(|(c, m, p)| vec![c.to_string(), m.to_string(), p.to_string()])
                .collect(),
            |r| format!("contribution {}", r[0]),
        ));
    }
    checks.push(rows_check(
        "negative_balances",
        "No negative capital account balances",
        "Some capital accounts have negative balances",
        vec!["capital_account_id", "balance", "tax_basis"],
        store
            .negative_balances()?
            .into_iter()
            .map(|n| {
                vec![
                    n.account_id.to_string(),
                    n.balance.to_string(),
                    n.tax_basis.to_string(),
                ]
            })
            .collect(),
        |r| format!("account {} ({} / {})", r[0], r[1], r[2]),
    ));
    checks.push(rows_check(
        "approved_timestamps",
        "All approved contributions have approved_at",
        "Some approved contributions are missing approved_at",
        vec!["contribution_id", "member_id"],
        store
            .approved_without_timestamp()?
            .into_iter()
            .map(|(c, m)| vec![c.to_string(), m.to_string()])
            .collect(),
        |r| format!("contribution {}", r[0]),
    ));
    if let Some(c) = reuse("orphans") {
        checks.push(c);
    } else {
        checks.push(rows_check(
            "orphans",
            "No orphaned records",
            "Some records are orphaned",
            vec!["row", "table", "refers_to"],
            store
                .orphans()?
                .into_iter()
                .map(|o| {
                    vec![
                        o.id.to_string(),
                        o.table.to_string(),
                        o.refers_to.to_string(),
                    ]
                })
                .collect(),
            |r| format!("{} {} (→ {})", r[1], r[0], r[2]),
        ));
    }

    checks.extend(reconcile(store, opts, hook)?);
    Ok(VerifyReport {
        checks,
        proof: None,
    })
}

/// How many names a check keeps for its line (the count of all of them is kept too).
const NAMES_KEPT: usize = 100;

/// A bounded list of names with the count of all of them.
#[derive(Default)]
struct Names {
    kept: Vec<String>,
    total: usize,
}

impl Names {
    fn push(&mut self, name: impl FnOnce() -> String) {
        if self.kept.len() < NAMES_KEPT {
            self.kept.push(name());
        }
        self.total += 1;
    }

    fn into_check(self, c: &mut Check) {
        c.named = self.kept;
        c.named_total = self.total;
    }
}

/// Replaces a member's stored opening balance in the reconciliation: how `migrate` reconciles
/// against the opening balances it is about to store, in the same pass that derives them.
pub type OpeningHook<'a> = &'a mut dyn FnMut(&MemberTotals) -> Result<Option<Opening>, StoreError>;

/// The balance reconciliation of SPEC §6 (rules in [`crate::balances`]), on balance and on tax
/// basis: one check (every member's lines under `all_rows`, the differing ones always), plus
/// warnings that name names. Streams the members: memory holds only what is shown.
fn reconcile(
    store: &mut dyn Store,
    opts: &Options,
    mut hook: Option<OpeningHook<'_>>,
) -> Result<Vec<Check>, StoreError> {
    let mut c = Check::new(
        "reconciliation",
        "Capital account balances match contribution totals",
    );
    c.columns = vec![
        "member",
        "measure",
        "opening",
        "contributions",
        "allocations",
        "expected",
        "actual",
        "difference",
    ];
    let mut members = 0usize;
    let mut no_baseline = Names::default();
    let mut nonzero = 0usize;
    let mut negative = Names::default();
    let mut differing = Names::default();
    let mut opening_total = Money::ZERO;
    store.for_each_member_totals(&mut |mut t| {
        members += 1;
        if let Some(hook) = hook.as_deref_mut() {
            if let Some(o) = hook(&t)? {
                t.opening = Some(o);
            }
        }
        if let Some(o) = t.opening.filter(|o| o.balance != Money::ZERO) {
            nonzero += 1;
            opening_total = opening_total
                .checked_add(o.balance)
                .unwrap_or(opening_total);
            if o.balance.is_negative() {
                negative.push(|| format!("{} ({})", t.email, o.balance));
            }
        }
        match balances::reconcile(&t, opts.strict_balances) {
            balances::Verdict::NoBaseline => {
                no_baseline.push(|| t.email.clone());
            }
            balances::Verdict::Unreadable => {
                c.offenders.push(t.email.clone());
                differing.push(|| format!("{} (amounts overflow)", t.email));
                c.failing_rows
                    .push(vec![t.email.clone(), "amounts overflow".into()]);
            }
            balances::Verdict::Reconciled(lines) => {
                if opts.all_rows {
                    c.rows.extend(lines.iter().map(line_row));
                }
            }
            balances::Verdict::Differs(lines) => {
                differing.push(|| {
                    let shown: Vec<String> = lines
                        .iter()
                        .filter(|l| l.difference != Money::ZERO)
                        .map(|l| format!("{} {}", l.measure, signed(l.difference)))
                        .collect();
                    format!("{} ({})", t.email, shown.join(", "))
                });
                c.offenders.push(t.email.clone());
                c.failing_rows.extend(
                    lines
                        .iter()
                        .filter(|l| l.difference != Money::ZERO)
                        .map(line_row),
                );
                if opts.all_rows {
                    c.rows.extend(lines.iter().map(line_row));
                }
            }
        }
        Ok(())
    })?;
    // Members stream in the database's order; every list is shown in email order.
    c.offenders.sort();
    c.failing_rows.sort();
    c.rows.sort();
    let reconciled = members - no_baseline.total;
    let mut notes = vec![format!("{reconciled} member(s) reconciled")];
    if nonzero > 0 {
        notes.push(format!(
            "{nonzero} with a nonzero opening balance (total {opening_total})"
        ));
    }
    if !c.offenders.is_empty() {
        c.status = Status::Fail;
        c.title = if opts.strict_balances {
            "Capital account balances do not match contribution totals (strict: opening balances not counted)".into()
        } else {
            "Capital account balances do not match contribution totals".into()
        };
        notes.push(format!("{} member(s) differ", c.offenders.len()));
    }
    c.message = notes.join("; ");
    differing.kept.sort();
    differing.into_check(&mut c);
    let mut out = vec![c];
    if no_baseline.total > 0 {
        let mut w = Check::new(
            "no_baseline",
            &format!(
                "{} capital account(s) not reconciled — no baseline (never imported by this tool)",
                no_baseline.total
            ),
        );
        w.status = Status::Warn;
        w.columns = vec!["member"];
        no_baseline.kept.sort();
        w.rows = no_baseline.kept.iter().map(|e| vec![e.clone()]).collect();
        no_baseline.into_check(&mut w);
        out.push(w);
    }
    if negative.total > 0 {
        let mut w = Check::new(
            "negative_openings",
            &format!(
                "{} member(s) have a negative opening balance (their records explain more than their balance)",
                negative.total
            ),
        );
        w.status = Status::Warn;
        negative.kept.sort();
        negative.into_check(&mut w);
        out.push(w);
    }
    Ok(out)
}

fn line_row(l: &balances::Line) -> Vec<String> {
    vec![
        l.member.clone(),
        l.measure.to_string(),
        l.opening.to_string(),
        l.contributions.to_string(),
        l.allocations.to_string(),
        l.expected.to_string(),
        l.actual.to_string(),
        l.difference.to_string(),
    ]
}

/// An amount with its sign always shown, for differences.
fn signed(m: Money) -> String {
    if m.is_negative() {
        m.to_string()
    } else {
        format!("+{m}")
    }
}

impl TableProof {
    /// The proof for one table: equal counts and equal fingerprint sums.
    pub fn new(table: &'static str, source: DigestSum, database: DigestSum) -> TableProof {
        TableProof {
            table,
            source_rows: source.rows,
            database_rows: database.rows,
            source_checksum: source.hex(),
            database_checksum: database.hex(),
            matches: source == database,
        }
    }
}
