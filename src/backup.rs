//! Backups and restore (the guide's step 1 and its rollback procedure, made safe).
//!
//! A backup is `pre_migration_YYYYMMDD_HHMMSS.sql` (PostgreSQL: a script that `psql` can replay)
//! or `.db` (SQLite: a copy made with the online backup API), created owner-only, next to a
//! `<file>.manifest.json` holding the file's own SHA-256 and each table's row count and checksum.
//! `restore` refuses a file whose checksum does not match its manifest, replaces the tables in one
//! transaction, and commits only if every table's checksum then equals the manifest's.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{HabitatTable, Outcome, RunRecord};
use crate::store::{Backend, BackupKind, Store, StoreError, TableChecksum, Undo};

mod prune;

pub use prune::{KeptBecause, PruneReport, Pruned, prune};

pub const MANIFEST_FORMAT: &str = "habitat-migrate/backup";

/// What a backup holds, stored beside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub backend: String,
    pub database: String,
    pub created_at: String,
    pub file: String,
    pub file_sha256: String,
    /// A snapshot (version 1 manifests are all snapshots) or the undo of one run.
    #[serde(default)]
    pub kind: BackupKind,
    /// The run an undo reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Snapshot: every table's rows and checksum, which a restore must reproduce.
    #[serde(default)]
    pub tables: Vec<TableChecksum>,
    /// Undo: each Habitat table's row count before the run, which a restore must reproduce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_counts: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "cannot write a backup into {dir}: {source}; nothing was imported (use --backup-dir to choose another directory)"
    )]
    Directory { dir: String, source: io::Error },
    #[error("cannot write the backup file {file}: {source}; nothing was written to the database")]
    File { file: String, source: io::Error },
    #[error("{0}; nothing was changed")]
    Store(#[from] StoreError),
    #[error(
        "{file}: no manifest {manifest} beside it; cannot check the backup, so it is not restored"
    )]
    NoManifest { file: String, manifest: String },
    #[error("{file}: backup file not found")]
    NotFound { file: String },
    #[error("{file}: the manifest is unreadable: {message}")]
    BadManifest { file: String, message: String },
    #[error(
        "{file}: checksum mismatch (manifest {expected}, file {actual}): the backup was changed or damaged; nothing was restored"
    )]
    Tampered {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: this backup is of a {found} database, not {wanted}")]
    WrongBackend {
        file: String,
        found: String,
        wanted: String,
    },
    #[error(
        "after restoring, {table} does not match the backup ({detail}); the restore was rolled back"
    )]
    Mismatch { table: String, detail: String },
    #[error(
        "{file} undoes run {run}, but {later} wrote after it; restore the backups of the later runs first, newest first (see `habitat-migrate runs list`); nothing was changed"
    )]
    NotLatest {
        file: String,
        run: i64,
        later: String,
    },
}

impl BackupError {
    /// Exit code: file problems are 4, database problems 3, a refused or mismatched backup 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            BackupError::Directory { .. }
            | BackupError::File { .. }
            | BackupError::NotFound { .. }
            | BackupError::NoManifest { .. } => 4,
            BackupError::Store(_) => 3,
            _ => 1,
        }
    }
}

fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// Creates a file that only its owner can read or write.
fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use io::Write;
    let mut f = create_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Takes a backup into `dir` (created if missing, owner-only) and returns the file's path.
/// Called inside the run's transaction, so the backup is exactly the state the run starts from.
pub fn take(store: &mut dyn Store, dir: &Path, now: Timestamp) -> Result<PathBuf, BackupError> {
    let path = new_path(store, dir, now)?;
    take_to(store, &path, now).map_err(|e| directory_error(e, dir))
}

/// Takes the backup of a run about to write (see [`Store::write_run_backup`]) into `dir`.
pub fn take_for_run(
    store: &mut dyn Store,
    dir: &Path,
    now: Timestamp,
    undo: Undo<'_>,
) -> Result<PathBuf, BackupError> {
    let path = new_path(store, dir, now)?;
    let run_id = undo.run_id;
    // The row counts an undo must give back, taken before the run writes.
    let counts = HabitatTable::ALL
        .iter()
        .map(|t| Ok((t.name().to_string(), store.row_count(*t)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    write_with_manifest(store, &path, now, |store, path| {
        let kind = store.write_run_backup(path, undo)?;
        Ok(match kind {
            BackupKind::Snapshot => (kind, None, store.table_checksums()?, Vec::new()),
            BackupKind::Undo => (kind, Some(run_id), Vec::new(), counts),
        })
    })
    .map_err(|e| directory_error(e, dir))
}

/// A new, unused `pre_migration_YYYYMMDD_HHMMSS` path in `dir`, created owner-only if missing.
fn new_path(store: &dyn Store, dir: &Path, now: Timestamp) -> Result<PathBuf, BackupError> {
    let dir_err = |source| BackupError::Directory {
        dir: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(dir_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
        }
    }
    let ext = match store.backend() {
        Backend::Postgres => "sql",
        Backend::Sqlite => "db",
    };
    let stamp = now.strftime("%Y%m%d_%H%M%S").to_string();
    // Two runs in one second get distinct names rather than overwriting each other.
    let mut path = dir.join(format!("pre_migration_{stamp}.{ext}"));
    let mut n = 1;
    while path.exists() || manifest_path(&path).exists() {
        path = dir.join(format!("pre_migration_{stamp}_{n}.{ext}"));
        n += 1;
    }
    Ok(path)
}

/// A file that cannot be created for want of permission is a problem of its directory.
fn directory_error(e: BackupError, dir: &Path) -> BackupError {
    match e {
        BackupError::File { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            BackupError::Directory {
                dir: dir.display().to_string(),
                source,
            }
        }
        other => other,
    }
}

/// Takes a snapshot into exactly `path`, which must not exist yet.
pub fn take_to(store: &mut dyn Store, path: &Path, now: Timestamp) -> Result<PathBuf, BackupError> {
    write_with_manifest(store, path, now, |store, path| {
        store.write_backup(path)?;
        Ok((
            BackupKind::Snapshot,
            None,
            store.table_checksums()?,
            Vec::new(),
        ))
    })
}

/// What a backup writer reports for the manifest: its kind, the run it undoes, and what a
/// restore must reproduce.
type Written = (
    BackupKind,
    Option<i64>,
    Vec<TableChecksum>,
    Vec<(String, u64)>,
);

/// Creates `path` owner-only, has `write` fill it, and writes the manifest beside it; removes the
/// file if writing it fails.
fn write_with_manifest(
    store: &mut dyn Store,
    path: &Path,
    now: Timestamp,
    write: impl FnOnce(&mut dyn Store, &Path) -> Result<Written, StoreError>,
) -> Result<PathBuf, BackupError> {
    let path = path.to_path_buf();
    let file_err = |source| BackupError::File {
        file: path.display().to_string(),
        source,
    };
    create_private(&path).map_err(file_err)?;
    let file_err = |source| BackupError::File {
        file: path.display().to_string(),
        source,
    };
    let (kind, run_id, tables, row_counts) = match write(store, &path) {
        Ok(w) => w,
        Err(e) => {
            let _ = fs::remove_file(&path);
            return Err(e.into());
        }
    };
    let file_sha256 = crate::checksum::sha256_reader(fs::File::open(&path).map_err(file_err)?)
        .map_err(file_err)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: 2,
        kind,
        run_id,
        row_counts,
        backend: store.backend().name().into(),
        database: store.url().redacted().to_string(),
        created_at: crate::domain::format_instant(now),
        file: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file_sha256,
        tables,
    };
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    write_private(&manifest_path(&path), &json).map_err(|source| BackupError::File {
        file: manifest_path(&path).display().to_string(),
        source,
    })?;
    Ok(path)
}

/// Reads and checks a backup's manifest against the file.
pub fn check(file: &Path) -> Result<Manifest, BackupError> {
    let shown = file.display().to_string();
    if !file.is_file() {
        return Err(BackupError::NotFound { file: shown });
    }
    let mpath = manifest_path(file);
    let text = fs::read_to_string(&mpath).map_err(|_| BackupError::NoManifest {
        file: shown.clone(),
        manifest: mpath.display().to_string(),
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| BackupError::BadManifest {
        file: shown.clone(),
        message: e.to_string(),
    })?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(BackupError::BadManifest {
            file: shown,
            message: format!("unknown format {}", manifest.format),
        });
    }
    let actual = fs::File::open(file)
        .and_then(crate::checksum::sha256_reader)
        .map_err(|source| BackupError::File {
            file: shown.clone(),
            source,
        })?;
    if actual != manifest.file_sha256 {
        return Err(BackupError::Tampered {
            file: shown,
            expected: manifest.file_sha256,
            actual,
        });
    }
    Ok(manifest)
}

/// An undo may only reverse the last run that wrote: every successful writing run after it must
/// itself be an undo, or have been undone by one.
fn check_latest(store: &mut dyn Store, file: &Path, run: i64) -> Result<(), BackupError> {
    let runs = store.runs(i64::MAX)?;
    let undone: Vec<i64> = runs
        .iter()
        .filter_map(|r| {
            r.counts
                .get("undid_run")
                .and_then(serde_json::Value::as_i64)
        })
        .collect();
    let later: Vec<String> = runs
        .iter()
        .filter(|r| r.id > run && r.outcome == Outcome::Succeeded && !r.dry_run)
        .filter(|r| r.counts.get("undid_run").is_none() && !undone.contains(&r.id))
        .filter(|r| !r.command.starts_with("backup"))
        .map(|r| format!("run {} ({})", r.id, r.command))
        .collect();
    if later.is_empty() {
        Ok(())
    } else {
        Err(BackupError::NotLatest {
            file: file.display().to_string(),
            run,
            later: later.join(", "),
        })
    }
}

/// Restores a backup in one transaction, committing only if the restored tables' checksums match
/// the manifest. Unless `safety_dir` is `None`, the current contents are backed up there first,
/// inside the same transaction, so that restoring the wrong file can be undone.
pub fn restore(
    store: &mut dyn Store,
    file: &Path,
    safety_dir: Option<&Path>,
) -> Result<(Manifest, Option<PathBuf>), BackupError> {
    let command = format!("restore {}", file.display());
    let manifest = check(file)?;
    if manifest.backend != store.backend().name() {
        return Err(BackupError::WrongBackend {
            file: file.display().to_string(),
            found: manifest.backend,
            wanted: store.backend().name().into(),
        });
    }
    store.open_backup(file)?;
    let result = (|| {
        store.begin_write()?;
        if let (BackupKind::Undo, Some(run)) = (manifest.kind, manifest.run_id) {
            check_latest(store, file, run)?;
        }
        let safety = match safety_dir {
            Some(dir) => Some(take(store, dir, Timestamp::now())?),
            None => None,
        };
        store.restore_backup(file)?;
        for (table, rows) in &manifest.row_counts {
            let Some(t) = HabitatTable::ALL.iter().find(|t| t.name() == table) else {
                continue;
            };
            let actual = store.row_count(*t)?;
            if actual != *rows {
                return Err(BackupError::Mismatch {
                    table: table.clone(),
                    detail: format!("{actual} rows, where the run started from {rows}"),
                });
            }
        }
        let now = if manifest.tables.is_empty() {
            Vec::new()
        } else {
            store.table_checksums()?
        };
        for expected in &manifest.tables {
            let actual = now
                .iter()
                .find(|t| t.table == expected.table)
                .cloned()
                .unwrap_or_else(|| TableChecksum {
                    table: expected.table.clone(),
                    rows: 0,
                    sha256: "(no such table)".into(),
                });
            if actual != *expected {
                return Err(BackupError::Mismatch {
                    table: expected.table.clone(),
                    detail: format!(
                        "{} rows, checksum {} vs {} rows, checksum {}",
                        actual.rows, actual.sha256, expected.rows, expected.sha256
                    ),
                });
            }
        }
        // The restore is a run of its own, recorded in the same transaction; an undo's record
        // names the run it undid, so that the run before it can be undone next.
        let mut run = RunRecord::start(command, store.url().redacted());
        run.finished_at = Some(Timestamp::now());
        run.backup_file = safety.as_ref().map(|s| s.display().to_string());
        if let (BackupKind::Undo, Some(undid)) = (manifest.kind, manifest.run_id) {
            run.counts = serde_json::json!({ "undid_run": undid });
        }
        store.insert_run(&run)?;
        store.commit()?;
        Ok(safety)
    })();
    if result.is_err() {
        let _ = store.rollback();
    }
    let closed = store.close_backup();
    let safety = result?;
    closed?;
    Ok((manifest, safety))
}
