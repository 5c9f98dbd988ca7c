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

use crate::store::{Backend, Store, StoreError, TableChecksum};

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
    pub tables: Vec<TableChecksum>,
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
    take_to(store, &path, now).map_err(|e| match e {
        BackupError::File { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            BackupError::Directory {
                dir: dir.display().to_string(),
                source,
            }
        }
        other => other,
    })
}

/// Takes a backup into exactly `path`, which must not exist yet.
pub fn take_to(store: &mut dyn Store, path: &Path, now: Timestamp) -> Result<PathBuf, BackupError> {
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
    let written = store
        .write_backup(&path)
        .and_then(|()| store.table_checksums());
    let tables = match written {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_file(&path);
            return Err(e.into());
        }
    };
    let file_sha256 = crate::checksum::sha256_reader(fs::File::open(&path).map_err(file_err)?)
        .map_err(file_err)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: 1,
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

/// Restores a backup in one transaction, committing only if the restored tables' checksums match
/// the manifest. Unless `safety_dir` is `None`, the current contents are backed up there first,
/// inside the same transaction, so that restoring the wrong file can be undone.
pub fn restore(
    store: &mut dyn Store,
    file: &Path,
    safety_dir: Option<&Path>,
) -> Result<(Manifest, Option<PathBuf>), BackupError> {
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
        let safety = match safety_dir {
            Some(dir) => Some(take(store, dir, Timestamp::now())?),
            None => None,
        };
        store.restore_backup(file)?;
        let now = store.table_checksums()?;
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
