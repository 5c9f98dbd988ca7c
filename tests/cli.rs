//! The command line as a newcomer meets it: completions and the man page from the same
//! definitions as `--help`, `validate-source` on a bundle directory, options listed only where they
//! are used, `-q`, JSON documents (errors included), and the small rough edges — each pinned to the
//! words the user sees. SQLite throughout, in a temporary directory; one test also runs against
//! PostgreSQL when a server is reachable.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common;
use crate::harness::{Test, tests};
use clap::CommandFactory;
use habitat_migrate::cli::Cli;
use serde_json::Value;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            completion_scripts_name_every_command,
            man_page_names_every_command_and_every_top_level_option,
            man_and_completions_survive_a_reader_that_goes_away,
            readme_installs_the_binary_before_using_it_and_names_only_real_commands,
            validate_source_takes_a_bundle_directory_as_migrate_does,
            backup_and_log_options_are_listed_only_by_the_commands_that_use_them,
            backup_and_log_directories_work_before_and_after_the_command,
            quiet_prints_nothing_but_failures_in_every_command,
            runs_show_of_an_unknown_id_is_not_a_usage_error,
            help_names_environment_variables_without_values,
            no_schema_yet_names_the_database_it_looked_at,
            restore_of_a_missing_file_in_an_empty_folder_says_so,
            runs_list_shows_whole_timestamps_and_tables_fit_their_content,
            who_is_the_user_name_when_no_login_variable_is_set,
            generated_members_have_no_negative_opening_balance,
            usage_errors_under_format_json_are_json_documents,
            every_json_document_names_its_format_and_version,
        ],
        Postgres: [
            no_schema_yet_on_postgres_names_the_host_without_the_password,
        ],
    }
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");

/// A working directory with a SQLite URL inside it; every run uses both.
struct Work {
    dir: tempfile::TempDir,
    url: String,
}

impl Work {
    fn new() -> Work {
        let (dir, url) = common::fresh_sqlite();
        Work { dir, url }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = common::bin();
        cmd.current_dir(self.path())
            .env("NO_COLOR", "1")
            .arg("--database-url")
            .arg(&self.url);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .output()
            .expect("habitat-migrate runs")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}:\n{}",
            common::all_output(&out)
        );
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not one JSON document ({e}):\n{}",
                common::all_output(&out)
            )
        })
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
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every command path below the top, from the clap definitions: `["migrate", …, "period create", …]`.
fn command_paths() -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            let path = format!("{prefix}{}", sub.get_name());
            out.push(path.clone());
            walk(sub, &format!("{path} "), out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "", &mut out);
    for expected in [
        "migrate",
        "validate-source",
        "period create",
        "runs show",
        "man",
    ] {
        assert!(out.iter().any(|p| p == expected), "{expected} in {out:?}");
    }
    out
}

/// The long names of the options every command takes (`--database-url`, `--format`, …) and of
/// those accepted before any command (`--backup-dir`, `--log-dir`).
fn top_level_options() -> Vec<String> {
    let options: Vec<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    for expected in [
        "--database-url",
        "--backup-dir",
        "--log-dir",
        "--format",
        "--quiet",
        "--verbose",
    ] {
        assert!(options.iter().any(|o| o == expected), "{expected}");
    }
    options
}

// --- completions and man -------------------------------------------------------------------------

fn completion_scripts_name_every_command() {
    let work = Work::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = work.ok(&["completions", shell]);
        let script = stdout(&out);
        assert!(stderr(&out).is_empty(), "{shell}: {}", stderr(&out));
        for path in command_paths() {
            let name = path.rsplit(' ').next().unwrap_or(&path);
            assert!(
                script.contains(name),
                "the {shell} completion script does not mention {path}"
            );
        }
        for option in top_level_options() {
            assert!(
                script.contains(&option) || script.contains(option.trim_start_matches('-')),
                "{shell}: {option}"
            );
        }
    }
    let bash = stdout(&work.ok(&["completions", "bash"]));
    assert!(bash.contains("complete -F _habitat-migrate") || bash.contains("habitat-migrate"));
    let refused = work.run(&["completions", "tcsh"]);
    assert_eq!(refused.status.code(), Some(2));
}

fn man_page_names_every_command_and_every_top_level_option() {
    let work = Work::new();
    let out = work.ok(&["man"]);
    // roff writes a hyphen as `\-`.
    let page = stdout(&out).replace("\\-", "-");
    assert!(page.contains(".TH habitat-migrate 1"), "a man(7) page");
    for path in command_paths() {
        if path == "help" || path.ends_with(" help") {
            continue;
        }
        assert!(
            page.contains(&format!(".SS \"habitat-migrate {path}\"")),
            "the man page has no section for {path}"
        );
    }
    for option in top_level_options() {
        assert!(page.contains(&option), "the man page lacks {option}");
    }
    // Each command's own options are on the page, under that command.
    let validate = page
        .split(".SS \"habitat-migrate validate-source\"")
        .nth(1)
        .expect("a validate-source section");
    let validate = validate.split(".SS ").next().unwrap_or(validate);
    assert!(validate.contains("--capital-accounts"));
    assert!(validate.contains("BUNDLE_DIR"));
    assert!(!validate.contains("--backup-dir"));
    assert!(page.contains("Exit codes: 0 success"));
    assert_eq!(page.matches(".ds Aq \\(aq").count(), 1, "one preamble");

    // One page per command, for a system's man directory.
    let pages = work.path().join("man1");
    let out = work.ok(&["man", "--out-dir", pages.to_str().expect("utf-8 path")]);
    assert!(stdout(&out).contains("Man pages written to"));
    for path in command_paths() {
        if path == "help" || path.ends_with(" help") {
            continue;
        }
        let file = pages.join(format!("habitat-migrate-{}.1", path.replace(' ', "-")));
        assert!(file.is_file(), "{} missing", file.display());
    }
    assert!(pages.join("habitat-migrate.1").is_file());
}

fn man_and_completions_survive_a_reader_that_goes_away() {
    // `habitat-migrate man | head -1`: the closed pipe must not be a panic.
    let work = Work::new();
    for args in [&["man"][..], &["completions", "bash"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_habitat-migrate"))
            .args(args)
            .current_dir(work.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

// --- the front door ------------------------------------------------------------------------------

fn readme_installs_the_binary_before_using_it_and_names_only_real_commands() {
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let install = readme
        .find("cargo install --path . --locked")
        .expect("README says how to install the binary");
    let first_use = readme
        .lines()
        .scan(0, |offset, line| {
            let start = *offset;
            *offset += line.len() + 1;
            Some((start, line.trim_start()))
        })
        .find(|(_, line)| {
            line.starts_with("$ habitat-migrate ") || line.starts_with("habitat-migrate ")
        })
        .map(|(start, _)| start)
        .expect("README runs habitat-migrate");
    assert!(
        install < first_use,
        "README runs habitat-migrate before saying how to install it"
    );

    // Every command the README shows — in a code block, or in an inline `habitat-migrate …`
    // span — is one that exists, down to its subcommand (`period create`, `runs show`).
    let paths = command_paths();
    let mut shown = Vec::new();
    let mut in_block = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let line = line.trim_start();
            let line = line.strip_prefix("$ ").unwrap_or(line);
            if let Some(rest) = line.strip_prefix("habitat-migrate ") {
                shown.push(rest.to_string());
            }
        } else {
            for span in line.split('`').skip(1).step_by(2) {
                if let Some(rest) = span.strip_prefix("habitat-migrate ") {
                    shown.push(rest.to_string());
                }
            }
        }
    }
    let mut checked = 0;
    for rest in &shown {
        // Top-level options may come first: `habitat-migrate --backup-dir X migrate B`.
        let mut words = rest.split_whitespace().peekable();
        while words.peek().is_some_and(|w| w.starts_with('-')) {
            let option = words.next().unwrap_or_default();
            if !option.contains('=') && !matches!(option, "-q" | "-v" | "--quiet" | "--verbose") {
                words.next();
            }
        }
        let words: Vec<&str> = words.take(2).collect();
        let Some(first) = words.first() else { continue };
        let two = words.join(" ");
        checked += 1;
        assert!(
            paths.iter().any(|p| p == first),
            "README shows `habitat-migrate {rest}`: {first} is not a command"
        );
        // `backup` runs on its own too (`backup prune` is its one subcommand).
        let needs_subcommand = Cli::command()
            .find_subcommand(first)
            .is_some_and(clap::Command::is_subcommand_required_set);
        assert!(
            !needs_subcommand || paths.contains(&two),
            "README shows `habitat-migrate {rest}`: {two} is not a command"
        );
    }
    assert!(checked > 10, "only {checked} commands found in README");
    for section in [
        "completions",
        "man",
        "Dockerfile",
        "docker-compose.example.yml",
    ] {
        assert!(
            readme.contains(section),
            "README does not mention {section}"
        );
    }
}

fn validate_source_takes_a_bundle_directory_as_migrate_does() {
    let work = Work::new();
    let by_dir = work.json(&["validate-source", EXAMPLE]);
    assert_eq!(by_dir["format"], "habitat-migrate/validation");
    assert_eq!(by_dir["ok"], true);
    assert_eq!(by_dir["summary"]["files"], 4);
    let file = |name: &str| format!("{EXAMPLE}/{name}.csv");
    let by_files = work.json(&[
        "validate-source",
        "--members",
        &file("members"),
        "--capital-accounts",
        &file("capital_accounts"),
        "--contributions",
        &file("contributions"),
        "--periods",
        &file("periods"),
    ]);
    assert_eq!(by_dir["summary"], by_files["summary"]);
    assert_eq!(by_dir["files"], by_files["files"]);

    // A bundle with an error fails with the file and line, as the per-file form does.
    let bad = work.bundle("bad");
    let members = fs::read_to_string(bad.join("members.csv")).expect("members");
    fs::write(
        bad.join("members.csv"),
        members.replacen("maya.okonkwo@example.org", "maya.okonkwo@example", 1),
    )
    .expect("spoil");
    let out = work.run(&["validate-source", "bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::all_output(&out));
    assert!(stdout(&out).contains("members.csv:2: error[email.format]"));
    assert!(
        !work.path().join("habitat.db").exists(),
        "validation wrote a database"
    );

    // A directory that is not a bundle is a file error, as in migrate.
    fs::create_dir_all(work.path().join("empty")).expect("empty dir");
    let out = work.run(&["validate-source", "empty"]);
    assert_eq!(out.status.code(), Some(4), "{}", common::all_output(&out));
    assert!(stderr(&out).contains("members"), "{}", stderr(&out));

    // Both forms at once, or neither, is a usage error.
    let both = work.run(&["validate-source", EXAMPLE, "--members", &file("members")]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
    let neither = work.run(&["validate-source"]);
    assert_eq!(neither.status.code(), Some(2));
    assert!(stderr(&neither).contains("--members"));
}

fn backup_and_log_options_are_listed_only_by_the_commands_that_use_them() {
    let work = Work::new();
    let help = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--help");
        stdout(&work.ok(&all))
    };
    let validate = help(&["validate-source"]);
    assert!(validate.contains("--members"));
    for ignored in ["--backup-dir", "--log-dir"] {
        assert!(
            !validate.contains(ignored),
            "validate-source --help lists {ignored}:\n{validate}"
        );
    }
    for command in [
        &["verify"][..],
        &["gen"],
        &["period", "list"],
        &["runs", "list"],
        &["db", "init"],
    ] {
        assert!(!help(command).contains("--log-dir"), "{command:?}");
    }
    for command in [&["migrate"][..], &["import"]] {
        let text = help(command);
        assert!(
            text.contains("--backup-dir") && text.contains("--log-dir"),
            "{command:?}"
        );
    }
    for command in ["backup", "restore"] {
        let text = help(&[command]);
        assert!(text.contains("--backup-dir"), "{command}");
        assert!(!text.contains("--log-dir"), "{command}");
    }
    let top = help(&[]);
    assert!(top.contains("--backup-dir") && top.contains("--log-dir"));

    // Given to a command that ignores it, it is refused rather than silently ignored.
    let out = work.run(&["validate-source", EXAMPLE, "--backup-dir", "b"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::all_output(&out));
}

/// `backup` with the directory options in every position; returns the directory the backup
/// went to (relative to the work dir).
fn backup_lands_in(work: &Work, env: Option<&str>, args: &[&str]) -> String {
    let mut cmd = work.cmd();
    if let Some(dir) = env {
        cmd.env("BACKUP_DIR", dir);
    }
    let out = cmd
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        common::all_output(&out)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let file = PathBuf::from(doc["backup_file"].as_str().expect("backup_file"));
    let dir = file
        .parent()
        .expect("a directory")
        .to_string_lossy()
        .into_owned();
    dir.trim_start_matches("./").to_string()
}

fn backup_and_log_directories_work_before_and_after_the_command() {
    let work = Work::new();
    work.ok(&["db", "init"]);
    assert_eq!(backup_lands_in(&work, None, &["backup"]), "backups");
    assert_eq!(backup_lands_in(&work, Some("env"), &["backup"]), "env");
    assert_eq!(
        backup_lands_in(&work, Some("env"), &["--backup-dir", "before", "backup"]),
        "before"
    );
    assert_eq!(
        backup_lands_in(&work, Some("env"), &["backup", "--backup-dir", "after"]),
        "after"
    );
    assert_eq!(
        backup_lands_in(
            &work,
            None,
            &["--backup-dir", "before", "backup", "--backup-dir", "after"]
        ),
        "after",
        "the option after the command wins"
    );

    // migrate: backups and the run log where they were asked for, in both positions.
    let out = work.ok(&["--backup-dir", "b1", "--log-dir", "l1", "migrate", EXAMPLE]);
    assert!(
        stdout(&out).contains("Backup written: b1/"),
        "{}",
        stdout(&out)
    );
    assert!(
        fs::read_dir(work.path().join("l1"))
            .expect("log dir")
            .count()
            == 1
    );
    let out = work.ok(&["migrate", EXAMPLE, "--backup-dir", "b2", "--log-dir", "l2"]);
    assert!(stdout(&out).contains("Nothing changed"), "{}", stdout(&out));
    let bundle = work.bundle("changed");
    let accounts = fs::read_to_string(bundle.join("capital_accounts.csv")).expect("read");
    fs::write(
        bundle.join("capital_accounts.csv"),
        accounts.replacen("10000.00,10000.00", "10001.00,10001.00", 1),
    )
    .expect("write");
    let out = work.ok(&[
        "migrate",
        "changed",
        "--backup-dir",
        "b3",
        "--log-dir",
        "l3",
    ]);
    assert!(
        stdout(&out).contains("Backup written: b3/"),
        "{}",
        stdout(&out)
    );
    assert!(work.path().join("l3").is_dir());
}

fn quiet_prints_nothing_but_failures_in_every_command() {
    let work = Work::new();
    let quiet_ok = |args: &[&str]| {
        let mut all = vec!["-q"];
        all.extend_from_slice(args);
        let out = work.ok(&all);
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "-q {args:?} printed:\n{}",
            common::all_output(&out)
        );
    };
    quiet_ok(&["db", "init"]);
    quiet_ok(&["db", "status"]);
    quiet_ok(&["gen", "--members", "5", "--out", "gen"]);
    quiet_ok(&["validate-source", "gen"]);
    quiet_ok(&[
        "validate-source",
        "--members",
        "gen/members.csv",
        "--capital-accounts",
        "gen/capital_accounts.csv",
    ]);
    quiet_ok(&["migrate", "gen", "--dry-run"]);
    quiet_ok(&["migrate", "gen"]);
    quiet_ok(&["migrate", "gen", "--no-backup"]);
    quiet_ok(&[
        "import",
        "members",
        "--source",
        "gen/members.csv",
        "--dry-run",
    ]);
    quiet_ok(&["import", "members", "--source", "gen/members.csv"]);
    quiet_ok(&["verify"]);
    quiet_ok(&["backup", "--output", "snapshot.db"]);
    quiet_ok(&["restore", "snapshot.db"]);
    quiet_ok(&["restore", "snapshot.db", "--no-backup"]);
    quiet_ok(&[
        "period",
        "create",
        "--name",
        "Q3 2027",
        "--start",
        "2027-07-01",
        "--end",
        "2027-09-30",
    ]);
    quiet_ok(&["period", "list"]);
    quiet_ok(&["runs", "list"]);
    quiet_ok(&["runs", "show", "1"]);
    quiet_ok(&["man", "--out-dir", "man1"]);

    // Failures are still shown.
    let out = work.run(&["-q", "runs", "show", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no run 99 recorded"),
        "{}",
        stderr(&out)
    );
    let bad = work.bundle("bad");
    fs::write(
        bad.join("capital_accounts.csv"),
        "member_email,balance,tax_basis,notes\nnobody@example.org,-1.00,0.00,\n",
    )
    .expect("spoil");
    let out = work.run(&["-q", "validate-source", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("validation failed: 4 files"),
        "{}",
        stdout(&out)
    );

    // Schema drift fails `db status`, so -q shows it.
    common::sqlite_conn(&work.url)
        .execute(
            "UPDATE hm_schema_migrations SET checksum = 'x' WHERE version = 1",
            [],
        )
        .expect("tamper");
    let out = work.run(&["-q", "db", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("CHECKSUM DRIFT"),
        "{}",
        common::all_output(&out)
    );
}

fn runs_show_of_an_unknown_id_is_not_a_usage_error() {
    let work = Work::new();
    work.ok(&["db", "init"]);
    let out = work.run(&["runs", "show", "99"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::all_output(&out));
    assert_eq!(
        stderr(&out),
        "error: no run 99 recorded (see `habitat-migrate runs list`)\n"
    );
    let out = work.run(&["--format", "json", "runs", "show", "99"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["format"], "habitat-migrate/error");
    // A malformed id still is one.
    assert_eq!(work.run(&["runs", "show", "x"]).status.code(), Some(2));
}

fn help_names_environment_variables_without_values() {
    let unset = common::bin().arg("--help").output().expect("help");
    let text = stdout(&unset);
    assert!(text.contains("[env: DATABASE_URL]"), "{text}");
    assert!(text.contains("[env: BACKUP_DIR]"), "{text}");
    assert!(!text.contains("=]"), "an empty value is shown:\n{text}");

    for args in [
        &["--help"][..],
        &["migrate", "--help"],
        &["backup", "--help"],
    ] {
        let set = common::bin()
            .env("DATABASE_URL", "postgres://u:hunter2@db.example.org/x")
            .env("BACKUP_DIR", "/srv/secret-backups")
            .args(args)
            .output()
            .expect("help");
        let text = stdout(&set);
        assert!(text.contains("[env: BACKUP_DIR]"), "{args:?}: {text}");
        assert!(
            !text.contains("hunter2") && !text.contains("secret-backups"),
            "{text}"
        );
        assert!(
            !text.contains("=]") && !text.contains("BACKUP_DIR="),
            "{text}"
        );
    }
}

fn no_schema_yet_names_the_database_it_looked_at() {
    let work = Work::new();
    let db = work.path().join("habitat.db");
    let out = work.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "error: no Habitat schema yet in the SQLite file {} (it does not exist): run `habitat-migrate db init` first\n",
            db.display()
        )
    );
    // A relative URL is named by its full path.
    fs::write(work.path().join("other.db"), b"").expect("empty file");
    let out = common::bin()
        .current_dir(work.path())
        .args(["--database-url", "sqlite://other.db", "period", "list"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let expected = format!(
        "in the SQLite file {}:",
        work.path().join("other.db").display()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

fn no_schema_yet_on_postgres_names_the_host_without_the_password() {
    let pg = common::fresh_pg();
    // The test server trusts loopback, so a password added to a URL without one is accepted and
    // never needed. A URL that has its own password keeps it, and that one must not show.
    let (scheme, rest) = pg.url.split_once("://").expect("a URL");
    let (user, host) = rest.split_once('@').expect("a user");
    let (url, password) = match user.split_once(':') {
        None => (
            format!("{scheme}://{user}:s3cr3t-pw@{host}"),
            "s3cr3t-pw".to_string(),
        ),
        Some((_, password)) => (pg.url.clone(), password.to_string()),
    };
    let out = common::bin()
        .args(["--database-url", &url, "runs", "list"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3), "{}", common::all_output(&out));
    let all = common::all_output(&out);
    assert!(!all.contains(&password), "{all}");
    let redacted = url.replacen(&format!(":{password}@"), ":***@", 1);
    assert!(
        stderr(&out).contains(&format!("no Habitat schema yet in {redacted}:")),
        "{}",
        stderr(&out)
    );
}

fn restore_of_a_missing_file_in_an_empty_folder_says_so() {
    let work = Work::new();
    let out = work.run(&["restore", "backups/pre_migration_20260101_000000.db"]);
    assert_eq!(out.status.code(), Some(4), "{}", common::all_output(&out));
    assert_eq!(
        stderr(&out),
        "error: backups/pre_migration_20260101_000000.db: backup file not found\n"
    );
    assert!(!work.path().join("habitat.db").exists());
}

fn runs_list_shows_whole_timestamps_and_tables_fit_their_content() {
    let work = Work::new();
    work.ok(&["migrate", EXAMPLE]);
    let long_name = "Extraordinary general assembly allocation 2026";
    work.ok(&[
        "period",
        "create",
        "--name",
        long_name,
        "--start",
        "2026-04-01",
        "--end",
        "2026-06-30",
        "--description",
        "AGM",
    ]);

    let runs = stdout(&work.ok(&["runs", "list"]));
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 3, "{runs}");
    let stamp = |line: &str| {
        line.split_whitespace()
            .nth(1)
            .map(str::to_string)
            .unwrap_or_default()
    };
    for line in &lines[1..] {
        let ts = stamp(line);
        assert_eq!(ts.len(), 20, "{ts} in {line}");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    }
    // Columns line up: "outcome" starts where each run's outcome starts.
    let outcome_at = lines[0].find("outcome").expect("header");
    for line in &lines[1..] {
        assert_eq!(line.find("succeeded"), Some(outcome_at), "{runs}");
    }

    let periods = stdout(&work.ok(&["period", "list"]));
    let lines: Vec<&str> = periods.lines().collect();
    let start_at = lines[0].find("start").expect("header");
    let first_date = |line: &str| {
        (0..line.len()).find(|&i| {
            line.get(i..i + 10)
                .is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok())
        })
    };
    for line in &lines[1..] {
        assert_eq!(first_date(line), Some(start_at), "misaligned:\n{periods}");
    }
    assert!(lines.iter().any(|l| l.starts_with(long_name)));
}

fn who_is_the_user_name_when_no_login_variable_is_set() {
    let expected = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    let expected = String::from_utf8_lossy(&expected.stdout).trim().to_string();
    assert!(!expected.is_empty());
    let work = Work::new();
    let out = work
        .cmd()
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("USERNAME")
        .args([
            "period",
            "create",
            "--name",
            "Q1",
            "--start",
            "2026-01-01",
            "--end",
            "2026-03-31",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    let run = work.json(&["runs", "show", "1"]);
    assert_eq!(run["run"]["invoked_by"], Value::String(expected));
}

fn generated_members_have_no_negative_opening_balance() {
    let work = Work::new();
    work.ok(&["gen", "--members", "60", "--out", "gen", "--seed", "9"]);
    let read = |name: &str| {
        let mut reader = csv::Reader::from_path(work.path().join("gen").join(name)).expect("csv");
        let headers = reader.headers().expect("headers").clone();
        reader
            .records()
            .map(|r| {
                let r = r.expect("record");
                headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect::<std::collections::HashMap<_, _>>()
            })
            .collect::<Vec<_>>()
    };
    let cents = |v: &str| -> i64 {
        let (units, fraction) = v.split_once('.').expect("two decimals");
        units.parse::<i64>().expect("units") * 100 + fraction.parse::<i64>().expect("cents")
    };
    let mut owed = std::collections::HashMap::new();
    for c in read("contributions.csv") {
        if c["status"] == "approved" && c["contribution_type"] != "labor" {
            *owed.entry(c["member_email"].clone()).or_insert(0) += cents(&c["amount"]);
        }
    }
    let accounts = read("capital_accounts.csv");
    assert_eq!(accounts.len(), 60);
    for a in &accounts {
        let sum = owed.get(&a["member_email"]).copied().unwrap_or(0);
        assert!(cents(&a["balance"]) >= sum, "{a:?} below {sum}");
        assert!(cents(&a["tax_basis"]) >= sum, "{a:?} below {sum}");
    }

    // What the import computes agrees: no negative opening balance, no warning.
    let out = work.ok(&["migrate", "gen"]);
    assert!(
        !stdout(&out).contains("negative opening balance"),
        "{}",
        stdout(&out)
    );
    let negative: i64 = common::sqlite_conn(&work.url)
        .query_row(
            "SELECT count(*) FROM hm_opening_balances WHERE opening_balance < 0 OR opening_tax_basis < 0",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(negative, 0);
}

// --- JSON ----------------------------------------------------------------------------------------

fn assert_error_document(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", common::all_output(out));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", common::all_output(out)));
    assert_eq!(doc["format"], "habitat-migrate/error");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exit_code"], code);
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty() && !e.starts_with("error:"))
    );
    doc
}

fn usage_errors_under_format_json_are_json_documents() {
    let work = Work::new();
    let doc = assert_error_document(&work.run(&["--format", "json", "nosuch"]), 2);
    assert_eq!(doc["error"], "unrecognized subcommand 'nosuch'");
    let doc = assert_error_document(&work.run(&["--format=json", "validate-source"]), 2);
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("--members")),
        "{doc}"
    );
    assert_error_document(
        &work.run(&["migrate", EXAMPLE, "--format", "json", "--bogus"]),
        2,
    );
    assert_error_document(
        &work.run(&[
            "--format",
            "json",
            "period",
            "create",
            "--name",
            "x",
            "--start",
            "2026-13-01",
            "--end",
            "2026-12-31",
        ]),
        2,
    );
    // The message also goes to standard error, in clap's words.
    let out = work.run(&["--format", "json", "nosuch"]);
    assert!(stderr(&out).contains("unrecognized subcommand"));

    // Without --format json a usage error prints nothing on standard output.
    let out = work.run(&["nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    // --help is not an error, whatever the format.
    let out = work.run(&["--format", "json", "--help"]);
    assert_eq!(out.status.code(), Some(0));

    // Errors after parsing carry their own exit code.
    assert_error_document(&work.run(&["--format", "json", "restore", "missing.db"]), 4);
    assert_error_document(&work.run(&["--format", "json", "verify"]), 3);
}

fn every_json_document_names_its_format_and_version() {
    let work = Work::new();
    // Each document names its format and a version; the import report is at version 2.
    let check = |args: &[&str], format: &str| {
        let doc = work.json(args);
        assert_eq!(doc["format"], format, "{args:?}: {doc}");
        let expected = if format == "habitat-migrate/import" {
            2
        } else {
            1
        };
        assert_eq!(doc["version"], expected, "{args:?}");
        doc
    };
    check(&["db", "init"], "habitat-migrate/init");
    check(&["db", "status"], "habitat-migrate/status");
    let generated = check(
        &["gen", "--members", "3", "--out", "gen"],
        "habitat-migrate/gen",
    );
    assert_eq!(generated["members"], 3);
    assert_eq!(generated["contributions"], 30);
    check(&["validate-source", "gen"], "habitat-migrate/validation");
    check(&["migrate", "gen"], "habitat-migrate/import");
    check(&["verify"], "habitat-migrate/verify");
    let period = check(
        &[
            "period",
            "create",
            "--name",
            "Q3 2027",
            "--start",
            "2027-07-01",
            "--end",
            "2027-09-30",
        ],
        "habitat-migrate/period",
    );
    assert_eq!(period["period"], "Q3 2027");
    assert_eq!(period["status"], "open");
    check(&["period", "list"], "habitat-migrate/periods");
    let backup = check(&["backup", "--output", "snap.db"], "habitat-migrate/backup");
    assert_eq!(backup["backup_file"], "snap.db");
    let restore = check(&["restore", "snap.db"], "habitat-migrate/restore");
    assert_eq!(restore["ok"], true);
    check(&["runs", "list"], "habitat-migrate/runs");
    check(&["runs", "show", "1"], "habitat-migrate/run");
    check(&["man", "--out-dir", "man1"], "habitat-migrate/man");
}
