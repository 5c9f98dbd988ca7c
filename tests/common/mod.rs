//! Shared support for the integration tests: throwaway databases and the binary under test.
//!
//! Every PostgreSQL test gets a database of its own (created here, dropped on `Drop`), so the tests
//! run in parallel without seeing each other. Whether the server is reachable is decided once, by
//! the harness (`harness.rs`), before any test runs: without it the PostgreSQL tests are listed as
//! ignored, except under `CI=true`. A PostgreSQL test that runs therefore expects the server, and
//! fails if it is gone.

pub mod browser;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The admin URL used when `HM_TEST_PG_ADMIN_URL` is not set.
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A PostgreSQL database that exists for one test and is dropped when this value is dropped.
pub struct PgDb {
    /// Connection URL of the test database (same server and user as the admin URL).
    pub url: String,
    /// The database's name, `hm_test_<pid>_<nanos>_<counter>`.
    pub name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin = pg_admin_url();
        match connect_admin(&admin) {
            Ok(mut client) => {
                let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
                if let Err(e) = client.batch_execute(&sql) {
                    eprintln!("warning: could not drop test database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("warning: could not drop test database {}: {e}", self.name),
        }
    }
}

/// The admin URL: env `HM_TEST_PG_ADMIN_URL`, else [`DEFAULT_PG_ADMIN_URL`].
pub fn pg_admin_url() -> String {
    std::env::var("HM_TEST_PG_ADMIN_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_ADMIN_URL.to_owned())
}

fn connect_admin(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    config.connect(postgres::NoTls)
}

/// `CI=true`: services the tests need must be there, and a missing one fails its tests.
pub fn ci_requires_services() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Whether the server at the admin URL accepts a connection (the harness asks once per process).
pub fn probe_pg() -> Result<(), postgres::Error> {
    connect_admin(&pg_admin_url()).map(drop)
}

/// An error and its causes on one line (`error connecting to server: Connection refused …`).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Creates a fresh, empty PostgreSQL database for one test.
///
/// Panics when the server cannot be reached: the harness lists the PostgreSQL tests as ignored
/// when it is unreachable (outside CI), so a test that runs was promised a server.
pub fn fresh_pg() -> PgDb {
    let admin = pg_admin_url();
    let mut client = connect_admin(&admin).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is unreachable: {}{}",
            redact(&admin),
            with_causes(&e),
            if ci_requires_services() {
                " (CI=true: the PostgreSQL tests must run)"
            } else {
                ""
            }
        )
    });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = format!(
        "hm_test_{}_{}_{}",
        std::process::id(),
        nanos,
        DB_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
    let url = with_database(&admin, &name);
    PgDb { url, name }
}

/// The directory of PostgreSQL's server binaries: `HM_TEST_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout). The TLS tests start clusters with them.
pub fn pg_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HM_TEST_PG_BINDIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Replaces the database (path) part of a `postgres://` URL, keeping any `?query`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Hides a password in a URL for messages (`postgres://user:***@host/db`).
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A connection to a test database (sync client, no TLS).
pub fn pg_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", redact(url)))
}

/// A fresh temporary directory and a `sqlite:///abs/path/habitat.db` URL inside it.
/// The database file does not exist yet. Keep the `TempDir` alive for the test's duration.
pub fn fresh_sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("habitat.db");
    let url = format!("sqlite://{}", path.display());
    (dir, url)
}

/// The file path of a `sqlite://PATH` (or `sqlite:PATH`) URL.
pub fn sqlite_path(url: &str) -> std::path::PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_else(|| panic!("not a sqlite URL: {url}"));
    let path = path.split('?').next().unwrap_or(path);
    std::path::PathBuf::from(path)
}

/// Opens the SQLite database of `url` with foreign keys enforced, as the tool does.
pub fn sqlite_conn(url: &str) -> rusqlite::Connection {
    let path = sqlite_path(url);
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    conn.pragma_update(None, "foreign_keys", true)
        .expect("PRAGMA foreign_keys = ON");
    conn
}

/// The `habitat-migrate` binary, with `DATABASE_URL` and `BACKUP_DIR` cleared so that the
/// developer's environment cannot point a test at a real database.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("habitat-migrate");
    cmd.env_remove("DATABASE_URL").env_remove("BACKUP_DIR");
    cmd
}

/// Stdout and stderr of a finished command, as one lossy UTF-8 string (for "names X" checks).
pub fn all_output(output: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `validate-source --format json` on the four files of a bundle directory (the contributions file
/// named by `contributions`), run in `cwd` against a SQLite URL that does not exist.
pub fn validate_bundle(
    cwd: &std::path::Path,
    bundle: &std::path::Path,
    contributions: &str,
) -> std::process::Output {
    bin()
        .current_dir(cwd)
        .args([
            "--database-url",
            "sqlite://none.db",
            "--format",
            "json",
            "validate-source",
        ])
        .arg("--members")
        .arg(bundle.join("members.csv"))
        .arg("--capital-accounts")
        .arg(bundle.join("capital_accounts.csv"))
        .arg("--periods")
        .arg(bundle.join("periods.csv"))
        .arg("--contributions")
        .arg(bundle.join(contributions))
        .output()
        .expect("validate-source runs")
}
