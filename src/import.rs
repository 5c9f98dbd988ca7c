//! The import pipeline: validate → plan → decide corrections → backup → write → re-derive
//! opening balances → verify, in one transaction, with a run record.
//!
//! [`run`] is the whole of `migrate` and of each `import` step. It opens the run's single write
//! transaction first (which is also the single-writer lock), so that validation's reference checks,
//! the plan and the writes all see one consistent database. The whole plan — contributions
//! included — is made before anything is written, so a run that must be refused (a correction
//! nobody decided on) writes nothing, not even a backup. A dry run executes exactly the same path
//! and rolls back at the end. On any failure the transaction is rolled back and a `failed` run is
//! recorded in a transaction of its own, so the history shows attempts too.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use indicatif::ProgressBar;
use jiff::Timestamp;
use uuid::Uuid;

mod write_error;

pub use write_error::SourceRow;

use crate::backup::{self, BackupError};
use crate::balances::{self, Reason};
use crate::index::TextKey;
use crate::model::{
    Change, DigestSum, MissingContribution, Opening, Outcome, RunRecord, StagedContribution,
};
use crate::money::Money;
use crate::plan::{self, MemberIndex, PeriodPlan, Sample};
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::source::{SourceError, SourceFile, Table};
use crate::store::{ReadBackScope, Store, StoreError, TableCounts, Undo};
use crate::validate::{self, Validation};
use crate::verify::{self, TableProof, VerifyReport};

/// What to do with contributions the tool imported earlier, in (member, period) pairs the source
/// still covers, that the source no longer lists (SPEC §6, corrections).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionPolicy {
    /// Refuse the run and say what to do (the default: a correction must be decided, not guessed).
    #[default]
    Refuse,
    /// `--replace-missing`: delete them in the same transaction (only rows nobody changed since).
    Replace,
    /// `--keep-missing`: keep them beside the new rows.
    Keep,
}

impl CorrectionPolicy {
    /// The flag that asks for this policy, for the run record's command line.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            CorrectionPolicy::Refuse => None,
            CorrectionPolicy::Replace => Some("--replace-missing"),
            CorrectionPolicy::Keep => Some("--keep-missing"),
        }
    }
}

/// How a run is asked to behave.
#[derive(Clone, Debug)]
pub struct Options {
    /// `migrate` or `import members` etc., for the run record.
    pub command: String,
    pub dry_run: bool,
    /// Skip the automatic backup (loudly).
    pub no_backup: bool,
    pub backup_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Who is told of each phase as it runs: the terminal's bars, the web page
    /// ([`Progress::hidden`] for nobody).
    pub progress: Progress,
    /// Run the verification checks inside the transaction before commit.
    pub verify: bool,
    pub corrections: CorrectionPolicy,
}

/// A source file as recorded with the run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceInfo {
    pub path: String,
    pub table: &'static str,
    pub sha256: String,
    pub rows: u64,
}

/// What a run did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub run_id: Option<i64>,
    pub dry_run: bool,
    pub sources: Vec<SourceInfo>,
    pub counts: BTreeMap<&'static str, TableCounts>,
    pub samples: BTreeMap<&'static str, Vec<Sample>>,
    pub changes: u64,
    pub backup_file: Option<String>,
    /// Why no backup was written although the run is not a dry run (nothing to write, or
    /// `--no-backup`).
    pub backup_skipped: Option<&'static str>,
    pub corrections: Corrections,
    /// Opening balances this run re-derived (replacing stored ones), with why.
    pub openings: Vec<OpeningChange>,
    /// How many opening balances this run derived for the first time, and the first few.
    pub openings_derived: usize,
    pub openings_derived_names: Vec<String>,
    /// The fingerprint sum of the source's contributions, for the read-back proof.
    #[serde(skip)]
    pub contribution_digest: Option<DigestSum>,
    pub verification: Option<VerifyReport>,
    pub log_file: Option<String>,
    #[serde(skip)]
    pub validation: Validation,
}

/// The contributions a run found imported earlier but no longer listed, and what it did with them.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Corrections {
    pub policy: CorrectionPolicy,
    #[serde(serialize_with = "serialize_missing")]
    pub missing: Vec<MissingContribution>,
    pub deleted: u64,
    pub kept: u64,
}

impl Corrections {
    /// Missing rows a correction may not delete: someone changed them since the tool wrote them
    /// (or they predate the fingerprints).
    pub fn changed_since_import(&self) -> impl Iterator<Item = &MissingContribution> {
        self.missing.iter().filter(|m| !m.unchanged_since_import())
    }

    /// The members concerned, each once, in order.
    pub fn members(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.missing {
            if !out.contains(&m.member_email) {
                out.push(m.member_email.clone());
            }
        }
        out
    }
}

fn serialize_missing<S: serde::Serializer>(
    missing: &[MissingContribution],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(missing.len()))?;
    for m in missing {
        seq.serialize_element(&serde_json::json!({
            "member": m.member_email,
            "period": m.period_name,
            "contribution_type": m.values.contribution_type.as_str(),
            "amount": m.values.amount.to_string(),
            "description": m.values.description,
            "status": m.values.status.as_str(),
            "imported_in_run": m.run_id,
            "unchanged_since_import": m.unchanged_since_import(),
            "probably_replaced_by": m.replacement.as_ref().map(|r| serde_json::json!({
                "line": r.line, "amount": r.amount.to_string(), "description": r.description,
            })),
        }))?;
    }
    seq.end()
}

/// An opening balance a run derived, with the one it replaced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OpeningChange {
    #[serde(skip)]
    pub member_id: Uuid,
    pub member: String,
    pub reason: Reason,
    pub before: Option<OpeningAmounts>,
    pub after: OpeningAmounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OpeningAmounts {
    pub balance: Money,
    pub tax_basis: Money,
}

impl From<Opening> for OpeningAmounts {
    fn from(o: Opening) -> Self {
        OpeningAmounts {
            balance: o.balance,
            tax_basis: o.tax_basis,
        }
    }
}

impl Report {
    /// Whether nothing was (or would be) inserted or updated.
    pub fn nothing_changed(&self) -> bool {
        self.counts
            .values()
            .all(|c| c.inserted == 0 && c.updated == 0)
    }
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the source data is invalid; nothing was imported")]
    Invalid(Box<Validation>),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("verification failed inside the transaction; the run was rolled back")]
    Verification(Box<VerifyReport>),
    #[error(
        "{} contribution(s) imported earlier are no longer in the source; nothing was imported",
        .0.missing.len()
    )]
    Corrections(Box<Corrections>),
    #[error("cannot write the run log: {0}")]
    Log(std::io::Error),
    /// The database refused a write: the step and the table are in the error's context, the source
    /// row is there where the database names it.
    #[error(
        "{error}{}\nnothing was imported: the run was rolled back",
        .row.as_ref().map(|r| format!("\n  source row: {r}")).unwrap_or_default()
    )]
    Write {
        error: StoreError,
        row: Option<Box<SourceRow>>,
    },
}

impl ImportError {
    /// A database error while writing `table` from `file`, with the source row if the database
    /// names it; other errors (a lost connection, busy) stay as they are.
    fn writing(
        e: ImportError,
        table: Table,
        file: &SourceFile,
        members: &MemberIndex,
        resolver: Option<&plan::ContributionResolver<'_>>,
    ) -> ImportError {
        match e {
            ImportError::Store(error @ StoreError::Database { .. }) => {
                let row = write_error::locate(&error, table, file, members, resolver);
                ImportError::Write {
                    error,
                    row: row.map(Box::new),
                }
            }
            other => other,
        }
    }
}

/// What the database holds that source rows may refer to, for validation.
pub fn known_refs(store: &mut dyn Store) -> Result<validate::KnownRefs<'static>, StoreError> {
    let mut known = validate::KnownRefs::default();
    store.for_each_member(&mut |m| {
        known.add_member(&m.email, m.ens_name.as_deref());
        Ok(())
    })?;
    for p in store.periods()? {
        known.add_period(p.name);
    }
    Ok(known)
}

/// Runs one import of `files` against `store`.
pub fn run(
    store: &mut dyn Store,
    files: &[SourceFile],
    opts: &Options,
) -> Result<Report, ImportError> {
    for f in files {
        // Unreadable files are an I/O error (exit 4) before anything else is attempted.
        f.check_readable()?;
    }
    if !opts.dry_run {
        store.init()?;
    }
    let started = Timestamp::now();
    let mut log = if opts.dry_run {
        None
    } else {
        Some(RunLog::create(&opts.log_dir, started).map_err(ImportError::Log)?)
    };
    let mut run = RunRecord::start(opts.command.clone(), store.url().redacted());
    run.started_at = started;
    run.dry_run = opts.dry_run;
    if let Some(log) = &mut log {
        log.event(
            "started",
            serde_json::json!({
                "command": run.command, "database": run.database_url, "invoked_by": run.invoked_by,
                "tool_version": run.tool_version,
            }),
        );
    }

    store.begin_write()?;
    if opts.dry_run {
        // A dry run against a new database plans against the schema it would create, inside
        // the transaction that is rolled back.
        if let Err(e) = store.migrate_schema() {
            let _ = store.rollback();
            return Err(e.into());
        }
    }
    let result = in_transaction(store, files, opts, &mut run, log.as_mut());
    match result {
        Ok(mut report) => {
            if opts.dry_run {
                store.rollback()?;
                report.run_id = None;
            } else {
                store.commit()?;
                if let Some(log) = &mut log {
                    log.event(
                        "committed",
                        serde_json::json!({"run_id": run.id, "counts": run.counts}),
                    );
                    report.log_file = Some(log.path().display().to_string());
                }
            }
            Ok(report)
        }
        Err(e) => {
            let _ = store.rollback();
            if !opts.dry_run {
                run.outcome = if matches!(e, ImportError::Verification(_)) {
                    Outcome::RolledBack
                } else {
                    Outcome::Failed
                };
                run.message = Some(e.to_string());
                run.finished_at = Some(Timestamp::now());
                if let ImportError::Verification(v) = &e {
                    // What failed is kept with the rolled-back run, for its report.
                    run.details =
                        serde_json::json!({ "verification": crate::report::verify_json(v) });
                }
                // Best effort: a lost connection cannot take the record, the log file still can.
                let recorded = record_failure(store, &run);
                if let Some(log) = &mut log {
                    log.event(
                        "failed",
                        serde_json::json!({
                            "outcome": run.outcome, "message": run.message,
                            "recorded_in_database": recorded.is_ok(),
                        }),
                    );
                }
            }
            Err(e)
        }
    }
}

fn record_failure(store: &mut dyn Store, run: &RunRecord) -> Result<(), StoreError> {
    store.begin_write()?;
    match store.insert_run(run) {
        Ok(_) => store.commit(),
        Err(e) => {
            let _ = store.rollback();
            Err(e)
        }
    }
}

fn in_transaction(
    store: &mut dyn Store,
    files: &[SourceFile],
    opts: &Options,
    run: &mut RunRecord,
    mut log: Option<&mut RunLog>,
) -> Result<Report, ImportError> {
    let progress = &opts.progress;
    // What the database holds, compactly: the members by email key, with their fingerprints.
    let mut members =
        MemberIndex::with_capacity(usize::try_from(store.member_count()?).unwrap_or(0));
    let mut ens = Vec::new();
    progress.phase("reading the database's members", || {
        store.for_each_member(&mut |m| {
            let slot = members.add_existing(&m);
            if let Some(name) = m.ens_name {
                ens.push((TextKey::exact(&name), slot));
            }
            Ok(())
        })
    })?;
    let existing_periods = store.periods()?;
    let mut known = validate::KnownRefs::over(members.keys());
    for (name, slot) in ens {
        known.add_ens(name, slot);
    }
    for p in &existing_periods {
        known.add_period(p.name.clone());
    }
    let validation = progress.phase("validating the source files", || {
        validate::validate(files, &known)
    })?;
    drop(known);
    if let Some(log) = log.as_deref_mut() {
        log.event(
            "validated",
            serde_json::json!({
                "rows": validation.rows(),
                "errors": validation.diagnostics.count(crate::diagnostic::Severity::Error),
                "warnings": validation.diagnostics.count(crate::diagnostic::Severity::Warning),
            }),
        );
    }
    if !validation.ok() {
        return Err(ImportError::Invalid(Box::new(validation)));
    }
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    report.corrections.policy = opts.corrections;
    for f in files {
        let rows = validation
            .files
            .iter()
            .find(|s| s.path == f.display)
            .map_or(0, |s| s.rows);
        report.sources.push(SourceInfo {
            path: f.display.clone(),
            table: f.table.stem(),
            sha256: f.sha256()?,
            rows,
        });
    }
    run.sources = serde_json::to_value(&report.sources).unwrap_or_default();
    let file = |t: Table| files.iter().find(|f| f.table == t);

    // The whole plan, before anything is written.
    let planning = progress.spinner("planning periods, members and capital accounts");
    let mut period_ids: HashMap<String, Uuid> = existing_periods
        .iter()
        .map(|p| (p.name.clone(), p.id))
        .collect();
    let periods = match file(Table::Periods) {
        Some(f) => {
            let p = plan::plan_periods(
                validate::collect_rows(f, validate::parse_period)?,
                existing_periods,
            );
            period_ids.extend(p.insert.iter().map(|r| (r.name.clone(), r.id)));
            Some(p)
        }
        None => None,
    };
    let member_plan = match file(Table::Members) {
        Some(f) => {
            // Room at once, rather than by doubling, for the members the file surely adds: at most
            // `len()` of its rows are members the database holds. Reserving for every row would
            // double the index on a re-run, where none is new.
            let rows = report.sources.iter().find(|s| s.table == "members");
            let rows = rows.map_or(0, |s| usize::try_from(s.rows).unwrap_or(0));
            members.reserve(rows.saturating_sub(members.len()));
            let mut p = MemberPlanned {
                plan: plan::plan_members(validate::rows(f, validate::parse_member)?, &mut members),
                changes: Vec::new(),
            };
            let ids: Vec<Uuid> = p.plan.update.iter().map(|m| m.id).collect();
            let old = store.members_by_id(&ids)?;
            p.changes = plan::member_changes(&old, &p.plan.update);
            Some(p)
        }
        None => None,
    };
    members.hold_accounts();
    store.for_each_account(&mut |a| members.add_existing_account(&a))?;
    let account_plan = match file(Table::CapitalAccounts) {
        Some(f) => {
            let plan = plan::plan_accounts(
                validate::rows(f, validate::parse_capital_account)?,
                &mut members,
            )?;
            let ids: Vec<Uuid> = plan.update.iter().map(|a| a.id).collect();
            let old = store.accounts_by_id(&ids)?;
            let emails: HashMap<Uuid, String> = validate::rows(f, validate::parse_capital_account)?
                .filter_map(|r| {
                    let email = r.member_email.as_str().to_string();
                    members.id(&email).map(|id| (id, email))
                })
                .filter(|(id, _)| plan.update.iter().any(|a| a.member_id == *id))
                .collect();
            let changes = plan::account_changes(&old, &plan.update, &emails, &mut members);
            Some(AccountPlanned { plan, changes })
        }
        // Contributions alone still re-derive the opening balances of accounts they add to: the
        // index holds the database's accounts for that.
        None => None,
    };
    members.forget_digests();
    planning.finish_and_clear();
    let resolver = plan::ContributionResolver::new(&members, period_ids);
    let contributions = match file(Table::Contributions) {
        Some(f) => {
            let plan = plan_contributions(store, f, &resolver, &mut report, opts)?;
            let samples = contribution_samples(store, f, &plan)?;
            report.samples.insert("contributions", samples);
            Some(plan)
        }
        None => None,
    };

    if let Some(log) = log.as_deref_mut() {
        log.event("planned", serde_json::json!({}));
    }
    let before = if opts.verify {
        Some(progress.phase("checking the database before the run", || {
            verify::run(store, &verify::Options::default())
        })?)
    } else {
        None
    };
    if let Some(log) = log.as_deref_mut() {
        log.event("checked_before", serde_json::json!({}));
    }
    let writes = periods.as_ref().is_some_and(PeriodPlan::writes)
        || member_plan.as_ref().is_some_and(|p| p.plan.tally.writes())
        || account_plan.as_ref().is_some_and(|p| p.plan.tally.writes())
        || contributions.as_ref().is_some_and(ContributionPlan::writes);
    // The run is numbered first: its undo backup deletes what it inserts by that number.
    run.id = store.insert_run(run)?;
    let run_id = run.id;
    if opts.dry_run {
    } else if opts.no_backup {
        report.backup_skipped = Some("--no-backup");
    } else if !writes {
        // Nothing will be written, so there is nothing to roll back to.
        report.backup_skipped = Some("nothing to write");
    } else {
        let new_periods: Vec<Uuid> = periods
            .as_ref()
            .map(|p| p.insert.iter().map(|r| r.id).collect())
            .unwrap_or_default();
        let old_periods: Vec<Uuid> = periods
            .as_ref()
            .map(|p| p.update.iter().map(|r| r.id).collect())
            .unwrap_or_default();
        let old_members: Vec<Uuid> = member_plan
            .as_ref()
            .map(|p| p.plan.update.iter().map(|m| m.id).collect())
            .unwrap_or_default();
        let old_accounts: Vec<Uuid> = account_plan
            .as_ref()
            .map(|p| p.plan.update.iter().map(|a| a.id).collect())
            .unwrap_or_default();
        let undo = Undo {
            run_id,
            new_periods: &new_periods,
            new_members: &mut members.new_ids(),
            new_accounts: &mut members.new_account_ids(),
            old_periods: &old_periods,
            old_members: &old_members,
            old_accounts: &old_accounts,
            contributions_staged: contributions
                .as_ref()
                .map(|c| matches!(c, ContributionPlan::Staged(_))),
            delete_missing: opts.corrections == CorrectionPolicy::Replace,
        };
        let file = progress.phase("writing the backup", || {
            backup::take_for_run(store, &opts.backup_dir, Timestamp::now(), undo)
        })?;
        report.backup_file = Some(file.display().to_string());
        run.backup_file = report.backup_file.clone();
        if let Some(log) = log.as_deref_mut() {
            log.event("backup", serde_json::json!({"file": report.backup_file}));
        }
    }
    report.run_id = Some(run_id);
    let mut counted = |report: &mut Report, table: &'static str, counts: TableCounts| {
        report.counts.insert(table, counts);
        if let Some(log) = log.as_deref_mut() {
            log.event(
                "table",
                serde_json::json!({"table": table, "counts": counts}),
            );
        }
    };

    let mut proofs = ReadBackSources::default();
    if let Some(p) = periods {
        store.insert_periods(&p.insert)?;
        store.update_periods(&p.update)?;
        store.record_changes(run_id, &p.changes)?;
        report.changes += p.changes.len() as u64;
        report
            .samples
            .insert("allocation_periods", p.tally.samples.clone());
        counted(&mut report, "allocation_periods", p.tally.counts);
        proofs.periods = Some((p.tally.source, p.names));
    }
    if let (Some(p), Some(f)) = (member_plan, file(Table::Members)) {
        let written = (|| -> Result<(), ImportError> {
            if p.plan.tally.counts.inserted > 0 {
                let rows = validate::rows(f, validate::parse_member)?;
                let bar = progress.bar(p.plan.tally.counts.inserted, "writing members");
                store.insert_members(
                    &mut plan::new_members(rows, &members).inspect(|_| bar.inc(1)),
                )?;
                bar.finish_and_clear();
            }
            progress.phase("updating members", || store.update_members(&p.plan.update))?;
            Ok(())
        })();
        written.map_err(|e| ImportError::writing(e, Table::Members, f, &members, None))?;
        store.record_changes(run_id, &p.changes)?;
        report.changes += p.changes.len() as u64;
        report
            .samples
            .insert("members", p.plan.tally.samples.clone());
        counted(&mut report, "members", p.plan.tally.counts);
        proofs.members = Some(p.plan.tally.source);
    }
    if let (Some(p), Some(f)) = (account_plan, file(Table::CapitalAccounts)) {
        let written = (|| -> Result<(), ImportError> {
            if p.plan.tally.counts.inserted > 0 {
                let rows = validate::rows(f, validate::parse_capital_account)?;
                let bar = progress.bar(p.plan.tally.counts.inserted, "writing capital_accounts");
                store.insert_accounts(
                    &mut plan::new_accounts(rows, &members).inspect(|_| bar.inc(1)),
                )?;
                bar.finish_and_clear();
            }
            progress.phase("updating capital_accounts", || {
                store.update_accounts(&p.plan.update)
            })?;
            Ok(())
        })();
        written.map_err(|e| ImportError::writing(e, Table::CapitalAccounts, f, &members, None))?;
        store.record_changes(run_id, &p.changes)?;
        report.changes += p.changes.len() as u64;
        report
            .samples
            .insert("capital_accounts", p.plan.tally.samples.clone());
        counted(&mut report, "capital_accounts", p.plan.tally.counts);
        proofs.accounts = Some(p.plan.tally.source);
    }
    if let (Some(plan), Some(f)) = (contributions, file(Table::Contributions)) {
        let (counts, scope, touched) =
            apply_contributions(store, f, &resolver, plan, run_id, opts, &mut report).map_err(
                |e| ImportError::writing(e, Table::Contributions, f, &members, Some(&resolver)),
            )?;
        drop(resolver);
        match touched {
            Touched::All => members.mark_all_added(),
            Touched::Members { added, removed } => {
                members.mark(added, true);
                members.mark(removed, false);
            }
        }
        if let Some(sum) = report.contribution_digest {
            proofs.contributions = Some((sum, scope));
        }
        counted(&mut report, "contributions", counts);
    }

    // One pass over the members' totals derives the opening balances this run explains and
    // reconciles every account against the opening balances as they will be stored.
    let mut deriver = OpeningDeriver::new(&members);
    let mut after = if opts.verify && !writes {
        // Nothing was written: the database is as the checks before the run found it.
        before.clone()
    } else if opts.verify {
        Some(progress.phase("verifying", || {
            verify::run_after(
                store,
                &verify::Options::default(),
                Some(&mut |t| deriver.derive(t)),
                before.as_ref(),
            )
        })?)
    } else {
        progress.phase("deriving opening balances", || {
            store.for_each_member_totals(&mut |t| deriver.derive(&t).map(|_| ()))
        })?;
        None
    };
    let mut writes = deriver.writes();
    store.write_openings(run_id, &mut writes)?;
    drop(writes);
    let reopened: Vec<Change> = deriver
        .rederived
        .iter()
        .filter_map(OpeningChange::history)
        .collect();
    store.record_changes(run_id, &reopened)?;
    report.changes += reopened.len() as u64;
    report.openings = deriver.rederived;
    report.openings_derived = deriver.first;
    report.openings_derived_names = deriver.first_names;
    if let Some(log) = log.as_deref_mut() {
        log.event(
            "checked",
            serde_json::json!({
                "openings_derived": report.openings_derived,
                "openings_rederived": report.openings.len(),
                "failed": after.as_ref().is_some_and(VerifyReport::failed),
            }),
        );
    }
    if let Some(mut after) = after.take() {
        after.proof = Some(progress.phase("reading back what was written", || {
            read_back(store, proofs, &members)
        })?);
        if let Some(log) = &mut log {
            log.event("read_back", serde_json::json!({}));
        }
        after.mark_preexisting(before.as_ref());
        let failed = after.failed();
        report.verification = Some(after.clone());
        if failed {
            return Err(ImportError::Verification(Box::new(after)));
        }
    }

    run.counts = serde_json::to_value(&report.counts).unwrap_or_default();
    run.finished_at = Some(Timestamp::now());
    report.validation = validation;
    // The run's report is kept with it: the sign-off report is read from the database.
    run.details = crate::report::import_json(&report);
    store.finish_run(run)?;
    Ok(report)
}

/// The members plan with its change history.
struct MemberPlanned {
    plan: plan::MemberPlan,
    changes: Vec<Change>,
}

/// The accounts plan with its change history.
struct AccountPlanned {
    plan: plan::AccountPlan,
    changes: Vec<Change>,
}

/// What the source files said, for the read-back proof of each table.
#[derive(Default)]
struct ReadBackSources {
    periods: Option<(DigestSum, Vec<String>)>,
    members: Option<DigestSum>,
    accounts: Option<DigestSum>,
    contributions: Option<(DigestSum, ReadBackScope)>,
}

/// Reads back what the source files describe and proves it equals them: for each table, the
/// number of rows and the sum of their fingerprints, on the source's side and the database's.
fn read_back(
    store: &mut dyn Store,
    sources: ReadBackSources,
    members: &MemberIndex,
) -> Result<Vec<TableProof>, ImportError> {
    let mut out = Vec::new();
    if let Some((source, names)) = sources.periods {
        let mut db = DigestSum::default();
        for p in store.periods()?.iter().filter(|p| names.contains(&p.name)) {
            db.add(p.digest());
        }
        out.push(TableProof::new("allocation_periods", source, db));
    }
    if let Some(source) = sources.members {
        let mut db = DigestSum::default();
        store.for_each_member(&mut |m| {
            if members.in_file(&m.email) {
                db.add(m.digest());
            }
            Ok(())
        })?;
        out.push(TableProof::new("members", source, db));
    }
    if let Some(source) = sources.accounts {
        let mut db = DigestSum::default();
        store.for_each_account(&mut |a| {
            if members.account_in_file(&a.member_id) {
                db.add(a.digest());
            }
            Ok(())
        })?;
        out.push(TableProof::new("capital_accounts", source, db));
    }
    if let Some((source, scope)) = sources.contributions {
        let db = store.contributions_digest(scope)?;
        out.push(TableProof::new("contributions", source, db));
    }
    Ok(out)
}

/// How the source's contributions will be written.
enum ContributionPlan {
    /// The tool has imported no contribution here yet: every row is new and goes straight in.
    /// `empty`: the table holds no contribution at all.
    Fresh { rows: u64, empty: bool },
    /// Rows were staged and matched against earlier imports.
    Staged(crate::store::StagedCounts),
}

impl ContributionPlan {
    fn writes(&self) -> bool {
        match self {
            ContributionPlan::Fresh { rows, .. } => *rows > 0,
            ContributionPlan::Staged(c) => c.new > 0 || c.changed > 0 || c.missing > 0,
        }
    }
}

/// Rows per batch handed from the reading thread to the writing one.
const BATCH: usize = 1024;

/// Streams the file's contributions, resolved and fingerprinted, into `consume`, and returns what
/// it returned with the fingerprint sum of every row.
///
/// Reading, parsing, resolving and fingerprinting run on a thread of their own, a few batches
/// ahead of the writer: with SQLite in-process the database then works on one core while the
/// file is read on the other, and PostgreSQL is never kept waiting for the next rows.
fn with_resolved_rows<T>(
    f: &SourceFile,
    resolver: &plan::ContributionResolver<'_>,
    bar: &ProgressBar,
    consume: impl FnOnce(&mut dyn Iterator<Item = StagedContribution>) -> Result<T, StoreError>,
) -> Result<(T, DigestSum), ImportError> {
    let source = validate::rows(f, validate::parse_contribution)?;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<StagedContribution>>(8);
        let reader = scope.spawn(move || -> Result<DigestSum, StoreError> {
            let mut sum = DigestSum::default();
            let mut batch = Vec::with_capacity(BATCH);
            for row in source {
                let staged = resolver.resolve(&row)?;
                sum.add(staged.digest);
                batch.push(staged);
                if batch.len() == BATCH {
                    bar.inc(BATCH as u64);
                    if tx
                        .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_err()
                    {
                        // The writer stopped (its error is the one reported).
                        return Ok(sum);
                    }
                }
            }
            bar.inc(batch.len() as u64);
            let _ = tx.send(batch);
            Ok(sum)
        });
        let mut rows = rx.into_iter().flatten();
        let consumed = consume(&mut rows);
        drop(rows);
        let read = reader
            .join()
            .map_err(|_| StoreError::Other("the thread reading contributions failed".into()))?;
        let value = consumed?;
        Ok((value, read?))
    })
}

/// Plans the contributions: stages and matches them unless every row is new, and applies the
/// correction policy to earlier imports the file no longer lists — before anything is written.
fn plan_contributions(
    store: &mut dyn Store,
    f: &SourceFile,
    resolver: &plan::ContributionResolver<'_>,
    report: &mut Report,
    opts: &Options,
) -> Result<ContributionPlan, ImportError> {
    let rows = report
        .sources
        .iter()
        .find(|s| s.table == "contributions")
        .map_or(0, |s| s.rows);
    if !store.has_imported_contributions()? {
        // With no contribution in the table at all, the read-back can take the whole table.
        let empty = store.row_count(crate::model::HabitatTable::Contributions)? == 0;
        return Ok(ContributionPlan::Fresh { rows, empty });
    }
    let bar = opts.progress.bar(rows, "planning contributions");
    let (counts, sum) =
        with_resolved_rows(f, resolver, &bar, |rows| store.stage_contributions(rows))?;
    bar.finish_and_clear();
    report.contribution_digest = Some(sum);
    if counts.missing > 0 {
        report.corrections.missing = store.missing_contributions()?;
        let refuse = match opts.corrections {
            CorrectionPolicy::Refuse => true,
            CorrectionPolicy::Replace => report.corrections.changed_since_import().next().is_some(),
            CorrectionPolicy::Keep => false,
        };
        if refuse {
            return Err(ImportError::Corrections(Box::new(
                report.corrections.clone(),
            )));
        }
    }
    Ok(ContributionPlan::Staged(counts))
}

/// The plan's first few contributions with what it does with each: every row is inserted when
/// nothing was staged; otherwise the staged plan says, line by line.
fn contribution_samples(
    store: &mut dyn Store,
    f: &SourceFile,
    plan: &ContributionPlan,
) -> Result<Vec<Sample>, ImportError> {
    let rows: Vec<validate::ContributionRow> = validate::rows(f, validate::parse_contribution)?
        .take(plan::SAMPLES)
        .collect();
    let staged = match plan {
        ContributionPlan::Fresh { .. } => Vec::new(),
        ContributionPlan::Staged(_) => {
            let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
            store.staged_actions(&lines)?
        }
    };
    Ok(rows
        .iter()
        .map(|r| {
            let action = match plan {
                ContributionPlan::Fresh { .. } => plan::Action::Insert,
                ContributionPlan::Staged(_) => match staged.iter().find(|s| s.line == r.line) {
                    Some(s) if s.new => plan::Action::Insert,
                    Some(s) if s.changed => plan::Action::Update,
                    _ => plan::Action::Unchanged,
                },
            };
            Sample {
                action: Some(action),
                line: r.line,
                key: r.member_email.as_str().to_string(),
                detail: format!(
                    "{} {} {} {}",
                    r.period_name,
                    r.contribution_type.as_str(),
                    r.amount,
                    r.status.as_str()
                ),
            }
        })
        .collect())
}

/// Whose contributions a run added or removed, for the opening balance rules.
enum Touched {
    /// Every row was new. Counting every member with an account as having had contributions
    /// added re-derives only members who had no contribution at all, whose opening balance is
    /// their balance either way.
    All,
    Members {
        added: Vec<Uuid>,
        removed: Vec<Uuid>,
    },
}

/// Writes the planned contributions; returns the table's counts, the read-back scope and whose
/// contributions changed.
fn apply_contributions(
    store: &mut dyn Store,
    f: &SourceFile,
    resolver: &plan::ContributionResolver<'_>,
    plan: ContributionPlan,
    run_id: i64,
    opts: &Options,
    report: &mut Report,
) -> Result<(TableCounts, ReadBackScope, Touched), ImportError> {
    match plan {
        ContributionPlan::Fresh { rows, empty } => {
            let bar = opts.progress.bar(rows, "writing contributions");
            let (inserted, sum) = with_resolved_rows(f, resolver, &bar, |rows| {
                store.insert_new_contributions(run_id, rows)
            })?;
            bar.finish_and_clear();
            report.contribution_digest = Some(sum);
            Ok((
                TableCounts {
                    inserted,
                    ..TableCounts::default()
                },
                if empty {
                    ReadBackScope::All
                } else {
                    ReadBackScope::Run(run_id)
                },
                Touched::All,
            ))
        }
        ContributionPlan::Staged(counts) => {
            let delete = opts.corrections == CorrectionPolicy::Replace;
            let applied = opts.progress.phase("writing contributions", || {
                store.apply_staged_contributions(run_id, counts, delete)
            })?;
            store.record_changes(run_id, &applied.changes)?;
            report.changes += applied.changes.len() as u64 + applied.changes_recorded;
            report.corrections.deleted = applied.deleted;
            if opts.corrections == CorrectionPolicy::Keep {
                report.corrections.kept = report.corrections.missing.len() as u64;
            }
            let touched = Touched::Members {
                added: applied.added_members,
                removed: applied.removed_members,
            };
            Ok((
                TableCounts {
                    inserted: applied.inserted,
                    updated: applied.updated,
                    unchanged: applied.unchanged,
                    deleted: applied.deleted,
                },
                ReadBackScope::Staged,
                touched,
            ))
        }
    }
}

/// Derives the opening balances this run explains (see [`crate::balances`]), member by member,
/// keeping what is to be stored and the re-derivations to record.
struct OpeningDeriver<'a> {
    accounts: &'a MemberIndex,
    /// What is to be stored, by member slot: 20 bytes a member (a fresh import of a million
    /// members derives a million), sized once.
    slots: Vec<u32>,
    openings: Vec<Opening>,
    /// Re-derivations: a stored opening balance replaced by another.
    rederived: Vec<OpeningChange>,
    /// First derivations (new accounts, adopted ones): counted, a few named.
    first: usize,
    first_names: Vec<String>,
}

impl<'a> OpeningDeriver<'a> {
    fn new(accounts: &'a MemberIndex) -> Self {
        let n = accounts.rederivable();
        OpeningDeriver {
            accounts,
            slots: Vec::with_capacity(n),
            openings: Vec::with_capacity(n),
            rederived: Vec::new(),
            first: 0,
            first_names: Vec::new(),
        }
    }

    /// The member's opening balance as this run will store it, if the run derives it.
    fn derive(&mut self, t: &crate::model::MemberTotals) -> Result<Option<Opening>, StoreError> {
        let Some((slot, effects)) = self.accounts.effects_at(&t.member_id) else {
            return Ok(None);
        };
        let Some(reason) = effects.reason() else {
            return Ok(None);
        };
        let derived = balances::derive_opening(t).ok_or_else(|| {
            StoreError::Other(format!(
                "the opening balance of {} overflows; check its amounts",
                t.email
            ))
        })?;
        if t.opening == Some(derived) {
            return Ok(None);
        }
        self.slots.push(crate::index::slot32(slot));
        self.openings.push(derived);
        match t.opening {
            None => {
                self.first += 1;
                if self.first_names.len() < 100 {
                    self.first_names
                        .push(format!("{} ({})", t.email, derived.balance));
                }
            }
            Some(before) => self.rederived.push(OpeningChange {
                member_id: t.member_id,
                member: t.email.clone(),
                reason,
                before: Some(before.into()),
                after: derived.into(),
            }),
        }
        Ok(Some(derived))
    }
}

impl OpeningDeriver<'_> {
    /// The opening balances to store, by member id.
    fn writes(&self) -> impl Iterator<Item = (Uuid, Opening)> + '_ {
        self.slots
            .iter()
            .zip(&self.openings)
            .filter_map(|(&slot, &o)| Some((self.accounts.id_at(slot as usize)?, o)))
    }
}

impl OpeningChange {
    /// A re-derivation (one that replaced a stored opening balance) goes into the change history;
    /// a first derivation is recorded by the opening balance row itself.
    fn history(&self) -> Option<Change> {
        let before = self.before?;
        Some(Change {
            table: "opening_balances",
            row_id: self.member_id,
            row_key: self.member.clone(),
            column: "opening_balance / opening_tax_basis",
            before: Some(format!("{} / {}", before.balance, before.tax_basis)),
            after: Some(format!("{} / {}", self.after.balance, self.after.tax_basis)),
        })
    }
}
