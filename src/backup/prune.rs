//! Backup retention: `backup prune --keep N` deletes the older backups of a directory, never the
//! newest of a database and never an undo script that a kept one needs.
//!
//! A backup is a file with a readable `<file>.manifest.json` beside it; anything else in the
//! directory (a file without a manifest, an unreadable manifest) is not the tool's to delete and is
//! left alone. Backups are grouped by the database they were taken of (the manifest's backend and
//! redacted URL), and in each group the `keep` newest are kept, newest by the manifest's
//! `created_at`, then the run number and the name. An undo script can only be restored after every
//! later run was undone with its own undo script, newest first, so when an undo script of run R is
//! kept, every undo script of the same database for a run after R is kept too, however old.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{BackupError, MANIFEST_FORMAT, Manifest, manifest_path};
use crate::store::BackupKind;

/// Why a backup is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptBecause {
    /// One of the `keep` newest of its database.
    Newest,
    /// An undo script that must be restored before a kept, older one can be.
    NeededByOlderUndo,
}

/// One backup and what pruning did with it.
#[derive(Clone, Debug, Serialize)]
pub struct Pruned {
    pub file: String,
    pub database: String,
    pub created_at: String,
    pub kind: BackupKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// `None`: deleted (or, in a dry run, would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<KeptBecause>,
}

/// What `prune` found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub keep: usize,
    pub dry_run: bool,
    /// Every backup of the directory, newest first within each database.
    pub backups: Vec<Pruned>,
    /// Files that look like backups but whose manifest cannot be read: left alone.
    pub skipped: Vec<String>,
}

impl PruneReport {
    pub fn deleted(&self) -> impl Iterator<Item = &Pruned> {
        self.backups.iter().filter(|b| b.kept.is_none())
    }
}

struct Found {
    path: PathBuf,
    manifest: Manifest,
}

/// Deletes (unless `dry_run`) the backups of `dir` that retention does not keep. `keep` is at
/// least 1: the newest backup of each database is never deleted.
pub fn prune(dir: &Path, keep: usize, dry_run: bool) -> Result<PruneReport, BackupError> {
    let keep = keep.max(1);
    let mut report = PruneReport {
        keep,
        dry_run,
        ..PruneReport::default()
    };
    let (mut found, skipped) = list(dir)?;
    report.skipped = skipped;
    found.sort_by(|a, b| {
        (&a.manifest.backend, &a.manifest.database)
            .cmp(&(&b.manifest.backend, &b.manifest.database))
            .then_with(|| newest_first(a, b))
    });
    let mut start = 0;
    while start < found.len() {
        let group = &found[start..];
        let len = group
            .iter()
            .take_while(|f| {
                f.manifest.backend == group[0].manifest.backend
                    && f.manifest.database == group[0].manifest.database
            })
            .count();
        report
            .backups
            .extend(decide(&found[start..start + len], keep));
        start += len;
    }
    if !dry_run {
        for b in report.deleted() {
            let path = Path::new(&b.file);
            remove(path)?;
            remove(&manifest_path(path))?;
        }
    }
    Ok(report)
}

/// Newest first: by creation time (RFC 3339 in UTC, so text order is time order), then the run
/// number, then the name (`_1`, `_2` … for several in one second).
fn newest_first(a: &Found, b: &Found) -> std::cmp::Ordering {
    (&b.manifest.created_at, b.manifest.run_id, &b.path).cmp(&(
        &a.manifest.created_at,
        a.manifest.run_id,
        &a.path,
    ))
}

/// What to keep of one database's backups, newest first.
fn decide(group: &[Found], keep: usize) -> Vec<Pruned> {
    let mut kept: Vec<Option<KeptBecause>> = (0..group.len())
        .map(|i| (i < keep).then_some(KeptBecause::Newest))
        .collect();
    // The oldest run whose kept undo script needs the undo scripts of every run after it.
    let oldest_kept_undo = group
        .iter()
        .zip(&kept)
        .filter(|(f, k)| k.is_some() && f.manifest.kind == BackupKind::Undo)
        .filter_map(|(f, _)| f.manifest.run_id)
        .min();
    if let Some(oldest) = oldest_kept_undo {
        for (f, k) in group.iter().zip(kept.iter_mut()) {
            let later_undo = f.manifest.kind == BackupKind::Undo
                && f.manifest.run_id.is_some_and(|run| run > oldest);
            if k.is_none() && later_undo {
                *k = Some(KeptBecause::NeededByOlderUndo);
            }
        }
    }
    group
        .iter()
        .zip(kept)
        .map(|(f, kept)| Pruned {
            file: f.path.display().to_string(),
            database: f.manifest.database.clone(),
            created_at: f.manifest.created_at.clone(),
            kind: f.manifest.kind,
            run_id: f.manifest.run_id,
            kept,
        })
        .collect()
}

/// The backups of `dir` (files with a readable manifest of ours beside them), and the backup
/// files whose manifest is unreadable.
fn list(dir: &Path) -> Result<(Vec<Found>, Vec<String>), BackupError> {
    let dir_err = |source| BackupError::Directory {
        dir: dir.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for entry in fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(file_name) = name.strip_suffix(".manifest.json") else {
            continue;
        };
        let path = dir.join(file_name);
        if !path.is_file() {
            continue;
        }
        let manifest = fs::read_to_string(entry.path())
            .ok()
            .and_then(|text| serde_json::from_str::<Manifest>(&text).ok())
            .filter(|m| m.format == MANIFEST_FORMAT);
        match manifest {
            Some(manifest) => found.push(Found { path, manifest }),
            None => skipped.push(path.display().to_string()),
        }
    }
    skipped.sort();
    Ok((found, skipped))
}

fn remove(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::File {
            file: path.display().to_string(),
            source,
        }),
    }
}
