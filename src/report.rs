//! Reporting: turns results into the text a treasurer reads and the JSON a machine reads.
//!
//! Nothing here decides anything; every function renders a value computed elsewhere. Human output
//! keeps the seed guide's wording (✓/✗ lines, "Dry run - no data imported") so that users who know
//! the old scripts recognise it. The JSON reports carry a `format` and a `version` so consumers can
//! rely on their shape (see DESIGN.md).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity};
use crate::import::Report;
use crate::plan::Action;
use crate::store::{ChangeRow, RunRow, SchemaStatus};
use crate::validate::Validation;
use crate::verify::{Status, VerifyReport};

pub const VALIDATION_FORMAT: &str = "habitat-migrate/validation";
pub const IMPORT_FORMAT: &str = "habitat-migrate/import";
pub const VERIFY_FORMAT: &str = "habitat-migrate/verify";

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary_line(v: &Validation) -> String {
    let d = &v.diagnostics;
    format!(
        "{}, {}: {}, {}, {}",
        plural(v.files.len(), "file", "files"),
        plural(
            usize::try_from(v.rows()).unwrap_or(usize::MAX),
            "row",
            "rows"
        ),
        plural(d.count(Severity::Error), "error", "errors"),
        plural(d.count(Severity::Warning), "warning", "warnings"),
        plural(d.count(Severity::Note), "note", "notes"),
    )
}

fn diagnostic_human(out: &mut String, d: &Diagnostic) {
    let label = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let mut line = format!("  {}: {label}[{}]", d.location(), d.rule);
    if let Some(c) = &d.column {
        let _ = write!(line, " column {c}");
    }
    let _ = write!(line, ": {}", d.message);
    if let Some(v) = &d.value {
        let _ = write!(line, " (value: {v:?})");
    }
    let _ = writeln!(out, "{line}");
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "      hint: {h}");
    }
}

/// Diagnostics grouped per file, then the seed guide's checks and a one-line summary.
pub fn validation_human(v: &Validation) -> String {
    let mut out = String::new();
    for f in &v.files {
        let mine: Vec<&Diagnostic> = v
            .diagnostics
            .items()
            .iter()
            .filter(|d| d.file == f.path)
            .collect();
        let errors = mine
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let mark = if errors == 0 { "✓" } else { "✗" };
        let _ = writeln!(
            out,
            "{mark} {} ({}, {})",
            f.path,
            f.table.stem(),
            plural(usize::try_from(f.rows).unwrap_or(0), "row", "rows")
        );
        for d in mine {
            diagnostic_human(&mut out, d);
        }
    }
    if v.ok() {
        let rules: &[(&[&str], &str)] = &[
            (
                &["email.format", "email.duplicate"],
                "All members have valid emails",
            ),
            (
                &["member.role"],
                "All roles are valid (member, steward, admin)",
            ),
            (&["member.status"], "All statuses are valid"),
            (
                &["date.format", "date.calendar"],
                "All dates are valid (ISO 8601)",
            ),
            (
                &[
                    "money.format",
                    "money.scale",
                    "money.negative",
                    "money.not_positive",
                ],
                "All amounts are valid (numeric, 2 decimal places)",
            ),
            (&["ref.member", "ref.period"], "All references resolve"),
        ];
        for (_, text) in rules {
            let _ = writeln!(out, "✓ {text}");
        }
        let _ = writeln!(out, "✓ Validation passed: {}", summary_line(v));
    } else {
        let _ = writeln!(out, "✗ Validation failed: {}", summary_line(v));
    }
    out
}

pub fn validation_json(v: &Validation) -> Value {
    json!({
        "format": VALIDATION_FORMAT,
        "version": 1,
        "ok": v.ok(),
        "summary": {
            "errors": v.diagnostics.count(Severity::Error),
            "warnings": v.diagnostics.count(Severity::Warning),
            "notes": v.diagnostics.count(Severity::Note),
            "files": v.files.len(),
            "rows": v.rows(),
        },
        "files": v.files.iter().map(|f| json!({
            "path": f.path, "table": f.table.stem(), "rows": f.rows,
        })).collect::<Vec<_>>(),
        "diagnostics": v.diagnostics.items(),
    })
}

fn counts_table(out: &mut String, counts: &BTreeMap<&'static str, crate::store::TableCounts>) {
    let _ = writeln!(
        out,
        "  {:<20} {:>10} {:>10} {:>10}",
        "table", "inserted", "updated", "unchanged"
    );
    for table in [
        "allocation_periods",
        "members",
        "capital_accounts",
        "contributions",
    ] {
        if let Some(c) = counts.get(table) {
            let _ = writeln!(
                out,
                "  {:<20} {:>10} {:>10} {:>10}",
                table, c.inserted, c.updated, c.unchanged
            );
        }
    }
}

pub fn import_human(r: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "✓ Validation passed: {}", summary_line(&r.validation));
    for d in r.validation.diagnostics.items() {
        if verbose || d.severity == Severity::Warning {
            diagnostic_human(&mut out, d);
        }
    }
    if let Some(b) = &r.backup_file {
        let _ = writeln!(out, "✓ Backup written: {b}");
    }
    if r.dry_run {
        let _ = writeln!(out, "Dry run - no data imported. The plan:");
    } else {
        let _ = writeln!(out, "Imported in one transaction:");
    }
    counts_table(&mut out, &r.counts);
    if r.dry_run {
        let _ = writeln!(out, "Sample records:");
        for (table, samples) in &r.samples {
            for s in samples {
                let action = match s.action {
                    Some(Action::Insert) => "insert",
                    Some(Action::Update) => "update",
                    Some(Action::Unchanged) => "unchanged",
                    None => "",
                };
                let _ = writeln!(
                    out,
                    "  {:<18} line {:<6} {:<10} {:<32} {}",
                    table, s.line, action, s.key, s.detail
                );
            }
        }
    }
    if let Some(v) = &r.verification {
        out.push_str(&verify_human(v, false));
    }
    let total: u64 = r.counts.values().map(|c| c.total()).sum();
    if r.nothing_changed() {
        let _ = writeln!(
            out,
            "Nothing changed: the database already holds these {total} rows."
        );
    } else if r.dry_run {
        let _ = writeln!(
            out,
            "Nothing was written. Run again without --dry-run to import."
        );
    } else {
        let inserted: u64 = r.counts.values().map(|c| c.inserted).sum();
        let updated: u64 = r.counts.values().map(|c| c.updated).sum();
        let _ = write!(
            out,
            "✓ Migration complete: {inserted} row(s) inserted, {updated} updated"
        );
        if r.changes > 0 {
            let _ = write!(
                out,
                " ({} value change(s) recorded with before and after)",
                r.changes
            );
        }
        let _ = writeln!(out);
    }
    if let Some(id) = r.run_id {
        let _ = write!(out, "✓ Run {id} recorded");
        if let Some(log) = &r.log_file {
            let _ = write!(out, "; log {log}");
        }
        let _ = writeln!(out, " (see `habitat-migrate runs show {id}`)");
    }
    out
}

pub fn import_json(r: &Report) -> Value {
    json!({
        "format": IMPORT_FORMAT,
        "version": 1,
        "ok": true,
        "dry_run": r.dry_run,
        "run_id": r.run_id,
        "nothing_changed": r.nothing_changed(),
        "counts": r.counts,
        "changes": r.changes,
        "backup_file": r.backup_file,
        "log_file": r.log_file,
        "sources": r.sources,
        "samples": r.samples,
        "verification": r.verification.as_ref().map(verify_json),
        "validation": validation_json(&r.validation),
    })
}

pub fn verify_human(v: &VerifyReport, verbose: bool) -> String {
    let mut out = String::new();
    for c in &v.checks {
        let mark = match (c.status, c.preexisting) {
            (Status::Pass, _) => "✓",
            (Status::Warn, _) | (Status::Fail, true) => "!",
            (Status::Fail, false) => "✗",
        };
        let _ = write!(out, "{mark} {}", c.title);
        if !c.message.is_empty() {
            let _ = write!(out, " ({})", c.message);
        }
        if c.preexisting {
            let _ = write!(
                out,
                " [pre-existing: these rows failed before this run too]"
            );
        }
        let _ = writeln!(out);
        let show =
            verbose && !c.rows.is_empty() && (c.status != Status::Pass || c.id == "reconciliation");
        if show {
            let _ = writeln!(out, "    {}", c.columns.join(" | "));
            for row in &c.rows {
                let _ = writeln!(out, "    {}", row.join(" | "));
            }
        }
    }
    if let Some(proof) = &v.proof {
        for p in proof {
            let mark = if p.matches { "✓" } else { "✗" };
            let _ = writeln!(
                out,
                "{mark} Read-back of {}: {} source rows, {} in the database, checksum {}",
                p.table,
                p.source_rows,
                p.database_rows,
                if p.matches {
                    p.database_checksum.clone()
                } else {
                    format!("{} ≠ source {}", p.database_checksum, p.source_checksum)
                }
            );
            if p.earlier_rows > 0 {
                let _ = writeln!(
                    out,
                    "! {} {} of these members, imported earlier, are not in this file and were kept: a changed amount, type or description imports as a new contribution; remove the old one in Habitat if it was a correction",
                    p.earlier_rows, p.table
                );
            }
        }
    }
    let _ = writeln!(out, "{}", "=".repeat(50));
    if v.failed() {
        let _ = writeln!(out, "✗ Some validation checks failed");
        if !verbose {
            let _ = writeln!(
                out,
                "  run `habitat-migrate verify --verbose` to see the rows"
            );
        }
    } else {
        let _ = writeln!(out, "✓ All validation checks passed");
    }
    out
}

pub fn verify_json(v: &VerifyReport) -> Value {
    json!({
        "format": VERIFY_FORMAT,
        "version": 1,
        "ok": !v.failed(),
        "checks": v.checks,
        "proof": v.proof,
    })
}

pub fn status_human(s: &SchemaStatus) -> String {
    let mut out = format!("Schema of {}\n", s.database);
    for v in &s.versions {
        let state = match (&v.applied_at, v.checksum_matches) {
            (None, _) => "pending".to_string(),
            (Some(at), Some(false)) => format!(
                "{} {at} — CHECKSUM DRIFT: the recorded file differs from this binary's",
                v.how.as_deref().unwrap_or("applied")
            ),
            (Some(at), _) => format!("{} {at}", v.how.as_deref().unwrap_or("applied")),
        };
        let _ = writeln!(out, "  {:04} {:<16} {state}", v.version, v.name);
    }
    if s.pending() > 0 {
        let _ = writeln!(
            out,
            "{} migration(s) pending: run `habitat-migrate db init`",
            s.pending()
        );
    }
    out
}

pub fn runs_human(runs: &[RunRow]) -> String {
    let mut out = format!(
        "{:>5}  {:<24} {:<12} {:<10} {:<28} {}\n",
        "id", "started", "outcome", "by", "command", "counts (ins/upd/unch)"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:>5}  {:<24} {:<12} {:<10} {:<28} {}",
            r.id,
            r.started_at.chars().take(20).collect::<String>(),
            r.outcome,
            r.invoked_by,
            r.command,
            counts_brief(&r.counts)
        );
    }
    out
}

fn counts_brief(counts: &Value) -> String {
    let Some(map) = counts.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(t, c)| {
            format!(
                "{t} {}/{}/{}",
                c["inserted"].as_u64().unwrap_or(0),
                c["updated"].as_u64().unwrap_or(0),
                c["unchanged"].as_u64().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run_human(r: &RunRow, changes: &[ChangeRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run {}: {} — {}", r.id, r.command, r.outcome);
    let _ = writeln!(out, "  started   {}", r.started_at);
    let _ = writeln!(
        out,
        "  finished  {}",
        r.finished_at.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  by        {} (habitat-migrate {})",
        r.invoked_by, r.tool_version
    );
    let _ = writeln!(out, "  database  {}", r.database_url);
    if let Some(b) = &r.backup_file {
        let _ = writeln!(out, "  backup    {b}");
    }
    if let Some(m) = &r.message {
        let _ = writeln!(out, "  message   {m}");
    }
    if let Some(sources) = r.sources.as_array() {
        for s in sources {
            let _ = writeln!(
                out,
                "  source    {} ({} rows, sha256 {})",
                s["path"].as_str().unwrap_or(""),
                s["rows"].as_u64().unwrap_or(0),
                s["sha256"].as_str().unwrap_or("")
            );
        }
    }
    let _ = writeln!(out, "  counts    {}", counts_brief(&r.counts));
    let _ = writeln!(out, "Changes ({}):", changes.len());
    for c in changes {
        let _ = writeln!(
            out,
            "  {}.{} of {}: {} → {}",
            c.table,
            c.column,
            c.row_key,
            c.before.as_deref().unwrap_or("NULL"),
            c.after.as_deref().unwrap_or("NULL")
        );
    }
    out
}
