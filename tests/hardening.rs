//! Inputs and situations found in review that once went wrong: a multi-byte character in a
//! timestamp (a panic), values longer than the database columns (a late database error), JSON
//! booleans, over-precise or loose timestamps, a password containing `/` (printed in clear), a
//! re-import with a blank period status (reopened a closed period), read-only commands rewriting a
//! SQLite file (journal mode), and money columns of another scale on an existing database.

use crate::common;
use crate::harness::{Test, tests};
use std::fs;
use std::path::{Path, PathBuf};

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            multibyte_timestamp_is_a_diagnostic_not_a_panic,
            loose_or_over_precise_timestamps_are_refused,
            values_longer_than_their_columns_are_diagnostics,
            json_booleans_are_refused,
            a_password_with_a_slash_is_never_printed,
            blank_period_status_does_not_reopen_a_closed_period,
            read_only_commands_leave_a_sqlite_file_byte_identical,
            db_status_of_a_missing_sqlite_file_lists_pending_without_creating_it,
        ],
        Postgres: [
            existing_money_columns_of_another_scale_are_incompatible,
        ],
    }
}

const GOOD: &str = "tests/data/good";

/// A copy of the good bundle in a temp dir, with `file` replaced by `text`.
fn bundle_with(dir: &Path, file: &str, text: &str) -> PathBuf {
    let out = dir.join("bundle");
    fs::create_dir_all(&out).expect("bundle dir");
    for name in [
        "members.csv",
        "capital_accounts.csv",
        "periods.csv",
        "contributions.csv",
    ] {
        fs::copy(Path::new(GOOD).join(name), out.join(name)).expect("copy good file");
    }
    fs::write(out.join(file), text).expect("write bad file");
    out
}

fn validate(dir: &Path, bundle: &Path, contributions: &str) -> (Option<i32>, serde_json::Value) {
    let out = common::validate_bundle(dir, bundle, contributions);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report)
}

fn has(report: &serde_json::Value, line: u64, column: &str, rule: &str) -> bool {
    report["diagnostics"].as_array().is_some_and(|d| {
        d.iter()
            .any(|x| x["line"] == line && x["column"] == column && x["rule"] == rule)
    })
}

fn contributions_with_approved_at(value: &str) -> String {
    format!(
        "member_email,period_name,contribution_type,amount,description,status,approved_at\n\
         ada@example.org,Q4 2025,labor,2000.00,Work,approved,{value}\n"
    )
}

fn multibyte_timestamp_is_a_diagnostic_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = bundle_with(
        tmp.path(),
        "contributions.csv",
        &contributions_with_approved_at("2025-03-3\u{e9}1"),
    );
    let (code, report) = validate(tmp.path(), &b, "contributions.csv");
    assert_eq!(code, Some(1), "{report}");
    assert!(has(&report, 2, "approved_at", "date.format"), "{report}");
}

fn loose_or_over_precise_timestamps_are_refused() {
    for value in [
        "2025-03-31T10:00:00.1234567Z",
        "2025-03-31T10:00Z",
        "2025-03-31T10:00:00+0530",
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let b = bundle_with(
            tmp.path(),
            "contributions.csv",
            &contributions_with_approved_at(value),
        );
        let (code, report) = validate(tmp.path(), &b, "contributions.csv");
        assert_eq!(code, Some(1), "{value}: {report}");
        assert!(
            has(&report, 2, "approved_at", "date.format"),
            "{value}: {report}"
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = bundle_with(
        tmp.path(),
        "contributions.csv",
        &contributions_with_approved_at("2025-03-31T10:00:00.123456+05:30"),
    );
    assert_eq!(validate(tmp.path(), &b, "contributions.csv").0, Some(0));
}

fn values_longer_than_their_columns_are_diagnostics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let members = format!(
        "email,display_name,ens_name,role,status,joined_at\n\
         ada@example.org,{},,admin,active,2025-01-01\n\
         bob@example.org,Bob,,member,active,2025-02-01\n\
         cy@example.org,Cy,,member,active,2025-02-01\n",
        "x".repeat(300)
    );
    let b = bundle_with(tmp.path(), "members.csv", &members);
    let (code, report) = validate(tmp.path(), &b, "contributions.csv");
    assert_eq!(code, Some(1), "{report}");
    assert!(
        has(&report, 2, "display_name", "value.too_long"),
        "{report}"
    );
}

fn json_booleans_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let jsonl = "{\"member_email\":\"ada@example.org\",\"period_name\":\"Q4 2025\",\"contribution_type\":\"labor\",\"amount\":\"10.00\",\"description\":true,\"status\":\"pending\"}\n";
    let b = bundle_with(tmp.path(), "contributions.jsonl", jsonl);
    let (code, report) = validate(tmp.path(), &b, "contributions.jsonl");
    assert_eq!(code, Some(1), "{report}");
    assert!(has(&report, 1, "description", "file.json"), "{report}");
}

fn a_password_with_a_slash_is_never_printed() {
    let out = common::bin()
        .args([
            "--database-url",
            "postgres://hm:pa/ss@127.0.0.1:1/db",
            "db",
            "status",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let all = common::all_output(&out);
    assert!(!all.contains("pa/ss"), "{all}");
    assert!(all.contains("***"), "{all}");
}

fn blank_period_status_does_not_reopen_a_closed_period() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", tmp.path().join("h.db").display());
    let run = |bundle: &Path| {
        common::bin()
            .current_dir(tmp.path())
            .args(["--database-url", &url, "--format", "json", "migrate"])
            .arg(bundle)
            .output()
            .expect("runs")
    };
    let first = run(Path::new(
        &fs::canonicalize("examples/techne").expect("examples"),
    ));
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        common::all_output(&first)
    );
    let b = tmp.path().join("blank");
    fs::create_dir_all(&b).expect("dir");
    for name in ["members.csv", "capital_accounts.csv", "contributions.csv"] {
        fs::copy(Path::new("examples/techne").join(name), b.join(name)).expect("copy");
    }
    let periods = fs::read_to_string("examples/techne/periods.csv").expect("periods");
    let blanked: String = periods
        .lines()
        .map(|l| match l.rsplit_once(',') {
            Some((head, _)) => format!("{head},\n"),
            None => format!("{l}\n"),
        })
        .collect::<String>()
        .replacen(
            "description,start_date,end_date,\n",
            "description,start_date,end_date,status\n",
            1,
        );
    fs::write(b.join("periods.csv"), blanked).expect("write");
    let second = run(&b);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        common::all_output(&second)
    );
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).expect("json");
    assert_eq!(
        report["counts"]["allocation_periods"]["updated"], 0,
        "{report}"
    );
    let conn = common::sqlite_conn(&url);
    let status: String = conn
        .query_row(
            "SELECT status FROM allocation_periods WHERE name = 'Q4 2025'",
            [],
            |r| r.get(0),
        )
        .expect("period");
    assert_eq!(status, "closed");
}

fn read_only_commands_leave_a_sqlite_file_byte_identical() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("h.db");
    let url = format!("sqlite://{}", db.display());
    let migrate = common::bin()
        .current_dir(tmp.path())
        .args(["--database-url", &url, "migrate", "--no-backup"])
        .arg(fs::canonicalize("examples/techne").expect("examples"))
        .output()
        .expect("runs");
    assert_eq!(
        migrate.status.code(),
        Some(0),
        "{}",
        common::all_output(&migrate)
    );
    {
        let conn = common::sqlite_conn(&url);
        let mode: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "delete");
    }
    let before = fs::read(&db).expect("db bytes");
    let techne = fs::canonicalize("examples/techne").expect("examples");
    for args in [
        vec!["verify".to_string()],
        vec!["runs".into(), "list".into()],
        vec![
            "migrate".into(),
            "--dry-run".into(),
            techne.display().to_string(),
        ],
        vec![
            "validate-source".into(),
            "--members".into(),
            techne.join("members.csv").display().to_string(),
            "--capital-accounts".into(),
            techne.join("capital_accounts.csv").display().to_string(),
        ],
    ] {
        let out = common::bin()
            .current_dir(tmp.path())
            .args(["--database-url", &url])
            .args(&args)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            common::all_output(&out)
        );
        assert_eq!(
            fs::read(&db).expect("db bytes"),
            before,
            "{args:?} changed the file"
        );
    }
}

fn existing_money_columns_of_another_scale_are_incompatible() {
    let db = common::fresh_pg();
    let mut client = common::pg_client(&db.url);
    let sql = fs::read_to_string("migrations/postgres/0001_habitat_tables.sql").expect("schema");
    client.batch_execute(&sql).expect("create habitat tables");
    client
        .batch_execute("ALTER TABLE capital_accounts ALTER COLUMN balance TYPE numeric(15,4)")
        .expect("plant another scale");
    let changed: String = client
        .query_one(
            "SELECT numeric_scale::text FROM information_schema.columns WHERE table_name = 'capital_accounts' AND column_name = 'balance'",
            &[],
        )
        .expect("scale")
        .get(0);
    assert_eq!(changed, "4", "the test must plant numeric(15,4)");
    let out = common::bin()
        .args(["--database-url", &db.url, "db", "init"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3), "{}", common::all_output(&out));
    assert!(common::all_output(&out).contains("capital_accounts.balance is numeric(15,4)"));
}

fn db_status_of_a_missing_sqlite_file_lists_pending_without_creating_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("new.db");
    let out = common::bin()
        .args([
            "--database-url",
            &format!("sqlite://{}", db.display()),
            "--format",
            "json",
            "db",
            "status",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["format"], "habitat-migrate/status");
    let versions = status["status"]["versions"].as_array().expect("versions");
    assert!(!versions.is_empty() && versions.iter().all(|v| v["applied_at"].is_null()));
    assert!(!db.exists());
}
