//! The command line: argument parsing and dispatch to the library, and the mapping of every
//! outcome to an exit code (0 ok, 1 invalid data or failed verification, 2 usage, 3 database,
//! 4 file or I/O). `main` only calls [`main_with_args`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use crate::allocate::{self, AllocateError, Weights};
use crate::annotate;
use crate::backup::{self, BackupError};
use crate::domain::{self, PeriodStatus};
use crate::import::{self, ImportError};
use crate::manual;
use crate::model::{Period, RunRecord};
use crate::money::Money;
use crate::progress::Progress;
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
        value_name = "URL",
        env = "DATABASE_URL",
        default_value = "sqlite://habitat.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Where backups are written, for migrate, import, backup and restore (also accepted after
    /// those commands).
    // Not `global`: a global option is listed in every command's help, also where it is ignored.
    // The commands that use it take it after their name too ([`BackupDirArg`]); that one wins.
    #[arg(
        long,
        value_name = "DIR",
        env = "BACKUP_DIR",
        default_value = "./backups",
        hide_env_values = true
    )]
    pub backup_dir: PathBuf,
    /// Where run logs (JSON lines) are written, for migrate and import (also accepted after those
    /// commands).
    #[arg(long, value_name = "DIR", default_value = "./migration-logs")]
    pub log_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    pub format: Format,
    /// Print nothing but failures (completions and man still print what they were asked for).
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

/// `--backup-dir` after a command's name; it wins over the one before the name.
#[derive(Args, Debug, Default)]
pub struct BackupDirArg {
    /// Where backups are written [env: BACKUP_DIR] [default: ./backups].
    #[arg(long = "backup-dir", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
}

/// `--log-dir` after a command's name; it wins over the one before the name.
#[derive(Args, Debug, Default)]
pub struct LogDirArg {
    /// Where run logs (JSON lines) are written [default: ./migration-logs].
    #[arg(long = "log-dir", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

impl Cli {
    /// Applies `--backup-dir` and `--log-dir` given after the command's name, which win over the
    /// same options before it (and so over `BACKUP_DIR` and the defaults).
    fn settle_directories(&mut self) {
        let (backup_dir, log_dir) = match &mut self.command {
            Command::Migrate {
                backup_dir,
                log_dir,
                ..
            }
            | Command::Import {
                backup_dir,
                log_dir,
                ..
            } => (backup_dir.backup_dir.take(), log_dir.log_dir.take()),
            Command::Backup {
                action: Some(BackupAction::Prune { backup_dir, .. }),
                ..
            }
            | Command::Backup { backup_dir, .. }
            | Command::Restore { backup_dir, .. } => (backup_dir.backup_dir.take(), None),
            _ => (None, None),
        };
        if let Some(dir) = backup_dir {
            self.backup_dir = dir;
        }
        if let Some(dir) = log_dir {
            self.log_dir = dir;
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole job: validate → backup → import everything in one transaction → verify.
    Migrate {
        /// Directory holding members, capital_accounts and optionally periods and contributions files,
        /// or a workbook (.xlsx, .ods) with a sheet for each.
        #[arg(value_name = "BUNDLE_DIR")]
        bundle: PathBuf,
        /// Do everything inside a transaction that is rolled back; print the plan.
        #[arg(long)]
        dry_run: bool,
        /// Skip the automatic backup (not recommended).
        #[arg(long)]
        no_backup: bool,
        #[command(flatten)]
        corrections: CorrectionArgs,
        /// When validation fails, write into DIR (a new directory) an annotated copy of each file
        /// with problems (`_problems` and `_hints` columns) and a copy of each other file: fix the
        /// copies in a spreadsheet and run again on DIR.
        #[arg(long, value_name = "DIR")]
        annotate: Option<PathBuf>,
        #[command(flatten)]
        backup_dir: BackupDirArg,
        #[command(flatten)]
        log_dir: LogDirArg,
    },
    /// Validate the source files (guide step 2): a bundle directory, as migrate takes it, or the
    /// files one by one; never writes a database.
    #[command(
        override_usage = "habitat-migrate validate-source [OPTIONS] <BUNDLE_DIR>\n       \
        habitat-migrate validate-source [OPTIONS] --members <FILE> --capital-accounts <FILE> \
        [--contributions <FILE>] [--periods <FILE>]"
    )]
    ValidateSource {
        /// Directory holding members, capital_accounts and optionally periods and contributions files,
        /// or a workbook (.xlsx, .ods) with a sheet for each.
        #[arg(
            value_name = "BUNDLE_DIR",
            conflicts_with_all = ["members", "capital_accounts", "contributions", "periods", "workbook"]
        )]
        bundle: Option<PathBuf>,
        /// A workbook (.xlsx, .ods) with sheets members, capital_accounts and optionally periods and
        /// contributions: the same as giving it as BUNDLE_DIR.
        #[arg(
            long,
            value_name = "BOOK",
            conflicts_with_all = ["members", "capital_accounts", "contributions", "periods"]
        )]
        workbook: Option<PathBuf>,
        /// members file (.csv, .json or .jsonl), or a workbook whose members sheet to read
        #[arg(long, value_name = "FILE", required_unless_present_any = ["bundle", "workbook"])]
        members: Option<PathBuf>,
        /// capital_accounts file
        #[arg(long, value_name = "FILE", required_unless_present_any = ["bundle", "workbook"])]
        capital_accounts: Option<PathBuf>,
        /// contributions file (optional)
        #[arg(long, value_name = "FILE")]
        contributions: Option<PathBuf>,
        /// periods file (optional)
        #[arg(long, value_name = "FILE")]
        periods: Option<PathBuf>,
        /// When validation fails, write into DIR (a new directory) an annotated copy of each file
        /// with problems (`_problems` and `_hints` columns) and a copy of each other file: fix the
        /// copies in a spreadsheet and run again on DIR.
        #[arg(long, value_name = "DIR")]
        annotate: Option<PathBuf>,
    },
    /// Import one kind of record (guide steps 3–5).
    Import {
        /// What the file holds.
        #[arg(value_enum)]
        what: ImportKind,
        /// The source file (.csv, .json or .jsonl), or a workbook (.xlsx, .ods) whose sheet named
        /// like the records is read.
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
        #[command(flatten)]
        backup_dir: BackupDirArg,
        #[command(flatten)]
        log_dir: LogDirArg,
    },
    /// Check the database after an import (guide step 6: "validate the migration"); exit 1 on any ✗.
    Verify {
        /// Apply the seed guide's literal rule: any nonzero opening balance fails.
        #[arg(long)]
        strict_balances: bool,
    },
    /// Take a backup now (or, with `prune`, delete old ones).
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        /// The backup file (default: BACKUP_DIR/pre_migration_YYYYMMDD_HHMMSS.*).
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        backup_dir: BackupDirArg,
        #[command(subcommand)]
        action: Option<BackupAction>,
    },
    /// Roll back to a backup: replace the backed-up tables in one transaction and check them.
    Restore {
        file: PathBuf,
        /// Do not back up the current contents first (not recommended).
        #[arg(long)]
        no_backup: bool,
        #[command(flatten)]
        backup_dir: BackupDirArg,
    },
    /// Allocation periods.
    Period {
        #[command(subcommand)]
        action: PeriodAction,
    },
    /// Allocate a pool over a period's approved contributions by weighted patronage: a preview,
    /// or with --commit the period's allocations (status calculated).
    #[command(
        long_about = "Allocate a pool over a period's approved contributions by weighted patronage.\n\n\
        A member's weighted patronage is the sum of their approved contributions, each times the \
        weight of its type; their patronage_score is their share of the total (ten decimals, \
        rounded half-up); their amount is their exact share of the pool rounded down to the cent, \
        and the cents left over go one each to the largest remainders, so the amounts sum to the \
        pool exactly.\n\nWithout --commit: a preview, which writes nothing. With --commit: on a \
        closed period only, the allocations are written in one transaction and recorded as a run."
    )]
    Allocate {
        /// The allocation period, e.g. "Q4 2025".
        #[arg(long, value_name = "NAME")]
        period: String,
        /// The amount to allocate, e.g. 10000.00 (at most two decimals).
        // A negative amount is an amount to refuse with a reason, not an unknown flag.
        #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
        pool: String,
        /// The weight of each contribution type (a type left out keeps its default).
        #[arg(
            long,
            value_name = "TYPE=WEIGHT,…",
            default_value = "labor=1.0,capital=0.5,property=0.5"
        )]
        weights: String,
        /// Write the allocations, in one transaction; only on a closed period.
        #[arg(long)]
        commit: bool,
        /// With --commit: replace stored allocations that differ from this calculation (never
        /// distributed ones).
        #[arg(long, requires = "commit")]
        replace: bool,
    },
    /// Write the sign-off report of a run as one HTML page or a PDF (chosen by the file's extension).
    #[command(
        long_about = "Write the sign-off report of a run — who ran what when, the source files with their SHA-256, the rows per table, every change with before and after, every verification check, the balance reconciliation, the accounts whose book balance is not their tax basis, the backup with its checksum, and a block to sign — as one self-contained HTML page (FILE.html) or a PDF (FILE.pdf).\n\nExample: habitat-migrate report --output signoff.pdf"
    )]
    Report {
        /// The run to report on, as `runs list` shows it [default: the last successful run].
        #[arg(long, value_name = "ID")]
        run: Option<i64>,
        /// Where to write it: FILE.html (or .htm) or FILE.pdf.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
    /// Write each member's capital statement (HTML and PDF) into a directory.
    #[command(
        long_about = "Write one capital statement per member — book balance and tax basis, opening balance, approved capital and property contributions by period, labor contributions, allocations and the reconciliation difference, with no other member's figures — as statement_EMAIL.html and statement_EMAIL.pdf in DIR (created if missing).\n\nExample: habitat-migrate statements --output statements/ --member maya.okonkwo@example.org"
    )]
    Statements {
        /// The directory to write the statements into.
        #[arg(long, short, value_name = "DIR")]
        output: PathBuf,
        /// Only this member's statement (the email, ignoring case).
        #[arg(long, value_name = "EMAIL")]
        member: Option<String>,
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
        #[arg(long, required_unless_present = "from")]
        members: Option<u64>,
        /// Directory to write the bundle into (created if missing), or a workbook file (.xlsx) to
        /// write it as, one sheet per table, amounts as numbers and dates as dates.
        #[arg(long)]
        out: PathBuf,
        /// The same seed always gives byte-identical files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Instead of generating, write this CSV bundle directory as the workbook --out names.
        #[arg(long, value_name = "BUNDLE_DIR", conflicts_with_all = ["members", "seed"], requires = "out")]
        from: Option<PathBuf>,
    },
    /// Serve the migration as a local web page: files → problems → plan → migrate → sign off.
    #[command(
        long_about = "Serve the migration as a local web page, for whoever prefers a browser to a terminal: give the files, see every problem in its cell and fix it there, see the plan, migrate, and sign off.\n\nThe page listens on 127.0.0.1 only, and the link it prints carries a one-time key; nothing is fetched from the network and the files stay on this computer. The database is the one --database-url names."
    )]
    Serve {
        /// The port to listen on (0: any free port; the printed link says which).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Open the link in the desktop's browser.
        #[arg(long)]
        open: bool,
        /// Listen on this address instead (e.g. 0.0.0.0:8080): other computers can then reach the
        /// page, with the link. A non-loopback address is refused without this option.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// The largest upload accepted, in MiB.
        #[arg(long, value_name = "MIB", default_value_t = crate::web::DEFAULT_MAX_UPLOAD_MIB)]
        max_upload: usize,
    },
    /// Print a shell completion script.
    #[command(
        long_about = "Print a shell completion script on standard output.\n\nExample: habitat-migrate completions bash > ~/.local/share/bash-completion/completions/habitat-migrate"
    )]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output.
    #[command(
        long_about = "Print the man page (roff) on standard output: the global options, then every command with its options.\n\nExample: habitat-migrate man > ~/.local/share/man/man1/habitat-migrate.1"
    )]
    Man {
        /// Write one page per command (habitat-migrate-migrate.1, …) into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
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
pub enum BackupAction {
    /// Delete old backups of BACKUP_DIR: keep the N newest of each database, never the newest, and
    /// never an undo script that a kept older one needs (undo scripts are restored newest first).
    Prune {
        /// How many of the newest backups of each database to keep (at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep: u32,
        /// List what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        backup_dir: BackupDirArg,
    },
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
    /// Close an allocation period: status closed, closed_at now. Refused while contributions of
    /// the period are pending, unless --allow-pending.
    Close {
        /// The period's name, e.g. "Q1 2026".
        #[arg(value_name = "NAME")]
        name: String,
        /// Close even though contributions are pending: they are left out of the allocation.
        #[arg(long)]
        allow_pending: bool,
    },
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
    Show {
        /// The run's id, as `runs list` shows it.
        id: i64,
    },
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

    /// Progress on standard error: human output only, not under `-q`, and only on a terminal.
    fn progress(&self) -> Progress {
        Progress::new(!self.quiet && self.format == Format::Human)
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

pub const ERROR_FORMAT: &str = "habitat-migrate/error";

/// The JSON document printed on standard output when a command fails under `--format json`.
pub fn error_json(code: i32, message: &str) -> serde_json::Value {
    serde_json::json!({
        "format": ERROR_FORMAT,
        "version": 1,
        "ok": false,
        "exit_code": code,
        "error": message,
    })
}

/// Parses `args` and runs the command; returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let mut cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, asks_for_json(&args)),
    };
    cli.settle_directories();
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
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "{}",
                    error_json(f.code, &f.message)
                );
            }
            f.code
        }
    }
}

/// Prints a clap error (or the help or version it stands for) and returns the exit code. Under
/// `--format json` a real usage error is also a JSON error document on standard output.
fn usage_error(e: &clap::Error, json: bool) -> i32 {
    let _ = e.print();
    if !e.use_stderr() {
        // --help, --version: not an error.
        return EXIT_OK;
    }
    if json {
        let error = error_json(EXIT_USAGE, &clap_message(&e.render().to_string()));
        let _ = writeln!(std::io::stdout().lock(), "{error}");
    }
    EXIT_USAGE
}

/// The message of a rendered clap error on one line: without the `error: ` label, the usage and
/// the "try --help" advice that follow it.
fn clap_message(rendered: &str) -> String {
    let text = rendered.trim_start();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let end = ["\nUsage:", "\nFor more information"]
        .iter()
        .filter_map(|marker| text.find(marker))
        .min()
        .unwrap_or(text.len());
    text[..end]
        .split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether the raw arguments ask for `--format json`, for reporting an error clap found before it
/// could tell us (clap refuses a repeated `--format`, so the first one is the one meant).
fn asks_for_json(args: &[std::ffi::OsString]) -> bool {
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            return false;
        }
        if arg == "--format" {
            return args.next().is_some_and(|v| v == "json");
        }
        if let Some(value) = arg.strip_prefix("--format=") {
            return value == "json";
        }
    }
    false
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
        None => Err(StoreError::NotInitialised {
            database: where_looked(&url),
        }
        .into()),
    }
}

/// The database a command looked at, for messages: a SQLite file by its full path (and whether
/// it exists), a server by its redacted URL.
fn where_looked(url: &DbUrl) -> String {
    match (&url.backend, &url.path) {
        (store::Backend::Sqlite, Some(path)) => {
            let full = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            if path.exists() {
                format!("the SQLite file {}", full.display())
            } else {
                format!("the SQLite file {} (it does not exist)", full.display())
            }
        }
        _ => url.redacted().to_string(),
    }
}

fn run(cli: &Cli, ui: &Ui) -> Result<i32, Failure> {
    match &cli.command {
        Command::ValidateSource {
            bundle,
            workbook,
            members,
            capital_accounts,
            contributions,
            periods,
            annotate,
        } => {
            check_annotate_dir(annotate.as_deref())?;
            let files = match (
                bundle.as_ref().or(workbook.as_ref()),
                members,
                capital_accounts,
            ) {
                (Some(dir), _, _) => Bundle::discover(dir)?.files,
                (None, Some(members), Some(capital_accounts)) => {
                    let mut files = vec![
                        SourceFile::for_table(members, Table::Members)?,
                        SourceFile::for_table(capital_accounts, Table::CapitalAccounts)?,
                    ];
                    if let Some(p) = contributions {
                        files.push(SourceFile::for_table(p, Table::Contributions)?);
                    }
                    if let Some(p) = periods {
                        files.push(SourceFile::for_table(p, Table::Periods)?);
                    }
                    files
                }
                // clap requires both files when no directory is given; this is the same refusal.
                _ => {
                    return Err(usage(
                        "give a bundle directory, or --members and --capital-accounts",
                    ));
                }
            };
            validate_files(cli, ui, &files, annotate.as_deref())
        }
        Command::Migrate {
            bundle,
            dry_run,
            no_backup,
            corrections,
            annotate,
            ..
        } => {
            check_annotate_dir(annotate.as_deref())?;
            let bundle = Bundle::discover(bundle)?;
            import_files(
                cli,
                ui,
                &bundle.files,
                "migrate".into(),
                Switches {
                    dry_run: *dry_run,
                    no_backup: *no_backup,
                    corrections: corrections.policy(),
                    annotate: annotate.as_deref(),
                },
            )
        }
        Command::Import {
            what,
            source,
            dry_run,
            no_backup,
            corrections,
            ..
        } => {
            let file = SourceFile::for_table(source, what.table())?;
            let command = format!("import {}", what.table().stem().replace('_', "-"));
            import_files(
                cli,
                ui,
                &[file],
                command,
                Switches {
                    dry_run: *dry_run,
                    no_backup: *no_backup,
                    corrections: corrections.policy(),
                    annotate: None,
                },
            )
        }
        Command::Verify { strict_balances } => {
            let mut store = open_initialised(cli)?;
            let report = ui.progress().phase("verifying", || {
                verify::run(
                    store.as_mut(),
                    &verify::Options {
                        strict_balances: *strict_balances,
                        all_rows: ui.verbose || ui.format == Format::Json,
                    },
                )
            })?;
            let human = report::verify_human(&report, ui.verbose);
            if report.failed() {
                ui.print_failure(&human, || report::verify_json(&report));
                Ok(EXIT_INVALID)
            } else {
                ui.print(&human, || report::verify_json(&report));
                Ok(EXIT_OK)
            }
        }
        Command::Backup {
            action: Some(BackupAction::Prune { keep, dry_run, .. }),
            ..
        } => prune_backups(cli, ui, *keep, *dry_run),
        Command::Backup { output, .. } => {
            let mut store = open_initialised(cli)?;
            store.begin_write()?;
            let taken = ui.progress().phase("writing the backup", || match output {
                Some(path) => backup::take_to(store.as_mut(), path, Timestamp::now()),
                None => backup::take(store.as_mut(), &cli.backup_dir, Timestamp::now()),
            });
            store.rollback()?;
            let path = taken?;
            ui.print(
                &format!("✓ Backup written: {}\n", path.display()),
                || serde_json::json!({"format": "habitat-migrate/backup", "version": 1, "ok": true, "backup_file": path.display().to_string()}),
            );
            Ok(EXIT_OK)
        }
        Command::Restore {
            file, no_backup, ..
        } => {
            // The file first: a missing backup is the problem to report, whatever the database.
            if !file.is_file() {
                return Err(BackupError::NotFound {
                    file: file.display().to_string(),
                }
                .into());
            }
            let mut store = open_initialised(cli)?;
            if *no_backup && !ui.quiet {
                eprintln!(
                    "WARNING: --no-backup: the current contents are not backed up before the restore replaces them."
                );
            }
            let safety_dir = (!*no_backup).then_some(cli.backup_dir.as_path());
            let (manifest, safety) = ui.progress().phase("restoring", || {
                backup::restore(store.as_mut(), file, safety_dir)
            })?;
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
            if let Some(run) = manifest.run_id {
                human.push_str(&format!("✓ Undid run {run}\n"));
            }
            for t in &manifest.tables {
                human.push_str(&format!(
                    "✓ {}: {} rows, checksum {} matches the backup\n",
                    t.table, t.rows, t.sha256
                ));
            }
            for (table, rows) in &manifest.row_counts {
                human.push_str(&format!(
                    "✓ {table}: {rows} rows, as before run {}\n",
                    manifest.run_id.unwrap_or_default()
                ));
            }
            ui.print(&human, || {
                serde_json::json!({"format": "habitat-migrate/restore", "version": 1, "ok": true,
                    "restored": manifest,
                    "backup_file": safety.as_ref().map(|s| s.display().to_string())})
            });
            Ok(EXIT_OK)
        }
        Command::Period { action } => period(cli, ui, action),
        Command::Allocate {
            period,
            pool,
            weights,
            commit,
            replace,
        } => allocate(cli, ui, period, pool, weights, *commit, *replace),
        Command::Report { run, output } => signoff_report(cli, ui, *run, output),
        Command::Statements { output, member } => statements(cli, ui, output, member.as_deref()),
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
                    // A well-formed id that names no run: not a usage error, a fact about the data.
                    None => Err(Failure {
                        code: EXIT_INVALID,
                        message: format!("no run {id} recorded (see `habitat-migrate runs list`)"),
                    }),
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
                ui.print(&human, || {
                    serde_json::json!({"format": "habitat-migrate/init", "version": 1, "ok": true, "init": r})
                });
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
                let human = report::status_human(&s);
                let json = || serde_json::json!({"format": "habitat-migrate/status", "version": 1, "status": s});
                if s.drift() {
                    // Drift fails the command, so it is shown under -q too.
                    ui.print_failure(&human, json);
                    Ok(EXIT_INVALID)
                } else {
                    ui.print(&human, json);
                    Ok(EXIT_OK)
                }
            }
        },
        Command::Gen {
            members,
            out,
            seed,
            from,
        } => {
            let failed = |e: &dyn std::fmt::Display| Failure {
                code: EXIT_FILE,
                message: format!("{}: {e}", out.display()),
            };
            let workbook = crate::source::BookKind::of(out) == Some(crate::source::BookKind::Xlsx);
            if let Some(from) = from {
                if !workbook {
                    return Err(usage("--from writes a workbook: give --out FILE.xlsx"));
                }
                crate::generate::bundle_to_workbook(from, out).map_err(|e| failed(&e))?;
                ui.print(
                    &format!("✓ Wrote {} as {}\n", from.display(), out.display()),
                    || {
                        serde_json::json!({"format": "habitat-migrate/gen", "version": 1, "ok": true,
                            "out": out.display().to_string(), "from": from.display().to_string()})
                    },
                );
                return Ok(EXIT_OK);
            }
            let members = members.unwrap_or_default();
            let g = if workbook {
                crate::generate::generate_workbook(members, *seed, out).map_err(|e| failed(&e))?
            } else {
                crate::generate::generate(members, *seed, out).map_err(|e| failed(&e))?
            };
            ui.print(
                &format!(
                    "✓ Wrote {} members, {} capital accounts, {} periods, {} contributions to {}\n",
                    g.members,
                    g.capital_accounts,
                    g.periods,
                    g.contributions,
                    out.display()
                ),
                || {
                    serde_json::json!({"format": "habitat-migrate/gen", "version": 1, "ok": true,
                        "out": out.display().to_string(), "members": g.members,
                        "capital_accounts": g.capital_accounts, "periods": g.periods,
                        "contributions": g.contributions})
                },
            );
            Ok(EXIT_OK)
        }
        Command::Serve {
            port,
            open,
            listen,
            max_upload,
        } => serve(cli, *port, *open, *listen, *max_upload),
        // What these print is what was asked for, not a report: neither -q nor --format applies.
        Command::Completions { shell } => {
            write_stdout(&manual::completions(*shell, Cli::command()))
        }
        Command::Man { out_dir: None } => {
            let page = manual::page(Cli::command()).map_err(|e| Failure {
                code: EXIT_FILE,
                message: format!("cannot render the man page: {e}"),
            })?;
            write_stdout(&page)
        }
        Command::Man { out_dir: Some(dir) } => {
            manual::pages_to(Cli::command(), dir).map_err(|e| Failure {
                code: EXIT_FILE,
                message: format!("cannot write the man pages into {}: {e}", dir.display()),
            })?;
            ui.print(
                &format!("✓ Man pages written to {}\n", dir.display()),
                || serde_json::json!({"format": "habitat-migrate/man", "version": 1, "ok": true, "dir": dir.display().to_string()}),
            );
            Ok(EXIT_OK)
        }
    }
}

fn serve(
    cli: &Cli,
    port: u16,
    open: bool,
    listen: Option<std::net::SocketAddr>,
    max_upload: usize,
) -> Result<i32, Failure> {
    let addr = listen.unwrap_or_else(|| crate::web::Config::loopback(port));
    if listen.is_some_and(|a| !a.ip().is_loopback()) {
        eprintln!(
            "WARNING: --listen {addr}: the page can be reached from other computers on this network. \
             Anyone with the printed link can read the files and migrate; give the link to no one."
        );
    }
    let config = crate::web::Config {
        database: url(cli)?,
        backup_dir: cli.backup_dir.clone(),
        log_dir: cli.log_dir.clone(),
        addr,
        listen: listen.is_some(),
        max_upload_bytes: max_upload.saturating_mul(1 << 20),
        open_browser: open,
    };
    crate::web::serve(config).map_err(|e| Failure {
        code: match e {
            crate::web::ServeError::NotLoopback { .. } => EXIT_USAGE,
            _ => EXIT_FILE,
        },
        message: e.to_string(),
    })?;
    Ok(EXIT_OK)
}

/// Writes generated text to standard output. A reader that went away (`| head`) is not a failure.
fn write_stdout(bytes: &[u8]) -> Result<i32, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(EXIT_OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => Err(Failure {
            code: EXIT_FILE,
            message: format!("cannot write to standard output: {e}"),
        }),
    }
}

/// `--annotate DIR` is checked before anything is read: a directory that cannot take the copies
/// is a usage error, not a surprise after validation.
fn check_annotate_dir(dir: Option<&Path>) -> Result<(), Failure> {
    match dir {
        Some(dir) => annotate::check_dir(dir).map_err(|e| usage(e.to_string())),
        None => Ok(()),
    }
}

/// Reports a failed validation; with `--annotate DIR`, writes the annotated copies first and
/// lists them in the same report (one document in JSON).
fn report_invalid(
    ui: &Ui,
    v: &validate::Validation,
    files: &[SourceFile],
    annotate_dir: Option<&Path>,
) -> Result<i32, Failure> {
    let annotation = annotate_dir
        .map(|dir| annotate::write_dir(files, v.diagnostics.items(), dir))
        .transpose();
    match annotation {
        Ok(annotation) => {
            let mut human = report::validation_human(v);
            if let Some(a) = &annotation {
                human.push_str(&a.human());
            }
            ui.print_failure(&human, || {
                let mut doc = report::validation_json(v);
                if let Some(a) = &annotation {
                    doc["annotated"] = a.json();
                }
                doc
            });
            Ok(EXIT_INVALID)
        }
        Err(e) => {
            // The findings still matter; in JSON the one document is the error's.
            if ui.format == Format::Human {
                ui.print_failure(&report::validation_human(v), || serde_json::Value::Null);
            }
            Err(Failure {
                code: EXIT_FILE,
                message: e.to_string(),
            })
        }
    }
}

/// `backup prune`: needs no database, only the backups' manifests.
fn prune_backups(cli: &Cli, ui: &Ui, keep: u32, dry_run: bool) -> Result<i32, Failure> {
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let pruned = backup::prune(&cli.backup_dir, keep, dry_run)?;
    ui.print(&report::prune_human(&pruned), || {
        report::prune_json(&pruned)
    });
    Ok(EXIT_OK)
}

fn validate_files(
    cli: &Cli,
    ui: &Ui,
    files: &[SourceFile],
    annotate_dir: Option<&Path>,
) -> Result<i32, Failure> {
    for f in files {
        f.check_readable()?;
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
    let v = ui.progress().phase("validating the source files", || {
        validate::validate(files, &known)
    })?;
    if v.ok() {
        let mut human = report::validation_human(&v);
        if let Some(dir) = annotate_dir {
            human.push_str(&format!(
                "✓ Nothing to annotate: no file has errors ({} not created)\n",
                dir.display()
            ));
        }
        ui.print(&human, || {
            let mut doc = report::validation_json(&v);
            if let Some(dir) = annotate_dir {
                doc["annotated"] =
                    serde_json::json!({"dir": dir.display().to_string(), "files": []});
            }
            doc
        });
        Ok(EXIT_OK)
    } else {
        report_invalid(ui, &v, files, annotate_dir)
    }
}

/// How `migrate` and `import` were asked to run.
struct Switches<'a> {
    dry_run: bool,
    no_backup: bool,
    corrections: import::CorrectionPolicy,
    annotate: Option<&'a Path>,
}

fn import_files(
    cli: &Cli,
    ui: &Ui,
    files: &[SourceFile],
    command: String,
    switches: Switches<'_>,
) -> Result<i32, Failure> {
    let Switches {
        dry_run,
        no_backup,
        corrections,
        annotate: annotate_dir,
    } = switches;
    if no_backup && !dry_run && !ui.quiet {
        eprintln!(
            "WARNING: --no-backup: no backup is taken before this import. If it goes wrong, only a backup you took yourself can restore the database."
        );
    }
    let url = url(cli)?;
    let new_sqlite =
        url.backend == store::Backend::Sqlite && !url.path.as_ref().is_some_and(|p| p.exists());
    if new_sqlite && !dry_run {
        // A new SQLite file is created only by a run that can write to it. A database that does
        // not exist holds nothing the files could refer to, so validating them against nothing
        // first is the run's own validation; invalid files then leave no database file, schema,
        // run record or log behind (the report says everything there is to say).
        for f in files {
            f.check_readable()?;
        }
        let v = ui.progress().phase("validating the source files", || {
            validate::validate(files, &validate::KnownRefs::default())
        })?;
        if !v.ok() {
            return report_invalid(ui, &v, files, annotate_dir);
        }
    }
    let mut store = store::open_for_import(&url, dry_run)?;
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
        progress: ui.progress(),
        verify: true,
    };
    match import::run(store.as_mut(), files, &opts) {
        Ok(r) => {
            ui.print(&report::import_human(&r, ui.verbose), || {
                report::import_json(&r)
            });
            Ok(EXIT_OK)
        }
        Err(ImportError::Invalid(v)) => report_invalid(ui, &v, files, annotate_dir),
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
        Err(ImportError::Store(e)) => {
            let database_error = matches!(e, StoreError::Database { .. });
            let mut failure = with_hint(e);
            if database_error {
                failure
                    .message
                    .push_str("\nnothing was imported: the run was rolled back");
            }
            Err(failure)
        }
        Err(ImportError::Write { error, row }) => {
            let mut failure = with_hint(error);
            if let Some(row) = row {
                failure.message.push_str(&format!("\n  source row: {row}"));
            }
            failure
                .message
                .push_str("\nnothing was imported: the run was rolled back");
            Err(failure)
        }
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

/// An allocation refused or impossible (exit 1, with what to do), or a database error (exit 3).
impl From<AllocateError> for Failure {
    fn from(e: AllocateError) -> Self {
        match e {
            AllocateError::Store(e) => with_hint(e),
            e => Failure {
                code: EXIT_INVALID,
                message: match e.hint() {
                    Some(hint) => format!("{e}\nhint: {hint}"),
                    None => e.to_string(),
                },
            },
        }
    }
}

fn allocate(
    cli: &Cli,
    ui: &Ui,
    period: &str,
    pool: &str,
    weights: &str,
    commit: bool,
    replace: bool,
) -> Result<i32, Failure> {
    let pool = match Money::parse(pool.trim()) {
        Ok(pool) if pool.cents() > 0 => pool,
        Ok(pool) => {
            return Err(usage(format!(
                "--pool {pool}: the pool must be more than 0.00"
            )));
        }
        Err(e) => return Err(usage(format!("--pool {pool:?}: {e}\nhint: {}", e.hint()))),
    };
    let weights = Weights::parse(weights)
        .map_err(|e| usage(format!("--weights {weights:?}: {e}\nhint: {}", e.hint())))?;
    let request = allocate::Request {
        period: period.trim().to_string(),
        pool,
        weights,
    };
    let mut store = open_initialised(cli)?;
    let allocation = if commit {
        allocate::commit(store.as_mut(), &request, replace)?
    } else {
        allocate::preview(store.as_mut(), &request)?
    };
    ui.print(&report::allocation::allocation_human(&allocation), || {
        report::allocation::allocation_json(&allocation)
    });
    Ok(EXIT_OK)
}

fn period(cli: &Cli, ui: &Ui, action: &PeriodAction) -> Result<i32, Failure> {
    match action {
        PeriodAction::Close {
            name,
            allow_pending,
        } => {
            let mut store = open_initialised(cli)?;
            let closing = allocate::close_period(store.as_mut(), name.trim(), *allow_pending)?;
            ui.print(&report::allocation::closing_human(&closing), || {
                report::allocation::closing_json(&closing)
            });
            Ok(EXIT_OK)
        }
        PeriodAction::List => {
            let mut store = open_initialised(cli)?;
            let mut periods = store.periods()?;
            periods.sort_by_key(|p| p.start_date);
            ui.print(&report::periods_human(&periods), || {
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
            ui.print(&format!("✓ Created period {name}\n"), || {
                serde_json::json!({"format": "habitat-migrate/period", "version": 1, "ok": true,
                    "period": name, "start_date": crate::domain::format_instant(start_date),
                    "end_date": crate::domain::format_instant(end_date), "status": status.as_str(),
                    "description": description})
            });
            Ok(EXIT_OK)
        }
    }
}

impl From<report::signoff::ReportError> for Failure {
    fn from(e: report::signoff::ReportError) -> Self {
        use report::signoff::ReportError;
        let code = match &e {
            ReportError::Store(_) => EXIT_DATABASE,
            ReportError::NoSuchRun(_)
            | ReportError::NoSuccessfulRun
            | ReportError::NoSuchMember(_) => EXIT_INVALID,
            ReportError::Pdf(_) | ReportError::Write { .. } => EXIT_FILE,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Writes `bytes` to `path`, or says which file could not be written (exit 4).
fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| Failure {
        code: EXIT_FILE,
        message: format!("cannot write {}: {e}", path.display()),
    })
}

fn signoff_report(
    cli: &Cli,
    ui: &Ui,
    run: Option<i64>,
    output: &std::path::Path,
) -> Result<i32, Failure> {
    let extension = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let pdf = match extension.as_deref() {
        Some("pdf") => true,
        Some("html" | "htm") => false,
        _ => {
            return Err(usage(format!(
                "--output {}: the file name must end in .html or .pdf, which says what to write",
                output.display()
            )));
        }
    };
    let mut store = open_initialised(cli)?;
    let id = if pdf {
        let (id, bytes) = report::signoff::pdf(store.as_mut(), run)?;
        write_file(output, &bytes)?;
        id
    } else {
        let (id, html) = report::signoff::html(store.as_mut(), run)?;
        write_file(output, html.as_bytes())?;
        id
    };
    ui.print(
        &format!(
            "✓ Sign-off report of run {id} written: {}\n",
            output.display()
        ),
        || {
            serde_json::json!({"format": "habitat-migrate/report", "version": 1, "ok": true,
                               "run_id": id, "output": output.display().to_string(),
                               "kind": if pdf { "pdf" } else { "html" }})
        },
    );
    Ok(EXIT_OK)
}

fn statements(
    cli: &Cli,
    ui: &Ui,
    dir: &std::path::Path,
    member: Option<&str>,
) -> Result<i32, Failure> {
    let mut store = open_initialised(cli)?;
    std::fs::create_dir_all(dir).map_err(|e| Failure {
        code: EXIT_FILE,
        message: format!("cannot create {}: {e}", dir.display()),
    })?;
    let mut written = Vec::new();
    let count = report::statement::for_each_statement(
        store.as_mut(),
        member,
        Timestamp::now(),
        &mut |s| {
            let html = dir.join(format!("{}.html", s.file_stem));
            let pdf = dir.join(format!("{}.pdf", s.file_stem));
            let failed =
                |path: &std::path::Path, e: std::io::Error| report::signoff::ReportError::Write {
                    path: path.display().to_string(),
                    message: e.to_string(),
                };
            std::fs::write(&html, s.document.to_html()).map_err(|e| failed(&html, e))?;
            let bytes = report::pdf::render(&s.document)?;
            std::fs::write(&pdf, bytes).map_err(|e| failed(&pdf, e))?;
            written.push(serde_json::json!({"member": s.email,
                "html": html.display().to_string(), "pdf": pdf.display().to_string()}));
            Ok(())
        },
    )?;
    ui.print(
        &format!(
            "✓ {count} member statement(s) written to {} (HTML and PDF, one of each per member)\n",
            dir.display()
        ),
        || {
            serde_json::json!({"format": "habitat-migrate/statements", "version": 1, "ok": true,
                               "directory": dir.display().to_string(), "statements": written})
        },
    );
    Ok(EXIT_OK)
}
