//! The suite's harness: every test is a plain function, registered in its module's `tests!` list
//! with what it needs from the machine, and [`run`] hands them all to `libtest-mimic`.
//!
//! Why not `#[test]`: the built-in harness decides whether a test is ignored when it is compiled
//! (`#[ignore]`), but whether a PostgreSQL server is reachable is known only when the tests run.
//! A test that cannot run used to print a SKIP line into captured output and *pass*; here it is
//! listed as ignored, so the runner's own summary counts it ("N skipped" in nextest, "N ignored"
//! in `cargo test`) and never as passed. Under `CI=true` nothing is ignored: a test whose need is
//! missing runs and fails, naming what is missing.
//!
//! nextest lists the tests (`--list`, and `--list --ignored`) and then runs each in a process of
//! its own (`--exact NAME`, plus `--ignored` for a test it listed as ignored). The listing decides:
//! a test process does not probe again but takes the ignored flag from nextest's arguments, so a
//! server that goes away between the listing and a test makes that test fail, never turns it into
//! a pass.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};

use crate::common;

/// What a test needs beyond the binary under test, a temporary directory and SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Runs anywhere the suite builds.
    Nothing,
    /// A PostgreSQL server at the admin URL (`HM_TEST_PG_ADMIN_URL`, see `common`).
    Postgres,
    /// PostgreSQL's server binaries, to start throwaway clusters (`HM_TEST_PG_BINDIR`, see `common`).
    PostgresBinaries,
    /// Headless Chromium and chromedriver (`common::browser`), for what a person sees on a page.
    Browser,
    /// Poppler's `pdftotext`, to read back the text of a PDF the tool wrote.
    Pdftotext,
    /// Both a browser and a PostgreSQL server: a page that migrates into PostgreSQL.
    BrowserAndPostgres,
    /// Both `pdftotext` and a PostgreSQL server: a PDF of what was imported into PostgreSQL.
    PdftotextAndPostgres,
}

/// One registered test: its full module path, what it needs, and the function to run.
#[derive(Clone, Copy)]
pub(crate) struct Test {
    pub(crate) path: &'static str,
    pub(crate) needs: Needs,
    pub(crate) run: fn(),
}

impl Test {
    /// The name the runner shows and filters on: the module path without the crate's name, as
    /// in `conformance::postgres::import_examples_exact`.
    fn name(&self) -> &'static str {
        self.path
            .split_once("::")
            .map_or(self.path, |(_crate, rest)| rest)
    }
}

/// Registers the functions of the calling module, grouped by what they need:
///
/// ```ignore
/// pub(crate) fn tests() -> Vec<Test> {
///     tests! {
///         Nothing: [good_bundle_is_clean, empty_file],
///         Postgres: [existing_money_columns_of_another_scale_are_incompatible],
///     }
/// }
/// ```
///
/// A function left out of every list is dead code, which the lints refuse.
macro_rules! tests {
    ($($needs:ident: [$($test:ident),* $(,)?]),+ $(,)?) => {
        vec![$($(
            $crate::harness::Test {
                path: concat!(module_path!(), "::", stringify!($test)),
                needs: $crate::harness::Needs::$needs,
                run: $test,
            },
        )*)+]
    };
}
pub(crate) use tests;

/// Runs (or lists) `tests` as the command line asks, each need decided once for this process.
pub(crate) fn run(tests: Vec<Test>) -> ExitCode {
    let args = Arguments::from_args();
    let machine = Machine::new(&args);
    let mut ignored: BTreeMap<String, usize> = BTreeMap::new();
    let trials: Vec<Trial> = tests
        .into_iter()
        .map(|test| {
            let lacks = machine.lacks(test.needs);
            let run = test.run;
            let trial = Trial::test(test.name(), move || {
                run();
                Ok(())
            })
            .with_ignored_flag(lacks.is_some());
            if let (Machine::Probed { .. }, Some(reason)) = (&machine, lacks) {
                if !args.is_filtered_out(&trial) {
                    *ignored.entry(reason).or_default() += 1;
                }
            }
            trial
        })
        .collect();
    // The runner's summary only counts ignored tests; this says why, once per missing need.
    for (reason, count) in ignored {
        eprintln!(
            "note: {count} test(s) ignored (counted as skipped, not passed): {reason}. \
             Under CI=true they run and fail instead."
        );
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// How this process decides whether a need is met.
enum Machine {
    /// `CI=true`: every need is taken as met, so a missing one fails its tests.
    Ci,
    /// A nextest test process: ignored exactly when nextest listed it so (it passes `--ignored`).
    AsListed { ignored: bool },
    /// Everything else (`--list`, `cargo test`): probed once, on first use.
    Probed {
        postgres: OnceCell<Option<String>>,
        binaries: OnceCell<Option<String>>,
        browser: OnceCell<Option<String>>,
        pdftotext: OnceCell<Option<String>>,
    },
}

impl Machine {
    fn new(args: &Arguments) -> Machine {
        if common::ci_requires_services() {
            Machine::Ci
        } else if !args.list && std::env::var_os("NEXTEST_EXECUTION_MODE").is_some() {
            Machine::AsListed {
                ignored: args.ignored,
            }
        } else {
            Machine::Probed {
                postgres: OnceCell::new(),
                binaries: OnceCell::new(),
                browser: OnceCell::new(),
                pdftotext: OnceCell::new(),
            }
        }
    }

    /// Why a test that needs `needs` cannot run here, or `None` when it can (or must try).
    fn lacks(&self, needs: Needs) -> Option<String> {
        match (self, needs) {
            (_, Needs::Nothing) | (Machine::Ci, _) => None,
            (Machine::AsListed { ignored }, _) => ignored.then(|| "listed as ignored".to_owned()),
            (Machine::Probed { postgres, .. }, Needs::Postgres) => postgres
                .get_or_init(|| {
                    common::probe_pg().err().map(|e| {
                        format!(
                            "PostgreSQL at {} is unreachable ({}); start a server or set \
                             HM_TEST_PG_ADMIN_URL",
                            common::redact(&common::pg_admin_url()),
                            common::with_causes(&e)
                        )
                    })
                })
                .clone(),
            (Machine::Probed { binaries, .. }, Needs::PostgresBinaries) => binaries
                .get_or_init(|| {
                    common::pg_bindir().is_none().then(|| {
                        "PostgreSQL's server binaries are missing \
                         (no /usr/lib/postgresql/*/bin/initdb; set HM_TEST_PG_BINDIR)"
                            .to_owned()
                    })
                })
                .clone(),
            (Machine::Probed { browser, .. }, Needs::Browser) => {
                browser.get_or_init(common::browser::probe).clone()
            }
            (Machine::Probed { pdftotext, .. }, Needs::Pdftotext) => pdftotext
                .get_or_init(|| {
                    let runs = std::process::Command::new("pdftotext")
                        .arg("-v")
                        .output()
                        .is_ok_and(|o| o.status.success());
                    (!runs).then(|| "no pdftotext (apt-get install poppler-utils)".to_owned())
                })
                .clone(),
            (Machine::Probed { .. }, Needs::BrowserAndPostgres) => self
                .lacks(Needs::Browser)
                .or_else(|| self.lacks(Needs::Postgres)),
            (Machine::Probed { .. }, Needs::PdftotextAndPostgres) => self
                .lacks(Needs::Pdftotext)
                .or_else(|| self.lacks(Needs::Postgres)),
        }
    }
}

/// The harness's own test (not `tests`, the name the macro takes in the modules that import it).
pub(crate) fn own_tests() -> Vec<Test> {
    tests! {
        Nothing: [no_function_carries_a_test_attribute],
        Browser: [the_browser_shows_a_page],
    }
}

/// This binary has no built-in harness, so a `#[test]` (or `#[ignore]`, `#[should_panic]`) is
/// dropped without a word and its test never runs: a test is registered in a `tests!` list.
fn no_function_carries_a_test_attribute() {
    let mut stray = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read tests/") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("read a test file");
                for (index, line) in text.lines().enumerate() {
                    let line = line.trim_start();
                    if ["#[test]", "#[ignore", "#[should_panic"]
                        .iter()
                        .any(|attribute| line.starts_with(attribute))
                    {
                        stray.push(format!("{}:{}: {line}", path.display(), index + 1));
                    }
                }
            }
        }
    }
    assert!(
        stray.is_empty(),
        "these attributes do nothing in this harness; list the function in its module's `tests!` \
         instead:\n{}",
        stray.join("\n")
    );
}

/// The browser the page tests use renders a file, reports what is visible and styled, and gives a
/// screenshot and a PDF back.
fn the_browser_shows_a_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("page.html");
    fs::write(
        &page,
        "<!doctype html><title>Probe</title><p id=shown style='background:#ff0000'>Grüße ✓</p>\
         <p id=hidden style='display:none'>secret</p><button onclick=\"this.textContent='done'\">go</button>",
    )
    .expect("write page");
    let browser = common::browser::Browser::start();
    browser.goto(&format!("file://{}", page.display()));
    assert_eq!(browser.title(), "Probe");
    let shown = browser.find("#shown");
    assert_eq!(browser.text(&shown), "Grüße ✓");
    assert_eq!(
        browser.css(&shown, "background-color"),
        "rgba(255, 0, 0, 1)"
    );
    assert!(!browser.is_displayed(&browser.find("#hidden")));
    let button = browser.find("button");
    browser.click(&button);
    assert_eq!(browser.text(&button), "done");
    assert!(browser.screenshot_png().starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(browser.print_pdf().starts_with(b"%PDF-"));
}
