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
use super::sql::{
    self, AppliedContributions, ContributionTarget, ReadRow, SqlConn, StagedCounts, Value,
};
use super::{
    Backend, ChangeRow, DbAccount, DbMember, DbPeriod, DbUrl, ReadBackScope, RunRow, Store,
    StoreError,
};
use crate::domain::format_instant;
use crate::model::{
    Change, DigestSum, MemberTotals, MissingContribution, Opening, RowDigest, StagedContribution,
};
use crate::money::Money;
use crate::validate::KnownRefs;

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
        // A large page cache keeps a million-row transaction's index pages in memory. The
        // journal mode is not touched here: switching to WAL rewrites the file header, and
        // reading (validate-source, verify, a dry run) must leave the file as it was.
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;
             PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;",
        )
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

impl Store for SqliteStore {
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

    fn known_refs(&mut self) -> Result<KnownRefs, StoreError> {
        let mut refs = KnownRefs::default();
        for m in self.members()? {
            if let Some(ens) = m.ens_name {
                refs.ens_names.insert(ens, m.email.to_lowercase());
            }
            refs.member_emails.insert(m.email.to_lowercase());
        }
        refs.period_names = self.periods()?.into_iter().map(|p| p.name).collect();
        Ok(refs)
    }

    fn members(&mut self) -> Result<Vec<DbMember>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, email, display_name, ens_name, role, status, joined_at FROM members",
            )
            .map_err(db_err("reading members"))?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(db_err("reading members"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading members"))?;
        raw.into_iter()
            .map(
                |(id, email, display_name, ens_name, role, status, joined)| {
                    Ok(DbMember {
                        id: uuid(&id)?,
                        email,
                        display_name,
                        ens_name,
                        role,
                        status,
                        joined_at: ts(&joined)?,
                    })
                },
            )
            .collect()
    }

    fn periods(&mut self) -> Result<Vec<DbPeriod>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, description, start_date, end_date, status FROM allocation_periods")
            .map_err(db_err("reading periods"))?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(db_err("reading periods"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading periods"))?;
        raw.into_iter()
            .map(|(id, name, description, start, end, status)| {
                Ok(DbPeriod {
                    id: uuid(&id)?,
                    name,
                    description,
                    start_date: ts(&start)?,
                    end_date: ts(&end)?,
                    status,
                })
            })
            .collect()
    }

    fn capital_accounts(&mut self) -> Result<Vec<DbAccount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, member_id, balance, tax_basis, notes FROM capital_accounts")
            .map_err(db_err("reading capital accounts"))?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(db_err("reading capital accounts"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading capital accounts"))?;
        raw.into_iter()
            .map(|(id, member_id, balance, tax_basis, notes)| {
                Ok(DbAccount {
                    id: uuid(&id)?,
                    member_id: uuid(&member_id)?,
                    balance: Money::from_cents(balance),
                    tax_basis: Money::from_cents(tax_basis),
                    notes,
                })
            })
            .collect()
    }

    fn write_periods(
        &mut self,
        insert: &[DbPeriod],
        update: &[DbPeriod],
    ) -> Result<(), StoreError> {
        let e = db_err("writing allocation_periods");
        let mut ins = self
            .conn
            .prepare_cached(
                "INSERT INTO allocation_periods (id, name, description, start_date, end_date, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(&e)?;
        for p in insert {
            ins.execute(params![
                p.id.to_string(),
                p.name,
                p.description,
                format_instant(p.start_date),
                format_instant(p.end_date),
                p.status
            ])
            .map_err(&e)?;
        }
        let mut upd = self
            .conn
            .prepare_cached(
                "UPDATE allocation_periods SET description = ?2, start_date = ?3, end_date = ?4, status = ?5, updated_at = ?6 WHERE id = ?1",
            )
            .map_err(&e)?;
        let stamp = now();
        for p in update {
            upd.execute(params![
                p.id.to_string(),
                p.description,
                format_instant(p.start_date),
                format_instant(p.end_date),
                p.status,
                stamp
            ])
            .map_err(&e)?;
        }
        Ok(())
    }

    fn write_members(
        &mut self,
        insert: &[DbMember],
        update: &[DbMember],
    ) -> Result<(), StoreError> {
        let e = db_err("writing members");
        let mut ins = self
            .conn
            .prepare_cached(
                "INSERT INTO members (id, email, display_name, ens_name, role, status, joined_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(&e)?;
        for m in insert {
            ins.execute(params![
                m.id.to_string(),
                m.email,
                m.display_name,
                m.ens_name,
                m.role,
                m.status,
                format_instant(m.joined_at)
            ])
            .map_err(&e)?;
        }
        let mut upd = self
            .conn
            .prepare_cached(
                "UPDATE members SET email = ?2, display_name = ?3, ens_name = ?4, role = ?5, status = ?6, joined_at = ?7, updated_at = ?8 WHERE id = ?1",
            )
            .map_err(&e)?;
        let stamp = now();
        for m in update {
            upd.execute(params![
                m.id.to_string(),
                m.email,
                m.display_name,
                m.ens_name,
                m.role,
                m.status,
                format_instant(m.joined_at),
                stamp
            ])
            .map_err(&e)?;
        }
        Ok(())
    }

    fn write_capital_accounts(
        &mut self,
        insert: &[DbAccount],
        update: &[DbAccount],
    ) -> Result<(), StoreError> {
        let e = db_err("writing capital_accounts");
        let stamp = now();
        let mut ins = self
            .conn
            .prepare_cached(
                "INSERT INTO capital_accounts (id, member_id, balance, tax_basis, notes, last_updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(&e)?;
        for a in insert {
            ins.execute(params![
                a.id.to_string(),
                a.member_id.to_string(),
                a.balance.cents(),
                a.tax_basis.cents(),
                a.notes,
                stamp
            ])
            .map_err(&e)?;
        }
        let mut upd = self
            .conn
            .prepare_cached(
                "UPDATE capital_accounts SET balance = ?2, tax_basis = ?3, notes = ?4, last_updated = ?5 WHERE id = ?1",
            )
            .map_err(&e)?;
        for a in update {
            upd.execute(params![
                a.id.to_string(),
                a.balance.cents(),
                a.tax_basis.cents(),
                a.notes,
                stamp
            ])
            .map_err(&e)?;
        }
        Ok(())
    }

    fn has_imported_contributions(&mut self) -> Result<bool, StoreError> {
        sql::has_imported_contributions(self)
    }

    fn insert_new_contributions(
        &mut self,
        run_id: i64,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError> {
        self.insert_contributions(ContributionTarget::Final { run_id }, rows)
    }

    fn stage_contributions(
        &mut self,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<StagedCounts, StoreError> {
        sql::stage_contributions(self, rows)
    }

    fn missing_contributions(&mut self) -> Result<Vec<MissingContribution>, StoreError> {
        sql::missing_contributions(self)
    }

    fn apply_staged_contributions(
        &mut self,
        run_id: i64,
        delete_missing: bool,
    ) -> Result<AppliedContributions, StoreError> {
        sql::apply_staged(self, run_id, Timestamp::now(), delete_missing)
    }

    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError> {
        // In-process, so the rows are fingerprinted by the one Rust rule rather than a SQL mirror.
        let (from, params) = scope.sql_from::<Self>();
        let sql = format!(
            "SELECT c.member_id, c.period_id, c.contribution_type, c.amount, c.description, c.status, c.approved_at, c.approved_by {from}"
        );
        let mut sum = DigestSum::default();
        self.query("reading contributions back", &sql, &params, &mut |r| {
            sum.add(sql::read_values(r, 0)?.digest());
            Ok(())
        })?;
        Ok(sum)
    }

    fn member_totals(&mut self) -> Result<Vec<MemberTotals>, StoreError> {
        sql::member_totals(self)
    }

    fn write_openings(
        &mut self,
        run_id: i64,
        openings: &[(Uuid, Opening)],
    ) -> Result<(), StoreError> {
        sql::write_openings(self, run_id, Timestamp::now(), openings)
    }

    fn record_changes(&mut self, run_id: i64, changes: &[Change]) -> Result<(), StoreError> {
        sql::record_changes(self, run_id, changes)
    }

    fn insert_run(&mut self, run: &RunRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO hm_runs (started_at, finished_at, command, invoked_by, tool_version, database_url, dry_run, outcome, message, backup_file, sources, counts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    run.started_at,
                    run.finished_at,
                    run.command,
                    run.invoked_by,
                    run.tool_version,
                    run.database_url,
                    i64::from(run.dry_run),
                    run.outcome,
                    run.message,
                    run.backup_file,
                    run.sources.to_string(),
                    run.counts.to_string()
                ],
            )
            .map_err(db_err("recording the run"))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn finish_run(&mut self, run: &RunRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE hm_runs SET finished_at = ?2, outcome = ?3, message = ?4, backup_file = ?5, sources = ?6, counts = ?7 WHERE id = ?1",
                params![
                    run.id,
                    run.finished_at,
                    run.outcome,
                    run.message,
                    run.backup_file,
                    run.sources.to_string(),
                    run.counts.to_string()
                ],
            )
            .map_err(db_err("recording the run"))?;
        Ok(())
    }

    fn runs(&mut self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at, finished_at, command, invoked_by, tool_version, database_url, dry_run, outcome, message, backup_file, sources, counts
                 FROM hm_runs ORDER BY id DESC LIMIT ?1",
            )
            .map_err(db_err("reading runs"))?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    command: r.get(3)?,
                    invoked_by: r.get(4)?,
                    tool_version: r.get(5)?,
                    database_url: r.get(6)?,
                    dry_run: r.get::<_, i64>(7)? != 0,
                    outcome: r.get(8)?,
                    message: r.get(9)?,
                    backup_file: r.get(10)?,
                    sources: serde_json::from_str(&r.get::<_, String>(11)?)
                        .unwrap_or(serde_json::Value::Null),
                    counts: serde_json::from_str(&r.get::<_, String>(12)?)
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(db_err("reading runs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading runs"))
    }

    fn run(&mut self, id: i64) -> Result<Option<(RunRow, Vec<ChangeRow>)>, StoreError> {
        let Some(run) = self.runs(i64::MAX)?.into_iter().find(|r| r.id == id) else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT table_name, row_id, row_key, column_name, before_value, after_value FROM hm_changes WHERE run_id = ?1 ORDER BY id",
            )
            .map_err(db_err("reading changes"))?;
        let changes = stmt
            .query_map([id], |r| {
                Ok(ChangeRow {
                    table: r.get(0)?,
                    row_id: r.get(1)?,
                    row_key: r.get(2)?,
                    column: r.get(3)?,
                    before: r.get(4)?,
                    after: r.get(5)?,
                })
            })
            .map_err(db_err("reading changes"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("reading changes"))?;
        Ok(Some((run, changes)))
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        each: &mut dyn FnMut(Vec<Option<String>>),
    ) -> Result<(), StoreError> {
        let e = db_err("reading rows");
        let mut stmt = self.conn.prepare(sql).map_err(&e)?;
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
            each(row);
        }
        Ok(())
    }

    fn columns(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        self.table_columns(table)
    }

    fn tool_table(&self, name: &str) -> String {
        format!("hm_{name}")
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
        let tables = self.backup_tables();
        let mut sql = String::new();
        for t in tables.iter().rev() {
            sql.push_str(&format!("DELETE FROM main.\"{t}\";\n"));
        }
        for t in &tables {
            let cols = self
                .columns(t)?
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

impl SqlConn for SqliteStore {
    const TOOL: &'static str = "hm_";

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
                existing_id TEXT
             );",
        )
    }

    fn insert_contributions(
        &mut self,
        target: ContributionTarget,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError> {
        let e = db_err("writing contributions");
        // Staged rows keep their line and fingerprint; final rows get their bookkeeping row.
        let (sql, run_id) = match target {
            ContributionTarget::Stage => (
                "INSERT INTO hm_stage (line, id, member_id, period_id, contribution_type, amount, description, status, approved_at, row_digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                None,
            ),
            ContributionTarget::Final { run_id } => (
                "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                Some(run_id),
            ),
        };
        let mut ins = self.conn.prepare_cached(sql).map_err(&e)?;
        let mut key = self
            .conn
            .prepare_cached(
                "INSERT INTO hm_imported_contributions (contribution_id, run_id, row_digest) VALUES (?1, ?2, ?3)",
            )
            .map_err(&e)?;
        let mut n = 0;
        for c in rows {
            let v = &c.values;
            let id = c.id.to_string();
            let member_id = v.member_id.to_string();
            let period_id = v.period_id.to_string();
            let approved_at = v.approved_at.map(format_instant);
            let common = params![
                id,
                member_id,
                period_id,
                v.contribution_type.as_str(),
                v.amount.cents(),
                v.description,
                v.status.as_str(),
                approved_at,
            ];
            match run_id {
                None => {
                    let line = i64::try_from(c.line).unwrap_or(i64::MAX);
                    let digest: &[u8] = &c.digest.0;
                    let mut all: Vec<&dyn rusqlite::ToSql> = vec![&line];
                    all.extend_from_slice(common);
                    all.push(&digest);
                    ins.execute(all.as_slice()).map_err(&e)?;
                }
                Some(run_id) => {
                    ins.execute(common).map_err(&e)?;
                    key.execute(params![id, run_id, &c.digest.0[..]])
                        .map_err(&e)?;
                }
            }
            n += 1;
        }
        Ok(n)
    }

    fn insert_rows(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, StoreError> {
        let e = db_err(context);
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                columns.join(", "),
                marks.join(", ")
            ))
            .map_err(&e)?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.iter().map(SqliteValue)))
                .map_err(&e)?;
        }
        Ok(rows.len() as u64)
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

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        self.text_at(i)?.map(ts).transpose()
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
