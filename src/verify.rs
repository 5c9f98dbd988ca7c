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

use crate::domain::Email;
use crate::money::Money;
use crate::plan::ContributionKeyer;
use crate::source::{SourceError, SourceFile, Table};
use crate::store::{Backend, Store, StoreError};
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
    /// Contributions of this file's members that an earlier import created and this file no
    /// longer lists (e.g. an amount corrected in the file, which imports as a new contribution).
    pub earlier_rows: u64,
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

/// An amount as the database printed it; `NULL` (no rows to sum) is zero, and anything that is not
/// an exact amount is `None`, which fails the check rather than passing as zero.
fn money(backend: Backend, text: Option<&str>) -> Option<Money> {
    let Some(t) = text else {
        return Some(Money::ZERO);
    };
    match backend {
        // SQLite sums are integer cents; money columns read through the store are already `12.50`.
        Backend::Sqlite if !t.contains('.') => t.parse().ok().map(Money::from_cents),
        // PostgreSQL may print a sum with more or fewer decimals than two.
        _ => Money::parse(t).ok().or_else(|| {
            rust_decimal::Decimal::from_str_exact(t)
                .ok()
                .and_then(Money::from_decimal)
        }),
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
        c.rows = rows.iter().map(|r| r.iter().map(text).collect()).collect();
    }
    Ok(c)
}

/// Runs every check against the database as it is (inside the caller's transaction, if any).
pub fn run(store: &mut dyn Store, opts: &Options) -> Result<VerifyReport, StoreError> {
    let mut checks = Vec::new();
    let backend = store.backend();

    // 1. Emails, checked by the same parser that validated the source.
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
    let keys = store.tool_table("contribution_keys");
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
             UNION ALL SELECT k.import_key, '{keys}', 'contributions' FROM {keys} k LEFT JOIN contributions c ON c.id = k.contribution_id WHERE c.id IS NULL
             UNION ALL SELECT CAST(o.member_id AS TEXT), '{openings}', 'members' FROM {openings} o LEFT JOIN members m ON m.id = o.member_id WHERE m.id IS NULL"
        ),
    )?);

    checks.extend(reconcile(store, backend, &openings, opts)?);
    Ok(VerifyReport {
        checks,
        proof: None,
    })
}

/// The balance reconciliation of SPEC §6, on balance and on tax basis.
fn reconcile(
    store: &mut dyn Store,
    backend: Backend,
    openings: &str,
    opts: &Options,
) -> Result<Vec<Check>, StoreError> {
    let rows = store.query_text(&format!(
        "SELECT m.email, ca.balance, ca.tax_basis, o.opening_balance, o.opening_tax_basis,
                c.total AS contributed, a.total AS allocated
           FROM capital_accounts ca
           JOIN members m ON m.id = ca.member_id
           LEFT JOIN {openings} o ON o.member_id = ca.member_id
           LEFT JOIN (SELECT member_id, sum(amount) AS total FROM contributions
                       WHERE status = 'approved' AND contribution_type IN ('capital', 'property')
                       GROUP BY member_id) c ON c.member_id = ca.member_id
           LEFT JOIN (SELECT member_id, sum(amount) AS total FROM allocations GROUP BY member_id) a
                  ON a.member_id = ca.member_id
          ORDER BY m.email"
    ))?;
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
    let mut nonzero_openings = 0u64;
    let mut opening_total = Money::ZERO;
    let mut negative_openings = 0u64;
    let mut mismatched = Vec::new();
    for r in &rows {
        let email = text(&r[0]);
        if r[3].is_none() {
            no_baseline.push(email);
            continue;
        }
        let m = |i: usize| money(backend, r[i].as_deref());
        let (Some(contributed), Some(allocated)) = (m(5), m(6)) else {
            mismatched.push(email.clone());
            c.rows.push(vec![email.clone(), "unreadable sum".into()]);
            continue;
        };
        for (measure, actual, opening) in [("balance", m(1), m(3)), ("tax_basis", m(2), m(4))] {
            let computed = actual.zip(opening).and_then(|(actual, opening)| {
                let expected = opening.checked_add(contributed)?.checked_add(allocated)?;
                Some((actual, opening, expected, actual.checked_sub(expected)?))
            });
            let Some((actual, opening, expected, difference)) = computed else {
                mismatched.push(email.clone());
                c.rows.push(vec![
                    email.clone(),
                    measure.to_string(),
                    "unreadable or overflowing amount".into(),
                ]);
                continue;
            };
            if measure == "balance" && opening != Money::ZERO {
                nonzero_openings += 1;
                opening_total = opening_total.checked_add(opening).unwrap_or(opening_total);
                if opening.is_negative() {
                    negative_openings += 1;
                }
            }
            let strict_fail = opts.strict_balances && opening != Money::ZERO;
            if difference != Money::ZERO || strict_fail {
                mismatched.push(email.clone());
            }
            c.rows.push(vec![
                email.clone(),
                measure.to_string(),
                opening.to_string(),
                contributed.to_string(),
                allocated.to_string(),
                expected.to_string(),
                actual.to_string(),
                difference.to_string(),
            ]);
        }
    }
    mismatched.dedup();
    let mut notes = vec![format!(
        "{} member(s) reconciled",
        rows.len() - no_baseline.len()
    )];
    if nonzero_openings > 0 {
        notes.push(format!(
            "{nonzero_openings} with a nonzero opening balance (total {opening_total})"
        ));
    }
    if !mismatched.is_empty() {
        c.status = Status::Fail;
        c.title = if opts.strict_balances && mismatched.len() as u64 <= nonzero_openings {
            "Capital account balances do not match contribution totals (strict: nonzero opening balances)".into()
        } else {
            "Capital account balances do not match contribution totals".into()
        };
        notes.push(format!("{} member(s) differ", mismatched.len()));
        c.offenders = mismatched;
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
        w.rows = no_baseline.into_iter().map(|e| vec![e]).collect();
        out.push(w);
    }
    if negative_openings > 0 {
        let mut w = Check::new(
            "negative_openings",
            &format!("{negative_openings} member(s) have a negative opening balance"),
        );
        w.status = Status::Warn;
        out.push(w);
    }
    Ok(out)
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
        earlier_rows: 0,
    }
}

/// Reads back the rows the source files describe and proves they equal the source rows.
pub fn read_back(
    store: &mut dyn Store,
    files: &[SourceFile],
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
                // Keys are computed exactly as the import computed them; ids are not needed here.
                let mut keyer = ContributionKeyer::for_keys_only();
                let mut keys: HashSet<u64> = HashSet::new();
                let mut members: HashSet<String> = HashSet::new();
                let mut earlier = 0u64;
                for r in validate::rows(f, validate::parse_contribution)? {
                    let key = keyer.key_only(&r);
                    src.add(&[
                        Some(&key.to_string()),
                        Some(r.member_email.as_str()),
                        Some(&r.period_name),
                        Some(r.contribution_type.as_str()),
                        Some(&r.amount.to_string()),
                        r.description.as_deref(),
                        Some(r.status.as_str()),
                        r.approved_at.map(instant).as_deref(),
                    ]);
                    keys.insert(key.fingerprint());
                    if !members.contains(r.member_email.as_str()) {
                        members.insert(r.member_email.as_str().to_string());
                    }
                }
                let table = store.tool_table("contribution_keys");
                store.for_each_row(
                    &format!(
                        "SELECT k.import_key, lower(m.email), p.name, c.contribution_type, c.amount,
                                c.description, c.status, c.approved_at
                           FROM {table} k
                           JOIN contributions c ON c.id = k.contribution_id
                           JOIN members m ON m.id = c.member_id
                           JOIN allocation_periods p ON p.id = c.period_id"
                    ),
                    &mut |r| {
                        let key = r[0].as_deref().and_then(crate::plan::ImportKey::parse);
                        if key.is_some_and(|k| keys.contains(&k.fingerprint())) {
                            db.add(&r.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
                        } else if r[1].as_ref().is_some_and(|e| members.contains(e)) {
                            earlier += 1;
                        }
                    },
                )?;
                let mut p = proof("contributions", &src, &db);
                p.earlier_rows = earlier;
                out.push(p);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_exactly_or_not_at_all() {
        assert_eq!(
            money(Backend::Sqlite, Some("1250")),
            Some(Money::from_cents(1250))
        );
        assert_eq!(
            money(Backend::Sqlite, Some("12.50")),
            Some(Money::from_cents(1250))
        );
        assert_eq!(
            money(Backend::Postgres, Some("12.5")),
            Some(Money::from_cents(1250))
        );
        assert_eq!(
            money(Backend::Postgres, Some("12.5000")),
            Some(Money::from_cents(1250))
        );
        assert_eq!(money(Backend::Postgres, None), Some(Money::ZERO));
        // Never silently zero: a value that is not an exact amount fails the check.
        assert_eq!(money(Backend::Postgres, Some("12.505")), None);
        assert_eq!(money(Backend::Sqlite, Some("1e3")), None);
        assert_eq!(money(Backend::Postgres, Some("NaN")), None);
    }
}
