//! Conformance suite: the import guarantees of SPEC §5–§6, proved against both back ends.
//!
//! Every behaviour below is one function taking a [`Backend`] (a fresh PostgreSQL or SQLite
//! database plus a temporary working directory), and the [`conformance!`] macro turns it into
//! `postgres::<behaviour>` and `sqlite::<behaviour>` tests. Each test runs the real binary with
//! `--database-url`, its own temporary directory as working directory, and `--backup-dir` and
//! `--log-dir` inside it; it reads the database back with plain SQL, never through the tool.
//!
//! What it proves:
//! - importing the example bundle gives exact row counts, exact money and matching JSON counts;
//! - re-importing changes nothing, not even `updated_at`;
//! - a modified bundle updates exactly the modified rows and records before/after values;
//! - a dry run leaves every table (the five Habitat tables and the tool's own) byte-identical and
//!   writes no backup and no log — on a populated database, an initialised empty one, and a brand
//!   new one (where it must not create the schema either);
//! - the report's `changes` figure agrees with the change history `runs show` lists;
//! - identical contribution rows are both kept, once; emails differing in case are one member;
//! - a row the *database* rejects (the last one of the bundle) leaves everything as it was, with a
//!   `failed` run on record;
//! - PostgreSQL only: a connection terminated mid-`COPY` from another session exits 3, says
//!   nothing was committed, and leaves the database as it was;
//! - a second writer is refused at once (exit 3, "another habitat-migrate run is writing"), with
//!   the lock held by the test on an initialised and on a brand-new database, and with two real
//!   processes racing;
//! - the guide's step-by-step imports and `period create|list` work and end where `migrate` does;
//! - every run is recorded (tool version, source SHA-256, counts, outcome) and logged as JSON
//!   lines, and a database password appears nowhere.
//!
//! Without a reachable server the PostgreSQL tests are listed as ignored (skipped), except under
//! `CI=true`, where they fail (see `tests/harness.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::harness::Test;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The tests of this file (see `harness.rs`): `postgres::…` and `sqlite::…`, from [`conformance!`].
pub(crate) fn tests() -> Vec<Test> {
    let mut all = postgres::tests();
    all.extend(sqlite::tests());
    all
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The example bundle shipped with the crate.
const TECHNE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");

/// The binary under test, for runs that must be spawned and watched (not just waited for).
const BIN: &str = env!("CARGO_BIN_EXE_habitat-migrate");

/// What the refused run says when the single-writer lock is taken.
const BUSY: &str = "another habitat-migrate run is writing";

/// One database under test, and the working directory the binary runs in.
struct Backend {
    engine: Engine,
    /// The `--database-url` every command gets.
    url: String,
    /// The binary's working directory; holds `backups/`, `logs/` and any derived bundles.
    work: tempfile::TempDir,
}

enum Engine {
    Postgres(common::PgDb),
    /// The temporary directory holding the SQLite file (kept alive with the backend).
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
}

/// A table's contents in canonical text, one entry per row, sorted.
type Dump = Vec<String>;

impl Backend {
    fn postgres() -> Backend {
        let db = common::fresh_pg();
        Backend {
            url: db.url.clone(),
            engine: Engine::Postgres(db),
            work: tempfile::tempdir().expect("create work dir"),
        }
    }

    fn sqlite() -> Backend {
        let (dir, url) = common::fresh_sqlite();
        Backend {
            engine: Engine::Sqlite(dir),
            url,
            work: tempfile::tempdir().expect("create work dir"),
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    fn work(&self) -> &Path {
        self.work.path()
    }

    fn backup_dir(&self) -> PathBuf {
        self.work().join("backups")
    }

    fn log_dir(&self) -> PathBuf {
        self.work().join("logs")
    }

    /// The binary with `--database-url URL --backup-dir … --log-dir …`, run in the work dir.
    fn cmd_with_url(&self, url: &str) -> assert_cmd::Command {
        let mut cmd = common::bin();
        cmd.current_dir(self.work())
            .env("NO_COLOR", "1")
            .arg("--database-url")
            .arg(url)
            .arg("--backup-dir")
            .arg(self.backup_dir())
            .arg("--log-dir")
            .arg(self.log_dir())
            .timeout(Duration::from_secs(600));
        cmd
    }

    /// Runs the binary with `args` and returns its output (whatever the exit code).
    fn run(&self, args: &[&str]) -> Output {
        self.cmd_with_url(&self.url)
            .args(args)
            .output()
            .expect("run habitat-migrate")
    }

    /// Runs the binary, asserts exit 0 and returns its `--format json` output.
    fn run_json_ok(&self, args: &[&str]) -> Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(code(&out), 0, "{args:?} failed:\n{}", describe(&out));
        json(&out)
    }

    /// The same binary as a child process, output to files in the work dir, for concurrent runs.
    fn spawn(&self, args: &[&str], name: &str) -> Child {
        let stdout = fs::File::create(self.work().join(format!("{name}.stdout")))
            .expect("create stdout file");
        let stderr = fs::File::create(self.work().join(format!("{name}.stderr")))
            .expect("create stderr file");
        std::process::Command::new(BIN)
            .env_remove("DATABASE_URL")
            .env_remove("BACKUP_DIR")
            .env("NO_COLOR", "1")
            .current_dir(self.work())
            .arg("--database-url")
            .arg(&self.url)
            .arg("--backup-dir")
            .arg(self.backup_dir())
            .arg("--log-dir")
            .arg(self.log_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn habitat-migrate")
    }

    /// What a spawned child named `name` wrote: (stdout, stderr).
    fn spawned_output(&self, name: &str) -> (String, String) {
        let read = |ext: &str| {
            fs::read_to_string(self.work().join(format!("{name}.{ext}")))
                .expect("read child output")
        };
        (read("stdout"), read("stderr"))
    }

    /// Rows of a query, every value as text (`None` for NULL). PostgreSQL answers in its text
    /// format (numeric `2500.50`, UTC timestamps); SQLite gives integers (money in cents) and text.
    fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.engine {
            Engine::Postgres(_) => {
                let mut client = common::pg_client(&self.url);
                let messages = client
                    .simple_query(&format!("SET TIME ZONE 'UTC'; {sql}"))
                    .unwrap_or_else(|e| panic!("query failed: {sql}: {e}"));
                messages
                    .into_iter()
                    .filter_map(|m| match m {
                        ::postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect()
            }
            Engine::Sqlite(_) => {
                let conn = common::sqlite_conn(&self.url);
                let mut stmt = conn
                    .prepare(sql)
                    .unwrap_or_else(|e| panic!("prepare failed: {sql}: {e}"));
                let width = stmt.column_count();
                let mut rows = stmt.query([]).expect("run query");
                let mut out = Vec::new();
                while let Some(row) = rows.next().expect("read row") {
                    out.push(
                        (0..width)
                            .map(|i| sqlite_text(row.get_ref(i).expect("read value")))
                            .collect(),
                    );
                }
                out
            }
        }
    }

    /// The single value of a one-row, one-column query (NULL as `"NULL"`).
    fn scalar(&self, sql: &str) -> String {
        let rows = self.query(sql);
        assert_eq!(rows.len(), 1, "expected one row from {sql}, got {rows:?}");
        rows[0][0].clone().unwrap_or_else(|| "NULL".into())
    }

    /// Executes statements (setup only: constraints, triggers).
    fn execute(&self, sql: &str) {
        match &self.engine {
            Engine::Postgres(_) => common::pg_client(&self.url)
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Engine::Sqlite(_) => common::sqlite_conn(&self.url)
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    fn count(&self, table: &str) -> u64 {
        self.scalar(&format!("SELECT count(*) FROM {table}"))
            .parse()
            .expect("a count")
    }

    /// One of the tool's own tables: `habitat_migrate.runs` on PostgreSQL, `hm_runs` on SQLite.
    fn tool(&self, name: &str) -> String {
        if self.is_postgres() {
            format!("habitat_migrate.{name}")
        } else {
            format!("hm_{name}")
        }
    }

    /// Every table the tool or Habitat owns that exists now: PostgreSQL's `public` and
    /// `habitat_migrate` schemas (public ones unqualified), or all of the SQLite file's tables.
    fn tables(&self) -> Vec<String> {
        let sql = match &self.engine {
            Engine::Postgres(_) => {
                "SELECT CASE WHEN table_schema = 'public' THEN table_name \
                 ELSE table_schema || '.' || table_name END \
                 FROM information_schema.tables \
                 WHERE table_schema IN ('public', 'habitat_migrate') AND table_type = 'BASE TABLE'"
            }
            Engine::Sqlite(_) => {
                if !common::sqlite_path(&self.url).exists() {
                    return Vec::new();
                }
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            }
        };
        let mut names: Vec<String> = self
            .query(sql)
            .into_iter()
            .filter_map(|mut r| r.remove(0))
            .collect();
        names.sort();
        names
    }

    /// A whole table, every column, one canonical line per row, sorted (ids are in the rows).
    fn dump(&self, table: &str) -> Dump {
        let sql = match &self.engine {
            Engine::Postgres(_) => format!("SELECT x::text FROM {table} x"),
            Engine::Sqlite(_) => format!("SELECT * FROM {table}"),
        };
        let mut rows: Dump = self
            .query(&sql)
            .into_iter()
            .map(|r| match &self.engine {
                Engine::Postgres(_) => r.into_iter().next().flatten().unwrap_or_default(),
                Engine::Sqlite(_) => Value::from(
                    r.into_iter()
                        .map(|v| v.map_or(Value::Null, Value::from))
                        .collect::<Vec<_>>(),
                )
                .to_string(),
            })
            .collect();
        rows.sort();
        rows
    }

    /// Every existing table, dumped.
    fn snapshot(&self) -> BTreeMap<String, Dump> {
        self.tables()
            .into_iter()
            .map(|t| {
                let d = self.dump(&t);
                (t, d)
            })
            .collect()
    }

    /// The id of the newest run, from the tool's runs table.
    fn last_run(&self) -> Option<String> {
        self.query(&format!(
            "SELECT id FROM {} ORDER BY id DESC LIMIT 1",
            self.tool("runs")
        ))
        .into_iter()
        .next()
        .and_then(|mut r| r.remove(0))
    }

    /// One column of one run, by id.
    fn run_field(&self, id: &str, column: &str) -> Option<String> {
        let rows = self.query(&format!(
            "SELECT {column} FROM {} WHERE id = {id}",
            self.tool("runs")
        ));
        assert_eq!(rows.len(), 1, "no run {id}");
        rows[0][0].clone()
    }

    /// A copy of the example bundle in the work dir, to be edited.
    fn copy_techne(&self, name: &str) -> PathBuf {
        let dir = self.work().join(name);
        fs::create_dir_all(&dir).expect("create bundle dir");
        for entry in fs::read_dir(TECHNE).expect("read examples/techne") {
            let entry = entry.expect("dir entry");
            if entry.path().extension().is_some_and(|e| e == "csv") {
                fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy a bundle file");
            }
        }
        dir
    }

    /// `gen --members N` into the work dir.
    fn generate(&self, members: u64, name: &str) -> PathBuf {
        let dir = self.work().join(name);
        let n = members.to_string();
        let out = self.run(&["gen", "--members", &n, "--out", path_str(&dir)]);
        assert_eq!(code(&out), 0, "gen failed:\n{}", describe(&out));
        dir
    }
}

/// A SQLite value as text: integers (money is cents) and text as they are, NULL as `None`.
fn sqlite_text(v: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(format!("REAL {r}")),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(b.iter().fold(String::from("x'"), |mut s, byte| {
            let _ = write!(s, "{byte:02x}");
            s
        })),
    }
}

/// The five Habitat tables.
const HABITAT: [&str; 5] = [
    "members",
    "allocation_periods",
    "capital_accounts",
    "contributions",
    "allocations",
];

fn code(out: &Output) -> i32 {
    out.status
        .code()
        .expect("an exit code (not killed by a signal)")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        clip(&String::from_utf8_lossy(&out.stdout), 4000),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", describe(out)))
}

/// The start of a long text, for failure messages.
fn clip(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((i, _)) => format!("{}… ({} bytes in all)", &text[..i], text.len()),
        None => text.to_string(),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `(rows, sha256)` of every table: what "identical" means for a whole database.
fn checksums(snapshot: &BTreeMap<String, Dump>) -> BTreeMap<String, (usize, String)> {
    snapshot
        .iter()
        .map(|(t, rows)| {
            (
                t.clone(),
                (rows.len(), sha256_hex(rows.join("\n").as_bytes())),
            )
        })
        .collect()
}

/// Asserts two snapshots are identical apart from the tables in `except`, naming the tables that
/// differ and showing their differing rows.
fn assert_same_except(
    before: &BTreeMap<String, Dump>,
    after: &BTreeMap<String, Dump>,
    except: &[String],
    what: &str,
) {
    let keep = |s: &BTreeMap<String, Dump>| -> BTreeMap<String, Dump> {
        s.iter()
            .filter(|(t, _)| !except.contains(t))
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect()
    };
    let (b, a) = (keep(before), keep(after));
    if checksums(&b) == checksums(&a) {
        return;
    }
    let mut report = format!("{what}: the database changed\n");
    let tables: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    for t in tables {
        match (b.get(t), a.get(t)) {
            (None, Some(_)) => {
                let _ = writeln!(report, "  table {t} was created");
            }
            (Some(_), None) => {
                let _ = writeln!(report, "  table {t} was dropped");
            }
            (Some(x), Some(y)) if x != y => {
                let _ = writeln!(report, "  table {t}:");
                for r in x.iter().filter(|r| !y.contains(r)).take(5) {
                    let _ = writeln!(report, "    - {r}");
                }
                for r in y.iter().filter(|r| !x.contains(r)).take(5) {
                    let _ = writeln!(report, "    + {r}");
                }
            }
            _ => {}
        }
    }
    panic!("{report}");
}

/// The tables a committed run legitimately adds to: its run record (and SQLite's AUTOINCREMENT
/// counter for it).
fn run_tables(b: &Backend) -> Vec<String> {
    vec![b.tool("runs"), "sqlite_sequence".to_string()]
}

/// Rows of `after` not in `before` (a changed row counts once).
fn changed_rows(before: &Dump, after: &Dump) -> usize {
    after.iter().filter(|r| !before.contains(r)).count()
}

/// Asserts `counts.<table>` of an import report is `[inserted, updated, unchanged]`.
fn assert_counts(report: &Value, table: &str, expected: [u64; 3]) {
    let c = &report["counts"][table];
    let got = [
        c["inserted"].as_u64(),
        c["updated"].as_u64(),
        c["unchanged"].as_u64(),
    ];
    assert_eq!(
        got,
        expected.map(Some),
        "counts.{table} [inserted, updated, unchanged] in {}",
        report["counts"]
    );
}

/// Replaces `from` by `to` in a bundle file, insisting that `from` is there.
fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).expect("read bundle file");
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    fs::write(path, text.replacen(from, to, 1)).expect("write bundle file");
}

fn append(path: &Path, line: &str) {
    let mut text = fs::read_to_string(path).expect("read bundle file");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    fs::write(path, text).expect("write bundle file");
}

/// Files directly in `dir` (none if it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut v: Vec<PathBuf> = entries
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

/// Waits for a child up to `limit`; kills it and panics past that.
fn wait_for(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The techne bundle with one member's role, one balance and the pending contribution's approval
/// changed: Tom member→steward, Daniel 5000.00→5200.00, Sofia's labor pending→approved.
fn modified_techne(b: &Backend, name: &str) -> PathBuf {
    let dir = b.copy_techne(name);
    edit(
        &dir.join("members.csv"),
        "tom.lindqvist@example.org,Tom Lindqvist,,member,",
        "tom.lindqvist@example.org,Tom Lindqvist,,steward,",
    );
    edit(
        &dir.join("capital_accounts.csv"),
        "daniel.reyes@example.org,5000.00,",
        "daniel.reyes@example.org,5200.00,",
    );
    edit(
        &dir.join("contributions.csv"),
        "Event coordination,pending,",
        "Event coordination,approved,2026-01-15",
    );
    dir
}

// ---------------------------------------------------------------------------------------------
// The macro: every behaviour against both back ends
// ---------------------------------------------------------------------------------------------

/// Generates the tests `postgres::b` and `sqlite::b` for every behaviour `b` in `both`, and
/// PostgreSQL tests only for those in `postgres_only`; each module registers its own.
macro_rules! conformance {
    (both: [$($both:ident),* $(,)?], postgres_only: [$($pg:ident),* $(,)?] $(,)?) => {
        mod postgres {
            use crate::harness::{Test, tests};

            pub(super) fn tests() -> Vec<Test> {
                tests!(Postgres: [$($both,)* $($pg),*])
            }

            $(
                fn $both() {
                    super::$both(super::Backend::postgres());
                }
            )*
            $(
                fn $pg() {
                    super::$pg(super::Backend::postgres());
                }
            )*
        }
        mod sqlite {
            use crate::harness::{Test, tests};

            pub(super) fn tests() -> Vec<Test> {
                tests!(Nothing: [$($both),*])
            }

            $(
                fn $both() {
                    super::$both(super::Backend::sqlite());
                }
            )*
        }
    };
}

conformance! {
    both: [
        import_examples_exact,
        reimport_changes_nothing,
        modified_bundle_records_before_after,
        report_change_count_matches_history,
        dry_run_on_new_database_creates_nothing,
        dry_run_on_empty_schema_writes_nothing,
        dry_run_on_populated_database_writes_nothing,
        identical_rows_and_email_case,
        database_rejects_last_row_nothing_imported,
        held_writer_lock_refuses_migrate,
        held_writer_lock_on_new_database_refuses_migrate,
        concurrent_migrations_one_refused,
        import_steps_in_guide_order,
        period_create_and_list,
        run_record_and_log_without_password,
        corrected_amount_is_refused_and_nothing_written,
        corrected_amount_replaced_without_new_balance_fails_reconciliation,
        corrected_amount_and_balance_replaced_reconcile,
        corrected_amount_kept_names_the_negative_opening,
        file_per_quarter_leaves_other_quarters_alone,
        step_by_step_imports_reconcile,
        contribution_changed_in_habitat_is_never_deleted,
        strict_balances_table_shows_what_it_counts,
        verify_on_an_empty_database_says_nothing_was_imported,
        workbooks_import_like_their_csv_bundle,
    ],
    postgres_only: [connection_terminated_mid_import],
}

// ---------------------------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------------------------

/// `migrate examples/techne` → exit 0, exact row counts, JSON counts equal to them, exact money
/// (2500.50 and 850.50; numeric on PostgreSQL, integer cents on SQLite) and midnight-UTC dates.
fn import_examples_exact(b: Backend) {
    let report = b.run_json_ok(&["migrate", TECHNE]);
    assert_eq!(report["dry_run"], false);
    assert!(report["run_id"].is_i64(), "run_id: {}", report["run_id"]);
    for (table, n) in [
        ("members", 12),
        ("capital_accounts", 12),
        ("allocation_periods", 2),
        ("contributions", 8),
    ] {
        assert_eq!(b.count(table), n, "rows in {table}");
        assert_counts(&report, table, [n, 0, 0]);
    }
    assert_eq!(b.count("allocations"), 0);

    let (cents, pg) = (!b.is_postgres(), b.is_postgres());
    let balance = b.scalar(
        "SELECT ca.balance FROM capital_accounts ca JOIN members m ON m.id = ca.member_id \
         WHERE m.email = 'priya.raman@example.org'",
    );
    assert_eq!(balance, if pg { "2500.50" } else { "250050" });
    let amount = b.scalar(
        "SELECT c.amount FROM contributions c JOIN members m ON m.id = c.member_id \
         WHERE m.email = 'amara.diallo@example.org'",
    );
    assert_eq!(amount, if pg { "850.50" } else { "85050" });
    let total = b.scalar("SELECT sum(balance) FROM capital_accounts");
    assert_eq!(total, if pg { "41000.50" } else { "4100050" });
    if cents {
        assert_eq!(
            b.scalar("SELECT count(*) FROM capital_accounts WHERE typeof(balance) <> 'integer'"),
            "0",
            "SQLite money must be INTEGER cents"
        );
    }
    let joined = b.scalar("SELECT joined_at FROM members WHERE email = 'maya.okonkwo@example.org'");
    assert_eq!(
        joined,
        if pg {
            "2025-01-01 00:00:00+00"
        } else {
            "2025-01-01T00:00:00Z"
        },
        "a date-only value is midnight UTC"
    );

    let verify = b.run(&["verify"]);
    assert_eq!(
        code(&verify),
        0,
        "verify after migrate:\n{}",
        describe(&verify)
    );
}

/// `migrate examples/techne.xlsx` imports exactly what `migrate examples/techne` does: after it,
/// the CSV bundle and the `.ods` copy each find every row unchanged and leave every Habitat table
/// byte-identical (the importer compares every column it writes).
fn workbooks_import_like_their_csv_bundle(b: Backend) {
    let xlsx = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne.xlsx");
    let ods = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne.ods");
    let report = b.run_json_ok(&["migrate", xlsx]);
    for (table, n) in [
        ("members", 12),
        ("capital_accounts", 12),
        ("allocation_periods", 2),
        ("contributions", 8),
    ] {
        assert_counts(&report, table, [n, 0, 0]);
    }
    let amount = b.scalar(
        "SELECT c.amount FROM contributions c JOIN members m ON m.id = c.member_id \
         WHERE m.email = 'amara.diallo@example.org'",
    );
    assert_eq!(amount, if b.is_postgres() { "850.50" } else { "85050" });
    let before = b.snapshot();
    for again in [TECHNE, ods] {
        let report = b.run_json_ok(&["migrate", again]);
        assert_eq!(report["nothing_changed"], true, "{again}: {report}");
        let after = b.snapshot();
        for t in HABITAT {
            assert_eq!(before[t], after[t], "table {t} differs after {again}");
        }
    }
}

/// Re-importing the same bundle → exit 0, `nothing_changed`, everything `unchanged`, and every
/// table but the run record byte-identical (so `updated_at` did not move either).
fn reimport_changes_nothing(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let before = b.snapshot();
    // Make sure a rewritten timestamp would show even at one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    let report = b.run_json_ok(&["migrate", TECHNE]);
    assert_eq!(report["nothing_changed"], true, "{report}");
    assert_eq!(report["changes"], 0);
    for (table, n) in [
        ("members", 12),
        ("capital_accounts", 12),
        ("allocation_periods", 2),
        ("contributions", 8),
    ] {
        assert_counts(&report, table, [0, 0, n]);
    }
    let after = b.snapshot();
    for t in HABITAT {
        assert_eq!(before[t], after[t], "table {t} changed on re-import");
    }
    assert_same_except(&before, &after, &run_tables(&b), "re-import");
    assert_eq!(b.count(&b.tool("runs")), 2, "one run record per run");
}

/// A modified bundle → exactly the modified rows updated, and `runs show` and the change table
/// hold before/after values.
fn modified_bundle_records_before_after(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let bundle = modified_techne(&b, "modified");
    let before = b.snapshot();
    let report = b.run_json_ok(&["migrate", path_str(&bundle)]);
    assert_eq!(report["nothing_changed"], false);
    assert_counts(&report, "members", [0, 1, 11]);
    assert_counts(&report, "capital_accounts", [0, 1, 11]);
    assert_counts(&report, "contributions", [0, 1, 7]);
    assert_counts(&report, "allocation_periods", [0, 0, 2]);

    // Exactly one row of each touched table differs; nothing else in the Habitat tables does.
    let after = b.snapshot();
    for (table, n) in [
        ("members", 1),
        ("capital_accounts", 1),
        ("contributions", 1),
        ("allocation_periods", 0),
        ("allocations", 0),
    ] {
        assert_eq!(
            changed_rows(&before[table], &after[table]),
            n,
            "changed rows in {table}"
        );
        assert_eq!(before[table].len(), after[table].len(), "rows in {table}");
    }
    let pg = b.is_postgres();
    assert_eq!(
        b.scalar("SELECT role FROM members WHERE email = 'tom.lindqvist@example.org'"),
        "steward"
    );
    assert_eq!(
        b.scalar(
            "SELECT ca.balance FROM capital_accounts ca JOIN members m ON m.id = ca.member_id \
             WHERE m.email = 'daniel.reyes@example.org'"
        ),
        if pg { "5200.00" } else { "520000" }
    );
    assert_eq!(
        b.scalar("SELECT status FROM contributions WHERE description = 'Event coordination'"),
        "approved"
    );

    let run_id = report["run_id"].as_i64().expect("run_id");
    let expected: BTreeSet<(String, String, Option<String>, Option<String>)> = [
        ("members", "role", Some("member"), Some("steward")),
        (
            "capital_accounts",
            "balance",
            Some("5000.00"),
            Some("5200.00"),
        ),
        ("contributions", "status", Some("pending"), Some("approved")),
        (
            "contributions",
            "approved_at",
            None,
            Some("2026-01-15T00:00:00Z"),
        ),
        // The balance changed in the source, so the opening balance is re-derived, old → new.
        (
            "opening_balances",
            "opening_balance / opening_tax_basis",
            Some("0.00 / 0.00"),
            Some("200.00 / 0.00"),
        ),
    ]
    .into_iter()
    .map(|(t, c, x, y)| {
        (
            t.to_string(),
            c.to_string(),
            x.map(str::to_string),
            y.map(str::to_string),
        )
    })
    .collect();

    // As `runs show` reports them.
    let shown = b.run_json_ok(&["runs", "show", &run_id.to_string()]);
    let listed: BTreeSet<_> = shown["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().map(str::to_string);
            (
                s("table").unwrap_or_default(),
                s("column").unwrap_or_default(),
                s("before"),
                s("after"),
            )
        })
        .collect();
    assert_eq!(listed, expected, "runs show {run_id}: {}", shown["changes"]);
    let keys: Vec<&str> = shown["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .filter_map(|c| c["row_key"].as_str())
        .collect();
    assert!(keys.contains(&"tom.lindqvist@example.org"), "{keys:?}");
    assert!(keys.contains(&"daniel.reyes@example.org"), "{keys:?}");

    // As stored in the tool's change table.
    let stored: BTreeSet<_> = b
        .query(&format!(
            "SELECT table_name, column_name, before_value, after_value FROM {} WHERE run_id = {run_id}",
            b.tool("changes")
        ))
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
                r[2].clone(),
                r[3].clone(),
            )
        })
        .collect();
    assert_eq!(stored, expected, "rows of {}", b.tool("changes"));
    assert_eq!(
        b.count(&format!("{} WHERE run_id <> {run_id}", b.tool("changes"))),
        0,
        "the first import recorded no changes"
    );
}

/// The report's `changes` figure is the number of changes `runs show` lists for the run.
fn report_change_count_matches_history(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let bundle = modified_techne(&b, "modified");
    let report = b.run_json_ok(&["migrate", path_str(&bundle)]);
    let run_id = report["run_id"].as_i64().expect("run_id");
    let shown = b.run_json_ok(&["runs", "show", &run_id.to_string()]);
    let listed = shown["changes"].as_array().expect("changes array").len() as u64;
    assert_eq!(
        report["changes"].as_u64(),
        Some(listed),
        "migrate --format json says `changes: {}` but `runs show {run_id}` lists {listed} changes: {}",
        report["changes"],
        shown["changes"]
    );
}

/// Asserts a dry run's report and that it wrote no backup and no log.
fn assert_dry_run_report(b: &Backend, report: &Value) {
    assert_eq!(report["dry_run"], true, "{report}");
    assert!(
        report["run_id"].is_null(),
        "run_id of a dry run: {}",
        report["run_id"]
    );
    assert!(report["backup_file"].is_null(), "{}", report["backup_file"]);
    assert!(report["log_file"].is_null(), "{}", report["log_file"]);
    assert_eq!(files_in(&b.backup_dir()), Vec::<PathBuf>::new(), "backups");
    assert_eq!(files_in(&b.log_dir()), Vec::<PathBuf>::new(), "logs");
}

/// A dry run against a brand-new database (no schema at all) writes nothing: no tables appear.
fn dry_run_on_new_database_creates_nothing(b: Backend) {
    let before = b.snapshot();
    assert!(
        before.is_empty(),
        "a fresh database has no tables: {before:?}"
    );
    let report = b.run_json_ok(&["migrate", "--dry-run", TECHNE]);
    assert_counts(&report, "members", [12, 0, 0]);
    assert_counts(&report, "contributions", [8, 0, 0]);
    assert_dry_run_report(&b, &report);
    let after = b.snapshot();
    assert_same_except(&before, &after, &[], "dry run on a new database");
}

/// A dry run against an initialised, empty database → every table byte-identical.
fn dry_run_on_empty_schema_writes_nothing(b: Backend) {
    let out = b.run(&["db", "init"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let before = b.snapshot();
    assert!(before.contains_key(&b.tool("runs")), "{:?}", before.keys());
    let report = b.run_json_ok(&["migrate", "--dry-run", TECHNE]);
    assert_counts(&report, "members", [12, 0, 0]);
    assert_counts(&report, "capital_accounts", [12, 0, 0]);
    assert_counts(&report, "allocation_periods", [2, 0, 0]);
    assert_counts(&report, "contributions", [8, 0, 0]);
    assert_dry_run_report(&b, &report);
    assert_same_except(&before, &b.snapshot(), &[], "dry run on an empty schema");
}

/// A dry run of a modified bundle against a populated database → it plans the updates, and every
/// table (Habitat and tool tables) is byte-identical afterwards.
fn dry_run_on_populated_database_writes_nothing(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let bundle = modified_techne(&b, "modified");
    append(
        &bundle.join("members.csv"),
        "new.member@example.org,New Member,,member,pending,2026-01-02",
    );
    append(
        &bundle.join("capital_accounts.csv"),
        "new.member@example.org,100.00,100.00,",
    );
    // Only the dry run's (absent) files may appear from here on.
    for f in files_in(&b.backup_dir())
        .into_iter()
        .chain(files_in(&b.log_dir()))
    {
        fs::remove_file(f).expect("remove a file of the first run");
    }
    let before = b.snapshot();
    let report = b.run_json_ok(&["migrate", "--dry-run", path_str(&bundle)]);
    assert_counts(&report, "members", [1, 1, 11]);
    assert_counts(&report, "capital_accounts", [1, 1, 11]);
    assert_counts(&report, "contributions", [0, 1, 7]);
    assert_dry_run_report(&b, &report);
    assert_same_except(
        &before,
        &b.snapshot(),
        &[],
        "dry run on a populated database",
    );
}

/// Two identical contribution lines are two contributions, imported once; emails that differ
/// only in case across members, capital_accounts and contributions are one member.
fn identical_rows_and_email_case(b: Backend) {
    let bundle = b.copy_techne("cases");
    edit(
        &bundle.join("members.csv"),
        "maya.okonkwo@example.org,",
        "Maya.Okonkwo@Example.ORG,",
    );
    edit(
        &bundle.join("capital_accounts.csv"),
        "maya.okonkwo@example.org,",
        "MAYA.OKONKWO@EXAMPLE.ORG,",
    );
    edit(
        &bundle.join("contributions.csv"),
        "daniel.reyes@example.org,",
        "Daniel.Reyes@EXAMPLE.org,",
    );
    let duplicate = "jonas.weber@example.org,Q4 2025,labor,640.00,Website and member portal,approved,2025-12-31";
    append(&bundle.join("contributions.csv"), duplicate);

    let first = b.run_json_ok(&["migrate", path_str(&bundle)]);
    assert_counts(&first, "members", [12, 0, 0]);
    assert_counts(&first, "capital_accounts", [12, 0, 0]);
    assert_counts(&first, "contributions", [9, 0, 0]);
    assert_eq!(b.count("members"), 12);
    assert_eq!(b.count("contributions"), 9);
    assert_eq!(
        b.count(
            "contributions c JOIN members m ON m.id = c.member_id \
             WHERE m.email = 'jonas.weber@example.org'"
        ),
        2,
        "both identical rows are kept"
    );
    assert_eq!(
        b.count("members WHERE email = 'maya.okonkwo@example.org'"),
        1,
        "email stored lower-case"
    );
    assert_eq!(
        b.scalar(
            "SELECT ca.balance FROM capital_accounts ca JOIN members m ON m.id = ca.member_id \
             WHERE m.email = 'maya.okonkwo@example.org'"
        ),
        if b.is_postgres() {
            "10000.00"
        } else {
            "1000000"
        },
        "the upper-case capital account belongs to the mixed-case member"
    );
    assert_eq!(
        b.count(
            "contributions c JOIN members m ON m.id = c.member_id \
             WHERE m.email = 'daniel.reyes@example.org'"
        ),
        1
    );

    let before = b.snapshot();
    let second = b.run_json_ok(&["migrate", path_str(&bundle)]);
    assert_eq!(second["nothing_changed"], true, "{second}");
    assert_counts(&second, "contributions", [0, 0, 9]);
    assert_counts(&second, "members", [0, 0, 12]);
    assert_eq!(b.count("contributions"), 9, "no duplicates on re-import");
    assert_same_except(&before, &b.snapshot(), &run_tables(&b), "re-import");
}

/// A bundle whose very last row is rejected by the database (a constraint the test plants, which
/// validation cannot know) → exit 3 naming the constraint, every table as before, and one
/// `failed` run on record.
fn database_rejects_last_row_nothing_imported(b: Backend) {
    let out = b.run(&["db", "init"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    if b.is_postgres() {
        b.execute("ALTER TABLE contributions ADD CONSTRAINT test_no_big CHECK (amount < 1000000)");
    } else {
        b.execute(
            "CREATE TRIGGER test_no_big BEFORE INSERT ON contributions \
             WHEN NEW.amount >= 100000000 BEGIN SELECT RAISE(ABORT, 'test_no_big'); END",
        );
    }
    b.run_json_ok(&["migrate", TECHNE]);

    // Inserts, updates and the offending row last of all.
    let bundle = modified_techne(&b, "last_row");
    append(
        &bundle.join("members.csv"),
        "new.member@example.org,New Member,,member,active,2026-01-02",
    );
    append(
        &bundle.join("capital_accounts.csv"),
        "new.member@example.org,100.00,100.00,",
    );
    append(
        &bundle.join("contributions.csv"),
        "new.member@example.org,Q1 2026,labor,12.00,Fine,pending,",
    );
    append(
        &bundle.join("contributions.csv"),
        "new.member@example.org,Q1 2026,labor,1000000.00,Too big for test_no_big,pending,",
    );

    let before = b.snapshot();
    let runs_before = b.count(&b.tool("runs"));
    let out = b.run(&["migrate", path_str(&bundle)]);
    assert_eq!(code(&out), 3, "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("test_no_big"),
        "the error names the constraint:\n{stderr}"
    );

    let after = b.snapshot();
    assert_same_except(&before, &after, &run_tables(&b), "a rejected last row");
    assert_eq!(
        b.count(&b.tool("runs")),
        runs_before + 1,
        "the failed attempt is on record"
    );
    let id = b.last_run().expect("a run");
    assert_eq!(b.run_field(&id, "outcome").as_deref(), Some("failed"));
    let runs_after = &after[&b.tool("runs")];
    assert!(
        before[&b.tool("runs")]
            .iter()
            .all(|r| runs_after.contains(r)),
        "earlier run records are untouched"
    );
}

/// PostgreSQL only: the import's connection is terminated from a second session during the
/// contributions `COPY` → exit 3, a message saying the connection was lost and nothing was
/// committed, and the database exactly as before. The bundle grows until the `COPY` is caught;
/// the test fails if it never is.
fn connection_terminated_mid_import(first: Backend) {
    let mut backend = Some(first);
    for members in [2_000_u64, 8_000, 24_000] {
        let b = match backend.take() {
            Some(b) => b,
            None => Backend::postgres(),
        };
        let Engine::Postgres(db) = &b.engine else {
            panic!("PostgreSQL only")
        };
        let db_name = db.name.clone();
        let bundle = b.generate(members, "big");
        let out = b.run(&["db", "init"]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let before = b.snapshot();

        let mut child = b.spawn(&["migrate", path_str(&bundle)], "migrate");
        let mut admin = common::pg_client(&common::pg_admin_url());
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut terminated = None;
        while terminated.is_none() && Instant::now() < deadline {
            if child.try_wait().expect("poll child").is_some() {
                break;
            }
            let rows = admin
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                     AND application_name = 'habitat-migrate' AND state = 'active' \
                     AND query LIKE 'COPY contributions%'",
                    &[&db_name],
                )
                .expect("read pg_stat_activity");
            if let Some(row) = rows.first() {
                let pid: i32 = row.get(0);
                let done: bool = admin
                    .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                    .expect("pg_terminate_backend")
                    .get(0);
                if done {
                    terminated = Some(pid);
                }
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let Some(pid) = terminated else {
            let status = wait_for(&mut child, Duration::from_secs(300), "migrate");
            eprintln!(
                "the {members}-member import finished ({status}) before its COPY could be \
                 terminated; retrying with a bigger bundle"
            );
            continue;
        };

        let status = wait_for(
            &mut child,
            Duration::from_secs(60),
            "the terminated migrate",
        );
        let (stdout, stderr) = b.spawned_output("migrate");
        eprintln!("terminated backend {pid} during the {members}-member COPY; stderr:\n{stderr}");
        assert_eq!(
            status.code(),
            Some(3),
            "backend {pid} terminated; expected exit 3\n{stdout}\n{stderr}"
        );
        let lower = stderr.to_lowercase();
        assert!(
            lower.contains("connection was lost") || lower.contains("terminat"),
            "stderr says the connection was lost:\n{stderr}"
        );
        assert!(
            lower.contains("not committed"),
            "stderr says nothing was committed:\n{stderr}"
        );

        let after = b.snapshot();
        assert_same_except(&before, &after, &[b.tool("runs")], "a terminated import");
        for t in HABITAT {
            assert_eq!(b.count(t), 0, "{t} is empty, as before");
        }
        // The dead connection cannot record the attempt; if anything is recorded, it is a failure.
        for id in b.query(&format!("SELECT id FROM {}", b.tool("runs"))) {
            let id = id[0].clone().expect("run id");
            assert_eq!(b.run_field(&id, "outcome").as_deref(), Some("failed"));
        }
        // The log file still tells the story.
        let logs = files_in(&b.log_dir());
        assert_eq!(logs.len(), 1, "one log file: {logs:?}");
        let log = fs::read_to_string(&logs[0]).expect("read log");
        assert!(
            log.lines().any(|l| l.contains("\"event\":\"failed\"")),
            "the log records the failure:\n{log}"
        );
        return;
    }
    panic!("never managed to terminate the import during its COPY, even with 24000 members");
}

/// A connection that holds the single-writer lock, as a running import does.
enum LockHolder {
    Pg(::postgres::Client),
    Sqlite(rusqlite::Connection),
}

impl LockHolder {
    /// Takes the lock the binary takes: PostgreSQL's advisory lock, SQLite's write lock.
    fn take(b: &Backend) -> LockHolder {
        match &b.engine {
            Engine::Postgres(_) => {
                // WRITER_LOCK in src/store/postgres.rs.
                const WRITER_LOCK: i64 = 0x0048_4142_4954_4154;
                let mut c = common::pg_client(&b.url);
                c.batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})"
                ))
                .expect("take the writer lock");
                LockHolder::Pg(c)
            }
            Engine::Sqlite(_) => {
                let c = rusqlite::Connection::open(common::sqlite_path(&b.url))
                    .expect("open the SQLite file");
                c.execute_batch("BEGIN IMMEDIATE")
                    .expect("take the write lock");
                LockHolder::Sqlite(c)
            }
        }
    }

    fn release(self) {
        match self {
            LockHolder::Pg(mut c) => c.batch_execute("ROLLBACK").expect("release the lock"),
            LockHolder::Sqlite(c) => c.execute_batch("ROLLBACK").expect("release the lock"),
        }
    }
}

/// Runs `migrate` while `holder` has the lock: exit 3 within 10 s, saying another run is writing.
fn assert_refused_while_locked(b: &Backend) {
    let started = Instant::now();
    let out = b.run(&["migrate", TECHNE]);
    let took = started.elapsed();
    assert_eq!(code(&out), 3, "{}", describe(&out));
    assert!(
        took < Duration::from_secs(10),
        "refused at once, not after {took:?}"
    );
    assert!(
        common::all_output(&out).contains(BUSY),
        "the refusal says another run is writing ({BUSY:?}):\n{}",
        describe(&out)
    );
}

/// The writer lock held by another session on an initialised database → `migrate` exits 3 at
/// once saying another run is writing, changing nothing; once the lock is released, it succeeds.
fn held_writer_lock_refuses_migrate(b: Backend) {
    let out = b.run(&["db", "init"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let before = b.snapshot();
    let holder = LockHolder::take(&b);
    assert_refused_while_locked(&b);
    holder.release();
    assert_same_except(&before, &b.snapshot(), &[], "a refused migrate");

    let report = b.run_json_ok(&["migrate", TECHNE]);
    assert_counts(&report, "members", [12, 0, 0]);
    assert_eq!(b.count("contributions"), 8);
}

/// The same on a brand-new database, which is what the second of two first-ever runs meets while
/// the first is still creating it: refused with the same message, and fine once released.
fn held_writer_lock_on_new_database_refuses_migrate(b: Backend) {
    if !b.is_postgres() {
        // An empty database file, as a first run has just created it.
        rusqlite::Connection::open(common::sqlite_path(&b.url)).expect("create the SQLite file");
    }
    let holder = LockHolder::take(&b);
    assert_refused_while_locked(&b);
    holder.release();
    let report = b.run_json_ok(&["migrate", TECHNE]);
    assert_counts(&report, "members", [12, 0, 0]);
}

/// Two real `migrate` processes started together on one database → one succeeds and the other is
/// refused with exit 3; or, if timing serialised them, the second changed nothing. Either way the
/// bundle is in the database exactly once.
fn concurrent_migrations_one_refused(b: Backend) {
    let out = b.run(&["db", "init"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let bundle = b.generate(1_000, "gen1000");
    let args = ["--format", "json", "migrate", path_str(&bundle)];
    let mut first = b.spawn(&args, "first");
    let mut second = b.spawn(&args, "second");
    let s1 = wait_for(&mut first, Duration::from_secs(300), "first migrate");
    let s2 = wait_for(&mut second, Duration::from_secs(300), "second migrate");
    let outcomes = [("first", s1.code()), ("second", s2.code())];
    let refused: Vec<&str> = outcomes
        .iter()
        .filter(|(_, c)| *c == Some(3))
        .map(|(n, _)| *n)
        .collect();
    let succeeded: Vec<&str> = outcomes
        .iter()
        .filter(|(_, c)| *c == Some(0))
        .map(|(n, _)| *n)
        .collect();
    let show = |n: &str| {
        let (o, e) = b.spawned_output(n);
        format!(
            "--- {n} stdout ---\n{}\n--- {n} stderr ---\n{e}",
            clip(&o, 800)
        )
    };
    let everything = format!("{outcomes:?}\n{}\n{}", show("first"), show("second"));
    eprintln!("concurrent outcomes: {outcomes:?}");
    match (succeeded.len(), refused.len()) {
        (1, 1) => {
            let (_, stderr) = b.spawned_output(refused[0]);
            assert!(
                stderr.contains(BUSY),
                "refused with the busy message:\n{everything}"
            );
        }
        (2, 0) => {
            let nothing: Vec<bool> = ["first", "second"]
                .iter()
                .map(|n| {
                    let (o, _) = b.spawned_output(n);
                    serde_json::from_str::<Value>(&o).is_ok_and(|v| v["nothing_changed"] == true)
                })
                .collect();
            assert!(
                nothing.contains(&true),
                "both succeeded, so they ran one after the other and the second must have \
                 changed nothing:\n{everything}"
            );
        }
        _ => panic!("expected one success and one refusal:\n{everything}"),
    }
    assert_eq!(b.count("members"), 1_000);
    assert_eq!(b.count("contributions"), 10_000);
    let succeeded_runs = b.count(&format!(
        "{} WHERE outcome = 'succeeded' AND command = 'migrate'",
        b.tool("runs")
    ));
    assert_eq!(succeeded_runs, succeeded.len() as u64, "{everything}");
}

/// The guide's steps: capital accounts before members is refused with a hint; members →
/// capital accounts → periods → contributions ends where `migrate` does, and verifies.
fn import_steps_in_guide_order(b: Backend) {
    let file = |name: &str| format!("{TECHNE}/{name}.csv");
    let out = b.run(&[
        "import",
        "capital-accounts",
        "--source",
        &file("capital_accounts"),
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        common::all_output(&out).contains("import members before capital accounts"),
        "{}",
        describe(&out)
    );
    match &b.engine {
        // A refused first run into a SQLite file that does not exist leaves no file behind.
        Engine::Sqlite(_) => assert!(!common::sqlite_path(&b.url).exists()),
        Engine::Postgres(_) => assert_eq!(b.count("capital_accounts"), 0),
    }

    for (what, source, table, n) in [
        ("members", "members", "members", 12),
        (
            "capital-accounts",
            "capital_accounts",
            "capital_accounts",
            12,
        ),
        ("periods", "periods", "allocation_periods", 2),
        ("contributions", "contributions", "contributions", 8),
    ] {
        let report = b.run_json_ok(&["import", what, "--source", &file(source)]);
        assert_counts(&report, table, [n, 0, 0]);
        assert_eq!(b.count(table), n, "rows in {table} after `import {what}`");
    }
    for (table, n) in [
        ("members", 12),
        ("capital_accounts", 12),
        ("allocation_periods", 2),
        ("contributions", 8),
    ] {
        assert_eq!(b.count(table), n, "final rows in {table}");
    }
    let verify = b.run(&["verify"]);
    assert_eq!(
        code(&verify),
        0,
        "step-by-step imports verify without false differences:\n{}",
        describe(&verify)
    );
    // And `migrate` over the result finds nothing left to do.
    let report = b.run_json_ok(&["migrate", TECHNE]);
    assert_eq!(report["nothing_changed"], true, "{report}");
}

/// `period create` then `period list` shows it; creating it again fails and changes nothing.
fn period_create_and_list(b: Backend) {
    let create = [
        "period",
        "create",
        "--name",
        "Q1 2026",
        "--start",
        "2026-01-01",
        "--end",
        "2026-03-31",
    ];
    let out = b.run(&create);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    let out = b.run(&["period", "list"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    let line = listed
        .lines()
        .find(|l| l.contains("Q1 2026"))
        .unwrap_or_else(|| panic!("period list shows Q1 2026:\n{listed}"));
    assert!(
        line.contains("2026-01-01") && line.contains("2026-03-31") && line.contains("open"),
        "{line}"
    );
    let list = b.run_json_ok(&["period", "list"]);
    let periods = list["periods"].as_array().expect("periods array");
    assert_eq!(periods.len(), 1, "{list}");
    assert_eq!(periods[0]["name"], "Q1 2026");
    assert_eq!(periods[0]["start_date"], "2026-01-01T00:00:00Z");
    assert_eq!(periods[0]["end_date"], "2026-03-31T00:00:00Z");

    let before = b.snapshot();
    let again = b.run(&create);
    assert_ne!(
        code(&again),
        0,
        "a second period of that name:\n{}",
        describe(&again)
    );
    assert!(
        common::all_output(&again).contains("already exists"),
        "{}",
        describe(&again)
    );
    assert_eq!(b.count("allocation_periods"), 1);
    assert_same_except(&before, &b.snapshot(), &[], "a refused period create");
}

/// The URL with a password: a made-up one (trust authentication ignores it) unless the test
/// server's URL already carries a real one. Returns (url, password).
fn url_with_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.split_once('@').expect("a user in the test URL");
    match userinfo.split_once(':') {
        Some((_, password)) if !password.is_empty() => (url.to_string(), password.to_string()),
        _ => {
            let password = "hunter2secret".to_string();
            (format!("{scheme}://{userinfo}:{password}@{host}"), password)
        }
    }
}

/// Every non-dry run is recorded (tool version, SHA-256 of each source file, counts, outcome,
/// backup) and logged as JSON lines; dry runs are neither; a password in the database URL
/// appears in no output, log, backup or run record.
fn run_record_and_log_without_password(b: Backend) {
    let (url, secret) = if b.is_postgres() {
        url_with_password(&b.url)
    } else {
        (b.url.clone(), "hunter2secret".to_string())
    };
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| -> Output {
        let out = b
            .cmd_with_url(&url)
            .args(args)
            .output()
            .expect("run habitat-migrate");
        outputs.push(describe(&out));
        out
    };

    let out = run(&["--format", "json", "migrate", TECHNE]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report = json(&out);
    let run_id = report["run_id"].as_i64().expect("run_id").to_string();
    let out = run(&["migrate", "--dry-run", TECHNE]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(b.count(&b.tool("runs")), 1, "a dry run is not recorded");
    assert_eq!(files_in(&b.log_dir()).len(), 1, "a dry run writes no log");

    // The run record.
    assert_eq!(
        b.run_field(&run_id, "tool_version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        b.run_field(&run_id, "outcome").as_deref(),
        Some("succeeded")
    );
    assert_eq!(b.run_field(&run_id, "command").as_deref(), Some("migrate"));
    assert!(
        b.run_field(&run_id, "invoked_by")
            .is_some_and(|s| !s.is_empty())
    );
    assert!(b.run_field(&run_id, "started_at").is_some());
    assert!(b.run_field(&run_id, "finished_at").is_some());
    let backup = b.run_field(&run_id, "backup_file").expect("a backup file");
    assert!(
        b.work().join(&backup).is_file() || Path::new(&backup).is_file(),
        "backup {backup} exists"
    );
    let sources: Value = serde_json::from_str(&b.run_field(&run_id, "sources").expect("sources"))
        .expect("sources is JSON");
    let sources = sources.as_array().expect("sources array");
    assert_eq!(sources.len(), 4, "{sources:?}");
    for name in ["members", "capital_accounts", "periods", "contributions"] {
        let path = format!("{TECHNE}/{name}.csv");
        let expected = sha256_hex(&fs::read(&path).expect("read source"));
        let source = sources
            .iter()
            .find(|s| {
                s["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{name}.csv")))
            })
            .unwrap_or_else(|| panic!("{name}.csv recorded in {sources:?}"));
        assert_eq!(source["sha256"], expected.as_str(), "SHA-256 of {name}.csv");
    }
    let counts: Value = serde_json::from_str(&b.run_field(&run_id, "counts").expect("counts"))
        .expect("counts is JSON");
    for (table, n) in [
        ("members", 12),
        ("capital_accounts", 12),
        ("allocation_periods", 2),
        ("contributions", 8),
    ] {
        assert_eq!(counts[table]["inserted"], n, "recorded counts: {counts}");
    }

    // The JSON-lines log.
    let logs = files_in(&b.log_dir());
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = fs::read_to_string(&logs[0]).expect("read log");
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"started"), "{names:?}");
    assert_eq!(names.last(), Some(&"committed"), "{names:?}");
    assert!(events.iter().all(|e| e["ts"].is_string()), "{log}");
    assert_eq!(
        events.last().map(|e| e["run_id"].to_string()),
        Some(run_id.clone())
    );

    // A second real run is recorded and logged too.
    let out = run(&["migrate", TECHNE]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(b.count(&b.tool("runs")), 2);
    assert_eq!(files_in(&b.log_dir()).len(), 2);
    let out = run(&["runs", "list"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = run(&["--format", "json", "runs", "show", &run_id]);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    if b.is_postgres() {
        // A connection that fails must not echo the password either.
        let (_, host_and_db) = url.split_once('@').expect("user@host");
        let db = host_and_db.rsplit_once('/').map_or("postgres", |(_, d)| d);
        let unreachable = url.replace(host_and_db, &format!("127.0.0.1:1/{db}"));
        let out = b
            .cmd_with_url(&unreachable)
            .args(["migrate", TECHNE])
            .output()
            .expect("run habitat-migrate");
        assert_eq!(code(&out), 3, "{}", describe(&out));
        outputs.push(describe(&out));
    }

    // The password nowhere: outputs, logs, backups, run records.
    for o in &outputs {
        assert!(!o.contains(&secret), "password in output:\n{o}");
    }
    for f in files_in(&b.log_dir())
        .into_iter()
        .chain(files_in(&b.backup_dir()))
    {
        let bytes = fs::read(&f).expect("read file");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "password in {}",
            f.display()
        );
    }
    for row in b.dump(&b.tool("runs")) {
        assert!(!row.contains(&secret), "password in a run record: {row}");
    }
    if b.is_postgres() {
        assert!(
            b.run_field(&run_id, "database_url")
                .is_some_and(|u| u.contains("***")),
            "the recorded URL is redacted"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Corrections (SPEC §6): a corrected amount must never double-count
// ---------------------------------------------------------------------------------------------

/// The Habitat tables and the tool's state tied to them (not the run history).
fn state(b: &Backend) -> BTreeMap<String, Dump> {
    let mut tables: Vec<String> = HABITAT.iter().map(|t| t.to_string()).collect();
    for t in ["imported_contributions", "opening_balances", "changes"] {
        tables.push(b.tool(t));
    }
    tables
        .into_iter()
        .map(|t| (t.clone(), b.dump(&t)))
        .collect()
}

/// Daniel Reyes's Q4 2025 capital contribution corrected from 5000.00 to `amount` in a copy of
/// the example, and his balance (and tax basis) set to `balance`.
fn daniel_corrected(b: &Backend, name: &str, amount: &str, balance: &str) -> PathBuf {
    let dir = b.copy_techne(name);
    edit(
        &dir.join("contributions.csv"),
        "daniel.reyes@example.org,Q4 2025,capital,5000.00,",
        &format!("daniel.reyes@example.org,Q4 2025,capital,{amount},"),
    );
    edit(
        &dir.join("capital_accounts.csv"),
        "daniel.reyes@example.org,5000.00,5000.00,",
        &format!("daniel.reyes@example.org,{balance},{balance},"),
    );
    dir
}

/// Daniel's contribution amounts, as numbers of cents, sorted.
fn daniel_amounts(b: &Backend) -> Vec<i64> {
    let mut cents: Vec<i64> = b
        .query(
            "SELECT c.amount FROM contributions c JOIN members m ON m.id = c.member_id \
             WHERE m.email = 'daniel.reyes@example.org'",
        )
        .into_iter()
        .filter_map(|mut r| r.remove(0))
        .map(|a| {
            if b.is_postgres() {
                let (whole, frac) = a.split_once('.').expect("numeric with a point");
                whole.parse::<i64>().expect("whole") * 100 + frac.parse::<i64>().expect("cents")
            } else {
                a.parse().expect("integer cents")
            }
        })
        .collect();
    cents.sort_unstable();
    cents
}

fn backups(b: &Backend) -> usize {
    fs::read_dir(b.backup_dir()).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".json"))
            .count()
    })
}

/// The treasurer's scenario: the amount corrected in the cumulative file, the balance not. The
/// run is refused before anything is written (no backup either), naming Daniel, the earlier row,
/// the row that probably replaced it, and both ways out.
fn corrected_amount_is_refused_and_nothing_written(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let before = state(&b);
    let backups_before = backups(&b);
    let bundle = daniel_corrected(&b, "corrected", "5500.00", "5000.00");
    let out = b.run(&["migrate", path_str(&bundle)]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "1 contribution(s) imported earlier are no longer in the source file, for 1 member(s): daniel.reyes@example.org",
        "daniel.reyes@example.org Q4 2025 capital 5000.00 \"Initial funding\" (approved, imported in run 1) — probably replaced by line 3: capital 5500.00 \"Initial funding\"",
        "--replace-missing",
        "--keep-missing",
        "Nothing was imported.",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?} in:\n{}",
            describe(&out)
        );
    }
    assert_eq!(state(&b), before, "a refused run writes nothing");
    assert_eq!(
        backups(&b),
        backups_before,
        "a refused run writes no backup"
    );
    assert_eq!(daniel_amounts(&b), [500_000]);

    let refused = b.run(&["--format", "json", "migrate", path_str(&bundle)]);
    assert_eq!(code(&refused), 1);
    let doc = json(&refused);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["refused"], "corrections");
    let missing = &doc["corrections"]["missing"][0];
    assert_eq!(missing["member"], "daniel.reyes@example.org");
    assert_eq!(missing["amount"], "5000.00");
    assert_eq!(missing["unchanged_since_import"], true);
    assert_eq!(missing["probably_replaced_by"]["amount"], "5500.00");
}

/// `--replace-missing` with the balance still 5000.00: the earlier row goes, the new one comes,
/// and the stored opening balance (0.00) stands, so the reconciliation fails by 500.00, naming
/// Daniel, and the run is rolled back.
fn corrected_amount_replaced_without_new_balance_fails_reconciliation(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let before = state(&b);
    let bundle = daniel_corrected(&b, "corrected", "5500.00", "5000.00");
    let out = b.run(&["migrate", path_str(&bundle), "--replace-missing"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "✗ Capital account balances do not match contribution totals (12 member(s) reconciled; 10 with a nonzero opening balance (total 30500.50); 1 member(s) differ): daniel.reyes@example.org (balance -500.00, tax_basis -500.00)"
        ),
        "{}",
        describe(&out)
    );
    // Without --verbose only the failing rows are listed, not the whole reconciliation.
    assert!(
        text.contains("daniel.reyes@example.org | balance | 0.00 | 5500.00 | 0.00 | 5500.00 | 5000.00 | -500.00"),
        "{}",
        describe(&out)
    );
    assert!(
        !text.contains("maya.okonkwo@example.org | balance"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("rolled back"));
    assert_eq!(state(&b), before, "rolled back: nothing written");
    assert_eq!(daniel_amounts(&b), [500_000]);
}

/// Balance and contribution both corrected to 5500.00 with `--replace-missing`: one contribution
/// of 5500.00, the deletion's before-image in the history, the opening balance re-derived because
/// the balance changed (0.00 → 0.00: no re-derivation to record), and `verify` passes.
fn corrected_amount_and_balance_replaced_reconcile(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let bundle = daniel_corrected(&b, "corrected", "5500.00", "5500.00");
    let report = b.run_json_ok(&["migrate", path_str(&bundle), "--replace-missing"]);
    assert_counts(&report, "contributions", [1, 0, 7]);
    assert_eq!(report["counts"]["contributions"]["deleted"], 1);
    assert_eq!(report["corrections"]["policy"], "replace");
    assert_eq!(daniel_amounts(&b), [550_000]);
    assert!(
        backups(&b) >= 2,
        "the correction was backed up before it was written"
    );

    let run_id = report["run_id"].as_i64().expect("run id").to_string();
    let shown = b.run_json_ok(&["runs", "show", &run_id]);
    assert_eq!(
        shown["run"]["command"], "migrate --replace-missing",
        "{shown:#}"
    );
    let deletion = shown["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["column"] == "(deleted row)")
        .unwrap_or_else(|| panic!("no deletion in the history: {shown:#}"));
    assert_eq!(deletion["table"], "contributions");
    assert_eq!(deletion["after"], Value::Null);
    let image: Value =
        serde_json::from_str(deletion["before"].as_str().expect("a before-image")).expect("JSON");
    assert_eq!(image["amount"], "5000.00");
    assert_eq!(image["member"], "daniel.reyes@example.org");
    assert_eq!(image["status"], "approved");

    let out = b.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("✓ All verification checks passed"));
    // A second run of the corrected bundle changes nothing.
    let again = b.run_json_ok(&["migrate", path_str(&bundle)]);
    assert_eq!(again["nothing_changed"], true, "{again:#}");
    assert_eq!(again["backup_file"], Value::Null);
    assert_eq!(again["backup_skipped"], "nothing to write");
}

/// `--keep-missing` keeps both rows, as before, says so in the run record, and the warning names
/// Daniel and his negative opening balance.
fn corrected_amount_kept_names_the_negative_opening(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let bundle = daniel_corrected(&b, "corrected", "5500.00", "5000.00");
    let out = b.run(&["migrate", path_str(&bundle), "--keep-missing"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "! 1 contribution(s) imported earlier and no longer in the file kept beside the new rows (--keep-missing): daniel.reyes@example.org",
        "✓ Opening balances re-derived for 1 member(s): daniel.reyes@example.org (0.00 → -5500.00, contributions added)",
        "! 1 member(s) have a negative opening balance (their records explain more than their balance): daniel.reyes@example.org (-5500.00)",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?} in:\n{}",
            describe(&out)
        );
    }
    assert_eq!(daniel_amounts(&b), [500_000, 550_000]);
    let last = b.last_run().expect("a run");
    assert_eq!(
        b.run_field(&last, "command").as_deref(),
        Some("migrate --keep-missing")
    );
    let history = b.run_json_ok(&["runs", "show", &last]);
    assert!(
        history["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| {
                c["table"] == "opening_balances"
                    && c["before"] == "0.00 / 0.00"
                    && c["after"] == "-5500.00 / -5500.00"
            }),
        "the re-derivation is in the change history: {history:#}"
    );
    // verify re-derives nothing: it reports the same warning.
    let out = b.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("daniel.reyes@example.org (-5500.00)"),
        "{}",
        describe(&out)
    );
}

/// A file per quarter: importing only Q1 2026 rows neither refuses nor touches Q4 2025's.
fn file_per_quarter_leaves_other_quarters_alone(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let q4 = b.dump("contributions");
    let dir = b.copy_techne("q1");
    fs::write(
        dir.join("contributions.csv"),
        "member_email,period_name,contribution_type,amount,description,status,approved_at\n\
         priya.raman@example.org,Q1 2026,labor,900.00,Quarterly bookkeeping,pending,\n\
         daniel.reyes@example.org,Q1 2026,labor,400.00,Workshop,pending,\n",
    )
    .expect("write the Q1 file");
    let report = b.run_json_ok(&["migrate", path_str(&dir)]);
    assert_counts(&report, "contributions", [2, 0, 0]);
    let now = b.dump("contributions");
    assert_eq!(now.len(), q4.len() + 2);
    assert!(
        q4.iter().all(|row| now.contains(row)),
        "every Q4 row is as it was"
    );
    let out = b.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

/// The guide's steps one by one — capital accounts before any contribution — still reconcile:
/// adding contributions (and removing none) re-derives the opening balances.
fn step_by_step_imports_reconcile(b: Backend) {
    for (what, file) in [
        ("periods", "periods.csv"),
        ("members", "members.csv"),
        ("capital-accounts", "capital_accounts.csv"),
        ("contributions", "contributions.csv"),
    ] {
        let source = format!("{TECHNE}/{file}");
        b.run_json_ok(&["import", what, "--source", &source]);
    }
    let out = b.run(&["--format", "json", "verify"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report = json(&out);
    let reconciliation = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "reconciliation")
        .expect("a reconciliation check");
    assert_eq!(reconciliation["status"], "pass", "{reconciliation:#}");
    assert!(
        reconciliation["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("12 member(s) reconciled")),
        "{reconciliation:#}"
    );
}

/// A contribution someone changed in Habitat after the import is never deleted by a correction:
/// `--replace-missing` refuses the whole run and names it.
fn contribution_changed_in_habitat_is_never_deleted(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    b.execute(
        "UPDATE contributions SET description = 'Initial funding (signed off)' \
         WHERE description = 'Initial funding'",
    );
    let before = state(&b);
    let bundle = daniel_corrected(&b, "corrected", "5500.00", "5500.00");
    let out = b.run(&["migrate", path_str(&bundle), "--replace-missing"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "[changed in the database since it was imported: never deleted by this tool]"
        ),
        "{}",
        describe(&out)
    );
    assert!(text.contains("--replace-missing refused"), "{text}");
    assert_eq!(state(&b), before, "nothing written");
    assert_eq!(daniel_amounts(&b), [500_000]);
}

/// `verify --strict-balances` fails exactly the members with a nonzero opening balance, and its
/// table shows each of them with a nonzero difference (the opening balance it did not count).
fn strict_balances_table_shows_what_it_counts(b: Backend) {
    b.run_json_ok(&["migrate", TECHNE]);
    let out = b.run(&["--format", "json", "verify", "--strict-balances"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let report = json(&out);
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "reconciliation")
        .expect("a reconciliation check");
    assert_eq!(check["status"], "fail");
    let named = check["named"].as_array().expect("named").len();
    assert_eq!(named, 10, "{check:#}");
    let differing: BTreeSet<String> = check["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r[7] != "0.00")
        .map(|r| r[0].as_str().expect("member").to_string())
        .collect();
    assert_eq!(differing.len(), 10, "{check:#}");
    assert!(
        check["message"]
            .as_str()
            .is_some_and(|m| m.contains("10 member(s) differ")),
        "{check:#}"
    );
}

/// `verify` checks the database, not the source files: on an empty database it says that nothing
/// has been imported instead of letting "all passed" suggest anything was verified.
fn verify_on_an_empty_database_says_nothing_was_imported(b: Backend) {
    let out = b.run(&["db", "init"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = b.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("! The database holds no members yet: nothing has been imported"),
        "{}",
        describe(&out)
    );
    b.run_json_ok(&["migrate", TECHNE]);
    let out = b.run(&["verify"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("no members yet"));
}
