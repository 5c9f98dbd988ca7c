//! Backup, rollback and verification, end to end through the real binary (SPEC §5–§6; the seed
//! guide's step 1, step 6 and its rollback procedure), on PostgreSQL and on SQLite.
//!
//! What these tests prove:
//! - `migrate examples/techne` ends with every check ✓ and names its backup
//!   `pre_migration_YYYYMMDD_HHMMSS.(sql|db)`, owner-only (0600), with a manifest beside it (0600)
//!   listing each table's rows and SHA-256 and the file's own SHA-256 (recomputed here);
//! - backup → change data (a migrate of a changed bundle, rows deleted and inserted by SQL) →
//!   `restore` gives every backed-up table exactly its original checksum (computed here, from an
//!   ordered dump of all columns, independently of the tool); the backup a migrate takes restores the
//!   database to its state before that migrate; on PostgreSQL `psql "$URL" < F` restores it too;
//! - a tampered backup (a byte appended, a value edited, even with a re-signed manifest) and a
//!   backup without its manifest are refused, and the database is left as it was;
//! - an unwritable backup directory stops a migrate with exit 4 and nothing written; `--no-backup`
//!   warns loudly and imports;
//! - each `verify` check passes on a clean import and fails (✗, exit 1, the row in `--verbose` and in
//!   `--format json`) on a database seeded to break it, the constraint that would have prevented the
//!   bad row being dropped or disabled by the test; balance reconciliation catches a balance changed
//!   outside the tool, `--strict-balances` fails on nonzero opening balances, and an account the tool
//!   never imported is a "no baseline" warning;
//! - a read-back mismatch forced by a trigger rolls the whole migration back (recorded as
//!   `rolled_back`), while problems that predate a migration are reported as pre-existing and do
//!   not block it.
//!
//! The "tables" compared are the ones a backup holds: the five Habitat tables and the tool's
//! contribution keys and opening balances. The run history (runs, changes) is deliberately not
//! rolled back by a restore, so it is not compared.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{PgDb, all_output, bin, fresh_pg, fresh_sqlite, pg_client, sqlite_conn};
use crate::harness::{Test, tests};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The tests of this file, with what each needs (see `harness.rs`); `pg::…` and `sqlite::…` come
/// from [`on_both_backends!`].
pub(crate) fn tests() -> Vec<Test> {
    let mut all = tests! {
        Postgres: [
            undo_backups_reverse_runs_newest_first,
            psql_restores_a_postgresql_backup,
        ],
    };
    all.extend(pg::tests());
    all.extend(sqlite::tests());
    all
}

/// The example bundle of the repository (12 members, 12 accounts, 2 periods, 8 contributions).
const TECHNE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");

const HABITAT_TABLES: [&str; 5] = [
    "members",
    "allocation_periods",
    "capital_accounts",
    "contributions",
    "allocations",
];

/// The ✓ lines of a clean `verify`, in the order the tool prints them.
const CHECK_LINES: [&str; 7] = [
    "✓ All members have valid emails",
    "✓ All capital accounts have member references",
    "✓ All contributions have member and period references",
    "✓ No negative capital account balances",
    "✓ All approved contributions have approved_at",
    "✓ No orphaned records",
    "✓ Capital account balances match contribution totals",
];

/// The ids of those checks in `--format json`.
const CHECK_IDS: [&str; 7] = [
    "emails",
    "capital_account_members",
    "contribution_references",
    "negative_balances",
    "approved_timestamps",
    "orphans",
    "reconciliation",
];

/// A uuid that names no row (for planting dangling references).
const NOBODY: &str = "00000000-0000-4000-8000-00000000dead";

// ---------------------------------------------------------------------------------------------
// helpers

/// Each variant owns what must live as long as the test: the database (dropped with it) or the
/// directory of the database file.
enum Backend {
    Postgres { _db: PgDb },
    Sqlite { _dir: TempDir },
}

/// One test's database and its own working directory (backups and logs go there).
struct Db {
    backend: Backend,
    url: String,
    work: TempDir,
}

impl Db {
    /// A fresh PostgreSQL database.
    fn postgres() -> Db {
        let pg = fresh_pg();
        let url = pg.url.clone();
        Db {
            backend: Backend::Postgres { _db: pg },
            url,
            work: tempfile::tempdir().expect("working directory"),
        }
    }

    /// A fresh SQLite database file (not created yet).
    fn sqlite() -> Db {
        let (dir, url) = fresh_sqlite();
        Db {
            backend: Backend::Sqlite { _dir: dir },
            url,
            work: tempfile::tempdir().expect("working directory"),
        }
    }

    fn is_pg(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    fn backup_dir(&self) -> PathBuf {
        self.work.path().join("backups")
    }

    fn log_dir(&self) -> PathBuf {
        self.work.path().join("logs")
    }

    /// Runs `habitat-migrate --database-url URL --backup-dir D --log-dir L ARGS…`.
    fn tool(&self, args: &[&str]) -> Output {
        self.tool_backing_up_to(&self.backup_dir(), args)
    }

    fn tool_backing_up_to(&self, backup_dir: &Path, args: &[&str]) -> Output {
        bin()
            .current_dir(self.work.path())
            .arg("--database-url")
            .arg(&self.url)
            .arg("--backup-dir")
            .arg(backup_dir)
            .arg("--log-dir")
            .arg(self.log_dir())
            .args(args)
            .output()
            .expect("run habitat-migrate")
    }

    /// The name of one of the tool's own tables (`habitat_migrate.runs` / `hm_runs`).
    fn tool_table(&self, name: &str) -> String {
        if self.is_pg() {
            format!("habitat_migrate.{name}")
        } else {
            format!("hm_{name}")
        }
    }

    /// Every table a backup holds.
    fn backed_up_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = HABITAT_TABLES.iter().map(|t| t.to_string()).collect();
        tables.push(self.tool_table("imported_contributions"));
        tables.push(self.tool_table("opening_balances"));
        tables
    }

    /// Runs SQL outside the tool, on a connection of its own: `pg` on PostgreSQL, `sqlite` on
    /// SQLite (money there is integer cents, ids and timestamps are text the test must supply).
    fn exec(&self, pg: &str, sqlite: &str) {
        match &self.backend {
            Backend::Postgres { .. } => pg_client(&self.url)
                .batch_execute(pg)
                .unwrap_or_else(|e| panic!("{pg}\nfailed: {e}")),
            Backend::Sqlite { .. } => sqlite_conn(&self.url)
                .execute_batch(sqlite)
                .unwrap_or_else(|e| panic!("{sqlite}\nfailed: {e}")),
        }
    }

    /// The first column of a query that yields text on both backends (use `CAST(x AS TEXT)`).
    fn strings(&self, sql: &str) -> Vec<Option<String>> {
        match &self.backend {
            Backend::Postgres { .. } => pg_client(&self.url)
                .query(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
                .iter()
                .map(|r| r.get::<_, Option<String>>(0))
                .collect(),
            Backend::Sqlite { .. } => {
                let conn = sqlite_conn(&self.url);
                let mut stmt = conn
                    .prepare(sql)
                    .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"));
                stmt.query_map([], |r| r.get::<_, Option<String>>(0))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
            }
        }
    }

    /// The one text value of a query.
    fn one(&self, sql: &str) -> String {
        let values = self.strings(sql);
        assert_eq!(values.len(), 1, "{sql}: expected one row, got {values:?}");
        values
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_else(|| panic!("{sql}: NULL"))
    }

    fn count(&self, table: &str) -> u64 {
        self.one(&format!("SELECT CAST(count(*) AS TEXT) FROM {table}"))
            .parse()
            .expect("a count")
    }

    fn runs_with_outcome(&self, outcome: &str) -> u64 {
        self.count(&format!(
            "{} WHERE outcome = '{outcome}'",
            self.tool_table("runs")
        ))
    }

    /// Per backed-up table: its row count and the SHA-256 of an ordered dump of all its columns,
    /// computed here without the tool (PostgreSQL: `row_to_json`; SQLite: every value as read).
    fn checksums(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for table in self.backed_up_tables() {
            let mut rows: Vec<String> = match &self.backend {
                Backend::Postgres { .. } => pg_client(&self.url)
                    .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
                    .unwrap_or_else(|e| panic!("dumping {table}: {e}"))
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect(),
                Backend::Sqlite { .. } => {
                    let conn = sqlite_conn(&self.url);
                    let mut stmt = conn
                        .prepare(&format!("SELECT * FROM {table}"))
                        .unwrap_or_else(|e| panic!("dumping {table}: {e}"));
                    let n = stmt.column_count();
                    let mut dump = Vec::new();
                    let mut rows = stmt.query([]).expect("query rows");
                    while let Some(r) = rows.next().expect("next row") {
                        let fields: Vec<String> = (0..n)
                            .map(|i| {
                                let v: rusqlite::types::Value = r.get(i).expect("a value");
                                format!("{v:?}")
                            })
                            .collect();
                        dump.push(fields.join("\u{1f}"));
                    }
                    dump
                }
            };
            rows.sort();
            let digest = sha256_hex(rows.join("\n").as_bytes());
            out.insert(table, format!("{} rows, sha256 {digest}", rows.len()));
        }
        out
    }

    /// Asserts that every backed-up table holds no row.
    fn assert_empty(&self) {
        for table in self.backed_up_tables() {
            assert_eq!(self.count(&table), 0, "{table} should be empty");
        }
    }

    /// `migrate examples/techne`, which must succeed.
    fn import_techne(&self) -> Output {
        let out = self.tool(&["migrate", TECHNE]);
        assert_exit(&out, 0, "migrate examples/techne");
        out
    }

    /// The id of a contribution, found by its description.
    fn contribution_id(&self, description: &str) -> String {
        self.one(&format!(
            "SELECT CAST(id AS TEXT) FROM contributions WHERE description = '{description}'"
        ))
    }

    /// The id of a member's capital account.
    fn account_id(&self, email: &str) -> String {
        self.one(&format!(
            "SELECT CAST(ca.id AS TEXT) FROM capital_accounts ca
               JOIN members m ON m.id = ca.member_id WHERE m.email = '{email}'"
        ))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(bytes).iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn describe(out: &Output) -> String {
    format!("exit status {:?}\n{}", out.status.code(), all_output(out))
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\n{}",
        describe(out)
    );
}

fn assert_contains(out: &Output, needle: &str, what: &str) {
    assert!(
        all_output(out).contains(needle),
        "{what}: expected the output to contain {needle:?}\n{}",
        describe(out)
    );
}

/// The file named on the `✓ Backup written: PATH` line (printed by `migrate` and `backup`).
fn backup_named_in(out: &Output) -> PathBuf {
    stdout(out)
        .lines()
        .find_map(|l| l.strip_prefix("✓ Backup written: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no `✓ Backup written:` line\n{}", describe(out)))
}

fn manifest_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn manifest(backup: &Path) -> Value {
    let path = manifest_path(backup);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `pre_migration_YYYYMMDD_HHMMSS.<ext>`
fn is_backup_name(name: &str, ext: &str) -> bool {
    name.strip_prefix("pre_migration_")
        .and_then(|rest| rest.strip_suffix(&format!(".{ext}")))
        .is_some_and(|stamp| {
            stamp.len() == 15
                && stamp
                    .char_indices()
                    .all(|(i, c)| if i == 8 { c == '_' } else { c.is_ascii_digit() })
        })
}

/// `verify --format json ARGS…`, parsed, with its exit code.
fn verify_json(db: &Db, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--format", "json", "verify"];
    all.extend_from_slice(args);
    let out = db.tool(&all);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --format json: {e}\n{}", describe(&out)));
    (out.status.code(), report)
}

/// One check of a JSON verify report, by id.
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

/// Whether any row of a JSON check has a field equal to `value`.
fn lists(check: &Value, value: &str) -> bool {
    check["rows"].as_array().is_some_and(|rows| {
        rows.iter()
            .any(|r| r.as_array().is_some_and(|r| r.iter().any(|f| f == value)))
    })
}

/// The database was seeded to break check `id`: `verify` prints `✗ fail_title` and exits 1,
/// `--verbose` lists `offender`, `--format json` shows the check failed with that row.
fn assert_check_fails(db: &Db, id: &str, fail_title: &str, offender: &str) {
    let out = db.tool(&["verify"]);
    assert_exit(&out, 1, &format!("verify with a row that breaks {id}"));
    assert_contains(&out, &format!("✗ {fail_title}"), "the ✗ line");
    assert_contains(&out, "✗ Some verification checks failed", "the summary");

    let out = db.tool(&["verify", "--verbose"]);
    assert_exit(&out, 1, "verify --verbose");
    assert_contains(&out, offender, "verify --verbose lists the offending row");

    let (code, report) = verify_json(db, &[]);
    assert_eq!(code, Some(1), "verify --format json exit code\n{report:#}");
    assert_eq!(report["ok"], false, "{report:#}");
    let c = check(&report, id);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(c["preexisting"], false, "{c:#}");
    assert!(lists(c, offender), "{id} should list {offender}: {c:#}");
}

/// A copy of examples/techne with a renamed member, a changed balance and a new member.
fn changed_bundle(db: &Db) -> PathBuf {
    let dir = db.work.path().join("techne_changed");
    std::fs::create_dir_all(&dir).expect("bundle dir");
    let read = |name: &str| {
        std::fs::read_to_string(Path::new(TECHNE).join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let members = read("members.csv").replace("Maya Okonkwo,", "Maya Okonkwo-Reyes,")
        + "zoe.new@example.org,Zoe New,,member,active,2026-01-05\n";
    let accounts = read("capital_accounts.csv").replace(
        "hannah.cohen@example.org,2500.00,2500.00",
        "hannah.cohen@example.org,3000.00,3000.00",
    ) + "zoe.new@example.org,750.00,750.00,New member buy-in\n";
    for (name, text) in [
        ("members.csv", members),
        ("capital_accounts.csv", accounts),
        ("periods.csv", read("periods.csv")),
        ("contributions.csv", read("contributions.csv")),
    ] {
        std::fs::write(dir.join(name), text).expect("write bundle file");
    }
    dir
}

/// Changes rows outside the tool: deletes a labor contribution, adds a period and an allocation.
fn change_rows_by_sql(db: &Db) {
    db.exec(
        "DELETE FROM contributions WHERE description = 'Bookkeeping and bylaws drafting';
         INSERT INTO allocation_periods (name, start_date, end_date)
              VALUES ('Q2 2026', '2026-04-01', '2026-06-30');
         INSERT INTO allocations (member_id, period_id, amount)
              SELECT m.id, p.id, 125.00 FROM members m, allocation_periods p
               WHERE m.email = 'maya.okonkwo@example.org' AND p.name = 'Q2 2026';",
        "DELETE FROM contributions WHERE description = 'Bookkeeping and bylaws drafting';
         INSERT INTO allocation_periods (id, name, start_date, end_date)
              VALUES ('11111111-1111-4111-8111-111111111111', 'Q2 2026',
                      '2026-04-01T00:00:00Z', '2026-06-30T00:00:00Z');
         INSERT INTO allocations (id, member_id, period_id, amount)
              SELECT '22222222-2222-4222-8222-222222222222', m.id,
                     '11111111-1111-4111-8111-111111111111', 12500
                FROM members m WHERE m.email = 'maya.okonkwo@example.org';",
    );
}

/// Replaces `from` by `to` (same length) wherever it occurs in a file's bytes.
fn edit_bytes(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).expect("read backup");
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from.as_bytes() {
            bytes[i..i + from.len()].copy_from_slice(to.as_bytes());
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "{from:?} not found in {}", path.display());
    std::fs::write(path, bytes).expect("write backup");
}

/// Copies a backup and its manifest under a new name.
fn copy_backup(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy backup");
    std::fs::copy(manifest_path(from), manifest_path(to)).expect("copy manifest");
}

/// Runs all of `behaviour(&Db)` once on PostgreSQL and once on SQLite (`pg::…`, `sqlite::…`).
macro_rules! on_both_backends {
    ($($behaviour:ident),+ $(,)?) => {
        mod pg {
            use crate::harness::{Test, tests};

            pub(super) fn tests() -> Vec<Test> {
                tests!(Postgres: [$($behaviour),+])
            }

            $(
                fn $behaviour() {
                    super::$behaviour(&super::Db::postgres());
                }
            )+
        }
        mod sqlite {
            use crate::harness::{Test, tests};

            pub(super) fn tests() -> Vec<Test> {
                tests!(Nothing: [$($behaviour),+])
            }

            $(
                fn $behaviour() {
                    super::$behaviour(&super::Db::sqlite());
                }
            )+
        }
    };
}

on_both_backends!(
    migrate_passes_every_check_and_names_an_owner_only_backup,
    restore_returns_every_table_to_its_checksums,
    tampered_or_unmanifested_backup_is_refused_and_changes_nothing,
    unwritable_backup_directory_stops_the_migration_with_nothing_written,
    no_backup_warns_loudly_and_imports,
    verify_passes_on_a_clean_import,
    verify_fails_on_an_invalid_email,
    verify_fails_on_an_orphaned_capital_account,
    verify_fails_on_a_contribution_without_its_period,
    verify_fails_on_a_negative_balance,
    verify_fails_on_an_approved_contribution_without_approved_at,
    verify_fails_on_an_orphaned_allocation,
    deleted_contribution_leaves_a_harmless_record,
    verify_fails_when_a_balance_changes_outside_the_tool,
    strict_balances_fails_on_nonzero_opening_balances,
    account_never_imported_is_not_reconciled_for_lack_of_a_baseline,
    read_back_mismatch_rolls_the_migration_back,
    preexisting_problems_are_reported_and_do_not_block_a_migration,
);

// ---------------------------------------------------------------------------------------------
// migrate, backup, restore

fn migrate_passes_every_check_and_names_an_owner_only_backup(db: &Db) {
    let out = db.import_techne();
    let text = stdout(&out);
    for line in CHECK_LINES {
        assert!(text.contains(line), "missing {line:?}\n{}", describe(&out));
    }
    for (table, rows) in [
        ("allocation_periods", 2),
        ("members", 12),
        ("capital_accounts", 12),
        ("contributions", 8),
    ] {
        let line = format!("✓ Read-back of {table}: {rows} source rows, {rows} in the database");
        assert!(text.contains(&line), "missing {line:?}\n{}", describe(&out));
    }
    assert!(text.contains("✓ All verification checks passed"), "{text}");
    assert!(!text.contains('✗'), "no check may fail\n{text}");

    // The backup: named as the seed guide names it, owner-only, in an owner-only directory.
    let backup = backup_named_in(&out);
    let ext = if db.is_pg() { "sql" } else { "db" };
    let name = backup
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    assert!(
        is_backup_name(name, ext),
        "{name} is not pre_migration_YYYYMMDD_HHMMSS.{ext}"
    );
    assert_eq!(
        backup.parent().and_then(|p| p.canonicalize().ok()),
        db.backup_dir().canonicalize().ok(),
        "the backup is in --backup-dir"
    );
    assert!(backup.is_file(), "{} exists", backup.display());
    assert_eq!(mode(&backup), 0o600, "backup file mode");
    assert_eq!(mode(&manifest_path(&backup)), 0o600, "manifest file mode");
    assert_eq!(mode(&db.backup_dir()), 0o700, "backup directory mode");

    // The manifest: the file's own SHA-256 (recomputed here) and every table's rows and checksum.
    let m = manifest(&backup);
    let bytes = std::fs::read(&backup).expect("read backup");
    assert_eq!(m["file_sha256"], sha256_hex(&bytes), "manifest file_sha256");
    assert_eq!(m["file"], name);
    assert_eq!(
        m["backend"],
        if db.is_pg() { "postgresql" } else { "sqlite" }
    );
    if db.is_pg() {
        // PostgreSQL: the undo of this run, and the row counts it must give back (all empty).
        assert_eq!(m["kind"], "undo", "{m:#}");
        assert_eq!(m["run_id"], 1, "{m:#}");
        let counts = m["row_counts"].as_array().expect("row counts");
        assert_eq!(counts.len(), 5, "{m:#}");
        assert!(counts.iter().all(|c| c[1] == 0), "{m:#}");
    } else {
        // SQLite: a snapshot of the file, every table's rows and checksum.
        assert_eq!(m["kind"], "snapshot", "{m:#}");
        let tables = m["tables"].as_array().expect("manifest tables");
        let names: Vec<&str> = tables.iter().filter_map(|t| t["table"].as_str()).collect();
        assert_eq!(names, db.backed_up_tables(), "{m:#}");
        for t in tables {
            // Taken before the import wrote anything: every table was empty.
            assert_eq!(t["rows"], 0, "{t}");
            let sha = t["sha256"].as_str().unwrap_or_default();
            assert!(
                sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{t}"
            );
        }
    }

    // The run record names the same file.
    let recorded = db.one(&format!(
        "SELECT backup_file FROM {} WHERE outcome = 'succeeded'",
        db.tool_table("runs")
    ));
    assert_eq!(PathBuf::from(recorded), backup);
}

fn restore_returns_every_table_to_its_checksums(db: &Db) {
    assert_exit(&db.tool(&["db", "init"]), 0, "db init");
    let empty = db.checksums();
    let first = backup_named_in(&db.import_techne());
    let imported = db.checksums();

    // A backup taken on demand; its manifest counts what the tables hold.
    let file = db
        .work
        .path()
        .join(if db.is_pg() { "f.sql" } else { "f.db" });
    let out = db.tool(&["backup", "--output", file.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "backup --output");
    assert_eq!(backup_named_in(&out), file);
    assert_eq!(mode(&file), 0o600, "backup --output file mode");
    let m = manifest(&file);
    for t in m["tables"].as_array().expect("manifest tables") {
        let table = t["table"].as_str().expect("table name");
        assert_eq!(t["rows"], db.count(table), "manifest rows of {table}");
    }

    // Change every table: a migrate of a changed bundle, then rows deleted and inserted by SQL.
    let out = db.tool(&["migrate", changed_bundle(db).to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "migrate of the changed bundle");
    let second = backup_named_in(&out);
    change_rows_by_sql(db);
    let changed = db.checksums();
    for (table, sum) in &imported {
        // The tool's record of the deleted contribution stays (no foreign key) until an import.
        if table.ends_with("imported_contributions") {
            continue;
        }
        assert_ne!(&changed[table], sum, "{table} should have changed");
    }

    let out = db.tool(&["restore", file.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "restore");
    assert_contains(&out, "✓ Restored", "restore says so");
    assert_eq!(db.checksums(), imported, "restore of the on-demand backup");
    assert_exit(&db.tool(&["verify"]), 0, "verify after restore");

    if db.is_pg() {
        // PostgreSQL's run backups undo one run each: after the snapshot was restored, undoing
        // either migrate is refused, naming what wrote since.
        let out = db.tool(&["restore", first.to_str().expect("utf-8 path")]);
        assert_exit(&out, 1, "undo of the first migrate after later runs");
        assert_contains(&out, "undoes run 1, but run", "names the later runs");
        assert_eq!(
            db.checksums(),
            imported,
            "a refused restore changes nothing"
        );
        return;
    }
    // SQLite's run backups are snapshots: the first migrate's returns the database to before
    // that migrate, empty.
    let out = db.tool(&["restore", first.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "restore of the first migrate's backup");
    assert_eq!(
        db.checksums(),
        empty,
        "restore of the first migrate's backup"
    );
    db.assert_empty();

    // And the second migrate's backup to the state that migrate started from.
    let out = db.tool(&["restore", second.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "restore of the second migrate's backup");
    assert_eq!(
        db.checksums(),
        imported,
        "restore of the second migrate's backup"
    );
}

/// PostgreSQL's run backups undo runs, newest first: the undo of an earlier run is refused while
/// a later one stands; the later one's undo gives back the state it started from (checksums of
/// every table), and then the earlier one's gives back the empty database. `psql < FILE` runs
/// the same script.
fn undo_backups_reverse_runs_newest_first() {
    let db = Db::postgres();
    assert_exit(&db.tool(&["db", "init"]), 0, "db init");
    let empty = db.checksums();
    let first = backup_named_in(&db.import_techne());
    let imported = db.checksums();
    let out = db.tool(&["migrate", changed_bundle(&db).to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "migrate of the changed bundle");
    let second = backup_named_in(&out);
    let changed = db.checksums();

    let out = db.tool(&["restore", first.to_str().expect("utf-8 path")]);
    assert_exit(&out, 1, "undo of run 1 while run 2 stands");
    assert_contains(&out, "run 2 (migrate) wrote after it", "names run 2");
    assert_eq!(db.checksums(), changed, "nothing changed");

    let out = db.tool(&["restore", second.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "undo of run 2");
    assert_contains(&out, "✓ Undid run 2", "says which run");
    assert_eq!(db.checksums(), imported, "back to before run 2");

    let out = db.tool(&["restore", first.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "undo of run 1");
    assert_eq!(db.checksums(), empty, "back to before run 1");
    db.assert_empty();

    // psql runs the same undo script: redo both runs, then undo the second with psql.
    db.import_techne();
    let reimported = db.checksums();
    let out = db.tool(&["migrate", changed_bundle(&db).to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "migrate of the changed bundle again");
    let undo = backup_named_in(&out);
    let before_second = {
        let out = Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", &db.url])
            .stdin(Stdio::from(
                std::fs::File::open(&undo).expect("open the undo"),
            ))
            .output()
            .expect("run psql");
        assert_exit(&out, 0, "psql < undo");
        db.checksums()
    };
    assert_eq!(before_second, reimported, "psql < undo of the second run");
}

/// The seed guide's own rollback: `psql "$URL" < F`, into the same database after changes and
/// into another database that holds the schema.
fn psql_restores_a_postgresql_backup() {
    let db = Db::postgres();
    db.import_techne();
    let imported = db.checksums();
    let file = db.work.path().join("f.sql");
    let out = db.tool(&["backup", "--output", file.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "backup --output");

    let out = db.tool(&["migrate", changed_bundle(&db).to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "migrate of the changed bundle");
    change_rows_by_sql(&db);
    assert_ne!(db.checksums(), imported);

    let psql = |url: &str| {
        let out = Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", url])
            .stdin(Stdio::from(
                std::fs::File::open(&file).expect("open the backup"),
            ))
            .output()
            .expect("run psql (is it installed?)");
        assert_exit(&out, 0, "psql < backup");
    };
    psql(&db.url);
    assert_eq!(
        db.checksums(),
        imported,
        "psql restore into the same database"
    );
    assert_exit(&db.tool(&["verify"]), 0, "verify after the psql restore");

    let other = Db::postgres();
    assert_exit(&other.tool(&["db", "init"]), 0, "db init");
    psql(&other.url);
    assert_eq!(
        other.checksums(),
        imported,
        "psql restore into another database"
    );
    assert_exit(
        &other.tool(&["verify"]),
        0,
        "verify after the psql restore elsewhere",
    );
}

fn tampered_or_unmanifested_backup_is_refused_and_changes_nothing(db: &Db) {
    db.import_techne();
    let file = db
        .work
        .path()
        .join(if db.is_pg() { "f.sql" } else { "f.db" });
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let out = db.tool(&["backup", "--output", &path(&file)]);
    assert_exit(&out, 0, "backup --output");
    // Change the data so that any restore that did happen would show.
    db.exec(
        "DELETE FROM contributions WHERE description = 'Event coordination'",
        "DELETE FROM contributions WHERE description = 'Event coordination'",
    );
    let before = db.checksums();
    let refused = |backup: &Path, code: i32, words: &[&str], what: &str| {
        let out = db.tool(&["restore", &path(backup)]);
        assert_exit(&out, code, what);
        for w in words {
            assert_contains(&out, w, what);
        }
        assert_eq!(db.checksums(), before, "{what}: the database is unchanged");
    };

    // A byte appended.
    let appended = db.work.path().join("appended");
    copy_backup(&file, &appended);
    let mut bytes = std::fs::read(&appended).expect("read");
    bytes.push(b'\n');
    std::fs::write(&appended, bytes).expect("write");
    refused(&appended, 1, &["checksum mismatch"], "a byte appended");

    // A value edited in place (a member's name, in the SQL text or in the SQLite page).
    let edited = db.work.path().join("edited");
    copy_backup(&file, &edited);
    edit_bytes(&edited, "Maya Okonkwo", "Maya Okonkwa");
    refused(&edited, 1, &["checksum mismatch"], "a value edited");

    // The same edit with the manifest's file checksum forged to match: the per-table checksums
    // still catch it after the restore, which is rolled back.
    let resigned = db.work.path().join("resigned");
    copy_backup(&edited, &resigned);
    let mut m = manifest(&resigned);
    m["file_sha256"] = Value::from(sha256_hex(&std::fs::read(&resigned).expect("read")));
    std::fs::write(
        manifest_path(&resigned),
        serde_json::to_vec_pretty(&m).expect("json"),
    )
    .expect("write manifest");
    refused(
        &resigned,
        1,
        &["members does not match the backup", "rolled back"],
        "an edit with a forged file checksum",
    );

    // No manifest beside the file: nothing to check it against.
    let bare = db.work.path().join("bare");
    std::fs::copy(&file, &bare).expect("copy backup");
    refused(&bare, 4, &["no manifest"], "a backup without its manifest");

    // The untouched backup still restores.
    assert_exit(&db.tool(&["restore", &path(&file)]), 0, "restore");
    assert_ne!(db.checksums(), before);
}

fn unwritable_backup_directory_stops_the_migration_with_nothing_written(db: &Db) {
    assert_exit(&db.tool(&["db", "init"]), 0, "db init");
    let before = db.checksums();
    // A directory under a regular file cannot be created, not even by root.
    let afile = db.work.path().join("afile");
    std::fs::write(&afile, "not a directory").expect("write afile");
    let out = db.tool_backing_up_to(&afile.join("backups"), &["migrate", TECHNE]);
    assert_exit(&out, 4, "migrate with an unwritable backup directory");
    assert!(
        stderr(&out).contains("cannot write a backup into")
            && stderr(&out).contains("afile/backups")
            && stderr(&out).contains("nothing was imported"),
        "the error says why\n{}",
        describe(&out)
    );
    assert!(
        !stdout(&out).contains("Backup written"),
        "{}",
        describe(&out)
    );
    assert_eq!(db.checksums(), before, "the database is unchanged");
    db.assert_empty();
    assert_eq!(db.runs_with_outcome("succeeded"), 0, "no successful run");
    assert_eq!(db.runs_with_outcome("failed"), 1, "the attempt is recorded");
}

fn no_backup_warns_loudly_and_imports(db: &Db) {
    // Even with a backup directory that could not be created: none is needed.
    let afile = db.work.path().join("afile");
    std::fs::write(&afile, "not a directory").expect("write afile");
    let out = db.tool_backing_up_to(&afile.join("backups"), &["migrate", "--no-backup", TECHNE]);
    assert_exit(&out, 0, "migrate --no-backup");
    assert!(
        stderr(&out).contains("WARNING: --no-backup"),
        "a loud warning on standard error\n{}",
        describe(&out)
    );
    assert!(
        !stdout(&out).contains("Backup written"),
        "{}",
        describe(&out)
    );
    assert_eq!(db.count("members"), 12);
    let recorded = db.strings(&format!(
        "SELECT backup_file FROM {} WHERE outcome = 'succeeded'",
        db.tool_table("runs")
    ));
    assert_eq!(recorded, vec![None], "the run records no backup file");
}

// ---------------------------------------------------------------------------------------------
// verify, one check at a time

fn verify_passes_on_a_clean_import(db: &Db) {
    db.import_techne();
    let out = db.tool(&["verify"]);
    assert_exit(&out, 0, "verify on a clean import");
    let text = stdout(&out);
    for line in CHECK_LINES {
        assert!(text.contains(line), "missing {line:?}\n{text}");
    }
    assert!(text.contains("✓ All verification checks passed"), "{text}");
    assert!(!text.contains('✗') && !text.contains("\n! "), "{text}");

    let (code, report) = verify_json(db, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(report["ok"], true, "{report:#}");
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, CHECK_IDS, "{report:#}");
    for id in CHECK_IDS {
        assert_eq!(check(&report, id)["status"], "pass", "{id}");
    }
}

fn verify_fails_on_an_invalid_email(db: &Db) {
    db.import_techne();
    let id = db.one("SELECT CAST(id AS TEXT) FROM members WHERE email = 'ravi.patel@example.org'");
    db.exec(
        "ALTER TABLE members DROP CONSTRAINT members_email_format;
         UPDATE members SET email = 'not-an-email' WHERE email = 'ravi.patel@example.org';",
        "PRAGMA ignore_check_constraints = ON;
         UPDATE members SET email = 'not-an-email' WHERE email = 'ravi.patel@example.org';",
    );
    assert_check_fails(db, "emails", "Some members have invalid emails", &id);
    assert_contains(&db.tool(&["verify", "-v"]), "not-an-email", "the bad email");
}

fn verify_fails_on_an_orphaned_capital_account(db: &Db) {
    db.import_techne();
    let account = db.account_id("ravi.patel@example.org");
    db.exec(
        "SET session_replication_role = replica;
         DELETE FROM members WHERE email = 'ravi.patel@example.org';",
        "PRAGMA foreign_keys = OFF;
         DELETE FROM members WHERE email = 'ravi.patel@example.org';",
    );
    assert_check_fails(
        db,
        "capital_account_members",
        "Some capital accounts are orphaned",
        &account,
    );
}

fn verify_fails_on_a_contribution_without_its_period(db: &Db) {
    db.import_techne();
    let id = db.contribution_id("Event coordination");
    let sql = format!(
        "UPDATE contributions SET period_id = '{NOBODY}' WHERE description = 'Event coordination'"
    );
    db.exec(
        &format!("SET session_replication_role = replica; {sql};"),
        &format!("PRAGMA foreign_keys = OFF; {sql};"),
    );
    assert_check_fails(
        db,
        "contribution_references",
        "Some contributions have invalid references",
        &id,
    );
}

fn verify_fails_on_a_negative_balance(db: &Db) {
    db.import_techne();
    let account = db.account_id("ravi.patel@example.org");
    let which = "WHERE member_id = (SELECT id FROM members WHERE email = 'ravi.patel@example.org')";
    db.exec(
        &format!(
            "ALTER TABLE capital_accounts DROP CONSTRAINT capital_accounts_balance_check;
             UPDATE capital_accounts SET balance = -100.00 {which};"
        ),
        &format!(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE capital_accounts SET balance = -10000 {which};"
        ),
    );
    assert_check_fails(
        db,
        "negative_balances",
        "Some capital accounts have negative balances",
        &account,
    );
    assert_contains(
        &db.tool(&["verify", "-v"]),
        "-100.00",
        "the negative balance",
    );
}

fn verify_fails_on_an_approved_contribution_without_approved_at(db: &Db) {
    db.import_techne();
    let id = db.contribution_id("Bookkeeping and bylaws drafting");
    let sql = "UPDATE contributions SET approved_at = NULL
                WHERE description = 'Bookkeeping and bylaws drafting';";
    db.exec(
        &format!(
            "ALTER TABLE contributions DROP CONSTRAINT contributions_approved_at_check; {sql}"
        ),
        &format!("PRAGMA ignore_check_constraints = ON; {sql}"),
    );
    assert_check_fails(
        db,
        "approved_timestamps",
        "Some approved contributions are missing approved_at",
        &id,
    );
}

fn verify_fails_on_an_orphaned_allocation(db: &Db) {
    db.import_techne();
    let allocation = "00000000-0000-4000-8000-0000000000a1";
    db.exec(
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO allocations (id, member_id, period_id, amount)
                  SELECT '{allocation}', '{NOBODY}', id, 10.00
                    FROM allocation_periods WHERE name = 'Q4 2025';"
        ),
        &format!(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO allocations (id, member_id, period_id, amount)
                  SELECT '{allocation}', '{NOBODY}', id, 1000
                    FROM allocation_periods WHERE name = 'Q4 2025';"
        ),
    );
    assert_check_fails(db, "orphans", "Some records are orphaned", allocation);
    let (_, report) = verify_json(db, &[]);
    assert!(
        lists(check(&report, "orphans"), "allocations"),
        "{report:#}"
    );
}

/// A contribution the application deletes leaves the tool's record of it behind (there is no
/// foreign key, for speed): verification does not count that as an orphan, and the next import
/// re-creates the contribution the file still lists and drops the stale record.
fn deleted_contribution_leaves_a_harmless_record(db: &Db) {
    db.import_techne();
    let records = db.tool_table("imported_contributions");
    // A labor contribution: removing it leaves every balance reconciled.
    db.exec(
        "DELETE FROM contributions WHERE description = 'Bookkeeping and bylaws drafting';",
        "DELETE FROM contributions WHERE description = 'Bookkeeping and bylaws drafting';",
    );
    assert_eq!(db.count(&records), 8, "the record stays behind");
    let (code, report) = verify_json(db, &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(check(&report, "orphans")["status"], "pass");
    db.import_techne();
    assert_eq!(db.count("contributions"), 8, "re-created from the file");
    assert_eq!(db.count(&records), 8, "the stale record is gone");
    assert_eq!(
        db.one(&format!(
            "SELECT CAST(count(*) AS TEXT) FROM {records} k JOIN contributions c ON c.id = k.contribution_id"
        )),
        "8"
    );
}

fn verify_fails_when_a_balance_changes_outside_the_tool(db: &Db) {
    db.import_techne();
    let which =
        "WHERE member_id = (SELECT id FROM members WHERE email = 'maya.okonkwo@example.org')";
    db.exec(
        &format!("UPDATE capital_accounts SET balance = balance + 100.00 {which}"),
        &format!("UPDATE capital_accounts SET balance = balance + 10000 {which}"),
    );
    assert_check_fails(
        db,
        "reconciliation",
        "Capital account balances do not match contribution totals",
        "maya.okonkwo@example.org",
    );
    // member | measure | opening | contributions | allocations | expected | actual | difference
    let line = "maya.okonkwo@example.org | balance | 7500.00 | 2500.00 | 0.00 | 10000.00 | 10100.00 | 100.00";
    assert_contains(&db.tool(&["verify", "--verbose"]), line, "the difference");
    // The other measure, tax basis, did not change.
    let line = "maya.okonkwo@example.org | tax_basis | 7500.00 | 2500.00 | 0.00 | 10000.00 | 10000.00 | 0.00";
    assert_contains(
        &db.tool(&["verify", "--verbose"]),
        line,
        "tax basis reconciled",
    );
}

fn strict_balances_fails_on_nonzero_opening_balances(db: &Db) {
    db.import_techne();
    let out = db.tool(&["verify"]);
    assert_exit(&out, 0, "verify without --strict-balances");
    assert_contains(
        &out,
        "✓ Capital account balances match contribution totals",
        "the ✓ line",
    );
    assert_contains(&out, "10 with a nonzero opening balance", "openings shown");

    let out = db.tool(&["verify", "--strict-balances"]);
    assert_exit(&out, 1, "verify --strict-balances");
    assert_contains(
        &out,
        "✗ Capital account balances do not match contribution totals",
        "the ✗ line",
    );
    let (code, report) = verify_json(db, &["--strict-balances"]);
    assert_eq!(code, Some(1));
    assert_eq!(check(&report, "reconciliation")["status"], "fail");
}

fn account_never_imported_is_not_reconciled_for_lack_of_a_baseline(db: &Db) {
    db.import_techne();
    db.exec(
        "INSERT INTO members (email, display_name, joined_at)
              VALUES ('walk.in@example.org', 'Walk In', '2026-01-10');
         INSERT INTO capital_accounts (member_id, balance, tax_basis)
              SELECT id, 300.00, 300.00 FROM members WHERE email = 'walk.in@example.org';",
        "INSERT INTO members (id, email, display_name, joined_at)
              VALUES ('33333333-3333-4333-8333-333333333333', 'walk.in@example.org', 'Walk In',
                      '2026-01-10T00:00:00Z');
         INSERT INTO capital_accounts (id, member_id, balance, tax_basis)
              VALUES ('44444444-4444-4444-8444-444444444444',
                      '33333333-3333-4333-8333-333333333333', 30000, 30000);",
    );
    let out = db.tool(&["verify", "--verbose"]);
    assert_exit(&out, 0, "verify with an account the tool never imported");
    assert_contains(
        &out,
        "! 1 capital account(s) not reconciled — no baseline",
        "warning",
    );
    assert_contains(&out, "walk.in@example.org", "the member is named");
    assert_contains(
        &out,
        "✓ Capital account balances match contribution totals",
        "the others reconcile",
    );
    let (code, report) = verify_json(db, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(report["ok"], true);
    let w = check(&report, "no_baseline");
    assert_eq!(w["status"], "warn", "{w:#}");
    assert!(lists(w, "walk.in@example.org"), "{w:#}");
}

// ---------------------------------------------------------------------------------------------
// verification inside migrate

fn read_back_mismatch_rolls_the_migration_back(db: &Db) {
    assert_exit(&db.tool(&["db", "init"]), 0, "db init");
    // A trigger that silently alters what the import writes (COPY fires row triggers too).
    db.exec(
        "CREATE FUNCTION public.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.display_name := NEW.display_name || ' (x)'; RETURN NEW; END $$;
         CREATE TRIGGER tamper BEFORE INSERT ON public.members
             FOR EACH ROW EXECUTE FUNCTION public.tamper();",
        "CREATE TRIGGER tamper AFTER INSERT ON members BEGIN
             UPDATE members SET display_name = display_name || ' (x)' WHERE id = NEW.id;
         END;",
    );
    let before = db.checksums();
    let out = db.tool(&["migrate", TECHNE]);
    assert_exit(&out, 1, "migrate whose read-back cannot match");
    assert_contains(&out, "✗ Read-back of members: 12 source rows", "the ✗ line");
    assert_contains(&out, "✓ Read-back of capital_accounts", "the others match");
    assert_contains(&out, "rolled back", "says it was rolled back");
    assert!(
        !stdout(&out).contains("Migration complete"),
        "{}",
        describe(&out)
    );
    assert_eq!(db.checksums(), before, "the database is unchanged");
    db.assert_empty();
    assert_eq!(
        db.runs_with_outcome("rolled_back"),
        1,
        "the run is recorded"
    );
    assert_eq!(db.runs_with_outcome("succeeded"), 0);
}

fn preexisting_problems_are_reported_and_do_not_block_a_migration(db: &Db) {
    assert_exit(&db.tool(&["db", "init"]), 0, "db init");
    db.exec(
        "ALTER TABLE members DROP CONSTRAINT members_email_format;
         INSERT INTO members (email, display_name, joined_at)
              VALUES ('not-an-email', 'Legacy Row', '2024-01-01');",
        "PRAGMA ignore_check_constraints = ON;
         INSERT INTO members (id, email, display_name, joined_at)
              VALUES ('55555555-5555-4555-8555-555555555555', 'not-an-email', 'Legacy Row',
                      '2024-01-01T00:00:00Z');",
    );
    let out = db.tool(&["migrate", TECHNE]);
    assert_exit(&out, 0, "migrate over a pre-existing invalid email");
    assert_contains(&out, "! Some members have invalid emails", "reported");
    assert_contains(&out, "[pre-existing", "as pre-existing");
    assert_contains(&out, "✓ Migration complete", "and the import went ahead");
    assert_eq!(db.count("members"), 13);
    assert_eq!(db.runs_with_outcome("succeeded"), 1);
    // On demand there is no "before": the bad row is simply a failure.
    let out = db.tool(&["verify"]);
    assert_exit(&out, 1, "verify on demand");
    assert_contains(&out, "✗ Some members have invalid emails", "the ✗ line");
}
