//! The store: one abstraction over the target database, with a PostgreSQL and a SQLite backend.
//!
//! The pipeline speaks only [`Store`], a trait in the domain's terms: typed rows of
//! [`crate::model`] go in and come out, and no SQL text crosses it. It is implemented **once**, in
//! [`sql`], over the small [`sql::Engine`] interface each backend provides (run a statement, stream
//! a query's rows, bulk-insert rows, decode a column, and the few things that really differ: `COPY`
//! and the online backup API, transactions and locks, the schema catalogue). So every rule of the
//! import that is SQL — matching contributions, the totals the balance rules need, the checks of
//! verification — is written once and runs unchanged on both databases.
//!
//! A store operation never commits on its own: the caller opens one write transaction with
//! [`Store::begin_write`] and ends it with [`Store::commit`] or [`Store::rollback`], so a run is
//! whole or absent. Connection strings are kept in redacted form for anything that is shown.

pub mod postgres;
pub mod schema;
pub(crate) mod sql;
pub mod sqlite;
pub mod tls;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use uuid::Uuid;

use crate::model::{
    Account, AllocationWrites, Change, DigestSum, HabitatTable, Member, MemberAllocation,
    MemberContribution, MemberPatronage, MemberTotals, MissingContribution, Opening, Orphan,
    Period, PeriodStanding, RecordedChange, RunRecord, StagedContribution, StoredAllocation,
};
use crate::money::Money;

pub use schema::{InitReport, SchemaStatus};
pub use sql::{AppliedContributions, StagedCounts, StagedLine};

/// Which database engine a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A parsed database URL. `Display` shows it with any password replaced by `***`.
#[derive(Clone)]
pub struct DbUrl {
    raw: String,
    redacted: String,
    pub backend: Backend,
    /// For SQLite, the database file.
    pub path: Option<PathBuf>,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl std::fmt::Display for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl DbUrl {
    /// Accepts `postgres://…`, `postgresql://…`, `sqlite://relative.db`, `sqlite:///abs.db`,
    /// `sqlite:relative.db`, or a bare path ending in `.db`/`.sqlite`.
    pub fn parse(text: &str) -> Result<DbUrl, StoreError> {
        let redacted = redact(text);
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DbUrl {
                raw: text.to_string(),
                redacted,
                backend: Backend::Postgres,
                path: None,
            });
        }
        let path = if let Some(rest) = text.strip_prefix("sqlite://") {
            Some(rest)
        } else if let Some(rest) = text.strip_prefix("sqlite:") {
            Some(rest)
        } else if text.ends_with(".db") || text.ends_with(".sqlite") || text.ends_with(".sqlite3") {
            Some(text)
        } else {
            None
        };
        match path.map(|p| p.split('?').next().unwrap_or(p)) {
            Some(p) if !p.is_empty() => Ok(DbUrl {
                raw: text.to_string(),
                redacted,
                backend: Backend::Sqlite,
                path: Some(PathBuf::from(p)),
            }),
            _ => Err(StoreError::BadUrl { url: redacted }),
        }
    }

    /// The URL with its password, for the driver only.
    pub(crate) fn secret(&self) -> &str {
        &self.raw
    }

    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// Replaces the password of `scheme://user:password@host` (and `password=` parameters, however
/// percent-encoded) by `***`. The credentials end at the first `@`, as the driver reads them, so a
/// password containing `/`, `?` or `#` is hidden too.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        if let Some(at) = out[rest_start..].find('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                let end = rest_start + at;
                out.replace_range(start..end, "***");
            }
        }
    }
    let Some(query_start) = out.find('?') else {
        return out;
    };
    let (head, query) = out.split_at(query_start + 1);
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if percent_decode(key).eq_ignore_ascii_case("password") => {
                format!("{key}=***")
            }
            _ => param.to_string(),
        })
        .collect();
    format!("{head}{}", params.join("&"))
}

fn percent_decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything that can go wrong talking to the database (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not a database URL: {url} (use postgres://… or sqlite://FILE)")]
    BadUrl { url: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "another habitat-migrate run is writing to this database; wait for it to finish, then run again"
    )]
    Busy,
    /// `database` says where the tool looked: a SQLite file's path or a redacted URL.
    #[error("no Habitat schema yet in {database}: run `habitat-migrate db init` first")]
    NotInitialised { database: String },
    #[error(
        "the existing Habitat tables are not compatible with this tool:\n  - {}",
        .0.join("\n  - ")
    )]
    Incompatible(Vec<String>),
    #[error("the database connection was lost during {context}: {message}")]
    ConnectionLost { context: String, message: String },
    #[error("database error during {context}: {message}")]
    Database { context: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// What a write did to one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Earlier imports deleted as corrections (`--replace-missing`); contributions only.
    pub deleted: u64,
}

impl TableCounts {
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }
}

/// Which contributions the read-back proof looks at: the ones the staged source rows matched or
/// added, or (when every row was new and went straight in) the ones a run created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBackScope {
    Staged,
    Run(i64),
    /// Every contribution: the table was empty before this run, which wrote them all.
    All,
}

impl ReadBackScope {
    /// The `FROM` clause (aliasing the contributions `c`) and its parameters.
    pub(crate) fn sql_from<C: sql::SqlConn>(self) -> (String, Vec<sql::Value>) {
        match self {
            // The rows the run wrote; the ones it matched unchanged are proved by the match.
            ReadBackScope::Staged => (
                format!(
                    "FROM hm_plan p JOIN contributions c ON c.id = coalesce(p.existing_id, p.new_id)
                     WHERE {}",
                    sql::WRITTEN
                ),
                Vec::new(),
            ),
            ReadBackScope::All => ("FROM contributions c".into(), Vec::new()),
            ReadBackScope::Run(run_id) => (
                C::sql(
                    "FROM {tool}imported_contributions k JOIN contributions c ON c.id = k.contribution_id
                     WHERE k.run_id = $1",
                ),
                vec![sql::Value::Int(run_id)],
            ),
        }
    }
}

/// A table's row count and checksum, for backup manifests and restores.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableChecksum {
    pub table: String,
    pub rows: u64,
    pub sha256: String,
}

/// Everything a run is about to change, for the undo backup taken before it writes (see
/// [`Store::write_undo`]): the ids of the rows it inserts, the rows it updates as they are now,
/// and how its contributions are planned.
pub struct Undo<'a> {
    pub run_id: i64,
    pub new_periods: &'a [Uuid],
    pub new_members: &'a mut dyn Iterator<Item = Uuid>,
    pub new_accounts: &'a mut dyn Iterator<Item = Uuid>,
    pub old_periods: &'a [Uuid],
    pub old_members: &'a [Uuid],
    pub old_accounts: &'a [Uuid],
    /// `None`: no contributions file. `Some(false)`: every row new, straight in (the run's rows
    /// are found by its run id). `Some(true)`: staged; `delete_missing` says whether the
    /// corrections' earlier rows are deleted.
    pub contributions_staged: Option<bool>,
    pub delete_missing: bool,
}

/// What kind of backup a file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// The whole contents of the backed-up tables: restoring replaces them.
    #[default]
    Snapshot,
    /// What one run changed, to be undone: restoring reverses that run.
    Undo,
}

/// A capital account with a balance or tax basis below zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegativeBalance {
    pub account_id: Uuid,
    pub member_id: Uuid,
    pub balance: Money,
    pub tax_basis: Money,
}

/// The operations the pipeline needs from a database, in the domain's terms.
pub trait Store {
    fn backend(&self) -> Backend;
    fn url(&self) -> &DbUrl;

    // --- schema ---------------------------------------------------------------------------
    /// Creates or completes the schema, idempotently, in a transaction of its own.
    fn init(&mut self) -> Result<InitReport, StoreError>;
    /// Applies the missing migrations inside the caller's transaction (so that a dry run can
    /// plan against a new database and still leave nothing behind).
    fn migrate_schema(&mut self) -> Result<InitReport, StoreError>;
    fn status(&mut self) -> Result<SchemaStatus, StoreError>;
    /// Whether every migration is recorded (the Habitat tables and the tool's tables exist).
    fn is_initialised(&mut self) -> Result<bool, StoreError>;

    // --- the run's transaction --------------------------------------------------------------
    /// Opens the run's one transaction and takes the single-writer lock, refusing at once with
    /// [`StoreError::Busy`] if another run holds it.
    fn begin_write(&mut self) -> Result<(), StoreError>;
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self) -> Result<(), StoreError>;

    // --- members, periods, capital accounts ----------------------------------------------------
    /// Streams every member.
    fn for_each_member(
        &mut self,
        each: &mut dyn FnMut(Member) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn members_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<Member>, StoreError>;
    fn insert_members(&mut self, rows: &mut dyn Iterator<Item = Member>)
    -> Result<u64, StoreError>;
    fn update_members(&mut self, rows: &[Member]) -> Result<(), StoreError>;
    fn periods(&mut self) -> Result<Vec<Period>, StoreError>;
    fn insert_periods(&mut self, rows: &[Period]) -> Result<(), StoreError>;
    fn update_periods(&mut self, rows: &[Period]) -> Result<(), StoreError>;
    /// Streams every capital account.
    fn for_each_account(
        &mut self,
        each: &mut dyn FnMut(Account) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn accounts_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<Account>, StoreError>;
    fn insert_accounts(
        &mut self,
        rows: &mut dyn Iterator<Item = Account>,
    ) -> Result<u64, StoreError>;
    fn update_accounts(&mut self, rows: &[Account]) -> Result<(), StoreError>;

    // --- contributions --------------------------------------------------------------------------
    /// Whether this tool has imported any contribution here (if not, every source row is new).
    fn has_imported_contributions(&mut self) -> Result<bool, StoreError>;
    /// Writes contributions that are all new straight into the table, recording them as the
    /// tool's (with `run_id` and each row's fingerprint).
    fn insert_new_contributions(
        &mut self,
        run_id: i64,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError>;
    /// Stages source contributions and matches them against the tool's earlier imports, writing
    /// nothing but temporary tables: the plan for [`Store::apply_staged_contributions`].
    fn stage_contributions(
        &mut self,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<StagedCounts, StoreError>;
    /// The earlier imports in (member, period) pairs the staged source covers that it no longer
    /// lists.
    fn missing_contributions(&mut self) -> Result<Vec<MissingContribution>, StoreError>;
    /// After [`Store::stage_contributions`]: what the plan does with each of a few source lines
    /// (the plan's samples).
    fn staged_actions(&mut self, lines: &[u64]) -> Result<Vec<StagedLine>, StoreError>;
    /// Applies the staged plan (and deletes the missing earlier imports if asked); returns what it
    /// did, with the change history to record.
    fn apply_staged_contributions(
        &mut self,
        run_id: i64,
        plan: StagedCounts,
        delete_missing: bool,
    ) -> Result<AppliedContributions, StoreError>;
    /// The fingerprint sum of the contributions in `scope`, for the read-back proof.
    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError>;

    // --- period close and allocation ----------------------------------------------------------
    /// The period of that name with when it was closed and how many of its contributions are
    /// approved and pending; `None` if there is none.
    fn period_standing(&mut self, name: &str) -> Result<Option<PeriodStanding>, StoreError>;
    /// Sets the period's status to `closed` and its `closed_at`.
    fn close_period(&mut self, period_id: Uuid, closed_at: Timestamp) -> Result<(), StoreError>;
    /// The period's approved contributions summed per member and type, ordered by email.
    fn approved_patronage(&mut self, period_id: Uuid) -> Result<Vec<MemberPatronage>, StoreError>;
    /// The period's allocations, ordered by email.
    fn allocations(&mut self, period_id: Uuid) -> Result<Vec<StoredAllocation>, StoreError>;
    /// Writes the period's allocations as decided above the store. A row to update or delete
    /// must still be `calculated`: if one was distributed meanwhile, this fails and the caller
    /// rolls back.
    fn write_allocations(
        &mut self,
        period_id: Uuid,
        writes: &AllocationWrites,
    ) -> Result<(), StoreError>;

    // --- a member's statement -----------------------------------------------------------------
    /// Every contribution of one member (any status), ordered by period start, type and amount.
    fn member_contributions(
        &mut self,
        member_id: Uuid,
    ) -> Result<Vec<MemberContribution>, StoreError>;
    /// Every allocation of one member (any status), ordered by period start.
    fn member_allocations(&mut self, member_id: Uuid) -> Result<Vec<MemberAllocation>, StoreError>;

    // --- history and balances --------------------------------------------------------------------
    fn record_changes(&mut self, run_id: i64, changes: &[Change]) -> Result<(), StoreError>;
    /// Streams every capital account with its member's sums, ordered by email.
    fn for_each_member_totals(
        &mut self,
        each: &mut dyn FnMut(MemberTotals) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Stores opening balances derived in this run.
    /// Stores these opening balances (member id, opening) as derived by this run, replacing
    /// stored ones. Streamed: a fresh import derives one per member.
    fn write_openings(
        &mut self,
        run_id: i64,
        openings: &mut dyn Iterator<Item = (Uuid, Opening)>,
    ) -> Result<(), StoreError>;

    // --- verification ----------------------------------------------------------------------------
    fn member_count(&mut self) -> Result<u64, StoreError> {
        self.row_count(HabitatTable::Members)
    }
    fn row_count(&mut self, table: HabitatTable) -> Result<u64, StoreError>;
    /// Capital accounts whose member is not there: `(account id, member id)`.
    fn accounts_without_member(&mut self) -> Result<Vec<(Uuid, Uuid)>, StoreError>;
    /// Contributions whose member or period is not there: `(id, member id, period id)`.
    fn contributions_without_references(&mut self) -> Result<Vec<(Uuid, Uuid, Uuid)>, StoreError>;
    fn negative_balances(&mut self) -> Result<Vec<NegativeBalance>, StoreError>;
    /// Approved contributions with no approval date: `(id, member id)`.
    fn approved_without_timestamp(&mut self) -> Result<Vec<(Uuid, Uuid)>, StoreError>;
    /// Every other row that refers to a row that is not there (allocations, `approved_by`, the
    /// tool's opening balances).
    fn orphans(&mut self) -> Result<Vec<Orphan>, StoreError>;
    /// Whether the database refuses, for every row this connection writes, a reference the
    /// checks above look for: each is a foreign key that is declared and enforced.
    fn references_enforced(&mut self) -> Result<bool, StoreError>;

    // --- runs -----------------------------------------------------------------------------------
    /// Inserts a run (inside the current transaction) and returns its number.
    fn insert_run(&mut self, run: &RunRecord) -> Result<i64, StoreError>;
    fn finish_run(&mut self, run: &RunRecord) -> Result<(), StoreError>;
    /// The most recent runs, newest first.
    fn runs(&mut self, limit: i64) -> Result<Vec<RunRecord>, StoreError>;
    fn run(&mut self, id: i64) -> Result<Option<(RunRecord, Vec<RecordedChange>)>, StoreError>;

    // --- backups --------------------------------------------------------------------------------
    /// Row count and checksum of every table a backup holds (the five Habitat tables and the tool
    /// state tied to their rows), in canonical form.
    fn table_checksums(&mut self) -> Result<Vec<TableChecksum>, StoreError>;
    /// Writes a backup of those tables to `path` (already created, owner-only).
    fn write_backup(&mut self, path: &Path) -> Result<(), StoreError>;
    /// Writes the backup taken before a run writes: PostgreSQL writes an undo script of exactly
    /// what the run changes (a snapshot of a million-row database at every run would cost more
    /// than the run); SQLite copies the file (at disk speed). Returns which kind it wrote.
    fn write_run_backup(&mut self, path: &Path, undo: Undo<'_>) -> Result<BackupKind, StoreError>;
    /// Makes a backup readable before the restore transaction begins (SQLite attaches the file,
    /// which it cannot do inside a transaction).
    fn open_backup(&mut self, path: &Path) -> Result<(), StoreError>;
    fn close_backup(&mut self) -> Result<(), StoreError>;
    /// Replaces the backed-up tables' contents with the backup's, inside the current transaction.
    fn restore_backup(&mut self, path: &Path) -> Result<(), StoreError>;
}

/// Opens the store a URL names. SQLite files are created only when `create` is set.
pub fn open(url: &DbUrl, create: bool) -> Result<Box<dyn Store>, StoreError> {
    match url.backend {
        Backend::Postgres => Ok(Box::new(postgres::PgStore::connect(url)?)),
        Backend::Sqlite => Ok(Box::new(sqlite::SqliteStore::open(url, create)?)),
    }
}

/// Opens the store an import runs against. A dry run into a SQLite file that does not exist yet
/// plans against an empty database in memory: a dry run must not create the file it would import
/// into. Used by `migrate`, `import` and the web page alike.
pub fn open_for_import(url: &DbUrl, dry_run: bool) -> Result<Box<dyn Store>, StoreError> {
    let new_sqlite =
        url.backend == Backend::Sqlite && !url.path.as_ref().is_some_and(|p| p.exists());
    if dry_run && new_sqlite {
        Ok(Box::new(sqlite::SqliteStore::open_in_memory(url)?))
    } else {
        open(url, true)
    }
}

/// Opens the store only if the database exists and holds the schema; `Ok(None)` otherwise. Used
/// by `validate-source`, which must never create a database.
pub fn open_existing(url: &DbUrl) -> Result<Option<Box<dyn Store>>, StoreError> {
    if url.backend == Backend::Sqlite && !url.path.as_ref().is_some_and(|p| p.is_file()) {
        return Ok(None);
    }
    let mut store = open(url, false)?;
    if store.is_initialised()? {
        Ok(Some(store))
    } else {
        Ok(None)
    }
}

/// Who ran the tool, for the run record (see [`crate::user::invoked_by`]).
pub fn invoked_by() -> String {
    crate::user::invoked_by()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://habitat:s3cret@localhost:5432/habitat"),
            "postgres://habitat:***@localhost:5432/habitat"
        );
        assert_eq!(
            redact("postgres://habitat:p%40ss@db/x?sslmode=disable"),
            "postgres://habitat:***@db/x?sslmode=disable"
        );
        assert_eq!(
            redact("postgres://root@localhost/test"),
            "postgres://root@localhost/test"
        );
        assert_eq!(
            redact("postgres:///test?user=a&password=hunter2&x=1"),
            "postgres:///test?user=a&password=***&x=1"
        );
        assert_eq!(
            redact("postgres://hm:pa/ss@127.0.0.1:5432/db"),
            "postgres://hm:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact("postgres://hm:p?a#s@h/db"), "postgres://hm:***@h/db");
        assert_eq!(
            redact("postgres:///db?user=a&pass%77ord=hunter2"),
            "postgres:///db?user=a&pass%77ord=***"
        );
        let url = DbUrl::parse("postgres://u:hunter2@h/d").ok();
        assert!(url.is_some_and(|u| !format!("{u} {u:?}").contains("hunter2")));
    }

    #[test]
    fn sqlite_urls() {
        let p = |s: &str| DbUrl::parse(s).ok().and_then(|u| u.path);
        assert_eq!(p("sqlite://habitat.db"), Some(PathBuf::from("habitat.db")));
        assert_eq!(p("sqlite:///tmp/h.db"), Some(PathBuf::from("/tmp/h.db")));
        assert_eq!(p("sqlite:h.db"), Some(PathBuf::from("h.db")));
        assert!(DbUrl::parse("mysql://x").is_err());
    }
}
