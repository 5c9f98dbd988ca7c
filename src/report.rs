//! Reporting: turns results into the text a treasurer reads and the JSON a machine reads.
//!
//! Nothing here decides anything; every function renders a value computed elsewhere. Human output
//! keeps the seed guide's wording (✓/✗ lines, "Dry run - no data imported") so that users who know
//! the old scripts recognise it. The JSON reports carry a `format` and a `version` so consumers can
//! rely on their shape (see DESIGN.md).

pub mod allocation;
pub mod document;
pub mod pdf;
mod prune;
pub mod signoff;
pub mod statement;

pub use prune::{prune_human, prune_json};

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity};
use crate::domain::format_instant;
use crate::import::{CorrectionPolicy, Corrections, Report};
use crate::model::Period;
use crate::model::{RecordedChange, RunRecord};
use crate::plan::Action;
use crate::store::SchemaStatus;
use crate::validate::Validation;
use crate::verify::{Status, VerifyReport};

pub const VALIDATION_FORMAT: &str = "habitat-migrate/validation";
pub const IMPORT_FORMAT: &str = "habitat-migrate/import";
/// 2: `deleted` counts, `corrections`, `openings` and `backup_skipped`.
pub const IMPORT_VERSION: u32 = 2;
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
    match (&d.value, d.value_length) {
        (Some(v), Some(length)) => {
            let _ = write!(line, " (value: {v:?}, {length} characters)");
        }
        (Some(v), None) => {
            let _ = write!(line, " (value: {v:?})");
        }
        (None, _) => {}
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
        let _ = writeln!(out, "✓ Source validation passed: {}", summary_line(v));
    } else {
        let _ = writeln!(out, "✗ Source validation failed: {}", summary_line(v));
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
    let deleted = counts.values().any(|c| c.deleted > 0);
    let _ = write!(
        out,
        "  {:<20} {:>10} {:>10} {:>10}",
        "table", "inserted", "updated", "unchanged"
    );
    if deleted {
        let _ = write!(out, " {:>10}", "deleted");
    }
    let _ = writeln!(out);
    for table in [
        "allocation_periods",
        "members",
        "capital_accounts",
        "contributions",
    ] {
        if let Some(c) = counts.get(table) {
            let _ = write!(
                out,
                "  {:<20} {:>10} {:>10} {:>10}",
                table, c.inserted, c.updated, c.unchanged
            );
            if deleted {
                let _ = write!(out, " {:>10}", c.deleted);
            }
            let _ = writeln!(out);
        }
    }
}

/// How many names a `!` or `✗` line shows before "and N more" (all of them under `--verbose`).
pub const NAMES_SHOWN: usize = 5;

/// `a, b, c and 7 more` — bounded unless `verbose`.
pub fn names(list: &[String], verbose: bool) -> String {
    names_of(list, list.len(), verbose)
}

/// Like [`names`], for a list that may hold only the first `total` names.
fn names_of(list: &[String], total: usize, verbose: bool) -> String {
    let shown = if verbose {
        list.len()
    } else {
        NAMES_SHOWN.min(list.len())
    };
    let rest = total.saturating_sub(shown);
    if rest == 0 {
        return list[..shown].join(", ");
    }
    let hint = if verbose || list.len() < total {
        "habitat-migrate verify --verbose lists the rows"
    } else {
        "--verbose lists all"
    };
    format!("{} and {rest} more ({hint})", list[..shown].join(", "))
}

/// One earlier contribution the source no longer lists, as a treasurer reads it.
fn missing_line(m: &crate::model::MissingContribution) -> String {
    let v = &m.values;
    let mut line = format!(
        "{} {} {} {}",
        m.member_email, m.period_name, v.contribution_type, v.amount
    );
    if let Some(d) = &v.description {
        let _ = write!(line, " {d:?}");
    }
    let _ = write!(line, " ({}, imported in run {})", v.status, m.run_id);
    match &m.replacement {
        Some(r) => {
            let _ = write!(
                line,
                " — probably replaced by line {}: {} {}{}",
                r.line,
                v.contribution_type,
                r.amount,
                r.description
                    .as_ref()
                    .map(|d| format!(" {d:?}"))
                    .unwrap_or_default()
            );
        }
        None => line.push_str(" — no new row of this member, period and type in the file"),
    }
    if !m.unchanged_since_import() {
        line.push_str(if m.recorded_digest.is_none() {
            " [imported by an earlier version of habitat-migrate, which kept no fingerprint: it cannot be proven unchanged, so it is never deleted]"
        } else {
            " [changed in the database since it was imported: never deleted by this tool]"
        });
    }
    line
}

/// Why a run with corrections nobody decided on was refused, and what to do.
pub fn corrections_refused(c: &Corrections, verbose: bool) -> String {
    let mut out = String::new();
    let members = c.members();
    let changed: Vec<_> = c.changed_since_import().collect();
    let _ = writeln!(
        out,
        "✗ {} contribution(s) imported earlier are no longer in the source file, for {} member(s): {}",
        c.missing.len(),
        members.len(),
        names(&members, verbose)
    );
    let shown = if verbose { c.missing.len() } else { 10 };
    for m in c.missing.iter().take(shown) {
        let _ = writeln!(out, "  {}", missing_line(m));
    }
    if c.missing.len() > shown {
        let _ = writeln!(
            out,
            "  … and {} more (--verbose lists all)",
            c.missing.len() - shown
        );
    }
    if c.policy == CorrectionPolicy::Replace && !changed.is_empty() {
        let _ = writeln!(
            out,
            "--replace-missing refused: {} of them were not written by this tool as they are now (marked above); delete or correct those in Habitat, or run with --keep-missing.",
            changed.len()
        );
    } else {
        let _ = writeln!(
            out,
            "A contribution whose amount, type or description changed is a new row, so the old one would count twice. Decide:"
        );
        let _ = writeln!(
            out,
            "  - the file is a correction: run again with --replace-missing (the earlier rows are deleted in the same transaction; their before-images stay in the change history and the backup);"
        );
        let _ = writeln!(
            out,
            "  - both are real contributions: run again with --keep-missing."
        );
    }
    let _ = writeln!(out, "Nothing was imported.");
    out
}

pub fn corrections_json(c: &Corrections) -> Value {
    json!({
        "format": IMPORT_FORMAT,
        "version": IMPORT_VERSION,
        "ok": false,
        "refused": "corrections",
        "corrections": c,
    })
}

pub fn import_human(r: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "✓ Source validation passed: {}",
        summary_line(&r.validation)
    );
    for d in r.validation.diagnostics.items() {
        if verbose || d.severity == Severity::Warning {
            diagnostic_human(&mut out, d);
        }
    }
    if let Some(b) = &r.backup_file {
        let _ = writeln!(out, "✓ Backup written: {b}");
    }
    match r.backup_skipped {
        Some("nothing to write") => {
            let _ = writeln!(
                out,
                "✓ No backup needed: this run writes nothing to the Habitat tables"
            );
        }
        Some(why) => {
            let _ = writeln!(out, "! No backup written ({why})");
        }
        None => {}
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
    let c = &r.corrections;
    if !c.missing.is_empty() {
        let (mark, what) = match c.policy {
            CorrectionPolicy::Replace if !r.dry_run => ("✓", "deleted (--replace-missing)"),
            CorrectionPolicy::Replace => ("✓", "to be deleted (--replace-missing)"),
            _ => ("!", "kept beside the new rows (--keep-missing)"),
        };
        let _ = writeln!(
            out,
            "{mark} {} contribution(s) imported earlier and no longer in the file {what}: {}",
            c.missing.len(),
            names(&c.members(), verbose)
        );
        for m in c.missing.iter().take(if verbose { usize::MAX } else { 10 }) {
            let _ = writeln!(out, "  {}", missing_line(m));
        }
    }
    if r.openings_derived > 0 {
        let _ = write!(
            out,
            "✓ Opening balances derived for {} new capital account(s)",
            r.openings_derived
        );
        if verbose {
            let _ = write!(
                out,
                ": {}",
                names_of(&r.openings_derived_names, r.openings_derived, true)
            );
        }
        let _ = writeln!(out);
    }
    if !r.openings.is_empty() {
        let again: Vec<String> = r
            .openings
            .iter()
            .filter_map(|o| {
                o.before.map(|b| {
                    format!(
                        "{} ({} → {}, {})",
                        o.member,
                        b.balance,
                        o.after.balance,
                        match o.reason {
                            crate::balances::Reason::NewAccount => "new account",
                            crate::balances::Reason::BalanceChanged => "balance changed",
                            crate::balances::Reason::ContributionsAdded => "contributions added",
                        }
                    )
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "✓ Opening balances re-derived for {} member(s): {}",
            again.len(),
            names(&again, verbose)
        );
    }
    if let Some(v) = &r.verification {
        out.push_str(&verify_human(v, verbose));
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
        let deleted: u64 = r.counts.values().map(|c| c.deleted).sum();
        let _ = write!(
            out,
            "✓ Migration complete: {inserted} row(s) inserted, {updated} updated"
        );
        if deleted > 0 {
            let _ = write!(out, ", {deleted} deleted");
        }
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
        "version": IMPORT_VERSION,
        "ok": true,
        "dry_run": r.dry_run,
        "run_id": r.run_id,
        "nothing_changed": r.nothing_changed(),
        "counts": r.counts,
        "changes": r.changes,
        "corrections": r.corrections,
        "openings": r.openings,
        "openings_derived": r.openings_derived,
        "backup_file": r.backup_file,
        "backup_skipped": r.backup_skipped,
        "log_file": r.log_file,
        "sources": r.sources,
        "samples": r.samples,
        "verification": r.verification.as_ref().map(verify_json),
        "validation": validation_json(&r.validation),
    })
}

/// How many failing rows of a check are shown without `--verbose`.
pub const ROWS_SHOWN: usize = 10;

/// The database checks, one ✓/✗/! line each in the guide's words. Every `!` and `✗` line names
/// who it is about (bounded unless `verbose`); a failing check shows its failing rows (bounded),
/// and `verbose` shows every row, the reconciliation's included.
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
        if c.status != Status::Pass && !c.named.is_empty() {
            let _ = write!(out, ": {}", names_of(&c.named, c.named_total, verbose));
        }
        let _ = writeln!(out);
        let rows: &[Vec<String>] =
            if verbose && (c.status != Status::Pass || c.id == "reconciliation") {
                &c.rows
            } else if c.status == Status::Fail && !c.preexisting {
                if c.failing_rows.is_empty() {
                    &c.rows
                } else {
                    &c.failing_rows
                }
            } else {
                &[]
            };
        if !rows.is_empty() && !c.columns.is_empty() {
            let shown = if verbose { rows.len() } else { ROWS_SHOWN };
            let _ = writeln!(out, "    {}", c.columns.join(" | "));
            for row in rows.iter().take(shown) {
                let _ = writeln!(out, "    {}", row.join(" | "));
            }
            if rows.len() > shown {
                let _ = writeln!(
                    out,
                    "    … and {} more (habitat-migrate verify --verbose lists all)",
                    rows.len() - shown
                );
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
        }
    }
    let _ = writeln!(out, "{}", "=".repeat(50));
    if v.failed() {
        let _ = writeln!(out, "✗ Some verification checks failed");
    } else {
        let _ = writeln!(out, "✓ All verification checks passed");
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

/// Rows under a header, each column as wide as its widest cell (counted in characters), two
/// spaces apart; columns marked in `right` are right-aligned, and the last column is not padded.
fn columns(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|cell| cell.chars().count())
            .chain(header.get(i).map(|h| h.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            let last = i + 1 == row.len();
            if right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// An instant as RFC 3339 to the second (`2026-11-25T15:17:21Z`).
fn to_the_second(instant: jiff::Timestamp) -> String {
    instant.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn runs_human(runs: &[RunRecord]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                to_the_second(r.started_at),
                r.outcome.to_string(),
                r.invoked_by.clone(),
                r.command.clone(),
                counts_brief(&r.counts),
            ]
        })
        .collect();
    columns(
        &[
            "id",
            "started",
            "outcome",
            "by",
            "command",
            "counts (ins/upd/unch)",
        ],
        &rows,
        &[0],
    )
}

pub fn periods_human(periods: &[Period]) -> String {
    let rows: Vec<Vec<String>> = periods
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.start_date.strftime("%Y-%m-%d").to_string(),
                p.end_date.strftime("%Y-%m-%d").to_string(),
                p.status.to_string(),
                p.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    columns(
        &["name", "start", "end", "status", "description"],
        &rows,
        &[],
    )
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

pub fn run_human(r: &RunRecord, changes: &[RecordedChange]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run {}: {} — {}", r.id, r.command, r.outcome);
    let _ = writeln!(out, "  started   {}", format_instant(r.started_at));
    let _ = writeln!(
        out,
        "  finished  {}",
        r.finished_at
            .map_or_else(|| "-".to_string(), format_instant)
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
    // A committed allocation keeps its calculation: shown as it was computed.
    if let Some(calculation) = allocation::calculation_human(&r.details) {
        out.push_str(&calculation);
    }
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
