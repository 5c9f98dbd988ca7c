//! Hostile and broken input (issue 12): NUL bytes, huge values, thousands of unknown columns,
//! directories and FIFOs named as files, and the reader's size limits — each with the exact
//! diagnostic it must produce. Big inputs are made on the fly in a temporary directory (sparse
//! where that is enough), never committed, and the runs that read them are held to a small address
//! space, so a reader that tried to hold them whole would fail here instead of on a user's machine.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::harness::{Test, tests};
use serde_json::{Value, json};

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            a_nul_byte_in_a_csv_value_is_an_error_naming_line_and_column,
            a_nul_byte_in_a_json_value_is_an_error_naming_line_and_column,
            a_nul_byte_stops_migrate_on_sqlite_before_anything_is_written,
            a_one_megabyte_value_is_cut_in_every_diagnostic_that_shows_it,
            ten_thousand_unknown_csv_columns_are_one_warning,
            ten_thousand_unknown_json_keys_are_five_warnings_and_one_group,
            a_directory_or_a_fifo_named_as_a_source_file_says_what_it_is,
            a_two_gigabyte_file_is_refused_at_its_header_in_bounded_memory,
            a_two_gigabyte_json_file_is_refused_without_reading_it,
            a_100_mb_csv_line_is_skipped_with_its_line_and_the_rows_after_it_are_read,
            an_unclosed_quote_running_to_the_end_of_the_file_is_one_error,
            a_100_mb_jsonl_line_is_skipped_with_its_line_and_the_lines_after_it_are_read,
            a_json_value_over_the_field_limit_names_its_column,
            a_million_columns_are_refused_at_the_header,
            a_row_with_more_fields_than_a_file_may_have_is_a_field_count_error,
            a_mistake_on_every_line_of_a_big_file_is_counted_in_full_and_listed_a_thousand_times,
            a_header_only_file_with_an_unknown_column_still_has_no_rows,
        ],
        Postgres: [
            a_nul_byte_stops_migrate_on_postgresql_with_file_and_line,
        ],
    }
}

const GOOD: &str = "tests/data/good";
const BIN: &str = env!("CARGO_BIN_EXE_habitat-migrate");
/// The address space the runs on big inputs get (KiB). Reading any of the inputs whole — or
/// buffering a 100 MB line as the `csv` crate did — needs more than this.
const ADDRESS_SPACE_KIB: u64 = 128 * 1024;
const GIB: u64 = 1 << 30;

/// A good bundle in a temporary directory, whose files a test replaces.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::create_dir(dir.path().join("bundle")).expect("bundle directory");
        for name in [
            "members.csv",
            "capital_accounts.csv",
            "periods.csv",
            "contributions.csv",
        ] {
            fs::copy(
                Path::new(GOOD).join(name),
                dir.path().join("bundle").join(name),
            )
            .expect("copy a good file");
        }
        Bundle { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("bundle").join(name)
    }

    /// Replaces (or adds) a file; a file of another extension for the same table is removed.
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let stem = name.split('.').next().unwrap_or(name);
        for ext in ["csv", "json", "jsonl"] {
            let _ = fs::remove_file(self.path(&format!("{stem}.{ext}")));
        }
        let path = self.path(name);
        fs::write(&path, bytes).expect("write a test file");
        path
    }

    /// The `validate-source` arguments for the bundle's four files, as paths relative to the
    /// temporary directory (the working directory of the run).
    fn files(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (stem, flag) in [
            ("members", "--members"),
            ("capital_accounts", "--capital-accounts"),
            ("periods", "--periods"),
            ("contributions", "--contributions"),
        ] {
            for ext in ["csv", "json", "jsonl"] {
                let name = format!("{stem}.{ext}");
                if self.path(&name).exists() {
                    args.push(flag.to_string());
                    args.push(format!("bundle/{name}"));
                }
            }
        }
        args
    }

    /// `validate-source --format json` on the bundle, optionally in a limited address space.
    fn validate(&self, limit_kib: Option<u64>) -> Run {
        let mut args = vec![
            "--database-url".to_string(),
            "sqlite://none.db".to_string(),
            "--format".to_string(),
            "json".to_string(),
            "validate-source".to_string(),
        ];
        args.extend(self.files());
        run(self.dir.path(), &args, limit_kib)
    }
}

struct Run {
    output: Output,
    elapsed: Duration,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn all(&self) -> String {
        common::all_output(&self.output)
    }

    fn report(&self) -> Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("not one JSON report ({e}):\n{}", self.all()))
    }

    /// The report's diagnostics about one file.
    fn diagnostics_of(&self, file: &str) -> Vec<Value> {
        let report = self.report();
        report["diagnostics"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|d| d["file"] == format!("bundle/{file}"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs the binary in `cwd`, under `ulimit -v` when a limit is given.
fn run(cwd: &Path, args: &[String], limit_kib: Option<u64>) -> Run {
    let mut command = match limit_kib {
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg("ulimit -v \"$0\" && exec \"$@\"")
                .arg(kib.to_string())
                .arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    command
        .current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_DIR")
        .stdin(Stdio::null());
    let started = Instant::now();
    let output = command.output().expect("run habitat-migrate");
    Run {
        output,
        elapsed: started.elapsed(),
    }
}

/// Runs with a deadline: a command that blocks (opening a FIFO waits for a writer) fails the test
/// instead of hanging it.
fn run_with_deadline(cwd: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start habitat-migrate");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("habitat-migrate {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

fn error(file: &str, line: Option<u64>, column: Option<&str>, rule: &str, message: &str) -> Value {
    json!({
        "severity": "error",
        "file": format!("bundle/{file}"),
        "line": line,
        "column": column,
        "value": null,
        "rule": rule,
        "message": message,
        "hint": null,
    })
}

fn with(mut d: Value, key: &str, value: Value) -> Value {
    d[key] = value;
    d
}

const MEMBERS_HEADER: &str = "email,display_name,ens_name,role,status,joined_at\n";
const GOOD_MEMBERS: &str = "ada@example.org,Ada Lovelace,ada.habitat.eth,admin,active,2025-01-01\n\
                            bob@example.org,Bob Okafor,,member,active,2025-02-01\n\
                            cy@example.org,Cy Tanaka,,steward,pending,2025-03-01\n";
const NUL_HINT: &str = "remove the NUL characters; they come from a broken export or a binary file, and PostgreSQL cannot store them";
const QUOTE_HINT: &str = "text this long is usually a double quote that is never closed: check the quotes from this line on";

fn members(rows: &str) -> Vec<u8> {
    format!("{MEMBERS_HEADER}{GOOD_MEMBERS}{rows}").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// NUL bytes
// ---------------------------------------------------------------------------------------------

fn a_nul_byte_in_a_csv_value_is_an_error_naming_line_and_column() {
    let b = Bundle::new();
    // Line 5 holds a NUL in a plain value; the quoted value starting on line 6 has its NUL on
    // line 7.
    b.write(
        "members.csv",
        &members(
            "dee@example.org,Dee\0Extra,,member,active,2025-04-01\n\
             eve@example.org,\"Eve\nExtra\0\",,member,active,2025-04-01\n",
        ),
    );
    let run = b.validate(None);
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let nul = |line: u64, value: &str| {
        with(
            with(
                error(
                    "members.csv",
                    Some(line),
                    Some("display_name"),
                    "value.nul",
                    "the value contains a NUL byte (\\0)",
                ),
                "value",
                json!(value),
            ),
            "hint",
            json!(NUL_HINT),
        )
    };
    assert_eq!(
        run.diagnostics_of("members.csv"),
        vec![nul(5, "Dee\0Extra"), nul(7, "Eve\nExtra\0")],
        "{}",
        run.all()
    );
    assert_eq!(run.report()["summary"]["errors"], 2, "{}", run.all());
}

fn a_nul_byte_in_a_json_value_is_an_error_naming_line_and_column() {
    let b = Bundle::new();
    b.write(
        "contributions.jsonl",
        br#"{"member_email": "ada@example.org", "period_name": "Q4 2025", "contribution_type": "labor", "amount": "2000.00", "description": "Studio\u0000formation", "status": "approved", "approved_at": "2025-12-31"}
{"member_email": "bob@example.org", "period_name": "Q4 2025", "contribution_type": "labor", "amount": 10, "status": "pending", "notes\u0000": "ignored: an unknown key is not imported"}
"#,
    );
    let run = b.validate(None);
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let diagnostics = run.diagnostics_of("contributions.jsonl");
    let nul = with(
        with(
            error(
                "contributions.jsonl",
                Some(1),
                Some("description"),
                "value.nul",
                "the value contains a NUL byte (\\0)",
            ),
            "value",
            json!("Studio\0formation"),
        ),
        "hint",
        json!(NUL_HINT),
    );
    assert_eq!(diagnostics[0], nul, "{}", run.all());
    assert_eq!(run.report()["summary"]["errors"], 1, "{}", run.all());
}

fn a_nul_byte_stops_migrate_on_sqlite_before_anything_is_written() {
    let b = Bundle::new();
    b.write(
        "members.csv",
        &members("dee@example.org,Dee\0Extra,,member,active,2025-04-01\n"),
    );
    let (_keep, url) = common::fresh_sqlite();
    let run = run(
        b.dir.path(),
        &[
            "--database-url".into(),
            url.clone(),
            "migrate".into(),
            "bundle".into(),
        ],
        None,
    );
    assert_eq!(run.code(), Some(1), "{}", run.all());
    assert!(
        run.stdout()
            .contains("bundle/members.csv:5: error[value.nul] column display_name"),
        "{}",
        run.all()
    );
    let db = common::sqlite_path(&url);
    if db.exists() {
        let members: i64 = common::sqlite_conn(&url)
            .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
            .unwrap_or(0);
        assert_eq!(members, 0, "nothing may be imported");
    }
}

fn a_nul_byte_stops_migrate_on_postgresql_with_file_and_line() {
    let db = common::fresh_pg();
    let b = Bundle::new();
    b.write(
        "members.csv",
        &members("dee@example.org,Dee\0Extra,,member,active,2025-04-01\n"),
    );
    let run = run(
        b.dir.path(),
        &[
            "--database-url".into(),
            db.url.clone(),
            "migrate".into(),
            "bundle".into(),
        ],
        None,
    );
    assert_eq!(run.code(), Some(1), "{}", run.all());
    assert!(
        run.stdout()
            .contains("bundle/members.csv:5: error[value.nul] column display_name"),
        "{}",
        run.all()
    );
    let mut client = common::pg_client(&db.url);
    let members: i64 = client
        .query_one("SELECT count(*) FROM members", &[])
        .map(|r| r.get(0))
        .unwrap_or(0);
    assert_eq!(members, 0, "nothing may be imported");
}

// ---------------------------------------------------------------------------------------------
// What one diagnostic prints
// ---------------------------------------------------------------------------------------------

fn a_one_megabyte_value_is_cut_in_every_diagnostic_that_shows_it() {
    let b = Bundle::new();
    let huge = "x".repeat(1_000_000);
    b.write(
        "members.csv",
        &members(&format!(
            "dee@example.org,Dee Extra,,{huge},active,2025-04-01\n"
        )),
    );
    let shown = format!("{}…", "x".repeat(100));
    let run = b.validate(None);
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let expected = json!({
        "severity": "error",
        "file": "bundle/members.csv",
        "line": 5,
        "column": "role",
        "value": shown,
        "value_length": 1_000_000,
        "rule": "member.role",
        "message": format!("invalid role `{shown}`"),
        "hint": "one of: member, steward, admin",
    });
    assert_eq!(run.diagnostics_of("members.csv"), vec![expected]);
    assert!(
        run.output.stdout.len() < 8_000,
        "the JSON report is bounded: {} bytes",
        run.output.stdout.len()
    );

    // The human report: one line for the value, with its length.
    let human = self::run(
        b.dir.path(),
        &[
            "--database-url".into(),
            "sqlite://none.db".into(),
            "validate-source".into(),
            "--members".into(),
            "bundle/members.csv".into(),
            "--capital-accounts".into(),
            "bundle/capital_accounts.csv".into(),
        ],
        None,
    );
    let text = human.stdout();
    assert!(
        text.contains(&format!(
            "  bundle/members.csv:5: error[member.role] column role: invalid role `{shown}` (value: \"{shown}\", 1000000 characters)\n"
        )),
        "{text}"
    );
    assert!(
        text.len() < 4_000,
        "the human report is bounded: {}",
        text.len()
    );
}

fn ten_thousand_unknown_csv_columns_are_one_warning() {
    let b = Bundle::new();
    let extra: Vec<String> = (0..10_000).map(|i| format!("extra_{i}")).collect();
    let mut text = format!("{},{}\n", MEMBERS_HEADER.trim_end(), extra.join(","));
    let blanks = ",".repeat(10_000);
    for row in GOOD_MEMBERS.lines() {
        text.push_str(&format!("{row}{blanks}\n"));
    }
    b.write("members.csv", text.as_bytes());
    let run = b.validate(None);
    assert_eq!(run.code(), Some(0), "{}", run.all());
    let expected = json!({
        "severity": "warning",
        "file": "bundle/members.csv",
        "line": 1,
        "column": "extra_0",
        "value": null,
        "rule": "file.unknown_column",
        "message": "10000 unknown columns: `extra_0`, `extra_1`, `extra_2`, `extra_3`, `extra_4` and 9995 others: their values are not imported",
        "hint": "check that this is a members file; the first line names the columns: email,display_name,ens_name,role,status,joined_at",
    });
    assert_eq!(run.diagnostics_of("members.csv"), vec![expected]);
}

fn ten_thousand_unknown_json_keys_are_five_warnings_and_one_group() {
    let b = Bundle::new();
    let mut text = String::new();
    for (line, row) in [
        ("ada@example.org", "Ada Lovelace", "admin"),
        ("bob@example.org", "Bob Okafor", "member"),
        ("cy@example.org", "Cy Tanaka", "steward"),
        ("dee@example.org", "Dee Extra", "member"),
    ]
    .iter()
    .enumerate()
    {
        let keys: Vec<String> = (0..2_500)
            .map(|k| format!("\"k{}\": 1", line * 2_500 + k))
            .collect();
        text.push_str(&format!(
            "{{\"email\": \"{}\", \"display_name\": \"{}\", \"role\": \"{}\", \"status\": \"active\", \"joined_at\": \"2025-01-01\", {}}}\n",
            row.0,
            row.1,
            row.2,
            keys.join(", ")
        ));
    }
    b.write("members.jsonl", text.as_bytes());
    let run = b.validate(None);
    assert_eq!(run.code(), Some(0), "{}", run.all());
    let warning = |column: &str, message: &str, hint: Value| {
        json!({
            "severity": "warning",
            "file": "bundle/members.jsonl",
            "line": 1,
            "column": column,
            "value": null,
            "rule": "file.unknown_column",
            "message": message,
            "hint": hint,
        })
    };
    let mut expected: Vec<Value> = (0..5)
        .map(|k| {
            warning(
                &format!("k{k}"),
                &format!("unknown column `k{k}`: its values are not imported"),
                Value::Null,
            )
        })
        .collect();
    expected.push(warning(
        "k5",
        "9995 more unknown columns: `k5`, `k6`, `k7`, `k8`, `k9` and 9990 others: their values are not imported",
        json!("check that this is a members file; the first line names the columns: email,display_name,ens_name,role,status,joined_at"),
    ));
    assert_eq!(run.diagnostics_of("members.jsonl"), expected);
}

// ---------------------------------------------------------------------------------------------
// Not a file
// ---------------------------------------------------------------------------------------------

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[cfg(unix)]
fn a_directory_or_a_fifo_named_as_a_source_file_says_what_it_is() {
    let b = Bundle::new();
    let cwd = b.dir.path();
    fs::create_dir(cwd.join("folder.csv")).expect("a directory");
    mkfifo(&cwd.join("pipe.csv"));
    let validate = |members: &str| {
        run_with_deadline(
            cwd,
            &[
                "--database-url",
                "sqlite://none.db",
                "validate-source",
                "--members",
                members,
                "--capital-accounts",
                "bundle/capital_accounts.csv",
            ],
        )
    };
    for (path, message) in [
        (
            "folder.csv",
            "error: folder.csv: is a directory; give the path of a CSV or JSON file\n",
        ),
        (
            "pipe.csv",
            "error: pipe.csv: is not a regular file (a FIFO (named pipe)); give the path of a CSV or JSON file\n",
        ),
        (
            "/dev/null",
            "error: /dev/null: is not a regular file (a character device); give the path of a CSV or JSON file\n",
        ),
    ] {
        let out = validate(path);
        assert_eq!(out.status.code(), Some(4), "{}", common::all_output(&out));
        assert_eq!(String::from_utf8_lossy(&out.stderr), message);
    }

    // `import` checks its source before anything else, without blocking on the FIFO.
    let out = run_with_deadline(
        cwd,
        &[
            "--database-url",
            "sqlite://none.db",
            "import",
            "members",
            "--source",
            "pipe.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", common::all_output(&out));
    assert!(
        common::all_output(&out).contains("pipe.csv: is not a regular file (a FIFO (named pipe))"),
        "{}",
        common::all_output(&out)
    );

    // In a bundle, a directory called members.csv is not "missing".
    fs::remove_file(b.path("members.csv")).expect("remove members.csv");
    fs::create_dir(b.path("members.csv")).expect("a directory named members.csv");
    let out = run_with_deadline(
        cwd,
        &[
            "--database-url",
            "sqlite://none.db",
            "migrate",
            "--dry-run",
            "bundle",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", common::all_output(&out));
    assert!(
        common::all_output(&out)
            .contains("bundle/members.csv: is a directory; give the path of a CSV or JSON file"),
        "{}",
        common::all_output(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Limits: a 2 GB file, a 100 MB line, a million columns
// ---------------------------------------------------------------------------------------------

/// Writes `head`, then `filler` until the file holds `total` bytes, then `tail`; streamed, so the
/// test itself never holds the file.
fn write_streamed(path: &Path, head: &[u8], filler: u8, total: usize, tail: &[u8]) {
    let mut out = BufWriter::new(File::create(path).expect("create a big file"));
    out.write_all(head).expect("write");
    let chunk = vec![filler; 1 << 20];
    let mut left = total.saturating_sub(head.len());
    while left > 0 {
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n]).expect("write");
        left -= n;
    }
    out.write_all(tail).expect("write");
    out.flush().expect("flush");
}

fn a_two_gigabyte_file_is_refused_at_its_header_in_bounded_memory() {
    let b = Bundle::new();
    // Sparse: 2 GiB of NUL bytes, no line break, taking no disk space.
    let file = File::create(b.path("members.csv")).expect("create");
    file.set_len(2 * GIB).expect("make it 2 GiB");
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let expected = with(
        error(
            "members.csv",
            Some(1),
            None,
            "file.record_too_large",
            "the header is longer than 1 MiB (1048576 bytes), the most one line may hold",
        ),
        "hint",
        json!(
            "check that this is a members CSV file; the first line names the columns: email,display_name,ens_name,role,status,joined_at"
        ),
    );
    assert_eq!(run.diagnostics_of("members.csv"), vec![expected]);
    assert!(run.elapsed < Duration::from_secs(20), "{:?}", run.elapsed);
}

fn a_two_gigabyte_json_file_is_refused_without_reading_it() {
    let b = Bundle::new();
    b.write("members.json", b"");
    File::options()
        .write(true)
        .open(b.path("members.json"))
        .and_then(|f| f.set_len(2 * GIB))
        .expect("make it 2 GiB");
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let expected = with(
        error(
            "members.json",
            None,
            None,
            "file.too_large",
            "a .json file is read whole and may hold at most 256 MiB (268435456 bytes); this one is larger",
        ),
        "hint",
        json!("write one object per line in a .jsonl file, which is read a line at a time"),
    );
    assert_eq!(run.diagnostics_of("members.json"), vec![expected]);
}

fn a_100_mb_csv_line_is_skipped_with_its_line_and_the_rows_after_it_are_read() {
    let b = Bundle::new();
    let head = members("dee@example.org,Dee ");
    write_streamed(
        &b.path("members.csv"),
        &head,
        b'x',
        100_000_000,
        b",,member,active,2025-04-01\neve@example.org,Eve Extra,,chief,active,2025-04-01\n",
    );
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let too_large = with(
        error(
            "members.csv",
            Some(5),
            Some("display_name"),
            "file.field_too_large",
            "the value is longer than 1 MiB (1048576 bytes), the most one field may hold; the row is skipped",
        ),
        "hint",
        json!(QUOTE_HINT),
    );
    let after = json!({
        "severity": "error",
        "file": "bundle/members.csv",
        "line": 6,
        "column": "role",
        "value": "chief",
        "rule": "member.role",
        "message": "invalid role `chief`",
        "hint": "one of: member, steward, admin",
    });
    assert_eq!(run.diagnostics_of("members.csv"), vec![too_large, after]);
}

fn an_unclosed_quote_running_to_the_end_of_the_file_is_one_error() {
    let b = Bundle::new();
    let head = members("dee@example.org,\"Dee ");
    write_streamed(&b.path("members.csv"), &head, b'y', 20_000_000, b"\n");
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let d = run.diagnostics_of("members.csv");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["rule"], "file.field_too_large");
    assert_eq!(d[0]["line"], 5);
    assert_eq!(d[0]["hint"], QUOTE_HINT);
}

fn a_100_mb_jsonl_line_is_skipped_with_its_line_and_the_lines_after_it_are_read() {
    let b = Bundle::new();
    let first = br#"{"member_email": "ada@example.org", "period_name": "Q4 2025", "contribution_type": "labor", "amount": "20.00", "status": "pending"}
{"member_email": "bob@example.org", "period_name": "Q4 2025", "contribution_type": "labor", "amount": "20.00", "status": "pending", "description": ""#;
    write_streamed(
        &b.path("contributions.jsonl"),
        first,
        b'z',
        100_000_000,
        b"\"}\n{\"member_email\": \"cy@example.org\", \"period_name\": \"Q4 2025\", \"contribution_type\": \"labor\", \"amount\": \"1e3\", \"status\": \"pending\"}\n",
    );
    fs::remove_file(b.path("contributions.csv")).expect("one contributions file");
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let d = run.diagnostics_of("contributions.jsonl");
    let too_large = with(
        error(
            "contributions.jsonl",
            Some(2),
            None,
            "file.record_too_large",
            "the line is longer than 4 MiB (4194304 bytes), the most one record may hold; it is skipped",
        ),
        "hint",
        json!("each line of a .jsonl file is one JSON object"),
    );
    assert_eq!(d[0], too_large, "{}", run.all());
    assert_eq!(d[1]["line"], 3, "{}", run.all());
    assert_eq!(d[1]["rule"], "money.format", "{}", run.all());
    assert_eq!(d.len(), 2, "{}", run.all());
}

fn a_json_value_over_the_field_limit_names_its_column() {
    let b = Bundle::new();
    let text = format!(
        "[{{\"email\": \"ada@example.org\", \"display_name\": \"{}\", \"role\": \"admin\", \"status\": \"active\", \"joined_at\": \"2025-01-01\"}}]",
        "w".repeat(2_000_000)
    );
    b.write("members.json", text.as_bytes());
    let run = b.validate(None);
    let expected = with(
        error(
            "members.json",
            Some(1),
            Some("display_name"),
            "file.field_too_large",
            "the value is longer than 1 MiB (1048576 bytes), the most one field may hold; the row is skipped",
        ),
        "hint",
        json!("shorten the value"),
    );
    assert_eq!(
        run.diagnostics_of("members.json"),
        vec![expected],
        "{}",
        run.all()
    );
}

fn a_million_columns_are_refused_at_the_header() {
    let b = Bundle::new();
    let mut header = MEMBERS_HEADER.trim_end().to_string();
    for i in 0..1_000_000 {
        header.push_str(&format!(",c{i}"));
    }
    header.push('\n');
    b.write("members.csv", header.as_bytes());
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let expected = with(
        error(
            "members.csv",
            Some(1),
            None,
            "file.too_many_columns",
            "the header has more than 16384 columns, the most a file may have",
        ),
        "hint",
        json!(
            "check that this is a members CSV file; the first line names the columns: email,display_name,ens_name,role,status,joined_at"
        ),
    );
    assert_eq!(run.diagnostics_of("members.csv"), vec![expected]);
}

fn a_row_with_more_fields_than_a_file_may_have_is_a_field_count_error() {
    let b = Bundle::new();
    let wide = format!("dee@example.org{}\n", ",".repeat(20_000));
    b.write("members.csv", &members(&wide));
    let run = b.validate(None);
    let expected = with(
        error(
            "members.csv",
            Some(5),
            None,
            "file.field_count",
            "more than 16384 fields, but the header has 6",
        ),
        "hint",
        json!("a value with a comma must be in double quotes"),
    );
    assert_eq!(run.diagnostics_of("members.csv"), vec![expected]);
}

fn a_mistake_on_every_line_of_a_big_file_is_counted_in_full_and_listed_a_thousand_times() {
    // Two million rows written with semicolons: a field-count error on every line. Listing them
    // all took 2 GB of memory for a 50 MB file.
    let b = Bundle::new();
    {
        let mut out = BufWriter::new(File::create(b.path("members.csv")).expect("create"));
        out.write_all(MEMBERS_HEADER.as_bytes()).expect("write");
        for i in 0..2_000_000 {
            writeln!(out, "m{i}@example.org;Name;;member;active;2025-01-01").expect("write");
        }
        out.flush().expect("flush");
    }
    let run = b.validate(Some(ADDRESS_SPACE_KIB));
    assert_eq!(run.code(), Some(1), "{}", run.all());
    let report = run.report();
    assert_eq!(report["summary"]["errors"], 2_000_000);
    let d = run.diagnostics_of("members.csv");
    assert_eq!(d.len(), 1_001);
    assert_eq!(
        d[999],
        with(
            error(
                "members.csv",
                Some(1_001),
                None,
                "file.field_count",
                "1 fields, but the header has 6",
            ),
            "hint",
            json!("a value with a comma must be in double quotes"),
        )
    );
    assert_eq!(
        d[1_000],
        with(
            error(
                "members.csv",
                Some(1_002),
                None,
                "file.field_count",
                "1999000 more `file.field_count` findings in this file, from this line on, are not listed (the first 1000 are)",
            ),
            "hint",
            json!("the summary counts them all; fix what is listed and validate again"),
        )
    );
    assert!(
        run.output.stdout.len() < 400_000,
        "{}",
        run.output.stdout.len()
    );
}

fn a_header_only_file_with_an_unknown_column_still_has_no_rows() {
    let b = Bundle::new();
    b.write(
        "periods.csv",
        b"name,description,start_date,end_date,status,colour\n",
    );
    let run = b.validate(None);
    let rules: Vec<Value> = run
        .diagnostics_of("periods.csv")
        .iter()
        .map(|d| d["rule"].clone())
        .collect();
    assert_eq!(
        rules,
        vec![json!("file.unknown_column"), json!("file.no_rows")]
    );
    assert_eq!(run.code(), Some(1), "{}", run.all());
}
