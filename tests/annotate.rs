//! The annotated fix-and-rerun loop as the treasurer meets it: a bundle with problems, `migrate
//! --annotate DIR`, the cells fixed in the copies (here by a program, as a spreadsheet would save
//! them), `migrate DIR` again, and a clean import — on SQLite and on PostgreSQL. Also: values that
//! a spreadsheet would run as formulas come back byte for byte, untouched rows keep their values
//! and their lines, the reader's note about the ignored columns, and one JSON document.

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
            round_trip_imports_clean_on_sqlite,
            formula_values_survive_byte_for_byte,
            untouched_rows_keep_their_values_and_lines,
            the_reader_notes_the_ignored_columns,
            json_output_is_one_document_naming_the_copies,
            a_directory_holding_bundle_files_is_refused,
            a_copy_annotated_again_gets_no_second_guard,
        ],
        Postgres: [
            round_trip_imports_clean_on_postgres,
        ],
    }
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");

/// Display names a spreadsheet would run as formulas (and their neighbours), one per member.
const TRICKY_NAMES: [(&str, &str); 8] = [
    (
        "maya.okonkwo@example.org",
        "=HYPERLINK(\"http://example.com\",\"x\")",
    ),
    ("priya.raman@example.org", "+1 Priya"),
    ("tom.lindqvist@example.org", "-Tom"),
    ("amara.diallo@example.org", "@amara"),
    ("jonas.weber@example.org", "'=quoted on purpose"),
    ("lucia.fernandez@example.org", "''"),
    ("sofia.rossi@example.org", "-12.50"),
    ("daniel.reyes@example.org", "'plain apostrophe"),
];

fn run(cwd: &Path, url: &str, args: &[&str]) -> Output {
    common::bin()
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .expect("habitat-migrate runs")
}

fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}:\n{}",
        common::all_output(out)
    );
}

/// A table as rows of cells, header first (the `csv` crate, as a spreadsheet reads it).
fn read_table(path: &Path) -> Vec<Vec<String>> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
        .records()
        .map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Writes rows back as a spreadsheet saving "CSV UTF-8" would: a byte order mark, quotes only
/// where needed, CRLF.
fn write_table(path: &Path, rows: &[Vec<String>]) {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        for row in rows {
            writer.write_record(row).expect("write a row");
        }
        writer.flush().expect("flush");
    }
    fs::write(path, out).expect("write the fixed file");
}

fn column(rows: &[Vec<String>], name: &str) -> usize {
    rows[0]
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", rows[0]))
}

/// The example bundle, spoilt: a date that does not exist, a bad role, a negative balance, a contribution with
/// three decimals in a `.jsonl` file, and display names that a spreadsheet would run.
fn bad_bundle(root: &Path) -> PathBuf {
    let dir = root.join("bundle");
    fs::create_dir_all(&dir).expect("bundle directory");
    for name in ["periods.csv", "capital_accounts.csv"] {
        fs::copy(Path::new(EXAMPLE).join(name), dir.join(name)).expect("copy");
    }
    let mut members = read_table(&Path::new(EXAMPLE).join("members.csv"));
    let (email, name, role, joined) = (
        column(&members, "email"),
        column(&members, "display_name"),
        column(&members, "role"),
        column(&members, "joined_at"),
    );
    for row in members.iter_mut().skip(1) {
        if let Some((_, tricky)) = TRICKY_NAMES.iter().find(|(e, _)| *e == row[email]) {
            row[name] = (*tricky).to_string();
        }
        if row[email] == "jonas.weber@example.org" {
            row[role] = "treasurer".into();
        }
        if row[email] == "amara.diallo@example.org" {
            row[joined] = "2025-02-30".into();
        }
    }
    write_table(&dir.join("members.csv"), &members);

    let mut accounts = read_table(&dir.join("capital_accounts.csv"));
    let (member, balance) = (
        column(&accounts, "member_email"),
        column(&accounts, "balance"),
    );
    for row in accounts.iter_mut().skip(1) {
        if row[member] == "priya.raman@example.org" {
            row[balance] = format!("-{}", row[balance]);
        }
    }
    write_table(&dir.join("capital_accounts.csv"), &accounts);

    // Contributions as JSON lines, one amount with three decimals.
    let contributions = read_table(&Path::new(EXAMPLE).join("contributions.csv"));
    let mut jsonl = String::new();
    for (i, row) in contributions.iter().enumerate().skip(1) {
        let mut object = serde_json::Map::new();
        for (key, value) in contributions[0].iter().zip(row) {
            let value = if key == "amount" && i == 2 {
                format!("{value}5")
            } else {
                value.clone()
            };
            if !value.is_empty() {
                object.insert(key.clone(), Value::String(value));
            }
        }
        jsonl.push_str(&Value::Object(object).to_string());
        jsonl.push('\n');
    }
    fs::write(dir.join("contributions.jsonl"), jsonl).expect("write contributions.jsonl");
    dir
}

/// Fixes every row the copies flag, as the treasurer would, leaving every other cell alone.
fn fix_copies(fixes: &Path) {
    let path = fixes.join("members.csv");
    let mut rows = read_table(&path);
    let (problems, email, role, joined) = (
        column(&rows, "_problems"),
        column(&rows, "email"),
        column(&rows, "role"),
        column(&rows, "joined_at"),
    );
    let flagged: Vec<String> = rows
        .iter()
        .skip(1)
        .filter(|r| !r[problems].is_empty())
        .map(|r| r[email].clone())
        .collect();
    assert_eq!(
        flagged,
        ["amara.diallo@example.org", "jonas.weber@example.org"],
        "flagged member rows"
    );
    for row in rows.iter_mut().skip(1) {
        if row[joined] == "2025-02-30" {
            row[joined] = "2025-02-28".into();
        }
        if row[role] == "treasurer" {
            row[role] = "steward".into();
        }
    }
    write_table(&path, &rows);

    let path = fixes.join("capital_accounts.csv");
    let mut rows = read_table(&path);
    let (problems, balance) = (column(&rows, "_problems"), column(&rows, "balance"));
    let mut fixed = 0;
    for row in rows.iter_mut().skip(1) {
        if row[problems].contains("balance") {
            row[balance] = row[balance].trim_start_matches('-').to_string();
            fixed += 1;
        }
    }
    assert_eq!(fixed, 1, "the negative balance is flagged on its column");
    write_table(&path, &rows);

    // The JSON file came back as CSV, with the table's columns.
    let path = fixes.join("contributions.csv");
    let mut rows = read_table(&path);
    let (problems, amount) = (column(&rows, "_problems"), column(&rows, "amount"));
    let mut fixed = 0;
    for row in rows.iter_mut().skip(1) {
        if row[problems].starts_with("amount:") {
            row[amount].pop();
            fixed += 1;
        }
    }
    assert_eq!(fixed, 1, "the three-decimal amount is flagged");
    write_table(&path, &rows);
}

/// The whole loop against `url`; returns the display names as the database holds them.
fn round_trip(work: &Path, url: &str) {
    let bundle = bad_bundle(work);
    let fixes = work.join("fixes");
    let out = run(
        work,
        url,
        &["migrate", path_str(&bundle), "--annotate", "fixes"],
    );
    expect_code(&out, 1, "migrate of the bad bundle");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fixes/members.csv: 2 of 12 row(s) with problems"),
        "{text}"
    );
    assert!(
        text.contains("fixes/contributions.csv: 1 of 8 row(s) with problems (from"),
        "{text}"
    );
    assert!(text.contains("fixes/periods.csv: copied from"), "{text}");
    let mut names: Vec<String> = fs::read_dir(&fixes)
        .expect("the copies")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "capital_accounts.csv",
            "contributions.csv",
            "members.csv",
            "periods.csv"
        ]
    );

    fix_copies(&fixes);
    let out = run(work, url, &["migrate", "fixes"]);
    expect_code(&out, 0, "migrate of the fixed copies");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Migration complete: 34 row(s) inserted"),
        "{text}"
    );
    // The example's note (a balance that differs from its tax basis), and one per copy.
    assert!(text.contains("0 errors, 0 warnings, 4 notes"), "{text}");
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The display names the import stored, by email.
fn stored_names_sqlite(url: &str) -> Vec<(String, String)> {
    let conn = common::sqlite_conn(url);
    let mut stmt = conn
        .prepare("SELECT email, display_name FROM members ORDER BY email")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn assert_tricky_names(stored: &[(String, String)]) {
    for (email, name) in TRICKY_NAMES {
        let got = stored.iter().find(|(e, _)| e == email).map(|(_, n)| n);
        assert_eq!(got.map(String::as_bytes), Some(name.as_bytes()), "{email}");
    }
}

fn round_trip_imports_clean_on_sqlite() {
    let (dir, url) = common::fresh_sqlite();
    round_trip(dir.path(), &url);
    assert_tricky_names(&stored_names_sqlite(&url));
}

fn round_trip_imports_clean_on_postgres() {
    let db = common::fresh_pg();
    let dir = tempfile::tempdir().expect("temp dir");
    round_trip(dir.path(), &db.url);
    let mut client = common::pg_client(&db.url);
    let stored: Vec<(String, String)> = client
        .query(
            "SELECT email, display_name FROM members ORDER BY email",
            &[],
        )
        .expect("query")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_tricky_names(&stored);
    let amounts: i64 = client
        .query_one("SELECT count(*) FROM contributions", &[])
        .expect("count")
        .get(0);
    assert_eq!(amounts, 8);
}

/// Each formula-like value is guarded in the copy (no cell starts with `=`, `+`, `-` or `@`
/// unless it is a plain number), and the reader gives back exactly the original bytes.
fn formula_values_survive_byte_for_byte() {
    let (dir, url) = common::fresh_sqlite();
    let bundle = bad_bundle(dir.path());
    let out = run(
        dir.path(),
        &url,
        &["validate-source", path_str(&bundle), "--annotate", "fixes"],
    );
    expect_code(&out, 1, "validate-source of the bad bundle");
    let raw = fs::read_to_string(dir.path().join("fixes/members.csv")).expect("the copy");
    for (_, name) in TRICKY_NAMES {
        let guarded = if name.starts_with(['=', '+', '@'])
            || name.starts_with("-T")
            || name.starts_with("'=")
            || name == "''"
        {
            format!("'{name}")
        } else {
            name.to_string()
        };
        let quoted = format!("\"{}\"", guarded.replace('"', "\"\""));
        assert!(
            raw.contains(&format!(",{guarded},")) || raw.contains(&format!(",{quoted},")),
            "{name:?} is written as {guarded:?}:\n{raw}"
        );
    }
    for row in read_table(&dir.path().join("fixes/members.csv")) {
        for cell in row {
            let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
                && cell.parse::<i64>().is_err()
                && cell != "-12.50";
            assert!(!risky, "{cell:?} would run as a formula");
        }
    }
    // Read back by the importer, untouched but for the fixes: byte for byte.
    fix_copies(&dir.path().join("fixes"));
    expect_code(&run(dir.path(), &url, &["migrate", "fixes"]), 0, "migrate");
    assert_tricky_names(&stored_names_sqlite(&url));
}

/// Rows without problems keep every value, and the copy's findings are on the original's lines,
/// blank lines and a value over two lines included.
fn untouched_rows_keep_their_values_and_lines() {
    let (dir, url) = common::fresh_sqlite();
    let bundle = dir.path().join("bundle");
    fs::create_dir_all(&bundle).expect("bundle");
    for name in ["periods.csv", "capital_accounts.csv", "contributions.csv"] {
        fs::copy(Path::new(EXAMPLE).join(name), bundle.join(name)).expect("copy");
    }
    let members = fs::read_to_string(Path::new(EXAMPLE).join("members.csv")).expect("members");
    let mut lines: Vec<String> = members.lines().map(str::to_string).collect();
    // A display name over two lines, two blank lines, and a bad status further down.
    lines[2] = lines[2].replacen("Daniel Reyes", "\"Daniel\nReyes\"", 1);
    lines.insert(4, String::new());
    lines.insert(4, String::new());
    lines[8] = lines[8].replacen(",active,", ",retired,", 1);
    fs::write(bundle.join("members.csv"), lines.join("\n") + "\n").expect("members");

    let findings = |args: &[&str]| -> Vec<(String, u64)> {
        let mut all = vec!["--format", "json", "validate-source"];
        all.extend_from_slice(args);
        let out = run(dir.path(), &url, &all);
        let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        doc["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .filter(|d| d["rule"] != "file.annotated")
            .map(|d| {
                let file = d["file"].as_str().unwrap_or_default();
                let name = Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                (
                    format!("{} {}", name.unwrap_or_default(), d["rule"]),
                    d["line"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let before = findings(&[path_str(&bundle), "--annotate", "fixes"]);
    assert!(
        before
            .iter()
            .any(|(rule, _)| rule.contains("member.status")),
        "{before:?}"
    );
    let after = findings(&["fixes"]);
    assert_eq!(after, before, "the copy's findings are on the same lines");

    let original = read_table(&bundle.join("members.csv"));
    let copy = read_table(&dir.path().join("fixes/members.csv"));
    assert_eq!(copy.len(), original.len());
    assert_eq!(copy[0][..2], ["_problems", "_hints"]);
    let mut untouched = 0;
    for (o, c) in original.iter().zip(&copy).skip(1) {
        assert_eq!(&c[2..], &o[..], "every value of every row, in order");
        if c[0].is_empty() {
            assert!(c[1].is_empty());
            untouched += 1;
        } else {
            assert_eq!(
                c[0], "status: invalid status `retired`",
                "one problem, naming its column"
            );
            assert_eq!(c[1], "status: one of: active, inactive, pending");
        }
    }
    assert_eq!(untouched, 11);
}

fn the_reader_notes_the_ignored_columns() {
    let (dir, url) = common::fresh_sqlite();
    let bundle = bad_bundle(dir.path());
    expect_code(
        &run(
            dir.path(),
            &url,
            &["migrate", path_str(&bundle), "--annotate", "fixes"],
        ),
        1,
        "migrate",
    );
    let out = run(
        dir.path(),
        &url,
        &["--format", "json", "validate-source", "fixes"],
    );
    expect_code(&out, 1, "validate-source of the unfixed copies");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let notes: Vec<&Value> = doc["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["rule"] == "file.annotated")
        .collect();
    assert_eq!(notes.len(), 3, "one per annotated copy: {notes:?}");
    for note in notes {
        assert_eq!(note["severity"], "note");
        assert_eq!(note["line"], 1);
        assert_eq!(
            note["message"],
            "an annotated copy: the columns `_problems` and `_hints` are ignored"
        );
    }
    assert!(
        !doc["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .any(|d| d["rule"] == "file.unknown_column" || d["rule"] == "file.misspelt_column"),
        "{doc:#}"
    );
    assert_eq!(doc["summary"]["warnings"], 0);
}

fn json_output_is_one_document_naming_the_copies() {
    let (dir, url) = common::fresh_sqlite();
    let bundle = bad_bundle(dir.path());
    let out = run(
        dir.path(),
        &url,
        &[
            "--format",
            "json",
            "migrate",
            path_str(&bundle),
            "--annotate",
            "fixes",
        ],
    );
    expect_code(&out, 1, "migrate");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", common::all_output(&out)));
    assert_eq!(doc["format"], "habitat-migrate/validation");
    assert_eq!(doc["ok"], false);
    let annotated = &doc["annotated"];
    assert_eq!(annotated["dir"], "fixes");
    let files = annotated["files"].as_array().expect("files");
    let summary: Vec<(String, String, u64)> = files
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_string(),
                f["status"].as_str().unwrap_or_default().to_string(),
                f["rows_with_problems"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("fixes/periods.csv".to_string(), "copied".to_string(), 0),
            ("fixes/members.csv".into(), "annotated".into(), 2),
            ("fixes/capital_accounts.csv".into(), "annotated".into(), 1),
            ("fixes/contributions.csv".into(), "annotated".into(), 1),
        ]
    );
    assert_eq!(files[3]["from_json"], true);
    // Nothing was imported: a first run that fails validation does not even create the file.
    assert!(
        !common::sqlite_path(&url).exists(),
        "a refused first run left {}",
        common::sqlite_path(&url).display()
    );
}

fn a_directory_holding_bundle_files_is_refused() {
    let (dir, url) = common::fresh_sqlite();
    let bundle = bad_bundle(dir.path());
    let before = fs::read(bundle.join("members.csv")).expect("members");
    let out = run(
        dir.path(),
        &url,
        &[
            "migrate",
            path_str(&bundle),
            "--annotate",
            path_str(&bundle),
        ],
    );
    expect_code(&out, 2, "--annotate into the bundle itself");
    assert!(
        common::all_output(&out).contains("the directory already holds periods.csv"),
        "{}",
        common::all_output(&out)
    );
    assert_eq!(
        fs::read(bundle.join("members.csv")).expect("members"),
        before
    );
}

/// Half fixed, run again with `--annotate`: the second copy holds the same guarded cells as the
/// first (no `''=`), and its problems are the ones left.
fn a_copy_annotated_again_gets_no_second_guard() {
    let (dir, url) = common::fresh_sqlite();
    let bundle = bad_bundle(dir.path());
    expect_code(
        &run(
            dir.path(),
            &url,
            &["migrate", path_str(&bundle), "--annotate", "fixes"],
        ),
        1,
        "first round",
    );
    let first = read_table(&dir.path().join("fixes/members.csv"));
    let out = run(
        dir.path(),
        &url,
        &["migrate", "fixes", "--annotate", "again"],
    );
    expect_code(&out, 1, "second round, nothing fixed");
    let second = read_table(&dir.path().join("again/members.csv"));
    assert_eq!(second, first);
    fix_copies(&dir.path().join("again"));
    expect_code(&run(dir.path(), &url, &["migrate", "again"]), 0, "fixed");
    assert_tricky_names(&stored_names_sqlite(&url));
}
