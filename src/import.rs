//! The import pipeline: validate → plan → write, in one transaction, with a run record.
//!
//! [`run`] is the whole of `migrate` and of each `import` step. It opens the run's single write
//! transaction first (which is also the single-writer lock), so that validation's reference checks,
//! the plan and the writes all see one consistent database. A dry run executes exactly the same
//! path and rolls back at the end. On any failure the transaction is rolled back and a `failed`
//! run is recorded in a transaction of its own, so the history shows attempts too.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use uuid::Uuid;

use crate::backup::{self, BackupError};
use crate::domain::format_instant;
use crate::plan::{self, Sample};
use crate::runlog::RunLog;
use crate::source::{SourceError, SourceFile, Table};
use crate::store::{RunRow, Store, StoreError, TableCounts};
use crate::validate::{self, Validation};
use crate::verify::{self, VerifyReport};

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
    /// Show progress bars (standard error is a terminal and not quiet).
    pub progress: bool,
    /// Run the verification checks inside the transaction before commit.
    pub verify: bool,
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
    pub verification: Option<VerifyReport>,
    pub log_file: Option<String>,
    #[serde(skip)]
    pub validation: Validation,
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
    #[error("cannot write the run log: {0}")]
    Log(std::io::Error),
}

impl From<verify::ImportOrStore> for ImportError {
    fn from(e: verify::ImportOrStore) -> Self {
        match e {
            verify::ImportOrStore::Source(s) => ImportError::Source(s),
            verify::ImportOrStore::Store(s) => ImportError::Store(s),
        }
    }
}

/// Runs one import of `files` against `store`.
pub fn run(
    store: &mut dyn Store,
    files: &[SourceFile],
    opts: &Options,
) -> Result<Report, ImportError> {
    for f in files {
        // Unreadable files are an I/O error (exit 4) before anything else is attempted.
        std::fs::File::open(&f.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound {
                path: f.display.clone(),
            },
            _ => SourceError::Unreadable {
                path: f.display.clone(),
                source: e,
            },
        })?;
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
    let mut run = RunRow {
        started_at: format_instant(started),
        command: opts.command.clone(),
        invoked_by: crate::store::invoked_by(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        database_url: store.url().redacted().to_string(),
        dry_run: opts.dry_run,
        outcome: "succeeded".into(),
        ..RunRow::default()
    };
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
                    "rolled_back".into()
                } else {
                    "failed".into()
                };
                run.message = Some(e.to_string());
                run.finished_at = Some(format_instant(Timestamp::now()));
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

fn record_failure(store: &mut dyn Store, run: &RunRow) -> Result<(), StoreError> {
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
    run: &mut RunRow,
    mut log: Option<&mut RunLog>,
) -> Result<Report, ImportError> {
    let known = store.known_refs()?;
    let validation = validate::validate(files, &known)?;
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

    let before = if opts.verify {
        Some(verify::run(store, &verify::Options::default())?)
    } else {
        None
    };
    if !opts.dry_run && !opts.no_backup {
        let file = backup::take(store, &opts.backup_dir, Timestamp::now())?;
        report.backup_file = Some(file.display().to_string());
        run.backup_file = report.backup_file.clone();
        if let Some(log) = log.as_deref_mut() {
            log.event("backup", serde_json::json!({"file": report.backup_file}));
        }
    }
    run.id = store.insert_run(run)?;
    let run_id = run.id;
    report.run_id = Some(run_id);
    let file = |t: Table| files.iter().find(|f| f.table == t);
    let mut touched: HashSet<Uuid> = HashSet::new();
    let counted = |report: &mut Report,
                   table: &'static str,
                   counts: TableCounts,
                   log: &mut Option<&mut RunLog>| {
        report.counts.insert(table, counts);
        if let Some(log) = log.as_deref_mut() {
            log.event(
                "table",
                serde_json::json!({"table": table, "counts": counts}),
            );
        }
    };

    let existing_periods = store.periods()?;
    let mut period_ids: std::collections::HashMap<String, Uuid> = existing_periods
        .iter()
        .map(|p| (p.name.clone(), p.id))
        .collect();
    if let Some(f) = file(Table::Periods) {
        let rows = validate::collect_rows(f, validate::parse_period)?;
        let p = plan::plan_periods(rows, existing_periods);
        store.write_periods(&p.insert, &p.update)?;
        store.record_changes(run_id, &p.changes)?;
        period_ids.extend(p.insert.iter().map(|r| (r.name.clone(), r.id)));
        report.changes += p.changes.len() as u64;
        report
            .samples
            .insert("allocation_periods", p.samples.clone());
        counted(&mut report, "allocation_periods", p.counts(), &mut log);
    }

    let existing_members = store.members()?;
    let mut member_ids = plan::member_ids(&existing_members, &plan::TablePlan::default());
    if let Some(f) = file(Table::Members) {
        let rows = validate::collect_rows(f, validate::parse_member)?;
        let p = plan::plan_members(rows, existing_members.clone());
        store.write_members(&p.insert, &p.update)?;
        store.record_changes(run_id, &p.changes)?;
        member_ids = plan::member_ids(&existing_members, &p);
        report.changes += p.changes.len() as u64;
        report.samples.insert("members", p.samples.clone());
        counted(&mut report, "members", p.counts(), &mut log);
    }

    if let Some(f) = file(Table::CapitalAccounts) {
        let rows = validate::collect_rows(f, validate::parse_capital_account)?;
        let p = plan::plan_accounts(rows, store.capital_accounts()?, &member_ids)?;
        store.write_capital_accounts(&p.insert, &p.update)?;
        store.record_changes(run_id, &p.changes)?;
        touched.extend(p.insert.iter().chain(&p.update).map(|a| a.member_id));
        report.changes += p.changes.len() as u64;
        report.samples.insert("capital_accounts", p.samples.clone());
        counted(&mut report, "capital_accounts", p.counts(), &mut log);
    }

    if let Some(f) = file(Table::Contributions) {
        let total = report
            .sources
            .iter()
            .find(|s| s.table == "contributions")
            .map_or(0, |s| s.rows);
        let bar = progress(opts.progress, total, "contributions");
        let mut keyer = plan::ContributionKeyer::new(member_ids, period_ids);
        let mut samples = Vec::new();
        let mut key_error = None;
        // Rows stream from the file through the keyer into the store, one at a time.
        let mut source = validate::rows(f, validate::parse_contribution)?;
        let mut keyed = std::iter::from_fn(|| {
            let row = source.next()?;
            bar.inc(1);
            if samples.len() < plan::SAMPLES {
                samples.push(Sample {
                    action: None,
                    line: row.line,
                    key: row.member_email.to_string(),
                    detail: format!(
                        "{} {} {} {}",
                        row.period_name, row.contribution_type, row.amount, row.status
                    ),
                });
            }
            keyer.key(&row).map_err(|e| key_error = Some(e)).ok()
        });
        let outcome = store.write_contributions(run_id, &mut keyed)?;
        bar.finish_and_clear();
        if let Some(e) = key_error {
            return Err(e.into());
        }
        touched.extend(outcome.touched_members.iter().copied());
        report.samples.insert("contributions", samples);
        report.changes += outcome.changes;
        counted(&mut report, "contributions", outcome.counts, &mut log);
    }

    let touched: Vec<Uuid> = touched.into_iter().collect();
    store.refresh_opening_balances(run_id, &touched)?;

    if opts.verify {
        let mut after = verify::run(store, &verify::Options::default())?;
        after.proof = Some(verify::read_back(store, files)?);
        after.mark_preexisting(before.as_ref());
        let failed = after.failed();
        report.verification = Some(after.clone());
        if failed {
            return Err(ImportError::Verification(Box::new(after)));
        }
    }

    run.counts = serde_json::to_value(&report.counts).unwrap_or_default();
    run.finished_at = Some(format_instant(Timestamp::now()));
    store.finish_run(run)?;
    report.validation = validation;
    Ok(report)
}

fn progress(enabled: bool, total: u64, what: &str) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>14} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
