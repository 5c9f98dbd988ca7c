//! What a production run shows and leaves behind: no file from a run that writes nothing, progress
//! on a terminal only (drawn through a real pseudo-terminal, by util-linux's `script`), database
//! errors that name the step, the table and the source row, contribution samples with their
//! action, and backup retention (`backup prune`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common;
use crate::harness::{Test, tests};
use serde_json::Value;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            a_failed_migrate_on_a_new_sqlite_file_leaves_no_file_behind,
            progress_is_drawn_on_a_terminal_only_and_never_under_quiet_or_json,
            backup_prune_keeps_the_newest_and_leaves_other_files_alone,
            dry_run_contribution_samples_show_their_action_on_sqlite,
            a_database_error_on_sqlite_names_the_step_and_table_and_that_nothing_was_imported,
            a_failed_verification_inside_migrate_is_one_json_document,
        ],
        Postgres: [
            dry_run_contribution_samples_show_their_action_on_postgresql,
            a_database_error_on_postgresql_names_the_step_table_and_source_row,
            backup_prune_keeps_the_undo_scripts_a_kept_older_one_needs,
        ],
    }
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");
const BIN: &str = env!("CARGO_BIN_EXE_habitat-migrate");

/// A temporary working directory; runs happen inside it, against `habitat.db` there.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        common::bin()
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("habitat-migrate runs")
    }

    /// A copy of the example bundle, to spoil.
    fn bundle(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        fs::create_dir_all(&dir).expect("bundle directory");
        for entry in fs::read_dir(EXAMPLE).expect("example bundle") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
        }
        dir
    }

    /// The names in the working directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn a_failed_migrate_on_a_new_sqlite_file_leaves_no_file_behind() {
    let work = Work::new();
    let bundle = work.bundle("bundle");
    let members = fs::read_to_string(bundle.join("members.csv")).expect("members");
    fs::write(
        bundle.join("members.csv"),
        members.replacen("daniel.reyes@example.org", "daniel.reyes@example", 1),
    )
    .expect("spoil members");
    for args in [
        vec!["migrate", "bundle"],
        vec!["--format", "json", "migrate", "bundle"],
        vec!["import", "members", "--source", "bundle/members.csv"],
        // References to members the new database cannot hold.
        vec![
            "import",
            "capital-accounts",
            "--source",
            "bundle/capital_accounts.csv",
        ],
    ] {
        let out = work.run(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            common::all_output(&out)
        );
        let all = common::all_output(&out);
        assert!(
            all.contains("email.format") || all.contains("ref.member"),
            "{args:?}: the report says why: {all}"
        );
        assert_eq!(
            work.names(),
            ["bundle"],
            "{args:?} left files behind (database, log, backups)"
        );
    }
    // The same files, once valid, create the database as before.
    fs::write(bundle.join("members.csv"), members).expect("repair members");
    let out = work.run(&["-q", "migrate", "bundle"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    assert!(work.path().join("habitat.db").is_file());
    assert!(work.path().join("migration-logs").is_dir());
}

/// Runs the binary with `args` in `dir` on a pseudo-terminal (standard output and standard error
/// both the terminal), returning what the terminal received.
fn on_a_terminal(dir: &Path, args: &[&str]) -> String {
    let command = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_DIR")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux `script` runs (it gives the command a pseudo-terminal)");
    assert!(
        out.status.success(),
        "{command}: {}",
        common::all_output(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The phases a migrate into a new database shows progress for.
const PHASES: [&str; 7] = [
    "validating the source files",
    "checking the database before the run",
    "writing members",
    "writing capital_accounts",
    "writing contributions",
    "verifying",
    "reading back what was written",
];

fn progress_is_drawn_on_a_terminal_only_and_never_under_quiet_or_json() {
    let work = Work::new();
    let out = work.run(&["gen", "--members", "300", "--out", "bundle", "--seed", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    let url = |name: &str| format!("sqlite://{}", work.path().join(name).display());

    // On a terminal: a line per phase (a spinner or a bar), rates as whole numbers.
    let shown = on_a_terminal(
        work.path(),
        &["--database-url", &url("a.db"), "migrate", "bundle"],
    );
    for phase in PHASES {
        assert!(shown.contains(phase), "no progress for {phase:?}:\n{shown}");
    }
    let rates: Vec<&str> = shown
        .split(" rows/s")
        .filter_map(|before| before.rsplit(['(', ' ']).next())
        .collect();
    assert!(rates.len() > 1, "{shown}");
    for rate in &rates[..rates.len() - 1] {
        assert!(
            !rate.is_empty() && rate.bytes().all(|b| b.is_ascii_digit()),
            "a rate that is not a whole number: {rate:?}"
        );
    }
    assert!(shown.contains("✓ Migration complete"), "{shown}");

    // -q: nothing but failures, so nothing at all on success.
    let quiet = on_a_terminal(
        work.path(),
        &["--database-url", &url("b.db"), "-q", "migrate", "bundle"],
    );
    assert_eq!(quiet, "", "-q printed on a terminal");

    // --format json: the terminal receives one JSON document and nothing else.
    let json = on_a_terminal(
        work.path(),
        &[
            "--database-url",
            &url("c.db"),
            "--format",
            "json",
            "migrate",
            "bundle",
        ],
    );
    let doc: Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{json:?}"));
    assert_eq!(doc["format"], "habitat-migrate/import");

    // Piped (standard error not a terminal): no progress anywhere.
    let out = work.run(&["--database-url", &url("d.db"), "migrate", "bundle"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "stderr when piped"
    );
    let all = common::all_output(&out);
    for phase in PHASES {
        assert!(!all.contains(phase), "{phase:?} when piped:\n{all}");
    }
}

/// The backup files (not manifests) in `dir`, sorted.
fn backups_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("backup dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pre_migration_") && !n.ends_with(".manifest.json"))
        .collect();
    names.sort();
    names
}

fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(out));
}

fn backup_prune_keeps_the_newest_and_leaves_other_files_alone() {
    let work = Work::new();
    work.bundle("bundle");
    ok(&work.run(&["-q", "migrate", "bundle"]));
    for _ in 0..3 {
        ok(&work.run(&["-q", "backup"]));
    }
    let dir = work.path().join("backups");
    let all = backups_in(&dir);
    assert_eq!(all.len(), 4, "{all:?}");
    // Not the tool's: a file without a manifest, and one whose manifest is not ours.
    fs::write(dir.join("notes.txt"), "keep me").expect("write");
    fs::write(dir.join("pre_migration_19990101_000000.db"), "old").expect("write");
    fs::write(
        dir.join("pre_migration_19990101_000000.db.manifest.json"),
        "{not json",
    )
    .expect("write");

    // A dry run lists and deletes nothing.
    let out = work.run(&["backup", "prune", "--keep", "2", "--dry-run"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Dry run: 2 backup(s) would be deleted, 2 kept"),
        "{text}"
    );
    assert_eq!(backups_in(&dir).len(), 5);

    let out = work.run(&["--format", "json", "backup", "prune", "--keep", "2"]);
    ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["format"], "habitat-migrate/prune");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["deleted"], 2);
    assert_eq!(doc["skipped"].as_array().map(Vec::len), Some(1), "{doc}");
    // The two newest remain (names sort by time), with their manifests; the rest is untouched.
    let mut expected = all[2..].to_vec();
    expected.insert(0, "pre_migration_19990101_000000.db".to_string());
    assert_eq!(backups_in(&dir), expected);
    for name in &all[..2] {
        assert!(
            !dir.join(format!("{name}.manifest.json")).exists(),
            "{name}"
        );
    }
    assert!(dir.join("notes.txt").is_file());

    // --keep 0 would delete the newest: a usage error, nothing deleted.
    let out = work.run(&["backup", "prune", "--keep", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::all_output(&out));
    assert_eq!(backups_in(&dir), expected);
    // What is kept still restores.
    let newest = format!("backups/{}", all[3]);
    ok(&work.run(&["-q", "restore", "--no-backup", &newest]));
}

fn backup_prune_keeps_the_undo_scripts_a_kept_older_one_needs() {
    let pg = common::fresh_pg();
    let work = Work::new();
    let bundle = work.bundle("bundle");
    let run = |args: &[&str]| {
        let out = common::bin()
            .current_dir(work.path())
            .args(["--database-url", &pg.url])
            .args(args)
            .output()
            .expect("runs");
        ok(&out);
        out
    };
    // Three runs that write, each with its undo script (runs 1, 2 and 3).
    run(&["-q", "migrate", "bundle"]);
    let members = fs::read_to_string(bundle.join("members.csv")).expect("members");
    for role in ["inactive", "pending"] {
        let changed = members.replacen(",member,active,", &format!(",member,{role},"), 1);
        assert_ne!(changed, members);
        fs::write(bundle.join("members.csv"), changed).expect("write");
        run(&["-q", "migrate", "bundle"]);
    }
    let dir = work.path().join("backups");
    let undo = backups_in(&dir);
    assert_eq!(undo.len(), 3, "{undo:?}");
    // Make run 3's undo script look oldest (a clock set back): it is still needed before run 2's.
    let manifest = dir.join(format!("{}.manifest.json", undo[2]));
    let text = fs::read_to_string(&manifest).expect("manifest");
    let mut doc: Value = serde_json::from_str(&text).expect("manifest JSON");
    assert_eq!(doc["run_id"], 3, "{doc}");
    doc["created_at"] = Value::from("2020-01-01T00:00:00Z");
    fs::write(&manifest, doc.to_string()).expect("write manifest");

    let out = run(&["--format", "json", "backup", "prune", "--keep", "1"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let kept: Vec<(i64, String)> = doc["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .filter(|b| !b["kept"].is_null())
        .map(|b| (b["run_id"].as_i64().unwrap_or(0), b["kept"].to_string()))
        .collect();
    assert_eq!(
        kept,
        [
            (2, "\"newest\"".to_string()),
            (3, "\"needed_by_older_undo\"".to_string())
        ],
        "{doc}"
    );
    assert_eq!(backups_in(&dir), undo[1..].to_vec());
    // And the chain works: undo run 3, then run 2.
    run(&[
        "-q",
        "restore",
        "--no-backup",
        &format!("backups/{}", undo[2]),
    ]);
    run(&[
        "-q",
        "restore",
        "--no-backup",
        &format!("backups/{}", undo[1]),
    ]);
}

/// The contribution samples of a dry run's JSON report: (line, action, key, detail).
fn contribution_samples(work: &Work, url: &str) -> Vec<(u64, String, String, String)> {
    let out = work.run(&[
        "--database-url",
        url,
        "--format",
        "json",
        "migrate",
        "bundle",
        "--dry-run",
    ]);
    ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    doc["samples"]["contributions"]
        .as_array()
        .unwrap_or_else(|| panic!("no contribution samples: {doc}"))
        .iter()
        .map(|s| {
            (
                s["line"].as_u64().unwrap_or(0),
                s["action"].as_str().unwrap_or("").to_string(),
                s["key"].as_str().unwrap_or("").to_string(),
                s["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn dry_run_contribution_samples_show_their_action(url: &str) {
    let work = Work::new();
    let bundle = work.bundle("bundle");
    let first = contribution_samples(&work, url);
    assert_eq!(
        first,
        [
            (
                2,
                "insert",
                "maya.okonkwo@example.org",
                "Q4 2025 capital 2500.00 approved"
            ),
            (
                3,
                "insert",
                "daniel.reyes@example.org",
                "Q4 2025 capital 5000.00 approved"
            ),
            (
                4,
                "insert",
                "tom.lindqvist@example.org",
                "Q4 2025 property 3000.00 approved"
            ),
            (
                5,
                "insert",
                "priya.raman@example.org",
                "Q4 2025 labor 1200.00 approved"
            ),
            (
                6,
                "insert",
                "amara.diallo@example.org",
                "Q4 2025 labor 850.50 approved"
            ),
        ]
        .map(|(l, a, k, d)| (l, a.to_string(), k.to_string(), d.to_string()))
    );
    ok(&work.run(&["--database-url", url, "-q", "migrate", "bundle"]));
    // A new row on line 3, and priya's labor (now line 6) rejected: an update of that row.
    let text = fs::read_to_string(bundle.join("contributions.csv")).expect("contributions");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[4] = lines[4].replace(",approved,2025-12-31", ",rejected,2025-12-31");
    lines.insert(
        2,
        "jonas.weber@example.org,Q1 2026,labor,100.00,New work,pending,".into(),
    );
    fs::write(bundle.join("contributions.csv"), lines.join("\n") + "\n").expect("write");
    let actions: Vec<(u64, String)> = contribution_samples(&work, url)
        .into_iter()
        .map(|(line, action, ..)| (line, action))
        .collect();
    assert_eq!(
        actions,
        [
            (2, "unchanged"),
            (3, "insert"),
            (4, "unchanged"),
            (5, "unchanged"),
            (6, "update")
        ]
        .map(|(l, a)| (l, a.to_string()))
    );
    // The human plan shows the same.
    let out = work.run(&["--database-url", url, "migrate", "bundle", "--dry-run"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(
            "contributions      line 6      update     priya.raman@example.org          Q4 2025 labor 1200.00 rejected"
        ),
        "{text}"
    );
}

fn dry_run_contribution_samples_show_their_action_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("habitat.db").display());
    dry_run_contribution_samples_show_their_action(&url);
}

fn dry_run_contribution_samples_show_their_action_on_postgresql() {
    let pg = common::fresh_pg();
    dry_run_contribution_samples_show_their_action(&pg.url);
}

/// Runs `migrate bundle` against `url` (which the application's own rule makes refuse a row) and
/// returns standard error, after checking the exit code and that nothing was imported.
fn refused_migrate(work: &Work, url: &str, count_members: impl Fn() -> i64) -> String {
    let out = work.run(&["--database-url", url, "migrate", "bundle"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::all_output(&out));
    assert_eq!(count_members(), 0, "a member was imported");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.ends_with("\nnothing was imported: the run was rolled back\n"),
        "{err}"
    );
    // The JSON document says the same, once.
    let out = work.run(&[
        "--database-url",
        url,
        "--format",
        "json",
        "migrate",
        "bundle",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["format"], "habitat-migrate/error");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing was imported")),
        "{doc}"
    );
    err
}

fn a_database_error_on_postgresql_names_the_step_table_and_source_row() {
    let pg = common::fresh_pg();
    let work = Work::new();
    work.bundle("bundle");
    ok(&work.run(&["--database-url", &pg.url, "-q", "db", "init"]));
    let count = || -> i64 {
        common::pg_client(&pg.url)
            .query_one("SELECT count(*) FROM members", &[])
            .map(|r| r.get(0))
            .expect("count")
    };
    // Rules the application added that the files break, one table at a time.
    let cases = [
        (
            "ALTER TABLE members ADD CONSTRAINT app_rule CHECK (display_name <> 'Daniel Reyes')",
            "database error during writing members",
            "bundle/members.csv:3 (daniel.reyes@example.org)",
        ),
        (
            "ALTER TABLE capital_accounts ADD CONSTRAINT app_rule CHECK (balance <> 2500.50)",
            "database error during writing capital_accounts",
            "bundle/capital_accounts.csv:4 (priya.raman@example.org)",
        ),
        (
            "ALTER TABLE contributions ADD CONSTRAINT app_rule CHECK (amount <> 3000.00)",
            "database error during writing contributions",
            "bundle/contributions.csv:4 (tom.lindqvist@example.org)",
        ),
    ];
    let mut client = common::pg_client(&pg.url);
    let mut previous: Option<&str> = None;
    for (rule, step, row) in cases {
        if let Some(table) = previous {
            client
                .batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT app_rule"))
                .expect("drop rule");
        }
        client.batch_execute(rule).expect("add rule");
        previous = rule.split_whitespace().nth(2);
        let err = refused_migrate(&work, &pg.url, count);
        assert!(err.starts_with(&format!("error: {step}: ")), "{err}");
        assert!(err.contains("app_rule"), "{err}");
        assert!(err.contains(&format!("\n  source row: {row}\n")), "{err}");
    }
}

fn a_database_error_on_sqlite_names_the_step_and_table_and_that_nothing_was_imported() {
    let work = Work::new();
    work.bundle("bundle");
    let url = format!("sqlite://{}", work.path().join("habitat.db").display());
    ok(&work.run(&["--database-url", &url, "-q", "db", "init"]));
    let conn = rusqlite::Connection::open(work.path().join("habitat.db")).expect("open");
    conn.execute_batch(
        "CREATE TRIGGER app_rule BEFORE INSERT ON capital_accounts WHEN NEW.notes = 'Member buy-in'
         BEGIN SELECT raise(ABORT, 'the application refuses this account'); END;",
    )
    .expect("trigger");
    let count = || -> i64 {
        conn.query_row("SELECT count(*) FROM members", [], |r| r.get(0))
            .expect("count")
    };
    let err = refused_migrate(&work, &url, count);
    assert_eq!(
        err,
        "error: database error during writing capital_accounts: the application refuses this account\nnothing was imported: the run was rolled back\n"
    );
}

fn a_failed_verification_inside_migrate_is_one_json_document() {
    let work = Work::new();
    let bundle = work.bundle("bundle");
    ok(&work.run(&["-q", "migrate", "bundle"]));
    // Daniel's contribution corrected, his balance not: the reconciliation fails inside the run.
    let text = fs::read_to_string(bundle.join("contributions.csv")).expect("contributions");
    let corrected = text.replacen(
        "daniel.reyes@example.org,Q4 2025,capital,5000.00",
        "daniel.reyes@example.org,Q4 2025,capital,5500.00",
        1,
    );
    assert_ne!(corrected, text);
    fs::write(bundle.join("contributions.csv"), corrected).expect("write");
    let out = work.run(&["--format", "json", "migrate", "bundle", "--replace-missing"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::all_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut docs = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let doc = docs
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON document: {stdout}"));
    assert!(docs.next().is_none(), "more than one document: {stdout}");
    assert_eq!(doc["format"], "habitat-migrate/verify");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["rolled_back"], true);
}
