//! The SQLite backend: the embedded default, a single file and no server.
//!
//! Bulk writes are prepared statements executed inside the run's one `BEGIN IMMEDIATE`
//! transaction: SQLite is in-process, so a statement per row is not a round trip, and one
//! transaction means one fsync. `BEGIN IMMEDIATE` with no busy timeout is also the single-writer
//! lock: a second writer is refused at once. Money is INTEGER cents and instants are RFC 3339 UTC
//! text, so nothing here ever passes through a floating-point value.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, OpenFlags, params};
use uuid::Uuid;

use super::schema;
use super::sql::{self, ContributionTarget, Engine, ReadRow, SqlConn, Value};
use super::{Backend, BackupKind, DbUrl, ReadBackScope, StoreError, TableChecksum, Undo};
use crate::domain::{PatronageScore, format_instant};
use crate::model::{DigestSum, RowDigest, RunRecord, StagedContribution};
use crate::money::Money;

pub struct SqliteStore {
    conn: Connection,
    url: DbUrl,
}

/// Columns holding integer cents that are shown as decimal money.
pub(crate) const MONEY_COLUMNS: &[&str] = &[
    "balance",
    "tax_basis",
    "amount",
    "opening_balance",
    "opening_tax_basis",
];

fn db_err(context: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Database {
        context: context.to_string(),
        message: e.to_string(),
    }
}

fn ts(text: &str) -> Result<Timestamp, StoreError> {
    text.parse::<Timestamp>().map_err(|e| StoreError::Database {
        context: "reading a timestamp".into(),
        message: format!("{text:?}: {e}"),
    })
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Database {
        context: "reading an id".into(),
        message: format!("{text:?}: {e}"),
    })
}

fn now() -> String {
    format_instant(Timestamp::now())
}

impl SqliteStore {
    pub fn open(url: &DbUrl, create: bool) -> Result<SqliteStore, StoreError> {
        let path = url.path.clone().unwrap_or_default();
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                    url: url.redacted().to_string(),
                    message: e.to_string(),
                })?;
            }
        }
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| StoreError::Connect {
            url: url.redacted().to_string(),
            message: e.to_string(),
        })?;
        Self::configure(&conn, url)?;
        Ok(SqliteStore {
            conn,
            url: url.clone(),
        })
    }

    /// A private in-memory database standing in for a SQLite file that does not exist yet: a
    /// dry run against a new database plans against it and so leaves no file behind.
    pub fn open_in_memory(url: &DbUrl) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Connect {
            url: url.redacted().to_string(),
            message: e.to_string(),
        })?;
        Self::configure(&conn, url)?;
        Ok(SqliteStore {
            conn,
            url: url.clone(),
        })
    }

    fn configure(conn: &Connection, url: &DbUrl) -> Result<(), StoreError> {
        // No busy timeout: a second writer is refused at once rather than left waiting. It is set
        // first because switching to WAL needs a lock another writer may hold.
        conn.busy_timeout(Duration::ZERO)
            .map_err(db_err("opening"))?;
        // The page cache starts small (see `BULK_CACHE`). The journal mode is not touched here:
        // switching to WAL rewrites the file header, and reading (validate-source, verify, a dry
        // run) must leave the file as it was.
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;
             PRAGMA cache_size = {SMALL_CACHE}; PRAGMA temp_store = FILE;"
        ))
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                StoreError::Busy
            }
            e => StoreError::Connect {
                url: url.redacted().to_string(),
                message: e.to_string(),
            },
        })
    }

    pub fn path(&self) -> &Path {
        self.url.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The raw connection, for backups and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn table_exists(&self, name: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(db_err("reading the schema"))
    }

    fn recorded(&self) -> Result<Vec<(i32, String, String, String)>, StoreError> {
        if !self.table_exists("hm_schema_migrations")? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT version, checksum, applied_at, how FROM hm_schema_migrations ORDER BY version")
            .map_err(db_err("reading schema versions"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(db_err("reading schema versions"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading schema versions"))
    }

    /// Differences between the existing Habitat tables and what the tool needs (columns only:
    /// SQLite has no enum types to compare).
    fn sqlite_incompatibilities(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        for (table, column, ..) in schema::EXPECTED_COLUMNS {
            let n: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                    params![table, column],
                    |r| r.get(0),
                )
                .map_err(db_err("reading the schema"))?;
            if n == 0 {
                problems.push(format!("missing column {table}.{column}"));
            }
        }
        Ok(problems)
    }

    /// Column names of a table, in order.
    fn table_columns(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(db_err("reading the schema"))?;
        let names = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .map_err(db_err("reading the schema"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading the schema"))?;
        Ok(names)
    }

    fn exec(&self, context: &str, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(db_err(context))
    }
}

impl Engine for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn url(&self) -> &DbUrl {
        &self.url
    }

    fn before_write(&mut self) -> Result<(), StoreError> {
        // WAL, so that readers are not blocked while a run writes; set before a write, never on
        // a read-only path. A writer holding the lock makes the switch fail: that is "busy".
        self.conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map(|_| ())
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
                {
                    StoreError::Busy
                }
                e => db_err("setting the journal mode")(e),
            })
    }

    fn migrations(&self) -> &'static [schema::Migration] {
        schema::SQLITE
    }

    fn ensure_version_table(&mut self) -> Result<(), StoreError> {
        self.exec(
            "creating hm_schema_migrations",
            "CREATE TABLE IF NOT EXISTS hm_schema_migrations (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                how TEXT NOT NULL
            ) STRICT",
        )
    }

    fn recorded_versions(&mut self) -> Result<Vec<(i32, String, String, String)>, StoreError> {
        self.recorded()
    }

    fn habitat_tables_exist(&mut self) -> Result<bool, StoreError> {
        self.table_exists("members")
    }

    fn incompatibilities(&mut self) -> Result<Vec<String>, StoreError> {
        self.sqlite_incompatibilities()
    }

    fn apply_migration(&mut self, m: &schema::Migration) -> Result<(), StoreError> {
        self.exec(&format!("migration {} ({})", m.version, m.name), m.sql)
    }

    fn record_migration(&mut self, m: &schema::Migration, how: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO hm_schema_migrations (version, name, checksum, applied_at, how) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.version, m.name, m.checksum(), now(), how],
            )
            .map(|_| ())
            .map_err(db_err("recording a migration"))
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        match self.conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Err(StoreError::Busy)
            }
            Err(e) => Err(db_err("starting the transaction")(e)),
        }
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.exec("committing", "COMMIT")
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.exec("rolling back", "ROLLBACK")
    }

    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError> {
        // In-process, so the rows are fingerprinted by the one Rust rule rather than a SQL mirror.
        let (from, params) = scope.sql_from::<Self>();
        let sql = format!(
            "SELECT c.member_id, c.period_id, c.contribution_type, c.amount, c.description, c.status, c.approved_at, c.approved_by {from}"
        );
        let mut sum = if scope == ReadBackScope::Staged {
            sql::unchanged_proof(self)?
        } else {
            DigestSum::default()
        };
        self.query("reading contributions back", &sql, &params, &mut |r| {
            sum.add(sql::read_values(r, 0)?.source_digest());
            Ok(())
        })?;
        Ok(sum)
    }

    fn enforced_foreign_keys(&mut self) -> Result<Vec<(String, String, String)>, StoreError> {
        let e = db_err("reading foreign keys");
        let on: i64 = self
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .map_err(&e)?;
        if on == 0 {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT m.name, f.\"from\", f.\"table\" FROM sqlite_master m
                   JOIN pragma_foreign_key_list(m.name) f
                  WHERE m.type = 'table'",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&e)?;
        Ok(rows)
    }

    fn insert_run(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO hm_runs (started_at, finished_at, command, invoked_by, tool_version, database_url, dry_run, outcome, message, backup_file, sources, counts, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    format_instant(run.started_at),
                    run.finished_at.map(format_instant),
                    run.command,
                    run.invoked_by,
                    run.tool_version,
                    run.database_url,
                    i64::from(run.dry_run),
                    run.outcome.as_str(),
                    run.message,
                    run.backup_file,
                    run.sources.to_string(),
                    run.counts.to_string(),
                    run.details.to_string()
                ],
            )
            .map_err(db_err("recording the run"))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn finish_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE hm_runs SET finished_at = ?2, outcome = ?3, message = ?4, backup_file = ?5, sources = ?6, counts = ?7, details = ?8 WHERE id = ?1",
                params![
                    run.id,
                    run.finished_at.map(format_instant),
                    run.outcome.as_str(),
                    run.message,
                    run.backup_file,
                    run.sources.to_string(),
                    run.counts.to_string(),
                    run.details.to_string()
                ],
            )
            .map_err(db_err("recording the run"))?;
        Ok(())
    }

    fn table_checksum(&mut self, table: &str) -> Result<TableChecksum, StoreError> {
        let e = db_err("computing a table checksum");
        let columns = self.table_columns(table)?;
        let mut h = crate::checksum::RowHasher::new();
        h.row(columns.iter().map(|c| Some(c.as_str())));
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
            .map_err(&e)?;
        let money: Vec<bool> = stmt
            .column_names()
            .map(|c| MONEY_COLUMNS.contains(&c))
            .collect();
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let mut row = Vec::with_capacity(money.len());
            for (i, is_money) in money.iter().enumerate() {
                row.push(sqlite_text(r.get_ref(i).map_err(&e)?, *is_money));
            }
            h.row(row.iter().map(|v| v.as_deref()));
        }
        Ok(TableChecksum {
            table: table.to_string(),
            rows: h.rows() - 1,
            sha256: h.finish(),
        })
    }

    fn write_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        use rusqlite::backup::StepResult;
        let e = db_err("writing the backup");
        // SQLite refuses to back up from a connection in the middle of a write transaction, so a
        // second, read-only connection copies the last committed state. That is exactly the state
        // this run starts from: the run holds the write lock and has not written yet.
        let source = Connection::open_with_flags(
            self.path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(&e)?;
        let mut dst = Connection::open(path).map_err(&e)?;
        {
            let backup = rusqlite::backup::Backup::new(&source, &mut dst).map_err(&e)?;
            let mut waits = 0;
            loop {
                match backup.step(-1).map_err(&e)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked if waits < 100 => {
                        waits += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        return Err(StoreError::Other(
                            "the database stayed locked while writing the backup".into(),
                        ));
                    }
                }
            }
        }
        // A rollback-journal file is one self-contained file, so its checksum says it all.
        dst.execute_batch("PRAGMA journal_mode = DELETE;")
            .map_err(&e)?;
        dst.close().map_err(|(_, err)| e(err))
    }

    fn write_run_backup(&mut self, path: &Path, _undo: Undo<'_>) -> Result<BackupKind, StoreError> {
        // A copy of the file, page by page: at disk speed, and the simplest rollback there is.
        Engine::write_backup(self, path)?;
        Ok(BackupKind::Snapshot)
    }

    fn open_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        self.conn
            .execute(
                "ATTACH DATABASE ?1 AS hm_backup",
                [path.to_string_lossy().as_ref()],
            )
            .map(|_| ())
            .map_err(db_err("opening the backup"))
    }

    fn close_backup(&mut self) -> Result<(), StoreError> {
        self.exec("closing the backup", "DETACH DATABASE hm_backup")
    }

    fn restore_backup(&mut self, _path: &Path) -> Result<(), StoreError> {
        let e = db_err("restoring the backup");
        let tables = sql::backup_tables::<Self>();
        let mut sql = String::new();
        for t in tables.iter().rev() {
            sql.push_str(&format!("DELETE FROM main.\"{t}\";\n"));
        }
        for t in &tables {
            let cols = self
                .table_columns(t)?
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(
                "INSERT INTO main.\"{t}\" ({cols}) SELECT {cols} FROM hm_backup.\"{t}\";\n"
            ));
        }
        self.conn.execute_batch(&sql).map_err(&e)
    }
}

/// Rows per multi-row INSERT (well within SQLite's 32,766 parameters).
const ROWS_PER_INSERT: usize = 256;

/// The page cache (in KiB, as `PRAGMA cache_size` takes a negative number) while rows are bulk
/// inserted: it keeps a million-row transaction's index pages in memory.
const BULK_CACHE: &str = "-49152";
/// The page cache the rest of the time. SQLite also sizes its sorter's memory by the cache, so a
/// re-run's plan (sorting a million staged rows) held the cache and a sorter as large again on top
/// of the member index: 48 MiB throughout took a 12-million-row re-run to 207 MB. Reading and
/// planning stream, and lose little with 16 MiB.
const SMALL_CACHE: &str = "-16384";
const STAGE_INSERT_COLUMNS: &str = "line, id, member_id, period_id, contribution_type, amount, description, status, approved_at, row_digest, proof";
const FINAL_INSERT_COLUMNS: &str =
    "id, member_id, period_id, contribution_type, amount, description, status, approved_at";

/// `INSERT INTO table (columns) VALUES (?, …), (?, …), …` for `rows` rows.
fn multi_row_insert(table: &str, columns: &str, rows: usize) -> String {
    let width = columns.split(", ").count();
    let tuple = format!("({})", vec!["?"; width].join(", "));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![tuple; rows].join(", ")
    )
}

impl SqlConn for SqliteStore {
    const TOOL: &'static str = "hm_";
    const MATERIALIZE_EXISTING: bool = true;

    fn execute(&mut self, context: &str, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db_err(context))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(SqliteValue)))
            .map_err(db_err(context))?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        context: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(&dyn ReadRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let e = db_err(context);
        let mut stmt = self.conn.prepare_cached(sql).map_err(&e)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(SqliteValue)))
            .map_err(&e)?;
        while let Some(row) = rows.next().map_err(&e)? {
            each(&SqliteRow(row))?;
        }
        Ok(())
    }

    fn create_stage(&mut self) -> Result<(), StoreError> {
        self.exec(
            "planning contributions",
            "DROP TABLE IF EXISTS temp.hm_stage;
             CREATE TEMP TABLE hm_stage (
                line INTEGER PRIMARY KEY, id TEXT NOT NULL, member_id TEXT NOT NULL,
                period_id TEXT NOT NULL, contribution_type TEXT NOT NULL, amount INTEGER NOT NULL,
                description TEXT, status TEXT NOT NULL, approved_at TEXT, row_digest BLOB NOT NULL,
                proof INTEGER NOT NULL
             );",
        )
    }

    fn insert_contributions(
        &mut self,
        target: ContributionTarget,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError> {
        if let ContributionTarget::Final { .. } = target {
            return self.with_bulk_cache(|s| s.insert_contributions_at(target, rows));
        }
        self.insert_contributions_at(target, rows)
    }

    fn insert_rows(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Vec<Value>>,
    ) -> Result<u64, StoreError> {
        self.with_bulk_cache(|s| s.insert_rows_at(context, table, columns, rows))
    }
}

impl SqliteStore {
    /// Runs a bulk insert with the large page cache ([`BULK_CACHE`]), and goes back to the small
    /// one after it, whatever it returned.
    fn with_bulk_cache<T>(
        &mut self,
        insert: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let e = db_err("setting the page cache");
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = {BULK_CACHE}"))
            .map_err(&e)?;
        let out = insert(self);
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = {SMALL_CACHE}"))
            .map_err(&e)?;
        out
    }

    fn insert_contributions_at(
        &mut self,
        target: ContributionTarget,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError> {
        let e = db_err("writing contributions");
        // Rows go in INSERT statements of many rows each: one statement per row spends as long
        // in SQLite's statement machinery as in the insert itself. Staged rows keep their line
        // and fingerprint; final rows also get their bookkeeping row.
        let (table, columns, run_id) = match target {
            ContributionTarget::Stage => ("hm_stage", STAGE_INSERT_COLUMNS, None),
            ContributionTarget::Final { run_id } => {
                ("contributions", FINAL_INSERT_COLUMNS, Some(run_id))
            }
        };
        let mut n = 0u64;
        let mut chunk: Vec<StagedContribution> = Vec::with_capacity(ROWS_PER_INSERT);
        loop {
            chunk.clear();
            chunk.extend((&mut *rows).take(ROWS_PER_INSERT));
            if chunk.is_empty() {
                return Ok(n);
            }
            let mut ins = self
                .conn
                .prepare_cached(&multi_row_insert(table, columns, chunk.len()))
                .map_err(&e)?;
            let mut p = 0;
            let mut bind = |v: &dyn rusqlite::ToSql| -> rusqlite::Result<()> {
                p += 1;
                ins.raw_bind_parameter(p, v)
            };
            let mut text = uuid::Uuid::encode_buffer();
            for c in &chunk {
                let v = &c.values;
                if run_id.is_none() {
                    bind(&i64::try_from(c.line).unwrap_or(i64::MAX)).map_err(&e)?;
                }
                bind(&&*c.id.hyphenated().encode_lower(&mut text)).map_err(&e)?;
                bind(&&*v.member_id.hyphenated().encode_lower(&mut text)).map_err(&e)?;
                bind(&&*v.period_id.hyphenated().encode_lower(&mut text)).map_err(&e)?;
                bind(&v.contribution_type.as_str()).map_err(&e)?;
                bind(&v.amount.cents()).map_err(&e)?;
                bind(&v.description).map_err(&e)?;
                bind(&v.status.as_str()).map_err(&e)?;
                bind(&v.approved_at.map(format_instant)).map_err(&e)?;
                if run_id.is_none() {
                    bind(&&c.digest.0[..]).map_err(&e)?;
                    bind(&c.digest.prefix()).map_err(&e)?;
                }
            }
            ins.raw_execute().map_err(&e)?;
            if let Some(run_id) = run_id {
                let mut key = self
                    .conn
                    .prepare_cached(&multi_row_insert(
                        "hm_imported_contributions",
                        "contribution_id, run_id, row_digest",
                        chunk.len(),
                    ))
                    .map_err(&e)?;
                let mut p = 0;
                for c in &chunk {
                    key.raw_bind_parameter(p + 1, &*c.id.hyphenated().encode_lower(&mut text))
                        .map_err(&e)?;
                    key.raw_bind_parameter(p + 2, run_id).map_err(&e)?;
                    key.raw_bind_parameter(p + 3, &c.digest.0[..]).map_err(&e)?;
                    p += 3;
                }
                key.raw_execute().map_err(&e)?;
            }
            n += chunk.len() as u64;
        }
    }

    fn insert_rows_at(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Vec<Value>>,
    ) -> Result<u64, StoreError> {
        let e = db_err(context);
        let columns = columns.join(", ");
        let mut n = 0u64;
        let mut chunk: Vec<Vec<Value>> = Vec::with_capacity(ROWS_PER_INSERT);
        loop {
            chunk.clear();
            chunk.extend((&mut *rows).take(ROWS_PER_INSERT));
            if chunk.is_empty() {
                return Ok(n);
            }
            let mut stmt = self
                .conn
                .prepare_cached(&multi_row_insert(table, &columns, chunk.len()))
                .map_err(&e)?;
            for (i, value) in chunk.iter().flatten().enumerate() {
                stmt.raw_bind_parameter(i + 1, SqliteValue(value))
                    .map_err(&e)?;
            }
            stmt.raw_execute().map_err(&e)?;
            n += chunk.len() as u64;
        }
    }
}

/// A [`Value`] bound as SQLite stores it: ids and instants as text, money as integer cents.
struct SqliteValue<'a>(&'a Value);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V, ValueRef};
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Owned(V::Null),
            Value::Int(i) => ToSqlOutput::Owned(V::Integer(*i)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Uuid(u) => ToSqlOutput::Owned(V::Text(u.to_string())),
            Value::Money(m) => ToSqlOutput::Owned(V::Integer(m.cents())),
            Value::Score(score) => ToSqlOutput::Owned(V::Text(score.to_string())),
            Value::Time(t) => ToSqlOutput::Owned(V::Text(format_instant(*t))),
        })
    }
}

/// A SQLite row read as domain values.
struct SqliteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl SqliteRow<'_, '_> {
    fn value(&self, i: usize) -> Result<rusqlite::types::ValueRef<'_>, StoreError> {
        self.0.get_ref(i).map_err(db_err("reading a row"))
    }

    fn text_at(&self, i: usize) -> Result<Option<&str>, StoreError> {
        use rusqlite::types::ValueRef;
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => {
                std::str::from_utf8(t)
                    .map(Some)
                    .map_err(|e| StoreError::Database {
                        context: "reading a row".into(),
                        message: format!("column {i}: {e}"),
                    })
            }
            other => Err(StoreError::Database {
                context: "reading a row".into(),
                message: format!("column {i}: expected text, found {:?}", other.data_type()),
            }),
        }
    }
}

impl ReadRow for SqliteRow<'_, '_> {
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        self.text_at(i)?.map(uuid).transpose()
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.text_at(i)?.map(str::to_string))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        use rusqlite::types::ValueRef;
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            other => Err(StoreError::Database {
                context: "reading a row".into(),
                message: format!(
                    "column {i}: expected an integer, found {:?}",
                    other.data_type()
                ),
            }),
        }
    }

    fn opt_money(&self, i: usize) -> Result<Option<Money>, StoreError> {
        // Money is INTEGER cents; a REAL here (never written by the tool) is refused, not rounded.
        Ok(self.opt_int(i)?.map(Money::from_cents))
    }

    fn opt_score(&self, i: usize) -> Result<Option<PatronageScore>, StoreError> {
        // Checked text, as `patronage_score` is stored here: never REAL.
        self.text_at(i)?
            .map(|t| {
                PatronageScore::parse(t).ok_or_else(|| StoreError::Database {
                    context: "reading a row".into(),
                    message: format!("column {i}: {t:?} is not a patronage score between 0 and 1"),
                })
            })
            .transpose()
    }

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        self.text_at(i)?.map(ts).transpose()
    }

    fn opt_bool(&self, i: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.opt_int(i)?.map(|n| n != 0))
    }

    fn opt_digest(&self, i: usize) -> Result<Option<RowDigest>, StoreError> {
        use rusqlite::types::ValueRef;
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => {
                <[u8; 16]>::try_from(b)
                    .map(|d| Some(RowDigest(d)))
                    .map_err(|_| StoreError::Database {
                        context: "reading a row".into(),
                        message: format!("column {i}: a fingerprint of {} bytes", b.len()),
                    })
            }
            other => Err(StoreError::Database {
                context: "reading a row".into(),
                message: format!("column {i}: expected a blob, found {:?}", other.data_type()),
            }),
        }
    }
}

/// Canonical text of a SQLite value; integer cents become `12.50` in money columns.
fn sqlite_text(value: rusqlite::types::ValueRef<'_>, money: bool) -> Option<String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) if money => Some(Money::from_cents(i).to_string()),
        ValueRef::Integer(i) => Some(i.to_string()),
        // No REAL is ever written; one found is shown by its text form, never used as money.
        ValueRef::Real(f) => Some(format!("{f:?}")),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(crate::checksum::hex(b)),
    }
}
