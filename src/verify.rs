//! Verification: the guide's checks, orphan checks, balance reconciliation and the read-back proof.
//!
//! Each check yields the offending rows' keys, so a check that fails both before and after a run on
//! the same rows is recognisably *pre-existing* (an existing Habitat database with its own
//! problems) and does not block an import, while a check the run makes fail rolls it back.
//!
//! Reconciliation follows SPEC §6: labor earns patronage and is not capital, so per member
//! `expected = opening + Σ approved capital/property contributions + Σ allocations`, where the
//! opening balance is what the import found unexplained and stored in the tool's own table.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::balances;
use crate::domain::Email;
use crate::model::DigestSum;
use crate::money::Money;
use crate::source::{SourceError, SourceFile, Table};
use crate::store::{ReadBackScope, Store, StoreError};
use crate::validate;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The seed guide's literal rule: any nonzero opening balance fails.
    pub strict_balances: bool,
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
    /// every `!` and `✗` line names them.
    pub named: Vec<String>,
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

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// A check whose query returns offending rows, the first column being the offender's key.
fn rows_check(
    store: &mut dyn Store,
    id: &'static str,
    pass: &str,
    fail: &str,
    columns: Vec<&'static str>,
    sql: &str,
) -> Result<Check, StoreError> {
    let rows = store.query_text(sql)?;
    let mut c = Check::new(id, pass);
    c.columns = columns;
    if !rows.is_empty() {
        c.status = Status::Fail;
        c.title = fail.to_string();
        c.message = format!("{} row(s)", rows.len());
        c.offenders = rows.iter().map(|r| text(&r[0])).collect();
        c.named = c.offenders.clone();
        c.rows = rows.iter().map(|r| r.iter().map(text).collect()).collect();
    }
    Ok(c)
}

/// Runs every check against the database as it is (inside the caller's transaction, if any).
pub fn run(store: &mut dyn Store, opts: &Options) -> Result<VerifyReport, StoreError> {
    let mut checks = Vec::new();

    // An empty database passes every check; say so, rather than let "all passed" suggest that
    // something was verified (source files are checked by `validate-source`, not here).
    let members = store.query_text("SELECT count(*) FROM members")?;
    if members
        .first()
        .and_then(|r| r[0].as_deref())
        .is_some_and(|n| n == "0")
    {
        let mut w = Check::new(
            "empty",
            "The database holds no members yet: nothing has been imported (source files are checked with `habitat-migrate validate-source`)",
        );
        w.status = Status::Warn;
        checks.push(w);
    }

    // Emails, checked by the same parser that validated the source.
    let mut bad = Vec::new();
    store.for_each_row("SELECT id, email FROM members ORDER BY email", &mut |r| {
        let email = text(&r[1]);
        if Email::parse(&email).is_err() {
            bad.push(vec![text(&r[0]), email]);
        }
    })?;
    let mut c = Check::new("emails", "All members have valid emails");
    c.columns = vec!["id", "email"];
    if !bad.is_empty() {
        c.status = Status::Fail;
        c.title = "Some members have invalid emails".into();
        c.message = format!("{} member(s)", bad.len());
        c.offenders = bad.iter().map(|r| r[0].clone()).collect();
        c.named = bad.iter().map(|r| r[1].clone()).collect();
        c.rows = bad;
    }
    checks.push(c);

    checks.push(rows_check(
        store,
        "capital_account_members",
        "All capital accounts have member references",
        "Some capital accounts are orphaned",
        vec!["capital_account_id", "member_id"],
        "SELECT ca.id, ca.member_id FROM capital_accounts ca
           LEFT JOIN members m ON m.id = ca.member_id WHERE m.id IS NULL",
    )?);
    checks.push(rows_check(
        store,
        "contribution_references",
        "All contributions have member and period references",
        "Some contributions have invalid references",
        vec!["contribution_id", "member_id", "period_id"],
        "SELECT c.id, c.member_id, c.period_id FROM contributions c
           LEFT JOIN members m ON m.id = c.member_id
           LEFT JOIN allocation_periods p ON p.id = c.period_id
          WHERE m.id IS NULL OR p.id IS NULL",
    )?);
    checks.push(rows_check(
        store,
        "negative_balances",
        "No negative capital account balances",
        "Some capital accounts have negative balances",
        vec!["capital_account_id", "balance", "tax_basis"],
        "SELECT id, balance, tax_basis FROM capital_accounts WHERE balance < 0 OR tax_basis < 0",
    )?);
    checks.push(rows_check(
        store,
        "approved_timestamps",
        "All approved contributions have approved_at",
        "Some approved contributions are missing approved_at",
        vec!["contribution_id", "member_id"],
        "SELECT id, member_id FROM contributions WHERE status = 'approved' AND approved_at IS NULL",
    )?);
    let keys = store.tool_table("imported_contributions");
    let openings = store.tool_table("opening_balances");
    checks.push(rows_check(
        store,
        "orphans",
        "No orphaned records",
        "Some records are orphaned",
        vec!["row", "table", "refers_to"],
        &format!(
            "SELECT CAST(a.id AS TEXT), 'allocations', 'members' FROM allocations a LEFT JOIN members m ON m.id = a.member_id WHERE m.id IS NULL
             UNION ALL SELECT CAST(a.id AS TEXT), 'allocations', 'allocation_periods' FROM allocations a LEFT JOIN allocation_periods p ON p.id = a.period_id WHERE p.id IS NULL
             UNION ALL SELECT CAST(c.id AS TEXT), 'contributions', 'members (approved_by)' FROM contributions c LEFT JOIN members m ON m.id = c.approved_by WHERE c.approved_by IS NOT NULL AND m.id IS NULL
             UNION ALL SELECT CAST(k.contribution_id AS TEXT), '{keys}', 'contributions' FROM {keys} k LEFT JOIN contributions c ON c.id = k.contribution_id WHERE c.id IS NULL
             UNION ALL SELECT CAST(o.member_id AS TEXT), '{openings}', 'members' FROM {openings} o LEFT JOIN members m ON m.id = o.member_id WHERE m.id IS NULL"
        ),
    )?);

    checks.extend(reconcile(store, opts)?);
    Ok(VerifyReport {
        checks,
        proof: None,
    })
}

/// The balance reconciliation of SPEC §6 (rules in [`crate::balances`]), on balance and on tax
/// basis: one check with a line per member and measure, plus warnings that name names.
fn reconcile(store: &mut dyn Store, opts: &Options) -> Result<Vec<Check>, StoreError> {
    let totals = store.member_totals()?;
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
    let mut no_baseline = Vec::new();
    let mut nonzero = Vec::new();
    let mut negative = Vec::new();
    let mut opening_total = Money::ZERO;
    for t in &totals {
        if let Some(o) = t.opening.filter(|o| o.balance != Money::ZERO) {
            nonzero.push(format!("{} ({})", t.email, o.balance));
            opening_total = opening_total
                .checked_add(o.balance)
                .unwrap_or(opening_total);
            if o.balance.is_negative() {
                negative.push(format!("{} ({})", t.email, o.balance));
            }
        }
        match balances::reconcile(t, opts.strict_balances) {
            balances::Verdict::NoBaseline => no_baseline.push(t.email.clone()),
            balances::Verdict::Unreadable => {
                c.offenders.push(t.email.clone());
                c.named.push(format!("{} (amounts overflow)", t.email));
                c.rows
                    .push(vec![t.email.clone(), "amounts overflow".into()]);
            }
            balances::Verdict::Reconciled(lines) => c.rows.extend(lines.iter().map(line_row)),
            balances::Verdict::Differs(lines) => {
                let shown: Vec<String> = lines
                    .iter()
                    .filter(|l| l.difference != Money::ZERO)
                    .map(|l| format!("{} {} {}", l.measure, signed(l.difference), ""))
                    .map(|s| s.trim_end().to_string())
                    .collect();
                c.named.push(format!("{} ({})", t.email, shown.join(", ")));
                c.offenders.push(t.email.clone());
                c.failing_rows.extend(
                    lines
                        .iter()
                        .filter(|l| l.difference != Money::ZERO)
                        .map(line_row),
                );
                c.rows.extend(lines.iter().map(line_row));
            }
        }
    }
    let reconciled = totals.len() - no_baseline.len();
    let mut notes = vec![format!("{reconciled} member(s) reconciled")];
    if !nonzero.is_empty() {
        notes.push(format!(
            "{} with a nonzero opening balance (total {opening_total})",
            nonzero.len()
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
    let mut out = vec![c];
    if !no_baseline.is_empty() {
        let mut w = Check::new(
            "no_baseline",
            &format!(
                "{} capital account(s) not reconciled — no baseline (never imported by this tool)",
                no_baseline.len()
            ),
        );
        w.status = Status::Warn;
        w.columns = vec!["member"];
        w.rows = no_baseline.iter().map(|e| vec![e.clone()]).collect();
        w.named = no_baseline;
        out.push(w);
    }
    if !negative.is_empty() {
        let mut w = Check::new(
            "negative_openings",
            &format!(
                "{} member(s) have a negative opening balance (their records explain more than their balance)",
                negative.len()
            ),
        );
        w.status = Status::Warn;
        w.named = negative;
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

/// Order-independent checksum of a multiset of rows: the sum of each row's hash, so rows can be
/// streamed from a file and from a database in different orders without sorting a million rows.
#[derive(Default)]
struct MultisetHash {
    sum: u128,
    rows: u64,
}

impl MultisetHash {
    fn add(&mut self, fields: &[Option<&str>]) {
        let mut h = Sha256::new();
        for f in fields {
            match f {
                Some(t) => {
                    h.update([b'=']);
                    h.update(t.as_bytes());
                }
                None => h.update([0]),
            }
            h.update([0x1f]);
        }
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(b));
        self.rows += 1;
    }

    fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

fn proof(table: &'static str, source: &MultisetHash, db: &MultisetHash) -> TableProof {
    TableProof {
        table,
        source_rows: source.rows,
        database_rows: db.rows,
        source_checksum: source.hex(),
        database_checksum: db.hex(),
        matches: source.rows == db.rows && source.sum == db.sum,
    }
}

/// Reads back the rows the source files describe and proves they equal the source rows. For
/// contributions the caller passes the fingerprint sum of the source rows it wrote and where they
/// went; the database's side is summed where the rows are (see [`Store::contributions_digest`]).
pub fn read_back(
    store: &mut dyn Store,
    files: &[SourceFile],
    contributions: Option<(DigestSum, ReadBackScope)>,
) -> Result<Vec<TableProof>, ImportOrStore> {
    let mut out = Vec::new();
    let instant = crate::domain::format_instant;
    for f in files {
        let mut src = MultisetHash::default();
        let mut db = MultisetHash::default();
        match f.table {
            Table::Periods => {
                // Name → whether the file gives a status (a blank one keeps the stored status,
                // so it is left out of the comparison).
                let mut names = std::collections::HashMap::new();
                for r in validate::rows(f, validate::parse_period)? {
                    src.add(&[
                        Some(&r.name),
                        r.description.as_deref(),
                        Some(&instant(r.start_date)),
                        Some(&instant(r.end_date)),
                        r.status.map(|s| s.as_str()),
                    ]);
                    names.insert(r.name, r.status.is_some());
                }
                store.for_each_row(
                    "SELECT name, description, start_date, end_date, status FROM allocation_periods",
                    &mut |mut r| {
                        if let Some(&has_status) = r[0].as_ref().and_then(|n| names.get(n)) {
                            if !has_status {
                                r[4] = None;
                            }
                            db.add(&r.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
                        }
                    },
                )?;
                out.push(proof("allocation_periods", &src, &db));
            }
            Table::Members => {
                let mut emails = HashSet::new();
                for r in validate::rows(f, validate::parse_member)? {
                    src.add(&[
                        Some(r.email.as_str()),
                        Some(&r.display_name),
                        r.ens_name.as_deref(),
                        Some(r.role.as_str()),
                        Some(r.status.as_str()),
                        Some(&instant(r.joined_at)),
                    ]);
                    emails.insert(r.email.as_str().to_string());
                }
                store.for_each_row(
                    "SELECT email, display_name, ens_name, role, status, joined_at FROM members",
                    &mut |r| {
                        if r[0]
                            .as_ref()
                            .is_some_and(|e| emails.contains(&e.to_lowercase()))
                        {
                            db.add(&r.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
                        }
                    },
                )?;
                out.push(proof("members", &src, &db));
            }
            Table::CapitalAccounts => {
                let mut emails = HashSet::new();
                for r in validate::rows(f, validate::parse_capital_account)? {
                    src.add(&[
                        Some(r.member_email.as_str()),
                        Some(&r.balance.to_string()),
                        Some(&r.tax_basis.to_string()),
                        r.notes.as_deref(),
                    ]);
                    emails.insert(r.member_email.as_str().to_string());
                }
                store.for_each_row(
                    "SELECT lower(m.email), ca.balance, ca.tax_basis, ca.notes
                       FROM capital_accounts ca JOIN members m ON m.id = ca.member_id",
                    &mut |r| {
                        if r[0].as_ref().is_some_and(|e| emails.contains(e)) {
                            db.add(&r.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
                        }
                    },
                )?;
                out.push(proof("capital_accounts", &src, &db));
            }
            Table::Contributions => {
                let Some((source, scope)) = contributions else {
                    continue;
                };
                let database = store.contributions_digest(scope)?;
                out.push(TableProof {
                    table: "contributions",
                    source_rows: source.rows,
                    database_rows: database.rows,
                    source_checksum: source.hex(),
                    database_checksum: database.hex(),
                    matches: source == database,
                });
            }
        }
    }
    Ok(out)
}

/// Reading back touches both the files and the database.
#[derive(Debug, thiserror::Error)]
pub enum ImportOrStore {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Per-table counts for the summary.
pub fn counts(store: &mut dyn Store) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut out = BTreeMap::new();
    for t in crate::store::HABITAT_TABLES {
        let rows = store.query_text(&format!("SELECT count(*) FROM {t}"))?;
        let n = rows
            .first()
            .and_then(|r| r[0].as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.insert(t.to_string(), n);
    }
    Ok(out)
}
