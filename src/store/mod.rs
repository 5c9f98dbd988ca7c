//! The store: one abstraction over the target database, with a PostgreSQL and a SQLite backend.
//!
//! The import pipeline speaks only [`Store`]; each backend decides how to do a step in bulk
//! (binary `COPY` and set-based SQL on PostgreSQL, prepared statements in one transaction on
//! SQLite). A store operation never commits on its own: the caller opens one write transaction with
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
    Change, DigestSum, MemberTotals, MissingContribution, Opening, StagedContribution,
};
use crate::money::Money;
use crate::validate::KnownRefs;

pub use schema::{InitReport, SchemaStatus};
pub use sql::{AppliedContributions, StagedCounts};

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

/// A member as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbMember {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub ens_name: Option<String>,
    pub role: String,
    pub status: String,
    pub joined_at: Timestamp,
}

/// An allocation period as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbPeriod {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub start_date: Timestamp,
    pub end_date: Timestamp,
    pub status: String,
}

/// A capital account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbAccount {
    pub id: Uuid,
    pub member_id: Uuid,
    pub balance: Money,
    pub tax_basis: Money,
    pub notes: Option<String>,
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
}

impl ReadBackScope {
    /// The `FROM` clause (aliasing the contributions `c`) and its parameters.
    pub(crate) fn sql_from<C: sql::SqlConn>(self) -> (String, Vec<sql::Value>) {
        match self {
            ReadBackScope::Staged => (
                "FROM hm_stage s JOIN contributions c ON c.id = coalesce(s.existing_id, s.id)".into(),
                Vec::new(),
            ),
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

/// A run as recorded in the database.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub command: String,
    pub invoked_by: String,
    pub tool_version: String,
    pub database_url: String,
    pub dry_run: bool,
    pub outcome: String,
    pub message: Option<String>,
    pub backup_file: Option<String>,
    pub sources: serde_json::Value,
    pub counts: serde_json::Value,
}

/// A recorded change, as listed by `runs show`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChangeRow {
    pub table: String,
    pub row_id: String,
    pub row_key: String,
    pub column: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The five Habitat tables, in the order rows may refer to each other.
pub const HABITAT_TABLES: [&str; 5] = [
    "members",
    "allocation_periods",
    "capital_accounts",
    "contributions",
    "allocations",
];

/// A table's row count and checksum, for backup manifests and restores.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableChecksum {
    pub table: String,
    pub rows: u64,
    pub sha256: String,
}

/// The operations the pipeline needs from a database.
pub trait Store {
    fn backend(&self) -> Backend;
    fn url(&self) -> &DbUrl;

    /// Creates or completes the schema, idempotently, in a transaction of its own.
    fn init(&mut self) -> Result<InitReport, StoreError> {
        self.before_write()?;
        self.begin_write()?;
        match self.migrate_schema() {
            Ok(report) => {
                self.commit()?;
                Ok(report)
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// Settings a backend makes once before it first writes (SQLite: WAL), kept off read-only
    /// paths so that reading leaves a database file as it was.
    fn before_write(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Applies the missing migrations inside the caller's transaction (so that a dry run can
    /// plan against a new database and still leave nothing behind).
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
            self.url().redacted().to_string(),
            self.migrations(),
            &recorded,
        ))
    }

    /// The embedded migration files of this backend, in order.
    fn migrations(&self) -> &'static [schema::Migration];
    /// Creates the table that records applied migrations, if missing.
    fn ensure_version_table(&mut self) -> Result<(), StoreError>;
    /// Recorded migrations: `(version, checksum, applied_at, how)`.
    fn recorded_versions(&mut self) -> Result<Vec<(i32, String, String, String)>, StoreError>;
    /// Whether any of the five Habitat tables already exists.
    fn habitat_tables_exist(&mut self) -> Result<bool, StoreError>;
    /// Differences between the existing Habitat tables and what the tool needs.
    fn incompatibilities(&mut self) -> Result<Vec<String>, StoreError>;
    fn apply_migration(&mut self, m: &schema::Migration) -> Result<(), StoreError>;
    fn record_migration(&mut self, m: &schema::Migration, how: &str) -> Result<(), StoreError>;
    /// Whether every migration is recorded (the Habitat tables and the tool's tables exist).
    fn is_initialised(&mut self) -> Result<bool, StoreError> {
        let recorded = self.recorded_versions()?;
        Ok(self
            .migrations()
            .iter()
            .all(|m| recorded.iter().any(|r| r.0 == m.version)))
    }

    /// Opens the run's one transaction and takes the single-writer lock, refusing at once with
    /// [`StoreError::Busy`] if another run holds it.
    fn begin_write(&mut self) -> Result<(), StoreError>;
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self) -> Result<(), StoreError>;

    fn known_refs(&mut self) -> Result<KnownRefs, StoreError>;
    fn members(&mut self) -> Result<Vec<DbMember>, StoreError>;
    fn periods(&mut self) -> Result<Vec<DbPeriod>, StoreError>;
    fn capital_accounts(&mut self) -> Result<Vec<DbAccount>, StoreError>;

    fn write_periods(&mut self, insert: &[DbPeriod], update: &[DbPeriod])
    -> Result<(), StoreError>;
    fn write_members(&mut self, insert: &[DbMember], update: &[DbMember])
    -> Result<(), StoreError>;
    fn write_capital_accounts(
        &mut self,
        insert: &[DbAccount],
        update: &[DbAccount],
    ) -> Result<(), StoreError>;
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
    /// Applies the staged plan (and deletes the missing earlier imports if asked); returns what it
    /// did, with the change history to record.
    fn apply_staged_contributions(
        &mut self,
        run_id: i64,
        delete_missing: bool,
    ) -> Result<AppliedContributions, StoreError>;
    /// The fingerprint sum of the contributions in `scope`, for the read-back proof.
    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError>;
    fn record_changes(&mut self, run_id: i64, changes: &[Change]) -> Result<(), StoreError>;
    /// Every capital account with its member's sums, ordered by email.
    fn member_totals(&mut self) -> Result<Vec<MemberTotals>, StoreError>;
    /// Stores opening balances derived in this run.
    fn write_openings(
        &mut self,
        run_id: i64,
        openings: &[(Uuid, Opening)],
    ) -> Result<(), StoreError>;

    /// Inserts a run row (inside the current transaction) and returns its id.
    fn insert_run(&mut self, run: &RunRow) -> Result<i64, StoreError>;
    fn finish_run(&mut self, run: &RunRow) -> Result<(), StoreError>;
    fn runs(&mut self, limit: i64) -> Result<Vec<RunRow>, StoreError>;
    fn run(&mut self, id: i64) -> Result<Option<(RunRow, Vec<ChangeRow>)>, StoreError>;

    /// Column names of a table (`members` or `habitat_migrate.runs`), in order.
    fn columns(&mut self, table: &str) -> Result<Vec<String>, StoreError>;

    /// Row count and checksum of a whole table in canonical form, ordered by its first column.
    fn table_checksum(&mut self, table: &str) -> Result<TableChecksum, StoreError> {
        let columns = self.columns(table)?;
        let mut h = crate::checksum::RowHasher::new();
        h.row(columns.iter().map(|c| Some(c.as_str())));
        self.for_each_row(&format!("SELECT * FROM {table} ORDER BY 1"), &mut |r| {
            h.row(r.iter().map(|v| v.as_deref()))
        })?;
        Ok(TableChecksum {
            table: table.to_string(),
            rows: h.rows() - 1,
            sha256: h.finish(),
        })
    }

    /// Streams the rows of a read-only query as canonical text (money columns as `12.50`,
    /// instants as RFC 3339 UTC); used by verification and read-back.
    fn for_each_row(
        &mut self,
        sql: &str,
        each: &mut dyn FnMut(Vec<Option<String>>),
    ) -> Result<(), StoreError>;

    /// Collects the rows of a small read-only query.
    fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let mut rows = Vec::new();
        self.for_each_row(sql, &mut |r| rows.push(r))?;
        Ok(rows)
    }

    /// The name of one of the tool's own tables (`habitat_migrate.runs` or `hm_runs`).
    fn tool_table(&self, name: &str) -> String;

    /// Writes a backup of [`Store::backup_tables`] to `path` (already created, owner-only).
    fn write_backup(&mut self, path: &Path) -> Result<(), StoreError>;

    /// Makes a backup readable before the restore transaction begins (SQLite attaches the file,
    /// which it cannot do inside a transaction).
    fn open_backup(&mut self, _path: &Path) -> Result<(), StoreError> {
        Ok(())
    }

    fn close_backup(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Replaces the backed-up tables' contents with the backup's, inside the current transaction.
    fn restore_backup(&mut self, path: &Path) -> Result<(), StoreError>;

    /// The tables a backup holds: the five Habitat tables and the tool state tied to their rows.
    fn backup_tables(&self) -> Vec<String> {
        let mut t: Vec<String> = HABITAT_TABLES.iter().map(|s| s.to_string()).collect();
        t.push(self.tool_table("imported_contributions"));
        t.push(self.tool_table("opening_balances"));
        t
    }
}

/// Opens the store a URL names. SQLite files are created only when `create` is set.
pub fn open(url: &DbUrl, create: bool) -> Result<Box<dyn Store>, StoreError> {
    match url.backend {
        Backend::Postgres => Ok(Box::new(postgres::PgStore::connect(url)?)),
        Backend::Sqlite => Ok(Box::new(sqlite::SqliteStore::open(url, create)?)),
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
