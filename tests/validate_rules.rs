//! `validate-source` against the rules of SPEC §2 and §3, one bad input per test.
//!
//! `tests/data/good/` holds a tiny valid bundle (3 members, 3 capital accounts, 2 periods,
//! 3 contributions). Each `tests/data/bad/<case>/` holds only the file(s) that differ from it; a
//! case runs `validate-source` on its own files plus the good ones for the other tables, and
//! asserts the exit code, the exact number of errors and the expected diagnostic(s) of the JSON
//! report (file, editor line, column, rule, severity and, where it is well defined, the value).
//!
//! Member rows that carry a problem are extra members (Dee, Eve, Fay) without a capital account,
//! so that however an invalid row is treated no reference error can cascade from it; likewise the
//! bad period of `end_before_start` is one that no contribution refers to. Where a whole
//! referenced file is unusable (`empty`, `misspelt_column`, `non_utf8`, `bad_json`, ...) the
//! tests expect exactly one error too: references into a file that could not be read are not
//! checked, since every one of them would only repeat the file's own error.
//!
//! Every run points `--database-url` at a SQLite file that does not exist, which `validate-source`
//! must neither need nor create (SPEC §5). The binary's logs and backups go to the run's temporary
//! directory; the working directory is the package root, so paths are given relative to it and the
//! report must echo them exactly as given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{Test, tests};
use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use tempfile::TempDir;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            good_bundle_is_clean,
            validate_source_never_creates_the_database,
            good_bundle_with_members_and_capital_accounts_only,
            techne_example_is_valid_with_one_tax_basis_note,
            bom_is_tolerated,
            crlf_line_ends_report_the_editor_line,
            quoted_newline_counts_editor_lines,
            non_utf8_byte_names_its_line,
            inconsistent_field_count_names_its_line,
            missing_required_column,
            misspelt_column_is_an_error_with_did_you_mean,
            unknown_column_is_only_a_warning,
            empty_file,
            header_only_file_has_no_rows,
            values_are_trimmed_before_checking,
            blank_required_value,
            json_array_reports_the_line_of_the_object,
            malformed_json,
            jsonl_amount_as_a_number_keeps_its_scale,
            duplicate_email_differing_in_case,
            impossible_calendar_date,
            date_not_in_iso_format,
            ens_name_not_lower_case,
            ens_name_duplicate,
            all_errors_are_reported_at_once,
            money_with_thousands_separator,
            money_with_currency_sign,
            money_nan,
            money_too_large,
            negative_balance,
            capital_account_for_unknown_member,
            two_capital_accounts_for_one_member,
            amount_with_exponent,
            amount_with_three_decimals,
            zero_amount,
            unknown_contribution_type,
            unknown_contribution_status,
            approved_without_approved_at,
            approved_at_on_pending_is_a_warning,
            contribution_for_unknown_period,
            period_ending_before_it_starts,
            unknown_period_status,
            human_output_names_file_line_and_column,
            human_output_of_a_clean_bundle_succeeds,
            missing_file_is_a_file_error,
            directory_instead_of_file_is_a_file_error,
            missing_required_flag_is_a_usage_error,
        ],
    }
}

/// The four source tables: name (also the file stem) and the `validate-source` flag taking it.
const TABLES: [(&str, &str); 4] = [
    ("members", "--members"),
    ("capital_accounts", "--capital-accounts"),
    ("contributions", "--contributions"),
    ("periods", "--periods"),
];

const EXTENSIONS: [&str; 4] = ["csv", "json", "jsonl", "ndjson"];

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

fn package_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `(flag, path)` for each table: the case's own file where it has one, else the good one.
/// Paths are relative to the package root, which is the binary's working directory.
fn bundle(case: Option<&str>) -> Vec<(&'static str, String)> {
    TABLES
        .iter()
        .map(|&(table, flag)| {
            let own = case.and_then(|case| {
                EXTENSIONS
                    .iter()
                    .map(|ext| format!("tests/data/bad/{case}/{table}.{ext}"))
                    .find(|p| package_root().join(p).is_file())
            });
            (
                flag,
                own.unwrap_or_else(|| format!("tests/data/good/{table}.csv")),
            )
        })
        .collect()
}

/// The Techne example bundle, all four files.
fn example_bundle() -> Vec<(&'static str, String)> {
    TABLES
        .iter()
        .map(|&(table, flag)| (flag, format!("examples/techne/{table}.csv")))
        .collect()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// The paths exactly as passed on the command line.
    paths: Vec<String>,
    /// The JSON report (only for `--format json`).
    report: Value,
    /// The database file the run was pointed at (never created).
    db: PathBuf,
    _tmp: TempDir,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn diagnostics(&self) -> &[Value] {
        self.report["diagnostics"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    fn summary(&self, key: &str) -> u64 {
        self.report["summary"][key]
            .as_u64()
            .unwrap_or_else(|| panic!("summary.{key} is not a count\n{}", self.context()))
    }

    fn combined_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `habitat-migrate --database-url sqlite:///<tmp>/<db> [--format FORMAT] validate-source
/// FLAG PATH ...` from the package root, with no `DATABASE_URL` in the environment.
fn run_validate(files: &[(&str, String)], format: Option<&str>, db_name: &str) -> Run {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let db = tmp.path().join(db_name);
    let mut cmd = cargo_bin_cmd!("habitat-migrate");
    cmd.current_dir(package_root())
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_DIR")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(60))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--log-dir")
        .arg(tmp.path().join("logs"))
        .arg("--backup-dir")
        .arg(tmp.path().join("backups"));
    if let Some(format) = format {
        cmd.args(["--format", format]);
    }
    cmd.arg("validate-source");
    for (flag, path) in files {
        cmd.arg(flag).arg(path);
    }
    let output = cmd.output().expect("run habitat-migrate");
    let mut run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        paths: files.iter().map(|(_, p)| p.clone()).collect(),
        report: Value::Null,
        db,
        _tmp: tmp,
    };
    if format == Some("json") && matches!(run.code, 0 | 1) {
        run.report = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON report: {e}\n{}", run.context()));
        check_report_shape(&run);
    }
    run
}

fn run_json(files: &[(&str, String)]) -> Run {
    run_validate(files, Some("json"), "none.db")
}

/// The report's envelope: format, version, `ok`, summary counts that agree with the
/// diagnostics, one `files` entry per path given, and every diagnostic well formed.
fn check_report_shape(run: &Run) {
    let ctx = run.context();
    let r = &run.report;
    assert_eq!(
        r["format"], "habitat-migrate/validation",
        "report format\n{ctx}"
    );
    assert_eq!(r["version"], 1, "report version\n{ctx}");

    let count = |severity: &str| {
        run.diagnostics()
            .iter()
            .filter(|d| d["severity"] == severity)
            .count() as u64
    };
    for (key, severity) in [
        ("errors", "error"),
        ("warnings", "warning"),
        ("notes", "note"),
    ] {
        assert_eq!(
            run.summary(key),
            count(severity),
            "summary.{key} must count the {severity} diagnostics\n{ctx}"
        );
    }
    assert_eq!(r["ok"], run.summary("errors") == 0, "ok ⇔ no errors\n{ctx}");
    assert_eq!(
        run.code,
        if r["ok"] == true { 0 } else { 1 },
        "exit code follows ok\n{ctx}"
    );

    let files = r["files"]
        .as_array()
        .unwrap_or_else(|| panic!("files is not an array\n{ctx}"));
    for path in &run.paths {
        assert!(
            files.iter().any(|f| f["path"] == path.as_str()),
            "files has no entry with the path as given, {path:?}\n{ctx}"
        );
    }

    for d in run.diagnostics() {
        assert!(
            matches!(d["severity"].as_str(), Some("error" | "warning" | "note")),
            "severity of {d}\n{ctx}"
        );
        let file = d["file"].as_str().unwrap_or_default();
        assert!(
            run.paths.iter().any(|p| p == file),
            "diagnostic file {file:?} is not a path as given on the command line: {d}\n{ctx}"
        );
        assert!(d["rule"].is_string(), "rule of {d}\n{ctx}");
        assert!(
            d["message"].as_str().is_some_and(|m| !m.trim().is_empty()),
            "message of {d}\n{ctx}"
        );
        for key in ["line", "column", "value", "hint"] {
            assert!(
                d.get(key).is_some(),
                "diagnostic lacks the key {key:?} (null is fine): {d}\n{ctx}"
            );
        }
        assert!(
            d["line"].is_null() || d["line"].as_u64().is_some_and(|l| l >= 1),
            "line of {d}\n{ctx}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Expected diagnostics
// ---------------------------------------------------------------------------------------------

/// One expected diagnostic. `None` means "not checked".
#[derive(Clone, Copy, Debug)]
struct Expect {
    /// The file's name; the diagnostic's `file` is the full path as given and ends with it.
    file: &'static str,
    line: Option<u64>,
    column: Option<&'static str>,
    rule: &'static str,
    severity: &'static str,
    value: Option<&'static str>,
}

fn error(file: &'static str, line: u64, column: &'static str, rule: &'static str) -> Expect {
    Expect {
        file,
        line: Some(line),
        column: Some(column),
        rule,
        severity: "error",
        value: None,
    }
}

/// A file-level problem: no value; the column is the one concerned, or null with the column
/// named in the message.
fn file_error(
    file: &'static str,
    line: Option<u64>,
    column: Option<&'static str>,
    rule: &'static str,
) -> Expect {
    Expect {
        file,
        line,
        column,
        rule,
        severity: "error",
        value: None,
    }
}

impl Expect {
    fn value(self, value: &'static str) -> Self {
        Self {
            value: Some(value),
            ..self
        }
    }

    fn warning(self) -> Self {
        Self {
            severity: "warning",
            ..self
        }
    }

    fn matches(&self, d: &Value) -> bool {
        let file_ok = d["file"]
            .as_str()
            .is_some_and(|f| f == self.file || f.ends_with(&format!("/{}", self.file)));
        let line_ok = self.line.is_none_or(|l| d["line"].as_u64() == Some(l));
        let column_ok = self.column.is_none_or(|c| {
            d["column"] == c
                || (self.rule.starts_with("file.")
                    && d["message"].as_str().is_some_and(|m| m.contains(c)))
        });
        let value_ok = self.value.is_none_or(|v| match &d["value"] {
            Value::String(s) => s == v,
            Value::Number(n) => n.to_string() == v,
            _ => false,
        });
        file_ok
            && line_ok
            && column_ok
            && value_ok
            && d["rule"] == self.rule
            && d["severity"] == self.severity
    }
}

/// The diagnostic matching `expect`, or a panic showing the whole report.
fn find<'r>(run: &'r Run, expect: &Expect) -> &'r Value {
    run.diagnostics()
        .iter()
        .find(|d| expect.matches(d))
        .unwrap_or_else(|| {
            panic!(
                "no diagnostic matches {expect:?}\nreport:\n{}\n{}",
                serde_json::to_string_pretty(&run.report).unwrap_or_default(),
                run.context()
            )
        })
}

/// Runs a bad case (its files plus the good others) and asserts the exit code, the exact
/// number of errors and that every expected diagnostic is present. Returns the run for any
/// further assertion.
fn check_case(case: &str, exit: i32, errors: u64, expected: &[Expect]) -> Run {
    let dir = package_root().join("tests/data/bad").join(case);
    assert!(dir.is_dir(), "no test data directory {}", dir.display());
    let run = run_json(&bundle(Some(case)));
    let report = serde_json::to_string_pretty(&run.report).unwrap_or_default();
    assert_eq!(
        run.code,
        exit,
        "case {case}: exit code\nreport:\n{report}\n{}",
        run.context()
    );
    assert_eq!(
        run.summary("errors"),
        errors,
        "case {case}: number of errors\nreport:\n{report}\n{}",
        run.context()
    );
    for expect in expected {
        find(&run, expect);
    }
    run
}

fn text(d: &Value, key: &str) -> String {
    d[key].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// The good bundle
// ---------------------------------------------------------------------------------------------

fn good_bundle_is_clean() {
    let run = run_json(&bundle(None));
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(run.report["ok"], true, "{}", run.context());
    for key in ["errors", "warnings", "notes"] {
        assert_eq!(run.summary(key), 0, "summary.{key}\n{}", run.context());
    }
    assert_eq!(
        run.summary("rows"),
        11,
        "3 members + 3 accounts + 3 contributions + 2 periods"
    );
    let files = run.report["files"].as_array().cloned().unwrap_or_default();
    for (table, rows) in [
        ("members", 3),
        ("capital_accounts", 3),
        ("contributions", 3),
        ("periods", 2),
    ] {
        let path = format!("tests/data/good/{table}.csv");
        let entry = files
            .iter()
            .find(|f| f["path"] == path.as_str())
            .unwrap_or_else(|| panic!("no files entry for {path}\n{}", run.context()));
        assert_eq!(entry["table"], table, "table of {path}");
        assert_eq!(entry["rows"], rows, "rows of {path}");
    }
}

fn validate_source_never_creates_the_database() {
    let files = bundle(None);
    let run = run_validate(&files, Some("json"), "not-there/none.db");
    assert_eq!(run.code, 0, "{}", run.context());
    let dir = run.db.parent().expect("db has a parent");
    assert!(
        !dir.exists(),
        "validate-source created {}\n{}",
        dir.display(),
        run.context()
    );

    let run = run_json(&bundle(Some("crlf")));
    assert_eq!(run.code, 1, "{}", run.context());
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", run.db.display()));
        assert!(!path.exists(), "validate-source created {}", path.display());
    }
}

fn good_bundle_with_members_and_capital_accounts_only() {
    let files: Vec<_> = bundle(None).into_iter().take(2).collect();
    let run = run_json(&files);
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(run.summary("rows"), 6, "{}", run.context());
}

fn techne_example_is_valid_with_one_tax_basis_note() {
    let run = run_json(&example_bundle());
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(run.summary("errors"), 0, "{}", run.context());
    assert_eq!(run.summary("warnings"), 0, "{}", run.context());
    assert_eq!(run.summary("notes"), 1, "{}", run.context());
    assert_eq!(run.summary("rows"), 12 + 12 + 8 + 2, "{}", run.context());
    // Tom Lindqvist's property contribution, data row 4 of capital_accounts.csv.
    let note = Expect {
        file: "capital_accounts.csv",
        line: Some(5),
        column: None,
        rule: "balance.tax_basis_differs",
        severity: "note",
        value: None,
    };
    find(&run, &note);
}

// ---------------------------------------------------------------------------------------------
// File format (SPEC §2)
// ---------------------------------------------------------------------------------------------

fn bom_is_tolerated() {
    let run = check_case("bom", 0, 0, &[]);
    assert_eq!(
        run.summary("warnings"),
        0,
        "a BOM must not make `email` an unknown column\n{}",
        run.context()
    );
}

fn crlf_line_ends_report_the_editor_line() {
    // Also proves that no `\r` is left on the last column (joined_at would fail date.format).
    check_case(
        "crlf",
        1,
        1,
        &[error("members.csv", 3, "email", "email.format").value("dee@example")],
    );
}

fn quoted_newline_counts_editor_lines() {
    // Data row 1 spans lines 2-3, so the next record starts on line 4.
    check_case(
        "quoted_newline",
        1,
        1,
        &[error("members.csv", 4, "role", "member.role").value("treasurer")],
    );
}

fn non_utf8_byte_names_its_line() {
    check_case(
        "non_utf8",
        1,
        1,
        &[file_error("members.csv", Some(3), None, "file.encoding")],
    );
}

fn inconsistent_field_count_names_its_line() {
    check_case(
        "field_count",
        1,
        1,
        &[file_error("members.csv", Some(3), None, "file.field_count")],
    );
}

fn missing_required_column() {
    // One error for the header, none per row.
    check_case(
        "missing_column",
        1,
        1,
        &[file_error(
            "members.csv",
            Some(1),
            Some("role"),
            "file.missing_column",
        )],
    );
}

fn misspelt_column_is_an_error_with_did_you_mean() {
    // One error: the near miss explains the missing `email`, which is not reported again.
    let run = check_case(
        "misspelt_column",
        1,
        1,
        &[file_error(
            "members.csv",
            Some(1),
            Some("emial"),
            "file.misspelt_column",
        )],
    );
    let d = find(
        &run,
        &file_error(
            "members.csv",
            Some(1),
            Some("emial"),
            "file.misspelt_column",
        ),
    );
    assert!(
        text(d, "hint")
            .to_lowercase()
            .contains("did you mean `email`"),
        "hint must say did you mean `email`: {d}"
    );
}

fn unknown_column_is_only_a_warning() {
    let run = check_case(
        "unknown_extra_column",
        0,
        0,
        &[file_error(
            "members.csv",
            Some(1),
            Some("favourite_colour"),
            "file.unknown_column",
        )
        .warning()],
    );
    assert_eq!(run.report["ok"], true, "{}", run.context());
}

fn empty_file() {
    check_case(
        "empty",
        1,
        1,
        &[file_error("members.csv", None, None, "file.empty")],
    );
}

fn header_only_file_has_no_rows() {
    check_case(
        "header_only",
        1,
        1,
        &[file_error("members.csv", None, None, "file.no_rows")],
    );
}

fn values_are_trimmed_before_checking() {
    let run = check_case("padded_values", 0, 0, &[]);
    assert_eq!(run.summary("warnings"), 0, "{}", run.context());
}

fn blank_required_value() {
    // Whitespace only is empty once trimmed.
    check_case(
        "required_blank",
        1,
        1,
        &[error("members.csv", 5, "display_name", "value.required")],
    );
}

fn json_array_reports_the_line_of_the_object() {
    // The second object's `{` is on line 9 of members.json.
    check_case(
        "json_array",
        1,
        1,
        &[error("members.json", 9, "email", "email.format").value("dee@example")],
    );
}

fn malformed_json() {
    check_case(
        "bad_json",
        1,
        1,
        &[file_error("members.json", None, None, "file.json")],
    );
}

fn jsonl_amount_as_a_number_keeps_its_scale() {
    // `12.345` written as a JSON number: read exactly, so three decimals, on line 3.
    check_case(
        "jsonl",
        1,
        1,
        &[error("contributions.jsonl", 3, "amount", "money.scale").value("12.345")],
    );
}

// ---------------------------------------------------------------------------------------------
// Members (SPEC §3)
// ---------------------------------------------------------------------------------------------

fn duplicate_email_differing_in_case() {
    let run = check_case(
        "email_case_duplicate",
        1,
        1,
        &[error("members.csv", 4, "email", "email.duplicate").value("ada@example.org")],
    );
    let d = find(&run, &error("members.csv", 4, "email", "email.duplicate"));
    assert!(
        text(d, "message").contains("line 2"),
        "the message names the earlier line 2: {d}"
    );
}

fn impossible_calendar_date() {
    check_case(
        "bad_date",
        1,
        1,
        &[error("members.csv", 5, "joined_at", "date.calendar").value("2025-02-30")],
    );
}

fn date_not_in_iso_format() {
    check_case(
        "date_format",
        1,
        1,
        &[error("members.csv", 5, "joined_at", "date.format").value("01/04/2025")],
    );
}

fn ens_name_not_lower_case() {
    check_case(
        "bad_ens",
        1,
        1,
        &[error("members.csv", 5, "ens_name", "ens.format").value("Ada.ETH")],
    );
}

fn ens_name_duplicate() {
    check_case(
        "ens_duplicate",
        1,
        1,
        &[error("members.csv", 5, "ens_name", "ens.duplicate").value("ada.habitat.eth")],
    );
}

fn all_errors_are_reported_at_once() {
    check_case(
        "many_errors",
        1,
        3,
        &[
            error("members.csv", 5, "email", "email.format").value("dee@example"),
            error("members.csv", 6, "role", "member.role").value("treasurer"),
            error("members.csv", 7, "status", "member.status").value("retired"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Capital accounts and money (SPEC §3)
// ---------------------------------------------------------------------------------------------

fn money_with_thousands_separator() {
    let run = check_case(
        "thousands",
        1,
        1,
        &[error("capital_accounts.csv", 2, "balance", "money.format").value("1,000.00")],
    );
    let d = find(
        &run,
        &error("capital_accounts.csv", 2, "balance", "money.format"),
    );
    assert!(
        !text(d, "hint").is_empty(),
        "money.format comes with a hint: {d}"
    );
}

fn money_with_currency_sign() {
    let run = check_case(
        "currency",
        1,
        1,
        &[error("capital_accounts.csv", 3, "balance", "money.format").value("$5")],
    );
    let d = find(
        &run,
        &error("capital_accounts.csv", 3, "balance", "money.format"),
    );
    assert!(
        !text(d, "hint").is_empty(),
        "money.format comes with a hint: {d}"
    );
}

fn money_nan() {
    check_case(
        "money_nan",
        1,
        1,
        &[error("capital_accounts.csv", 3, "balance", "money.format").value("NaN")],
    );
}

fn money_too_large() {
    check_case(
        "too_large",
        1,
        1,
        &[
            error("capital_accounts.csv", 4, "balance", "money.too_large")
                .value("12345678901234567890.00"),
        ],
    );
}

fn negative_balance() {
    check_case(
        "negative_balance",
        1,
        1,
        &[error("capital_accounts.csv", 4, "balance", "money.negative").value("-0.01")],
    );
}

fn capital_account_for_unknown_member() {
    check_case(
        "unknown_member_account",
        1,
        1,
        &[
            error("capital_accounts.csv", 5, "member_email", "ref.member")
                .value("nobody@example.org"),
        ],
    );
}

fn two_capital_accounts_for_one_member() {
    let run = check_case(
        "two_accounts",
        1,
        1,
        &[error(
            "capital_accounts.csv",
            3,
            "member_email",
            "capital.duplicate",
        )],
    );
    let d = find(
        &run,
        &error(
            "capital_accounts.csv",
            3,
            "member_email",
            "capital.duplicate",
        ),
    );
    assert!(
        text(d, "message").contains("line 2"),
        "the message names the first account's line 2: {d}"
    );
}

// ---------------------------------------------------------------------------------------------
// Contributions (SPEC §3)
// ---------------------------------------------------------------------------------------------

fn amount_with_exponent() {
    let run = check_case(
        "exponent",
        1,
        1,
        &[error("contributions.csv", 2, "amount", "money.format").value("1e3")],
    );
    let d = find(
        &run,
        &error("contributions.csv", 2, "amount", "money.format"),
    );
    assert!(
        !text(d, "hint").is_empty(),
        "money.format comes with a hint: {d}"
    );
}

fn amount_with_three_decimals() {
    check_case(
        "three_decimals",
        1,
        1,
        &[error("contributions.csv", 3, "amount", "money.scale").value("10.005")],
    );
}

fn zero_amount() {
    check_case(
        "zero_amount",
        1,
        1,
        &[error("contributions.csv", 2, "amount", "money.not_positive").value("0")],
    );
}

fn unknown_contribution_type() {
    check_case(
        "contribution_type",
        1,
        1,
        &[error(
            "contributions.csv",
            2,
            "contribution_type",
            "contribution.type",
        )
        .value("equity")],
    );
}

fn unknown_contribution_status() {
    check_case(
        "contribution_status",
        1,
        1,
        &[error("contributions.csv", 4, "status", "contribution.status").value("done")],
    );
}

fn approved_without_approved_at() {
    check_case(
        "approved_no_timestamp",
        1,
        1,
        &[error(
            "contributions.csv",
            3,
            "approved_at",
            "approval.missing_at",
        )],
    );
}

fn approved_at_on_pending_is_a_warning() {
    check_case(
        "unexpected_approved_at",
        0,
        0,
        &[error(
            "contributions.csv",
            4,
            "approved_at",
            "approval.unexpected_at",
        )
        .warning()],
    );
}

fn contribution_for_unknown_period() {
    check_case(
        "unknown_period",
        1,
        1,
        &[error("contributions.csv", 4, "period_name", "ref.period").value("Q9 2030")],
    );
}

// ---------------------------------------------------------------------------------------------
// Periods (SPEC §3)
// ---------------------------------------------------------------------------------------------

fn period_ending_before_it_starts() {
    check_case(
        "end_before_start",
        1,
        1,
        &[error("periods.csv", 4, "end_date", "period.dates").value("2026-04-01")],
    );
}

fn unknown_period_status() {
    check_case(
        "period_status",
        1,
        1,
        &[error("periods.csv", 3, "status", "period.status").value("current")],
    );
}

// ---------------------------------------------------------------------------------------------
// Human output, usage and file errors
// ---------------------------------------------------------------------------------------------

fn human_output_names_file_line_and_column() {
    for (case, location, column) in [
        ("crlf", "members.csv:3", "email"),
        ("thousands", "capital_accounts.csv:2", "balance"),
        ("quoted_newline", "members.csv:4", "role"),
    ] {
        let run = run_validate(&bundle(Some(case)), None, "none.db");
        assert_eq!(run.code, 1, "case {case}\n{}", run.context());
        let out = run.combined_output();
        assert!(
            out.contains(location),
            "case {case}: output lacks {location:?}\n{}",
            run.context()
        );
        assert!(
            out.contains(column),
            "case {case}: output lacks the column {column:?}\n{}",
            run.context()
        );
        assert!(
            !out.contains('\u{1b}'),
            "case {case}: NO_COLOR is set, yet the output has escapes\n{}",
            run.context()
        );
    }
}

fn human_output_of_a_clean_bundle_succeeds() {
    let run = run_validate(&bundle(None), None, "none.db");
    assert_eq!(run.code, 0, "{}", run.context());
}

fn missing_file_is_a_file_error() {
    let mut files = bundle(None);
    files[0].1 = "tests/data/bad/no_such_case/members.csv".to_owned();
    for format in [None, Some("json")] {
        let run = run_validate(&files, format, "none.db");
        assert_eq!(run.code, 4, "format {format:?}\n{}", run.context());
        assert!(
            run.combined_output().contains("no_such_case/members.csv"),
            "the error names the missing file\n{}",
            run.context()
        );
    }
}

fn directory_instead_of_file_is_a_file_error() {
    let mut files = bundle(None);
    files[1].1 = "tests/data/good".to_owned();
    let run = run_validate(&files, Some("json"), "none.db");
    assert_eq!(run.code, 4, "{}", run.context());
}

fn missing_required_flag_is_a_usage_error() {
    let files: Vec<_> = bundle(None).into_iter().skip(1).collect();
    let run = run_validate(&files, Some("json"), "none.db");
    assert_eq!(
        run.code,
        2,
        "validate-source without --members\n{}",
        run.context()
    );
}
