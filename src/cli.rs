//! The command line: argument parsing and dispatch to the library, and the mapping of every
//! outcome to an exit code (0 ok, 1 invalid data or failed verification, 2 usage, 3 database,
//! 4 file or I/O). `main` only calls [`main_with_args`].

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use crate::backup::{self, BackupError};
use crate::domain::{self, PeriodStatus};
use crate::import::{self, ImportError};
use crate::model::{Period, RunRecord};
use crate::report;
use crate::source::{Bundle, SourceError, SourceFile, Table};
use crate::store::{self, DbUrl, Store, StoreError};
use crate::validate;
use crate::verify;

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_DATABASE: i32 = 3;
pub const EXIT_FILE: i32 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "habitat-migrate",
    version,
    about = "Move a cooperative's records into the Habitat database: validate, import in one transaction, verify.",
    after_help = "Exit codes: 0 success, 1 data invalid or verification failed, 2 usage error, 3 database error, 4 file error."
)]
pub struct Cli {
    /// Database URL: postgres://… or sqlite://FILE.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://habitat.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Where automatic backups are written.
    #[arg(long, env = "BACKUP_DIR", default_value = "./backups", global = true)]
    pub backup_dir: PathBuf,
    /// Where run logs (JSON lines) are written.
    #[arg(long, default_value = "./migration-logs", global = true)]
    pub log_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    pub format: Format,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail (every note, every checked row).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole job: validate → backup → import everything in one transaction → verify.
    Migrate {
        /// Directory holding members, capital_accounts and optionally periods and contributions files.
        bundle: PathBuf,
        /// Do everything inside a transaction that is rolled back; print the plan.
        #[arg(long)]
        dry_run: bool,
        /// Skip the automatic backup (not recommended).
        #[arg(long)]
        no_backup: bool,
        #[command(flatten)]
        corrections: CorrectionArgs,
    },
    /// Validate the source files (guide step 2); never writes a database.
    ValidateSource {
        /// members file (.csv, .json or .jsonl)
        #[arg(long)]
        members: PathBuf,
        /// capital_accounts file
        #[arg(long)]
        capital_accounts: PathBuf,
        /// contributions file (optional)
        #[arg(long)]
        contributions: Option<PathBuf>,
        /// periods file (optional)
        #[arg(long)]
        periods: Option<PathBuf>,
    },
    /// Import one kind of record (guide steps 3–5).
    Import {
        #[arg(value_enum)]
        what: ImportKind,
        /// The source file (.csv, .json or .jsonl).
        #[arg(long)]
        source: PathBuf,
        /// Do everything inside a transaction that is rolled back; print the plan.
        #[arg(long)]
        dry_run: bool,
        /// Skip the automatic backup (not recommended).
        #[arg(long)]
        no_backup: bool,
        #[command(flatten)]
        corrections: CorrectionArgs,
    },
    /// Check the database after an import (guide step 6: "validate the migration"); exit 1 on any ✗.
    Verify {
        /// Apply the seed guide's literal rule: any nonzero opening balance fails.
        #[arg(long)]
        strict_balances: bool,
    },
    /// Take a backup now.
    Backup {
        /// The backup file (default: BACKUP_DIR/pre_migration_YYYYMMDD_HHMMSS.*).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Roll back to a backup: replace the backed-up tables in one transaction and check them.
    Restore {
        file: PathBuf,
        /// Do not back up the current contents first (not recommended).
        #[arg(long)]
        no_backup: bool,
    },
    /// Allocation periods.
    Period {
        #[command(subcommand)]
        action: PeriodAction,
    },
    /// The record of past runs.
    Runs {
        #[command(subcommand)]
        action: RunsAction,
    },
    /// The database schema.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Write a deterministic synthetic bundle for tests and benchmarks.
    Gen {
        /// Number of members (each gets one capital account and ten contributions).
        #[arg(long)]
        members: u64,
        /// Directory to write the bundle into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The same seed always gives byte-identical files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

/// What to do with contributions imported earlier that the source file no longer lists (in a
/// member's period the file still covers). Without either flag such a run is refused.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct CorrectionArgs {
    /// The file is a correction: delete the contributions imported earlier that it no longer
    /// lists (only ones this tool created and nobody changed since), in the same transaction.
    #[arg(long, conflicts_with = "keep_missing")]
    pub replace_missing: bool,
    /// Both are real: keep the earlier contributions beside the new rows.
    #[arg(long)]
    pub keep_missing: bool,
}

impl CorrectionArgs {
    fn policy(self) -> import::CorrectionPolicy {
        if self.replace_missing {
            import::CorrectionPolicy::Replace
        } else if self.keep_missing {
            import::CorrectionPolicy::Keep
        } else {
            import::CorrectionPolicy::Refuse
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    Members,
    CapitalAccounts,
    Contributions,
    Periods,
}

impl ImportKind {
    fn table(self) -> Table {
        match self {
            ImportKind::Members => Table::Members,
            ImportKind::CapitalAccounts => Table::CapitalAccounts,
            ImportKind::Contributions => Table::Contributions,
            ImportKind::Periods => Table::Periods,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum PeriodAction {
    /// Create an allocation period.
    Create {
        /// Unique period name, e.g. "Q1 2026".
        #[arg(long)]
        name: String,
        /// YYYY-MM-DD
        #[arg(long)]
        start: String,
        /// YYYY-MM-DD
        #[arg(long)]
        end: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// open, closed or archived.
        #[arg(long, default_value = "open")]
        status: String,
    },
    /// List allocation periods.
    List,
}

#[derive(Subcommand, Debug)]
pub enum RunsAction {
    /// List recent runs.
    List {
        /// How many of the most recent runs to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Show one run with its changes.
    Show { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum DbAction {
    /// Create or complete the schema (idempotent).
    Init,
    /// Show applied schema versions and any checksum drift.
    Status,
}

/// A failure, already carrying its exit code and the words to show.
struct Failure {
    code: i32,
    message: String,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure {
            code: EXIT_DATABASE,
            message: e.to_string(),
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure {
            code: EXIT_FILE,
            message: e.to_string(),
        }
    }
}

impl From<BackupError> for Failure {
    fn from(e: BackupError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

struct Ui {
    format: Format,
    quiet: bool,
    verbose: bool,
}

impl Ui {
    fn print(&self, human: &str, json: impl FnOnce() -> serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            Format::Json => writeln!(out, "{}", json()),
            Format::Human if self.quiet => Ok(()),
            Format::Human => write!(out, "{human}"),
        };
    }

    /// Like [`Ui::print`], but shown under `-q` too: it reports why the command failed.
    fn print_failure(&self, human: &str, json: impl FnOnce() -> serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            Format::Json => writeln!(out, "{}", json()),
            Format::Human => write!(out, "{human}"),
        };
    }
}

/// Parses `args` and runs the command; returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let ui = Ui {
        format: cli.format,
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match run(&cli, &ui) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            if ui.format == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "exit_code": f.code, "error": f.message})
                );
            }
            f.code
        }
    }
}

fn url(cli: &Cli) -> Result<DbUrl, Failure> {
    DbUrl::parse(&cli.database_url).map_err(|e| usage(e.to_string()))
}

fn open(cli: &Cli, create: bool) -> Result<Box<dyn Store>, Failure> {
    Ok(store::open(&url(cli)?, create)?)
}

/// Opens a store that must already hold the schema.
fn open_initialised(cli: &Cli) -> Result<Box<dyn Store>, Failure> {
    let url = url(cli)?;
    match store::open_existing(&url)? {
        Some(s) => Ok(s),
        None => Err(StoreError::NotInitialised.into()),
    }
}

fn run(cli: &Cli, ui: &Ui) -> Result<i32, Failure> {
    match &cli.command {
        Command::ValidateSource {
            members,
            capital_accounts,
            contributions,
            periods,
        } => {
            let mut files = vec![
                SourceFile::new(members, Table::Members),
                SourceFile::new(capital_accounts, Table::CapitalAccounts),
            ];
            files.extend(
                contributions
                    .iter()
                    .map(|p| SourceFile::new(p, Table::Contributions)),
            );
            files.extend(periods.iter().map(|p| SourceFile::new(p, Table::Periods)));
            validate_files(cli, ui, &files)
        }
        Command::Migrate {
            bundle,
            dry_run,
            no_backup,
            corrections,
        } => {
            let bundle = Bundle::discover(bundle)?;
            import_files(
                cli,
                ui,
                &bundle.files,
                "migrate".into(),
                *dry_run,
                *no_backup,
                corrections.policy(),
            )
        }
        Command::Import {
            what,
            source,
            dry_run,
            no_backup,
            corrections,
        } => {
            let file = SourceFile::new(source, what.table());
            let command = format!("import {}", what.table().stem().replace('_', "-"));
            import_files(
                cli,
                ui,
                &[file],
                command,
                *dry_run,
                *no_backup,
                corrections.policy(),
            )
        }
        Command::Verify { strict_balances } => {
            let mut store = open_initialised(cli)?;
            let report = verify::run(
                store.as_mut(),
                &verify::Options {
                    strict_balances: *strict_balances,
                },
            )?;
            let human = report::verify_human(&report, ui.verbose);
            if report.failed() {
                ui.print_failure(&human, || report::verify_json(&report));
                Ok(EXIT_INVALID)
            } else {
                ui.print(&human, || report::verify_json(&report));
                Ok(EXIT_OK)
            }
        }
        Command::Backup { output } => {
            let mut store = open_initialised(cli)?;
            store.begin_write()?;
            let taken = match output {
                Some(path) => backup::take_to(store.as_mut(), path, Timestamp::now()),
                None => backup::take(store.as_mut(), &cli.backup_dir, Timestamp::now()),
            };
            store.rollback()?;
            let path = taken?;
            ui.print(
                &format!("✓ Backup written: {}\n", path.display()),
                || serde_json::json!({"format": "habitat-migrate/backup", "version": 1, "ok": true, "backup_file": path.display().to_string()}),
            );
            Ok(EXIT_OK)
        }
        Command::Restore { file, no_backup } => {
            let mut store = open_initialised(cli)?;
            if *no_backup && !ui.quiet {
                eprintln!(
                    "WARNING: --no-backup: the current contents are not backed up before the restore replaces them."
                );
            }
            let safety_dir = (!*no_backup).then_some(cli.backup_dir.as_path());
            let (manifest, safety) = backup::restore(store.as_mut(), file, safety_dir)?;
            let mut human = String::new();
            if let Some(s) = &safety {
                human.push_str(&format!(
                    "✓ Backup of the contents before the restore written: {}\n",
                    s.display()
                ));
            }
            human.push_str(&format!(
                "✓ Restored {} in one transaction\n",
                file.display()
            ));
            for t in &manifest.tables {
                human.push_str(&format!(
                    "✓ {}: {} rows, checksum {} matches the backup\n",
                    t.table, t.rows, t.sha256
                ));
            }
            record_simple_run(
                store.as_mut(),
                &format!("restore {}", file.display()),
                safety.as_ref().map(|s| s.display().to_string()),
            );
            ui.print(&human, || {
                serde_json::json!({"ok": true, "restored": manifest,
                    "backup_file": safety.as_ref().map(|s| s.display().to_string())})
            });
            Ok(EXIT_OK)
        }
        Command::Period { action } => period(cli, ui, action),
        Command::Runs { action } => {
            let mut store = open_initialised(cli)?;
            match action {
                RunsAction::List { limit } => {
                    let runs = store.runs(*limit)?;
                    ui.print(
                        &report::runs_human(&runs),
                        || serde_json::json!({"format": "habitat-migrate/runs", "version": 1, "runs": runs}),
                    );
                    Ok(EXIT_OK)
                }
                RunsAction::Show { id } => match store.run(*id)? {
                    Some((run, changes)) => {
                        ui.print(
                            &report::run_human(&run, &changes),
                            || serde_json::json!({"format": "habitat-migrate/run", "version": 1, "run": run, "changes": changes}),
                        );
                        Ok(EXIT_OK)
                    }
                    None => Err(usage(format!(
                        "no run with id {id} (see `habitat-migrate runs list`)"
                    ))),
                },
            }
        }
        Command::Db { action } => match action {
            DbAction::Init => {
                let mut store = open(cli, true)?;
                let r = store.init()?;
                let mut human = String::new();
                for (v, name, how) in &r.applied {
                    human.push_str(&format!("✓ {how} {v:04} {name}\n"));
                }
                if r.applied.is_empty() {
                    human.push_str(&format!(
                        "✓ Schema up to date ({} migrations already applied); nothing changed\n",
                        r.already_applied
                    ));
                }
                ui.print(&human, || serde_json::json!({"ok": true, "init": r}));
                Ok(EXIT_OK)
            }
            DbAction::Status => {
                let u = url(cli)?;
                // A SQLite file that does not exist yet has every migration pending, as an empty
                // PostgreSQL database does; looking must not create it.
                let s = if u.backend == store::Backend::Sqlite
                    && !u.path.as_ref().is_some_and(|p| p.is_file())
                {
                    store::SchemaStatus::from_recorded(
                        u.redacted().to_string(),
                        store::schema::SQLITE,
                        &[],
                    )
                } else {
                    open(cli, false)?.status()?
                };
                ui.print(
                    &report::status_human(&s),
                    || serde_json::json!({"format": "habitat-migrate/status", "version": 1, "status": s}),
                );
                Ok(if s.drift() { EXIT_INVALID } else { EXIT_OK })
            }
        },
        Command::Gen { members, out, seed } => {
            let g = crate::generate::generate(*members, *seed, out).map_err(|e| Failure {
                code: EXIT_FILE,
                message: format!("{}: {e}", out.display()),
            })?;
            ui.print(
                &format!(
                    "✓ Wrote {} members, {} capital accounts, {} periods, {} contributions to {}\n",
                    g.members,
                    g.capital_accounts,
                    g.periods,
                    g.contributions,
                    out.display()
                ),
                || serde_json::json!({"ok": true, "members": g.members, "contributions": g.contributions}),
            );
            Ok(EXIT_OK)
        }
    }
}

fn validate_files(cli: &Cli, ui: &Ui, files: &[SourceFile]) -> Result<i32, Failure> {
    for f in files {
        if !f.path.is_file() {
            return Err(SourceError::NotFound {
                path: f.display.clone(),
            }
            .into());
        }
    }
    // References are also checked against the database, but only one that exists and holds the
    // schema: validation never creates or writes a database.
    let known = match store::open_existing(&url(cli)?) {
        Ok(Some(mut s)) => import::known_refs(s.as_mut())?,
        Ok(None) => validate::KnownRefs::default(),
        Err(e) => {
            if !ui.quiet {
                eprintln!(
                    "warning: database not checked ({e}); references are checked against the files only"
                );
            }
            validate::KnownRefs::default()
        }
    };
    let v = validate::validate(files, &known)?;
    if v.ok() {
        ui.print(&report::validation_human(&v), || {
            report::validation_json(&v)
        });
        Ok(EXIT_OK)
    } else {
        ui.print_failure(&report::validation_human(&v), || {
            report::validation_json(&v)
        });
        Ok(EXIT_INVALID)
    }
}

fn import_files(
    cli: &Cli,
    ui: &Ui,
    files: &[SourceFile],
    command: String,
    dry_run: bool,
    no_backup: bool,
    corrections: import::CorrectionPolicy,
) -> Result<i32, Failure> {
    if no_backup && !dry_run && !ui.quiet {
        eprintln!(
            "WARNING: --no-backup: no backup is taken before this import. If it goes wrong, only a backup you took yourself can restore the database."
        );
    }
    let url = url(cli)?;
    let new_sqlite =
        url.backend == store::Backend::Sqlite && !url.path.as_ref().is_some_and(|p| p.exists());
    let mut store: Box<dyn Store> = if dry_run && new_sqlite {
        // A dry run must not create the database file it would import into.
        Box::new(store::sqlite::SqliteStore::open_in_memory(&url)?)
    } else {
        store::open(&url, true)?
    };
    let command = match corrections.flag() {
        Some(flag) => format!("{command} {flag}"),
        None => command,
    };
    let opts = import::Options {
        command,
        corrections,
        dry_run,
        no_backup,
        backup_dir: cli.backup_dir.clone(),
        log_dir: cli.log_dir.clone(),
        progress: !ui.quiet && std::io::stderr().is_terminal(),
        verify: true,
    };
    match import::run(store.as_mut(), files, &opts) {
        Ok(r) => {
            ui.print(&report::import_human(&r, ui.verbose), || {
                report::import_json(&r)
            });
            Ok(EXIT_OK)
        }
        Err(ImportError::Invalid(v)) => {
            ui.print_failure(&report::validation_human(&v), || {
                report::validation_json(&v)
            });
            Ok(EXIT_INVALID)
        }
        Err(ImportError::Verification(v)) => {
            // One document per command: in JSON the verification report is the answer.
            ui.print_failure(&report::verify_human(&v, ui.verbose), || {
                let mut doc = report::verify_json(&v);
                doc["rolled_back"] = serde_json::Value::Bool(true);
                doc
            });
            eprintln!(
                "error: verification failed inside the transaction; the run was rolled back and nothing was imported"
            );
            Ok(EXIT_INVALID)
        }
        Err(ImportError::Corrections(c)) => {
            ui.print_failure(&report::corrections_refused(&c, ui.verbose), || {
                report::corrections_json(&c)
            });
            Ok(EXIT_INVALID)
        }
        Err(ImportError::Source(e)) => Err(e.into()),
        Err(ImportError::Store(e)) => Err(with_hint(e)),
        Err(ImportError::Backup(e)) => Err(e.into()),
        Err(ImportError::Log(e)) => Err(Failure {
            code: EXIT_FILE,
            message: format!("cannot write the run log in {}: {e}", cli.log_dir.display()),
        }),
    }
}

/// A database error, with the seed guide's troubleshooting hints where they apply.
fn with_hint(e: StoreError) -> Failure {
    let mut message = e.to_string();
    if let StoreError::ConnectionLost { context, .. } = &e {
        if context == "committing" {
            message.push_str("\nThe connection was lost while committing: the run committed whole or not at all; `habitat-migrate runs list` shows which.");
        } else {
            message.push_str(
                "\nThe transaction was not committed: the database is as it was before this run.",
            );
        }
    } else if message.contains("members_email_key") {
        message.push_str("\nhint: an email already exists with other letter case or twice in the source; de-duplicate the source data.");
    }
    Failure {
        code: EXIT_DATABASE,
        message,
    }
}

fn record_simple_run(store: &mut dyn Store, command: &str, backup_file: Option<String>) {
    let mut run = RunRecord::start(command, store.url().redacted());
    run.finished_at = Some(run.started_at);
    run.backup_file = backup_file;
    if store.begin_write().is_ok() {
        if store.insert_run(&run).is_ok() {
            let _ = store.commit();
        } else {
            let _ = store.rollback();
        }
    }
}

fn period(cli: &Cli, ui: &Ui, action: &PeriodAction) -> Result<i32, Failure> {
    match action {
        PeriodAction::List => {
            let mut store = open_initialised(cli)?;
            let mut periods = store.periods()?;
            periods.sort_by_key(|p| p.start_date);
            let mut human = format!(
                "{:<20} {:<12} {:<12} {:<10} {}\n",
                "name", "start", "end", "status", "description"
            );
            for p in &periods {
                human.push_str(&format!(
                    "{:<20} {:<12} {:<12} {:<10} {}\n",
                    p.name,
                    p.start_date.strftime("%Y-%m-%d"),
                    p.end_date.strftime("%Y-%m-%d"),
                    p.status,
                    p.description.as_deref().unwrap_or("")
                ));
            }
            ui.print(&human, || {
                serde_json::json!({"format": "habitat-migrate/periods", "version": 1, "periods": periods.iter().map(|p| serde_json::json!({
                    "name": p.name, "start_date": crate::domain::format_instant(p.start_date),
                    "end_date": crate::domain::format_instant(p.end_date), "status": p.status,
                    "description": p.description,
                })).collect::<Vec<_>>()})
            });
            Ok(EXIT_OK)
        }
        PeriodAction::Create {
            name,
            start,
            end,
            description,
            status,
        } => {
            let name = name.trim();
            if name.is_empty() {
                return Err(usage("--name must not be empty"));
            }
            let date = |flag: &str, v: &str| {
                domain::parse_date(v.trim())
                    .map(domain::midnight_utc)
                    .map_err(|e| {
                        usage(format!(
                            "--{flag} {v:?}: {}",
                            match e {
                                domain::DateError::Format => "write the date as YYYY-MM-DD",
                                domain::DateError::Calendar => "not a real calendar date",
                            }
                        ))
                    })
            };
            let (start_date, end_date) = (date("start", start)?, date("end", end)?);
            if end_date < start_date {
                return Err(usage("--end is before --start"));
            }
            let status = PeriodStatus::parse(status.trim()).ok_or_else(|| {
                usage(format!(
                    "--status {status:?}: one of {}",
                    PeriodStatus::WORDS.join(", ")
                ))
            })?;
            let mut store = open(cli, true)?;
            store.init()?;
            store.begin_write()?;
            let created = (|| -> Result<(), Failure> {
                if store.periods()?.iter().any(|p| p.name == name) {
                    return Err(Failure {
                        code: EXIT_INVALID,
                        message: format!("a period named {name:?} already exists"),
                    });
                }
                let p = Period {
                    id: uuid::Uuid::now_v7(),
                    name: name.to_string(),
                    description: description.clone(),
                    start_date,
                    end_date,
                    status,
                };
                store.insert_periods(std::slice::from_ref(&p))?;
                let mut run =
                    RunRecord::start(format!("period create {name}"), store.url().redacted());
                run.finished_at = Some(run.started_at);
                run.counts = serde_json::json!({"allocation_periods": {"inserted": 1, "updated": 0, "unchanged": 0}});
                store.insert_run(&run)?;
                store.commit()?;
                Ok(())
            })();
            if created.is_err() {
                let _ = store.rollback();
            }
            created?;
            ui.print(
                &format!("✓ Created period {name}\n"),
                || serde_json::json!({"ok": true, "period": name}),
            );
            Ok(EXIT_OK)
        }
    }
}
