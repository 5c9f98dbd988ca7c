//! Rendering of `backup prune`: what was kept and why, what was deleted, and the JSON document.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::backup::{KeptBecause, PruneReport};
use crate::store::BackupKind;

/// `{"format": "habitat-migrate/prune", "version": 1, "ok", "keep", "dry_run", "backups": [{"file",
/// "database", "created_at", "kind", "run_id", "kept"}], "deleted", "skipped"}`.
pub fn prune_json(r: &PruneReport) -> Value {
    json!({
        "format": "habitat-migrate/prune",
        "version": 1,
        "ok": true,
        "keep": r.keep,
        "dry_run": r.dry_run,
        "backups": r.backups,
        "deleted": r.deleted().count(),
        "skipped": r.skipped,
    })
}

pub fn prune_human(r: &PruneReport) -> String {
    let mut out = String::new();
    let deleted = if r.dry_run {
        "would be deleted"
    } else {
        "deleted"
    };
    for b in &r.backups {
        let what = match (b.kind, b.run_id) {
            (BackupKind::Undo, Some(run)) => format!("undo of run {run}"),
            (BackupKind::Undo, None) => "undo".to_string(),
            (BackupKind::Snapshot, _) => "snapshot".to_string(),
        };
        let action = match b.kept {
            Some(KeptBecause::Newest) => "kept".to_string(),
            Some(KeptBecause::NeededByOlderUndo) => {
                "kept (a kept older undo needs it restored first)".to_string()
            }
            None if r.dry_run => "would delete".to_string(),
            None => "deleted".to_string(),
        };
        let _ = writeln!(
            out,
            "  {action:<12} {}  {}  {what}  ({})",
            b.file, b.created_at, b.database
        );
    }
    for s in &r.skipped {
        let _ = writeln!(out, "  left alone   {s} (its manifest cannot be read)");
    }
    let n = r.deleted().count();
    let kept = r.backups.len() - n;
    let _ = writeln!(
        out,
        "{} {n} backup(s) {deleted}, {kept} kept (the {} newest of each database, and the undo scripts they need)",
        if r.dry_run { "Dry run:" } else { "✓" },
        r.keep
    );
    out
}
