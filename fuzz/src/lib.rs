//! What the fuzz targets share: reading bytes as a source file and the checks every run makes.
//!
//! A target panics (and libFuzzer keeps the input) when the code under test panics, or when one of
//! these promises breaks: record lines never go back; values are trimmed, non-empty and NUL-free;
//! every diagnostic names its file and a dotted rule; no diagnostic shows more than
//! [`MAX_SHOWN_CHARS`] characters of a value; the report's counts agree with its diagnostics
//! (every finding is counted; a listed severity has a count, a count has a listed finding).

use habitat_migrate::diagnostic::{Diagnostics, MAX_SHOWN_CHARS, Severity};
use habitat_migrate::report;
use habitat_migrate::source::{Reader, SourceFile, Table};
use habitat_migrate::validate::{self, KnownRefs, Validation};

pub const TABLES: [Table; 4] = [
    Table::Members,
    Table::CapitalAccounts,
    Table::Contributions,
    Table::Periods,
];

/// The extension a selector byte picks: `.csv`, `.json` or `.jsonl`.
pub fn extension(selector: u8) -> &'static str {
    match selector % 3 {
        0 => "csv",
        1 => "json",
        _ => "jsonl",
    }
}

pub fn source(table: Table, extension: &str) -> SourceFile {
    SourceFile::new(format!("{}.{extension}", table.stem()), table)
}

/// Reads every record of `bytes` as `file`, checking each.
pub fn read_all(file: &SourceFile, bytes: &[u8]) {
    let mut diags = Diagnostics::default();
    let mut reader = Reader::from_bytes(file, bytes.to_vec(), &mut diags);
    let mut last_line = 0;
    while reader.advance(&mut diags) {
        let record = reader.record();
        assert!(
            record.line >= last_line.max(1),
            "line {} after {last_line}",
            record.line
        );
        last_line = record.line;
        for index in 0..file.table.columns().len() {
            if let Some(value) = record.get(index) {
                assert!(!value.is_empty(), "an empty value is None");
                assert_eq!(value, value.trim(), "values are trimmed");
                assert!(!value.contains('\0'), "a NUL is refused");
            }
        }
    }
    assert!(!reader.advance(&mut diags), "the end stays the end");
    check_diagnostics(&diags, &[file.display.as_str()]);
}

fn check_diagnostics(diags: &Diagnostics, files: &[&str]) {
    for d in diags.items() {
        assert!(files.contains(&d.file.as_str()), "file {:?}", d.file);
        assert!(d.rule.contains('.'), "rule {:?}", d.rule);
        assert!(!d.message.is_empty());
        if let Some(value) = &d.value {
            assert!(
                value.chars().count() <= MAX_SHOWN_CHARS + 1,
                "value shown whole"
            );
            assert_eq!(
                d.value_length.is_some(),
                value.ends_with('…') && value.chars().count() == MAX_SHOWN_CHARS + 1
            );
        }
        if let Some(column) = &d.column {
            assert!(
                column.chars().count() <= MAX_SHOWN_CHARS + 1,
                "column shown whole"
            );
        }
    }
}

/// The good test bundle's files, for the tables a target does not fuzz.
pub fn good(table: Table) -> &'static [u8] {
    match table {
        Table::Members => include_bytes!("../../tests/data/good/members.csv"),
        Table::CapitalAccounts => include_bytes!("../../tests/data/good/capital_accounts.csv"),
        Table::Contributions => include_bytes!("../../tests/data/good/contributions.csv"),
        Table::Periods => include_bytes!("../../tests/data/good/periods.csv"),
    }
}

/// Validates `data` as the file of `table` (its first byte picks the format) together with the
/// good files of the other tables, renders both reports and checks them.
pub fn validate_one(table: Table, data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let sources: Vec<(SourceFile, Vec<u8>)> = TABLES
        .iter()
        .map(|&t| {
            if t == table {
                (source(t, extension(selector)), bytes.to_vec())
            } else {
                (source(t, "csv"), good(t).to_vec())
            }
        })
        .collect();
    let v = validate::validate_bytes(&sources, &KnownRefs::default());
    let files: Vec<&str> = sources.iter().map(|(f, _)| f.display.as_str()).collect();
    check_diagnostics(&v.diagnostics, &files);
    check_reports(&v);
}

fn check_reports(v: &Validation) {
    let human = report::validation_human(v);
    assert!(human.ends_with('\n'));
    let json = report::validation_json(v);
    // The counts are every finding; the list holds at most MAX_LISTED_PER_RULE of a rule per file
    // (and a closing finding for the rest).
    let listed = |s: Severity| {
        v.diagnostics
            .items()
            .iter()
            .filter(|d| d.severity == s)
            .count()
    };
    let errors = v.diagnostics.count(Severity::Error);
    assert_eq!(json["summary"]["errors"].as_u64(), Some(errors as u64));
    assert_eq!(json["ok"].as_bool(), Some(errors == 0));
    for severity in [Severity::Note, Severity::Warning, Severity::Error] {
        assert!(listed(severity) <= v.diagnostics.count(severity) + v.diagnostics.items().len());
        assert_eq!(listed(severity) == 0, v.diagnostics.count(severity) == 0);
    }
    assert!(serde_json_roundtrips(&json));
}

fn serde_json_roundtrips(value: &serde_json::Value) -> bool {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|back| &back == value)
}
