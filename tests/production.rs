//! What a production run shows and leaves behind: no file from a run that writes nothing, progress
//! on a terminal only (drawn through a real pseudo-terminal, by util-linux's `script`), database
//! errors that name the step, the table and the source row, contribution samples with their
//! action, and backup retention (`backup prune`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common;
use crate::harness::{Test, tests};
use serde_json::Value;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            a_failed_migrate_on_a_new_sqlite_file_leaves_no_file_behind,
            progress_is_drawn_on_a_terminal_only_and_never_under_quiet_or_json,
        ],
    }
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");
const BIN: &str = env!("CARGO_BIN_EXE_habitat-migrate");

/// A temporary working directory; runs happen inside it, against `habitat.db` there.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        common::bin()
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("habitat-migrate runs")
    }

    /// A copy of the example bundle, to spoil.
    fn bundle(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        fs::create_dir_all(&dir).expect("bundle directory");
        for entry in fs::read_dir(EXAMPLE).expect("example bundle") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
        }
        dir
    }

    /// The names in the working directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn a_failed_migrate_on_a_new_sqlite_file_leaves_no_file_behind() {
    let work = Work::new();
    let bundle = work.bundle("bundle");
    let members = fs::read_to_string(bundle.join("members.csv")).expect("members");
    fs::write(
        bundle.join("members.csv"),
        members.replacen("daniel.reyes@example.org", "daniel.reyes@example", 1),
    )
    .expect("spoil members");
    for args in [
        vec!["migrate", "bundle"],
        vec!["--format", "json", "migrate", "bundle"],
        vec!["import", "members", "--source", "bundle/members.csv"],
        // References to members the new database cannot hold.
        vec![
            "import",
            "capital-accounts",
            "--source",
            "bundle/capital_accounts.csv",
        ],
    ] {
        let out = work.run(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            common::all_output(&out)
        );
        let all = common::all_output(&out);
        assert!(
            all.contains("email.format") || all.contains("ref.member"),
            "{args:?}: the report says why: {all}"
        );
        assert_eq!(
            work.names(),
            ["bundle"],
            "{args:?} left files behind (database, log, backups)"
        );
    }
    // The same files, once valid, create the database as before.
    fs::write(bundle.join("members.csv"), members).expect("repair members");
    let out = work.run(&["-q", "migrate", "bundle"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    assert!(work.path().join("habitat.db").is_file());
    assert!(work.path().join("migration-logs").is_dir());
}

/// Runs the binary with `args` in `dir` on a pseudo-terminal (standard output and standard error
/// both the terminal), returning what the terminal received.
fn on_a_terminal(dir: &Path, args: &[&str]) -> String {
    let command = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_DIR")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux `script` runs (it gives the command a pseudo-terminal)");
    assert!(
        out.status.success(),
        "{command}: {}",
        common::all_output(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The phases a migrate into a new database shows progress for.
const PHASES: [&str; 7] = [
    "validating the source files",
    "checking the database before the run",
    "writing members",
    "writing capital_accounts",
    "writing contributions",
    "verifying",
    "reading back what was written",
];

fn progress_is_drawn_on_a_terminal_only_and_never_under_quiet_or_json() {
    let work = Work::new();
    let out = work.run(&["gen", "--members", "300", "--out", "bundle", "--seed", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    let url = |name: &str| format!("sqlite://{}", work.path().join(name).display());

    // On a terminal: a line per phase (a spinner or a bar), rates as whole numbers.
    let shown = on_a_terminal(
        work.path(),
        &["--database-url", &url("a.db"), "migrate", "bundle"],
    );
    for phase in PHASES {
        assert!(shown.contains(phase), "no progress for {phase:?}:\n{shown}");
    }
    let rates: Vec<&str> = shown
        .split(" rows/s")
        .filter_map(|before| before.rsplit(['(', ' ']).next())
        .collect();
    assert!(rates.len() > 1, "{shown}");
    for rate in &rates[..rates.len() - 1] {
        assert!(
            !rate.is_empty() && rate.bytes().all(|b| b.is_ascii_digit()),
            "a rate that is not a whole number: {rate:?}"
        );
    }
    assert!(shown.contains("✓ Migration complete"), "{shown}");

    // -q: nothing but failures, so nothing at all on success.
    let quiet = on_a_terminal(
        work.path(),
        &["--database-url", &url("b.db"), "-q", "migrate", "bundle"],
    );
    assert_eq!(quiet, "", "-q printed on a terminal");

    // --format json: the terminal receives one JSON document and nothing else.
    let json = on_a_terminal(
        work.path(),
        &[
            "--database-url",
            &url("c.db"),
            "--format",
            "json",
            "migrate",
            "bundle",
        ],
    );
    let doc: Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{json:?}"));
    assert_eq!(doc["format"], "habitat-migrate/import");

    // Piped (standard error not a terminal): no progress anywhere.
    let out = work.run(&["--database-url", &url("d.db"), "migrate", "bundle"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "stderr when piped"
    );
    let all = common::all_output(&out);
    for phase in PHASES {
        assert!(!all.contains(phase), "{phase:?} when piped:\n{all}");
    }
}
