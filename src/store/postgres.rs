//! The PostgreSQL backend: the Habitat application's production database.
//!
//! Rows go in by binary `COPY`. Where the plan says every row is new they are copied straight into
//! the final table; where rows already exist they are copied into a temporary staging table and
//! merged with set-based `UPDATE … FROM` / `INSERT … SELECT`, so no statement is ever issued per
//! source row. The whole run happens inside one transaction that also holds a transaction-scoped
//! advisory lock: a second writer is refused at once, and if the process or the connection dies
//! the server rolls everything back. Money travels as `numeric` via `rust_decimal`, never as a float.

use std::error::Error as _;
use std::io::{BufRead, Write};
use std::path::Path;

use jiff::Timestamp;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use postgres::{Client, Row};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::schema::{self, FoundColumn};
use super::sql::{self, ContributionTarget, Engine, ReadRow, SqlConn, Value};
use super::tls::{ConnectError, TlsOptions};
use super::{Backend, BackupKind, DbUrl, ReadBackScope, StoreError, TableChecksum, Undo};
use crate::domain::{PatronageScore, format_instant};
use crate::model::{DigestSum, HabitatTable, RowDigest, RunRecord, StagedContribution};
use crate::money::Money;

/// The advisory lock key that makes runs single-writer: "habitat-migrate" as a number.
const WRITER_LOCK: i64 = 0x0048_4142_4954_4154;

pub struct PgStore {
    client: Client,
    url: DbUrl,
    in_transaction: bool,
}

/// An enum label (or text) sent to and read from PostgreSQL in binary form.
#[derive(Debug)]
struct Label<'a>(&'a str);

impl ToSql for Label<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_)) || <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

struct OwnedLabel(String);

impl<'a> FromSql<'a> for OwnedLabel {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(OwnedLabel(std::str::from_utf8(raw)?.to_string()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_)) || <String as FromSql>::accepts(ty)
    }
}

impl PgStore {
    pub fn connect(url: &DbUrl) -> Result<PgStore, StoreError> {
        let refused = |message: String| StoreError::Connect {
            url: url.redacted().to_string(),
            message: scrub(&message, url),
        };
        let connect_err = |e: postgres::Error| refused(full_message(&e));
        let (driver_url, tls) =
            TlsOptions::split_url(url.secret()).map_err(|e| refused(e.to_string()))?;
        let mut config: postgres::Config = driver_url.parse().map_err(connect_err)?;
        // Named, so that a DBA (or a test) can find the importing session in pg_stat_activity.
        if config.get_application_name().is_none() {
            config.application_name("habitat-migrate");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let mut client = tls.connect(&config).map_err(|e| match e {
            ConnectError::Tls(e) => refused(e.to_string()),
            ConnectError::Driver(e) => connect_err(e),
        })?;
        client
            // Cursors are read to the end, so plan them for all rows (hash joins), not the first.
            .batch_execute(
                "SET TIME ZONE 'UTC'; SET client_min_messages = warning; SET cursor_tuple_fraction = 1.0;
                 SET temp_buffers = '256MB';",
            )
            .map_err(|e| StoreError::Connect {
                url: url.redacted().to_string(),
                message: scrub(&full_message(&e), url),
            })?;
        Ok(PgStore {
            client,
            url: url.clone(),
            in_transaction: false,
        })
    }

    /// The underlying client, for tests and backups.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn err(&self, context: &str) -> impl Fn(postgres::Error) -> StoreError + '_ {
        let context = context.to_string();
        move |e| pg_error(&context, &self.url, &e)
    }

    fn exec(&mut self, context: &str, sql: &str) -> Result<(), StoreError> {
        let r = self.client.batch_execute(sql);
        r.map_err(self.err(context))
    }

    fn recorded(&mut self) -> Result<Vec<(i32, String, String, String)>, StoreError> {
        let exists = self
            .client
            .query_one(
                "SELECT to_regclass('habitat_migrate.schema_migrations') IS NOT NULL",
                &[],
            )
            .map_err(self.err("reading schema versions"))?
            .get::<_, bool>(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                "SELECT version, checksum, applied_at, how FROM habitat_migrate.schema_migrations ORDER BY version",
                &[],
            )
            .map_err(self.err("reading schema versions"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    format_instant(r.get::<_, Timestamp>(2)),
                    r.get::<_, String>(3),
                )
            })
            .collect())
    }

    fn any_habitat_table(&mut self) -> Result<bool, StoreError> {
        let n: i64 = self
            .client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1)",
                &[&HabitatTable::ALL.map(HabitatTable::name).to_vec()],
            )
            .map_err(self.err("reading the schema"))?
            .get(0);
        Ok(n > 0)
    }

    fn pg_incompatibilities(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT table_name::text, column_name::text, data_type::text, udt_name::text, is_nullable = 'NO', numeric_precision, numeric_scale
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ANY($1)",
                &[&HabitatTable::ALL.map(HabitatTable::name).to_vec()],
            )
            .map_err(self.err("reading the schema"))?;
        let found: Vec<FoundColumn> = rows
            .iter()
            .map(|r| FoundColumn {
                table: r.get(0),
                column: r.get(1),
                data_type: r.get(2),
                udt_name: r.get(3),
                not_null: r.get(4),
                numeric_precision: r.get(5),
                numeric_scale: r.get(6),
            })
            .collect();
        let enum_rows = self
            .client
            .query(
                "SELECT t.typname::text, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                 FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
                 JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = 'public' GROUP BY t.typname",
                &[],
            )
            .map_err(self.err("reading the schema"))?;
        let enums: Vec<(String, Vec<String>)> =
            enum_rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(schema::incompatibilities(&found, &enums))
    }

    /// The types of `columns` of `table`, as PostgreSQL resolves them (including enum OIDs).
    fn types(&mut self, table: &str, columns: &[&str]) -> Result<Vec<Type>, StoreError> {
        let sql = format!("SELECT {} FROM {table} LIMIT 0", columns.join(", "));
        let stmt = self
            .client
            .prepare(&sql)
            .map_err(self.err("preparing a copy"))?;
        Ok(stmt.columns().iter().map(|c| c.type_().clone()).collect())
    }

    /// Binary `COPY` of rows into `table`, whose column types are read from `types_from`.
    fn copy_in<T>(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: impl IntoIterator<Item = T>,
        write: impl Fn(&mut BinaryCopyInWriter<'_>, T) -> Result<(), postgres::Error>,
    ) -> Result<u64, StoreError> {
        let types = self.types(table, columns)?;
        let sql = format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            columns.join(", ")
        );
        let url = self.url.clone();
        let map = |e: postgres::Error| pg_error(context, &url, &e);
        let sink = self.client.copy_in(&sql).map_err(map)?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in rows {
            write(&mut writer, row).map_err(map)?;
        }
        writer.finish().map_err(map)
    }

    fn table_columns(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        let (schema, name) = table.split_once('.').unwrap_or(("public", table));
        let rows = self
            .client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                  WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &name],
            )
            .map_err(self.err("reading the schema"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Writes the undo script of a run: the rows it will update or delete as they are now, the
    /// ids of the rows it will insert, and the statements that put everything back. It is a
    /// plain SQL script: `psql "$DATABASE_URL" < FILE` runs it, as `habitat-migrate restore` does
    /// (which first checks that the run is the last one that wrote). Every part is streamed
    /// from `COPY … TO STDOUT`, so a run over a million rows writes a file of what it changes.
    fn write_undo(&mut self, path: &Path, undo: Undo<'_>) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Other(format!("writing the backup: {e}"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        let mut out = std::io::BufWriter::new(file);
        let run = undo.run_id;
        writeln!(
            out,
            "-- habitat-migrate: undo of run {run} on {} taken {}\n\
             -- Restore with `habitat-migrate restore FILE` (it checks that run {run} is the last run\n\
             -- that wrote), or `psql \"$DATABASE_URL\" < FILE`. In one transaction it deletes the rows\n\
             -- run {run} inserted and puts back the rows it updated or deleted, as they were before it.\n\
             SET client_encoding = 'UTF8';\n\
             SET standard_conforming_strings = on;\n\
             SET TIME ZONE 'UTC';\n\
             BEGIN;",
            self.url.redacted(),
            format_instant(Timestamp::now()),
        )
        .map_err(io)?;
        // The rows as they are now, each table into a temporary table of its own shape.
        let images: [(&str, &str, Vec<Uuid>); 3] = [
            (
                "allocation_periods",
                "hm_undo_periods",
                undo.old_periods.to_vec(),
            ),
            ("members", "hm_undo_members", undo.old_members.to_vec()),
            (
                "capital_accounts",
                "hm_undo_accounts",
                undo.old_accounts.to_vec(),
            ),
        ];
        for (table, temp, ids) in &images {
            let cols = self.table_columns(table)?.join(", ");
            writeln!(
                out,
                "CREATE TEMP TABLE {temp} (LIKE public.{table}) ON COMMIT DROP;\nCOPY {temp} ({cols}) FROM stdin;"
            )
            .map_err(io)?;
            if !ids.is_empty() {
                self.exec("writing the backup", "DROP TABLE IF EXISTS pg_temp.hm_undo_ids; CREATE TEMP TABLE hm_undo_ids (id uuid) ON COMMIT DROP;")?;
                self.copy_in(
                    "writing the backup",
                    "hm_undo_ids",
                    &["id"],
                    ids,
                    |w, id| w.write(&[id]),
                )?;
                let select = format!(
                    "SELECT {} FROM public.{table} t JOIN hm_undo_ids i ON i.id = t.id",
                    prefixed(&cols, "t")
                );
                self.copy_out_to(&mut out, &select)?;
            }
            writeln!(out, "\\.").map_err(io)?;
        }
        let contribution_cols = self.table_columns("contributions")?.join(", ");
        let record_cols = self
            .table_columns("habitat_migrate.imported_contributions")?
            .join(", ");
        writeln!(
            out,
            "CREATE TEMP TABLE hm_undo_contributions (LIKE public.contributions) ON COMMIT DROP;\n\
             COPY hm_undo_contributions ({contribution_cols}) FROM stdin;"
        )
        .map_err(io)?;
        // Staged: the rows whose status the run changes and, with --replace-missing, the rows it
        // deletes; with their records. (A run that inserts only has nothing to put back.)
        let touched = if undo.delete_missing {
            "p.changed OR p.line IS NULL"
        } else {
            "p.changed"
        };
        if undo.contributions_staged == Some(true) {
            let select = format!(
                "SELECT {} FROM public.contributions c JOIN hm_plan p ON p.existing_id = c.id WHERE {touched}",
                prefixed(&contribution_cols, "c")
            );
            self.copy_out_to(&mut out, &select)?;
        }
        writeln!(
            out,
            "\\.\nCREATE TEMP TABLE hm_undo_records (LIKE habitat_migrate.imported_contributions) ON COMMIT DROP;\n\
             COPY hm_undo_records ({record_cols}) FROM stdin;"
        )
        .map_err(io)?;
        if undo.contributions_staged == Some(true) {
            let select = format!(
                "SELECT {} FROM habitat_migrate.imported_contributions k JOIN hm_plan p ON p.existing_id = k.contribution_id
                  WHERE {touched}",
                prefixed(&record_cols, "k")
            );
            self.copy_out_to(&mut out, &select)?;
            if sql::legacy_records(self)? {
                // Records without a fingerprint get one from the run: their pre-images too.
                let select = format!(
                    "SELECT {} FROM habitat_migrate.imported_contributions k JOIN hm_plan p ON p.existing_id = k.contribution_id
                      WHERE k.row_digest IS NULL AND NOT ({touched})",
                    prefixed(&record_cols, "k")
                );
                self.copy_out_to(&mut out, &select)?;
            }
        }
        // Opening balances: few per member, and which ones the run re-derives is only known
        // after it has written; all of them, then.
        let opening_cols = self
            .table_columns("habitat_migrate.opening_balances")?
            .join(", ");
        writeln!(
            out,
            "\\.\nCREATE TEMP TABLE hm_undo_openings (LIKE habitat_migrate.opening_balances) ON COMMIT DROP;\n\
             COPY hm_undo_openings ({opening_cols}) FROM stdin;"
        )
        .map_err(io)?;
        self.copy_out_to(
            &mut out,
            &format!("SELECT {opening_cols} FROM habitat_migrate.opening_balances"),
        )?;
        // The ids of the rows the run will insert (its contributions are found by run id).
        writeln!(
            out,
            "\\.\nCREATE TEMP TABLE hm_undo_new (tbl text, id uuid) ON COMMIT DROP;\nCOPY hm_undo_new (tbl, id) FROM stdin;"
        )
        .map_err(io)?;
        for id in undo.new_periods {
            writeln!(out, "allocation_periods\t{id}").map_err(io)?;
        }
        for id in undo.new_members {
            writeln!(out, "members\t{id}").map_err(io)?;
        }
        for id in undo.new_accounts {
            writeln!(out, "capital_accounts\t{id}").map_err(io)?;
        }
        writeln!(out, "\\.").map_err(io)?;
        // Reverse the run: children first when deleting, parents first when putting back.
        let set = |table: &str, temp: &str, cols: &str| {
            let assign: Vec<String> = cols
                .split(", ")
                .filter(|c| *c != "id")
                .map(|c| format!("{c} = u.{c}"))
                .collect();
            format!(
                "UPDATE public.{table} t SET {} FROM {temp} u WHERE t.id = u.id;",
                assign.join(", ")
            )
        };
        let period_cols = self.table_columns("allocation_periods")?.join(", ");
        let member_cols = self.table_columns("members")?.join(", ");
        let account_cols = self.table_columns("capital_accounts")?.join(", ");
        let statements = [
            "DELETE FROM habitat_migrate.opening_balances;".to_string(),
            format!(
                "DELETE FROM public.contributions WHERE id IN (SELECT contribution_id FROM habitat_migrate.imported_contributions WHERE run_id = {run});"
            ),
            format!("DELETE FROM habitat_migrate.imported_contributions WHERE run_id = {run};"),
            "DELETE FROM public.capital_accounts WHERE id IN (SELECT id FROM hm_undo_new WHERE tbl = 'capital_accounts');".to_string(),
            "DELETE FROM public.members WHERE id IN (SELECT id FROM hm_undo_new WHERE tbl = 'members');".to_string(),
            "DELETE FROM public.allocation_periods WHERE id IN (SELECT id FROM hm_undo_new WHERE tbl = 'allocation_periods');".to_string(),
            set("allocation_periods", "hm_undo_periods", &period_cols),
            set("members", "hm_undo_members", &member_cols),
            set("capital_accounts", "hm_undo_accounts", &account_cols),
            set("contributions", "hm_undo_contributions", &contribution_cols),
            format!(
                "INSERT INTO public.contributions ({contribution_cols}) SELECT {contribution_cols} FROM hm_undo_contributions u WHERE NOT EXISTS (SELECT 1 FROM public.contributions c WHERE c.id = u.id);"
            ),
            format!(
                "INSERT INTO habitat_migrate.imported_contributions ({record_cols}) SELECT {record_cols} FROM hm_undo_records ON CONFLICT (contribution_id) DO UPDATE SET run_id = EXCLUDED.run_id, row_digest = EXCLUDED.row_digest;"
            ),
            format!(
                "INSERT INTO habitat_migrate.opening_balances ({opening_cols}) SELECT {opening_cols} FROM hm_undo_openings;"
            ),
            "COMMIT;".to_string(),
        ];
        for stmt in &statements {
            writeln!(out, "{stmt}").map_err(io)?;
        }
        out.flush().map_err(io)?;
        out.get_ref().sync_all().map_err(io)
    }

    /// Streams the rows of `select` to `out` in COPY's text format.
    fn copy_out_to(&mut self, out: &mut impl Write, select: &str) -> Result<(), StoreError> {
        let url = self.url.clone();
        let mut reader = self
            .client
            .copy_out(&format!("COPY ({select}) TO STDOUT"))
            .map_err(|e| pg_error("writing the backup", &url, &e))?;
        std::io::copy(&mut reader, out)
            .map(|_| ())
            .map_err(|e| StoreError::Other(format!("writing the backup: {e}")))
    }

    /// After a bulk insert, the planner's statistics still describe the table as it was (often
    /// empty), and the checks and proof that follow would pick nested loops over a million rows.
    /// `ANALYZE` samples the table in a fraction of a second, inside the transaction.
    fn analyze_if_big(&mut self, rows: u64, tables: &str) -> Result<(), StoreError> {
        if rows < 10_000 {
            return Ok(());
        }
        self.exec("updating planner statistics", &format!("ANALYZE {tables}"))
    }

    fn modified(
        &mut self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let r = self.client.execute(sql, params);
        r.map_err(self.err(context))
    }
}

impl Engine for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn url(&self) -> &DbUrl {
        &self.url
    }

    fn migrations(&self) -> &'static [schema::Migration] {
        schema::POSTGRES
    }

    fn ensure_version_table(&mut self) -> Result<(), StoreError> {
        self.exec(
            "creating the habitat_migrate schema",
            "CREATE SCHEMA IF NOT EXISTS habitat_migrate;
             CREATE TABLE IF NOT EXISTS habitat_migrate.schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                how text NOT NULL
             );",
        )
    }

    fn recorded_versions(&mut self) -> Result<Vec<(i32, String, String, String)>, StoreError> {
        self.recorded()
    }

    fn habitat_tables_exist(&mut self) -> Result<bool, StoreError> {
        self.any_habitat_table()
    }

    fn incompatibilities(&mut self) -> Result<Vec<String>, StoreError> {
        self.pg_incompatibilities()
    }

    fn apply_migration(&mut self, m: &schema::Migration) -> Result<(), StoreError> {
        self.exec(&format!("migration {} ({})", m.version, m.name), m.sql)
    }

    fn record_migration(&mut self, m: &schema::Migration, how: &str) -> Result<(), StoreError> {
        self.modified(
            "recording a migration",
            "INSERT INTO habitat_migrate.schema_migrations (version, name, checksum, how) VALUES ($1, $2, $3, $4)",
            &[&m.version, &m.name, &m.checksum(), &how],
        )?;
        Ok(())
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        // One snapshot for the whole run: the plan, the backup, the checksums and the writes all
        // see the same data, and a row the application changes meanwhile makes the run fail
        // (SQLSTATE 40001) instead of being silently overwritten.
        self.exec(
            "starting the transaction",
            "BEGIN ISOLATION LEVEL REPEATABLE READ",
        )?;
        self.in_transaction = true;
        let got = self
            .client
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&WRITER_LOCK])
            .map_err(self.err("taking the writer lock"))?
            .get::<_, bool>(0);
        if !got {
            let _ = self.rollback();
            return Err(StoreError::Busy);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.in_transaction = false;
        self.exec("committing", "COMMIT")
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        self.exec("rolling back", "ROLLBACK")
    }

    fn contributions_digest(&mut self, scope: ReadBackScope) -> Result<DigestSum, StoreError> {
        // Fingerprinted on the server, so a million rows are not shipped back to be hashed:
        // the SQL mirror of `ContributionValues::source_digest` (the source has no approver),
        // held to the same bytes by the conformance suite.
        let (from, params) = scope.sql_from::<Self>();
        let sql = format!(
            "SELECT count(*), coalesce(sum(('x' || left(md5(
                    c.member_id::text || '|' || c.period_id::text || '|' || c.contribution_type::text
                    || '|' || c.amount::text || '|' || c.status::text || '|'
                    || coalesce((extract(epoch FROM c.approved_at) * 1000000)::bigint::text, '')
                    || '||' || coalesce(octet_length(c.description)::text || ':' || c.description, '-')
                ), 16))::bit(64)::bigint), 0)::text {from}"
        );
        let mut sum = DigestSum::default();
        if scope == ReadBackScope::Staged {
            // Summed on the server: numeric, so a million 64-bit values cannot overflow.
            self.query(
                "reading contributions back",
                "SELECT count(*), coalesce(sum(proof), 0)::text FROM hm_plan
                  WHERE line IS NOT NULL AND existing_id IS NOT NULL AND NOT changed",
                &[],
                &mut |r| {
                    sum.rows = u64::try_from(r.int(0)?).unwrap_or(0);
                    let text = r.text(1)?;
                    sum.sum = text.parse::<i128>().map_err(|_| StoreError::Database {
                        context: "reading contributions back".into(),
                        message: format!("not an integer sum: {text}"),
                    })?;
                    Ok(())
                },
            )?;
        }
        self.query("reading contributions back", &sql, &params, &mut |r| {
            sum.rows += u64::try_from(r.int(0)?).unwrap_or(0);
            let text = r.text(1)?;
            sum.sum += text.parse::<i128>().map_err(|_| StoreError::Database {
                context: "reading contributions back".into(),
                message: format!("not an integer sum: {text}"),
            })?;
            Ok(())
        })?;
        Ok(sum)
    }

    fn enforced_foreign_keys(&mut self) -> Result<Vec<(String, String, String)>, StoreError> {
        // Validated single-column foreign keys whose triggers are all enabled (DISABLE TRIGGER
        // ALL would switch the check off), in a session that fires them (replication role
        // `replica` skips them).
        let rows = self
            .client
            .query(
                "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text
                   FROM pg_constraint c
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                  WHERE c.contype = 'f' AND c.convalidated AND cardinality(c.conkey) = 1
                    AND current_setting('session_replication_role') = 'origin'
                    AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                                     WHERE t.tgconstraint = c.oid AND t.tgenabled = 'D')",
                &[],
            )
            .map_err(self.err("reading foreign keys"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn insert_run(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_one(
                // Numbered under the writer lock rather than by the identity sequence, which a
                // rolled-back run (a dry run, a failure) would leave with gaps an auditor would
                // take for deleted runs.
                "INSERT INTO habitat_migrate.runs (id, started_at, finished_at, command, invoked_by, tool_version, database_url, dry_run, outcome, message, backup_file, sources, counts, details)
                 OVERRIDING SYSTEM VALUE
                 VALUES ((SELECT coalesce(max(id), 0) + 1 FROM habitat_migrate.runs),
                         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::jsonb, $12::text::jsonb, $13::text::jsonb) RETURNING id",
                &[
                    &run.started_at,
                    &run.finished_at,
                    &run.command,
                    &run.invoked_by,
                    &run.tool_version,
                    &run.database_url,
                    &run.dry_run,
                    &run.outcome.as_str(),
                    &run.message,
                    &run.backup_file,
                    &run.sources.to_string(),
                    &run.counts.to_string(),
                    &run.details.to_string(),
                ],
            )
            .map_err(self.err("recording the run"))?;
        Ok(row.get(0))
    }

    fn finish_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        self.modified(
            "recording the run",
            "UPDATE habitat_migrate.runs SET finished_at = $2, outcome = $3, message = $4, backup_file = $5,
                    sources = $6::text::jsonb, counts = $7::text::jsonb, details = $8::text::jsonb
              WHERE id = $1",
            &[
                &run.id,
                &run.finished_at,
                &run.outcome.as_str(),
                &run.message,
                &run.backup_file,
                &run.sources.to_string(),
                &run.counts.to_string(),
                &run.details.to_string(),
            ],
        )?;
        Ok(())
    }

    fn table_checksum(&mut self, table: &str) -> Result<TableChecksum, StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let columns = self.table_columns(table)?;
        let mut h = crate::checksum::RowHasher::new();
        h.row(columns.iter().map(|c| Some(c.as_str())));
        let sql = format!("SELECT * FROM {} ORDER BY 1", qualified(table));
        let url = self.url.clone();
        let map = |e: postgres::Error| pg_error("computing a table checksum", &url, &e);
        let mut rows = self
            .client
            .query_raw(&sql, std::iter::empty::<&dyn ToSql>())
            .map_err(map)?;
        while let Some(row) = rows.next().map_err(map)? {
            let text = row_text(&row)?;
            h.row(text.iter().map(|v| v.as_deref()));
        }
        Ok(TableChecksum {
            table: table.to_string(),
            rows: h.rows() - 1,
            sha256: h.finish(),
        })
    }

    fn write_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Other(format!("writing the backup: {e}"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        let mut out = std::io::BufWriter::new(file);
        let tables = sql::backup_tables::<Self>();
        writeln!(
            out,
            "-- habitat-migrate backup of {} taken {}\n\
             -- Restore with `habitat-migrate restore FILE`, or `psql \"$DATABASE_URL\" < FILE`.\n\
             -- It replaces the contents of these tables in one transaction: {}.\n\
             SET client_encoding = 'UTF8';\n\
             SET standard_conforming_strings = on;\n\
             SET TIME ZONE 'UTC';\n\
             BEGIN;",
            self.url.redacted(),
            format_instant(Timestamp::now()),
            tables.join(", ")
        )
        .map_err(io)?;
        // Delete children first; DELETE rather than TRUNCATE … CASCADE, which would also empty
        // any other application table that refers to members.
        for t in tables.iter().rev() {
            writeln!(out, "DELETE FROM {};", qualified(t)).map_err(io)?;
        }
        for t in &tables {
            let cols = self.table_columns(t)?.join(", ");
            writeln!(out, "COPY {} ({cols}) FROM stdin;", qualified(t)).map_err(io)?;
            let url = self.url.clone();
            let mut reader = self
                .client
                .copy_out(&format!("COPY {} ({cols}) TO STDOUT", qualified(t)))
                .map_err(|e| pg_error("writing the backup", &url, &e))?;
            std::io::copy(&mut reader, &mut out).map_err(io)?;
            writeln!(out, "\\.").map_err(io)?;
        }
        writeln!(out, "COMMIT;").map_err(io)?;
        out.flush().map_err(io)?;
        out.get_ref().sync_all().map_err(io)
    }

    fn write_run_backup(&mut self, path: &Path, undo: Undo<'_>) -> Result<BackupKind, StoreError> {
        self.write_undo(path, undo)?;
        Ok(BackupKind::Undo)
    }

    fn restore_backup(&mut self, path: &Path) -> Result<(), StoreError> {
        // Deleting the backed-up rows must not silently delete or change rows of other tables
        // (an application table with ON DELETE CASCADE / SET NULL towards members).
        let tables = sql::backup_tables::<Self>();
        let outside = self
            .client
            .query(
                "SELECT c.conrelid::regclass::text, c.conname::text, c.confrelid::regclass::text
                   FROM pg_constraint c
                  WHERE c.contype = 'f' AND c.confdeltype IN ('c', 'n', 'd')
                    AND c.confrelid = ANY($1::text[]::regclass[])
                    AND NOT (c.conrelid = ANY($1::text[]::regclass[]))",
                &[&tables],
            )
            .map_err(self.err("checking foreign keys before the restore"))?;
        if !outside.is_empty() {
            let list: Vec<String> = outside
                .iter()
                .map(|r| {
                    format!(
                        "{} ({} → {})",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2)
                    )
                })
                .collect();
            return Err(StoreError::Other(format!(
                "restoring would also delete or change rows of other tables through ON DELETE rules: {}; refusing",
                list.join(", ")
            )));
        }
        let io = |e: std::io::Error| StoreError::Other(format!("reading the backup: {e}"));
        // Streamed line by line, COPY data straight into the server: a backup of a million rows
        // is never held in memory.
        let mut lines = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).map_err(io)? == 0 {
                break;
            }
            let stmt = line.trim_end();
            if stmt.is_empty() || stmt.starts_with("--") || stmt == "BEGIN;" || stmt == "COMMIT;" {
                continue;
            }
            if stmt.starts_with("COPY ") && stmt.ends_with(" FROM stdin;") {
                let url = self.url.clone();
                let map = |e: postgres::Error| pg_error("restoring the backup", &url, &e);
                let mut w = self.client.copy_in(&stmt[..stmt.len() - 1]).map_err(map)?;
                let mut row = Vec::new();
                loop {
                    row.clear();
                    if lines.read_until(b'\n', &mut row).map_err(io)? == 0 {
                        break;
                    }
                    let content = row.strip_suffix(b"\n").unwrap_or(&row);
                    if content.strip_suffix(b"\r").unwrap_or(content) == b"\\." {
                        break;
                    }
                    w.write_all(&row).map_err(io)?;
                }
                w.finish().map_err(map)?;
            } else {
                self.exec("restoring the backup", stmt)?;
            }
        }
        Ok(())
    }
}

impl SqlConn for PgStore {
    const TOOL: &'static str = "habitat_migrate.";
    const MATERIALIZE_EXISTING: bool = false;

    fn execute(&mut self, context: &str, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let params: Vec<PgValue<'_>> = params.iter().map(PgValue).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = self.client.execute(sql, &refs);
        r.map_err(self.err(context))
    }

    fn query(
        &mut self,
        context: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(&dyn ReadRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let url = self.url.clone();
        let map = |e: postgres::Error| pg_error(context, &url, &e);
        // Rows stream from the server as they are read: a result is never held whole.
        let params: Vec<PgValue<'_>> = params.iter().map(PgValue).collect();
        let mut rows = self
            .client
            .query_raw(sql, params.iter().map(|p| p as &dyn ToSql))
            .map_err(map)?;
        while let Some(row) = rows.next().map_err(map)? {
            each(&PgRow(&row))?;
        }
        Ok(())
    }

    fn create_stage(&mut self) -> Result<(), StoreError> {
        // Matching a million rows sorts and hashes a million rows on each side: with the default
        // 4 MB of work memory both spill to disk and take twice as long. For this transaction
        // only; JIT compilation costs more than it saves on these one-off statements. (The
        // session's temp_buffers, set at connection, keep the stage off disk.) A random page read
        // costed as a sequential one is, near enough, on a table the run has just read into
        // memory: with the default (4×) the few rows a run writes were found by hashing all million
        // contributions, several times over, where an index finds each at once.
        self.exec(
            "planning contributions",
            "SET LOCAL work_mem = '256MB';
             SET LOCAL jit = off;
             SET LOCAL random_page_cost = 1.1;
             DROP TABLE IF EXISTS pg_temp.hm_stage;
             CREATE TEMP TABLE hm_stage (
                line bigint NOT NULL, id uuid NOT NULL, member_id uuid NOT NULL, period_id uuid NOT NULL,
                contribution_type public.contribution_type NOT NULL, amount numeric(15,2) NOT NULL,
                description text, status public.contribution_status NOT NULL, approved_at timestamptz,
                row_digest bytea NOT NULL, proof bigint NOT NULL
             ) ON COMMIT DROP;",
        )
    }

    fn insert_contributions(
        &mut self,
        target: ContributionTarget,
        rows: &mut dyn Iterator<Item = StagedContribution>,
    ) -> Result<u64, StoreError> {
        const COLUMNS: [&str; 8] = [
            "id",
            "member_id",
            "period_id",
            "contribution_type",
            "amount",
            "description",
            "status",
            "approved_at",
        ];
        let write = |w: &mut BinaryCopyInWriter<'_>, c: &StagedContribution, staged: bool| {
            let v = &c.values;
            let amount = v.amount.to_decimal();
            let (ty, status) = (
                Label(v.contribution_type.as_str()),
                Label(v.status.as_str()),
            );
            let mut row: Vec<&(dyn ToSql + Sync)> = vec![
                &c.id,
                &v.member_id,
                &v.period_id,
                &ty,
                &amount,
                &v.description,
                &status,
                &v.approved_at,
            ];
            let line = i64::try_from(c.line).unwrap_or(i64::MAX);
            let digest: &[u8] = &c.digest.0;
            let proof = c.digest.prefix();
            if staged {
                row.insert(0, &line);
                row.push(&digest);
                row.push(&proof);
            }
            w.write(&row)
        };
        match target {
            ContributionTarget::Stage => {
                let mut columns = vec!["line"];
                columns.extend(COLUMNS);
                columns.push("row_digest");
                columns.push("proof");
                self.copy_in(
                    "planning contributions",
                    "hm_stage",
                    &columns,
                    rows,
                    |w, c| write(w, &c, true),
                )
            }
            ContributionTarget::Final { run_id } => {
                // COPY cannot feed two tables at once, so rows go in chunks: a chunk streams into
                // contributions straight from the source (parsing overlaps the server's work),
                // keeping only each row's id and fingerprint, which then go into the tool's
                // record. Memory is bounded by the chunk.
                let mut total = 0;
                let mut keys: Vec<(Uuid, RowDigest)> = Vec::with_capacity(FINAL_CHUNK);
                loop {
                    keys.clear();
                    let mut chunk = (&mut *rows)
                        .take(FINAL_CHUNK)
                        .inspect(|c| keys.push((c.id, c.digest)))
                        .peekable();
                    if chunk.peek().is_none() {
                        self.analyze_if_big(
                            total,
                            "contributions, habitat_migrate.imported_contributions",
                        )?;
                        return Ok(total);
                    }
                    total += self.copy_in(
                        "writing contributions",
                        "contributions",
                        &COLUMNS,
                        chunk,
                        |w, c| write(w, &c, false),
                    )?;
                    self.copy_in(
                        "recording imported contributions",
                        "habitat_migrate.imported_contributions",
                        &["contribution_id", "run_id", "row_digest"],
                        keys.iter(),
                        |w, (id, digest)| w.write(&[id, &run_id, &&digest.0[..]]),
                    )?;
                }
            }
        }
    }

    fn insert_rows(
        &mut self,
        context: &str,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Vec<Value>>,
    ) -> Result<u64, StoreError> {
        let n = self.copy_in(context, table, columns, rows, |w, row| {
            let values: Vec<PgValue<'_>> = row.iter().map(PgValue).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            w.write(&refs)
        })?;
        self.analyze_if_big(n, table)?;
        Ok(n)
    }
}

/// Rows per COPY when contributions go straight into the final table.
const FINAL_CHUNK: usize = 50_000;

/// A [`Value`] as PostgreSQL takes it: money as `numeric`, instants as `timestamptz`.
#[derive(Debug)]
struct PgValue<'a>(&'a Value);

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Text(t) => Label(t).to_sql(ty, out),
            Value::Uuid(u) => u.to_sql(ty, out),
            Value::Money(m) => m.to_decimal().to_sql(ty, out),
            Value::Score(score) => score.to_decimal().to_sql(ty, out),
            Value::Time(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Each variant checks its own type in `to_sql`.
        true
    }

    to_sql_checked!();
}

/// A PostgreSQL row read as domain values.
struct PgRow<'a>(&'a Row);

impl PgRow<'_> {
    fn get<'b, T: FromSql<'b>>(&'b self, i: usize) -> Result<T, StoreError> {
        self.0.try_get(i).map_err(|e| StoreError::Database {
            context: format!("reading column {}", self.0.columns()[i].name()),
            message: e.to_string(),
        })
    }
}

impl ReadRow for PgRow<'_> {
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get::<Option<OwnedLabel>>(i)?.map(|l| l.0))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        if *self.0.columns()[i].type_() == Type::INT4 {
            return Ok(self.get::<Option<i32>>(i)?.map(i64::from));
        }
        self.get(i)
    }

    fn opt_money(&self, i: usize) -> Result<Option<Money>, StoreError> {
        match self.get::<Option<Decimal>>(i)? {
            None => Ok(None),
            Some(d) => Money::from_decimal(d)
                .map(Some)
                .ok_or_else(|| StoreError::Database {
                    context: format!("reading column {}", self.0.columns()[i].name()),
                    message: format!("{d} is not an exact amount of money"),
                }),
        }
    }

    fn opt_score(&self, i: usize) -> Result<Option<PatronageScore>, StoreError> {
        match self.get::<Option<Decimal>>(i)? {
            None => Ok(None),
            Some(d) => {
                PatronageScore::from_decimal(d)
                    .map(Some)
                    .ok_or_else(|| StoreError::Database {
                        context: format!("reading column {}", self.0.columns()[i].name()),
                        message: format!("{d} is not a patronage score between 0 and 1"),
                    })
            }
        }
    }

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        self.get(i)
    }

    fn opt_bool(&self, i: usize) -> Result<Option<bool>, StoreError> {
        self.get(i)
    }

    fn opt_digest(&self, i: usize) -> Result<Option<RowDigest>, StoreError> {
        match self.get::<Option<Vec<u8>>>(i)? {
            None => Ok(None),
            Some(b) => <[u8; 16]>::try_from(b.as_slice())
                .map(|d| Some(RowDigest(d)))
                .map_err(|_| StoreError::Database {
                    context: format!("reading column {}", self.0.columns()[i].name()),
                    message: format!("a fingerprint of {} bytes", b.len()),
                }),
        }
    }
}

/// Canonical text of every value of a row: the same text the SQLite backend produces for the same
/// data (money `12.50`, instants RFC 3339 UTC, ids lower-case hyphenated).
fn row_text(row: &Row) -> Result<Vec<Option<String>>, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let bad = |e: postgres::Error| StoreError::Database {
            context: format!("reading column {}", col.name()),
            message: e.to_string(),
        };
        let text = if *ty == Type::UUID {
            row.try_get::<_, Option<Uuid>>(i)
                .map_err(bad)?
                .map(|u| u.to_string())
        } else if *ty == Type::TIMESTAMPTZ {
            row.try_get::<_, Option<Timestamp>>(i)
                .map_err(bad)?
                .map(format_instant)
        } else if *ty == Type::NUMERIC {
            row.try_get::<_, Option<Decimal>>(i)
                .map_err(bad)?
                .map(|d| d.to_string())
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map(|v| v.to_string())
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|v| v.to_string())
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map(|b| crate::checksum::hex(&b))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|v| v.to_string())
        } else {
            row.try_get::<_, Option<OwnedLabel>>(i)
                .map_err(bad)?
                .map(|l| l.0)
        };
        out.push(text);
    }
    Ok(out)
}

fn pg_error(context: &str, url: &DbUrl, e: &postgres::Error) -> StoreError {
    let message = scrub(&full_message(e), url);
    // Lost: the socket closed, the server shut the session down (57P01 after
    // pg_terminate_backend) or the connection failed (08xxx).
    let lost = e.is_closed()
        || e.code()
            .is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"))
        || e.source().is_some_and(|s| s.is::<std::io::Error>());
    if e.code().is_some_and(|c| c.code() == "40001") {
        return StoreError::Database {
            context: context.to_string(),
            message: format!(
                "{message}: another session changed these rows during the run; nothing was imported, run it again"
            ),
        };
    }
    if lost {
        StoreError::ConnectionLost {
            context: context.to_string(),
            message,
        }
    } else {
        StoreError::Database {
            context: context.to_string(),
            message,
        }
    }
}

/// The error with its database detail (constraint name, detail line), which `Display` omits.
fn full_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(c) = db.constraint() {
                m.push_str(&format!(" (constraint {c})"));
            }
            if let Some(d) = db.detail() {
                m.push_str(&format!(": {d}"));
            }
            m
        }
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// `a, b` with alias `t` → `t.a, t.b`.
fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `members` → `public.members`; names already qualified stay as they are.
fn qualified(table: &str) -> String {
    if table.contains('.') {
        table.to_string()
    } else {
        format!("public.{table}")
    }
}

/// Removes the URL's password from a message, should a driver ever echo it.
fn scrub(message: &str, url: &DbUrl) -> String {
    let secret = url.secret();
    let password = secret
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty());
    let mut out = message.replace(secret, url.redacted());
    if let Some(p) = password {
        out = out.replace(p, "***");
    }
    out
}
