//! The sign-off report and the member capital statements (issue 11, items 1, 2 and 5), on both
//! backends, read the way a person reads them.
//!
//! What it proves:
//! - on examples/techne, `report` writes one self-contained HTML page (no external resource) and a
//!   PDF whose text (`pdftotext`) holds who ran what, every source file's SHA-256, the counts, the
//!   verification checks with ✓, the backup with the checksum of its manifest, the account whose
//!   book balance is not its tax basis with its note, and the sign-off block; a balance changed
//!   behind the tool's back shows as a flagged difference of exactly that amount;
//! - the report of an allocation run shows its calculation (every member's amount, the check that
//!   they sum to the pool), and is the default once it is the last successful run;
//! - `statements` writes one HTML and one PDF per member, each with that member's figures and no
//!   other member's email; `--member` picks one (ignoring case) and an unknown email exits 1;
//! - in real headless Chromium: the checks' ✓ and ✗ marks, the highlighted difference's computed
//!   background colour, the sign-off block's Name/Date/Signature lines; a display name holding
//!   markup is shown as text and never runs;
//! - usage errors (an output that is neither .html nor .pdf, a run that does not exist, a
//!   database with no run) exit with their codes and write nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::{self, browser::Browser};
use crate::harness::{Test, tests};
use sha2::{Digest, Sha256};

/// The tests of this file (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    let mut all = postgres::tests();
    all.extend(sqlite::tests());
    all.extend(tests! {
        Nothing: [usage_errors_write_nothing],
        Browser: [
            a_person_sees_the_checks_a_difference_and_the_sign_off_block,
            a_person_sees_a_statement_and_markup_in_a_name_stays_text,
        ],
    });
    all
}

const TECHNE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");

/// A fresh database of one backend and the working directory the binary runs in.
struct Db {
    url: String,
    work: tempfile::TempDir,
    pg: Option<common::PgDb>,
    _sqlite: Option<tempfile::TempDir>,
}

impl Db {
    fn postgres() -> Db {
        let db = common::fresh_pg();
        Db {
            url: db.url.clone(),
            work: tempfile::tempdir().expect("work dir"),
            pg: Some(db),
            _sqlite: None,
        }
    }

    fn sqlite() -> Db {
        let (dir, url) = common::fresh_sqlite();
        Db {
            url,
            work: tempfile::tempdir().expect("work dir"),
            pg: None,
            _sqlite: Some(dir),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        common::bin()
            .current_dir(self.work.path())
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .timeout(Duration::from_secs(300))
            .output()
            .expect("run habitat-migrate")
    }

    /// Runs the binary, asserts its exit code, returns standard output.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}:\n{}",
            common::all_output(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn migrate(&self) {
        self.expect(0, &["-q", "migrate", TECHNE]);
    }

    /// Moves a member's book balance by one unit (1.00) behind the tool's back, as a hand edit
    /// in the database would: the reconciliation must show exactly that difference.
    fn nudge_balance(&self, email: &str) {
        let pg = format!(
            "UPDATE capital_accounts SET balance = balance + 1 WHERE member_id =
               (SELECT id FROM members WHERE email = '{email}')"
        );
        if let Some(db) = &self.pg {
            common::pg_client(&db.url)
                .batch_execute(&pg)
                .expect("nudge a balance");
        } else {
            // SQLite keeps money as integer cents.
            let sqlite = pg.replace("balance + 1", "balance + 100");
            common::sqlite_conn(&self.url)
                .execute_batch(&sqlite)
                .expect("nudge a balance");
        }
    }

    fn set_display_name(&self, email: &str, name: &str) {
        let sql = "UPDATE members SET display_name = $1 WHERE email = $2";
        if let Some(db) = &self.pg {
            common::pg_client(&db.url)
                .execute(sql, &[&name, &email])
                .expect("set a display name");
        } else {
            common::sqlite_conn(&self.url)
                .execute(
                    "UPDATE members SET display_name = ?1 WHERE email = ?2",
                    [name, email],
                )
                .expect("set a display name");
        }
    }
}

fn sha256_of(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The text of a PDF as `pdftotext` extracts it (reading order, no layout), with each run of
/// white space made one space: where a line wraps is layout, not content.
fn pdf_text(path: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(
        out.status.success(),
        "pdftotext {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pdftotext writes UTF-8")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The SHA-256 the backup's manifest records, from the one backup in `backups/`.
fn backup_checksum(db: &Db) -> (String, String) {
    let dir = db.path("backups");
    let manifest = fs::read_dir(&dir)
        .expect("backups/")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .expect("a manifest");
    let doc: serde_json::Value = serde_json::from_str(&read(&manifest)).expect("manifest JSON");
    (
        doc["file"].as_str().expect("file").to_string(),
        doc["file_sha256"].as_str().expect("sha").to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Both backends
// ---------------------------------------------------------------------------------------------

fn report_of_a_migration(db: &Db) {
    db.migrate();
    db.nudge_balance("priya.raman@example.org");
    let out = db.expect(0, &["report", "--output", "signoff.html"]);
    assert_eq!(
        out,
        format!("✓ Sign-off report of run 1 written: signoff.html\n")
    );
    db.expect(
        0,
        &["-q", "report", "--run", "1", "--output", "signoff.pdf"],
    );
    let html = read(&db.path("signoff.html"));
    let pdf = pdf_text(&db.path("signoff.pdf"));
    let (backup_file, backup_sha) = backup_checksum(db);
    for text in [&html, &pdf] {
        for needle in [
            "Migration sign-off report — run 1",
            "habitat-migrate migrate",
            "members.csv",
            "Source validation passed: 4 file(s), 34 row(s)",
            "All members have valid emails",
            "All verification checks passed",
            "Read-back of contributions: 8 source rows, 8 in the database",
            "Book balance ≠ tax basis",
            "tom.lindqvist@example.org",
            "6500.00",
            "4000.00",
            "Property contribution: CNC router and hand tools",
            backup_sha.as_str(),
            "1 of 12 capital account(s) differ",
            "Treasurer",
            "Second signatory",
        ] {
            assert!(
                text.contains(needle),
                "the report lacks {needle:?}:\n{text}"
            );
        }
        for file in [
            "members.csv",
            "capital_accounts.csv",
            "periods.csv",
            "contributions.csv",
        ] {
            let sha = sha256_of(&Path::new(TECHNE).join(file));
            assert!(text.contains(&sha), "no SHA-256 of {file} ({sha}):\n{text}");
        }
    }
    assert!(html.contains(&backup_file) || html.contains(backup_file.trim_start_matches("./")));
    // The nudged balance is the one flagged difference, of exactly 1.00, on the book balance only.
    assert_eq!(html.matches("class=\"num flagged\"").count(), 1, "{html}");
    assert!(html.contains("<td>priya.raman@example.org</td><td>balance</td>"));
    assert!(
        html.contains("<td class=\"num flagged\">+1.00</td>"),
        "{html}"
    );
    assert!(pdf.contains("+1.00"));
    for marks in ["✓", "✗"] {
        assert!(pdf.contains(marks), "the PDF lacks {marks}");
    }
    assert!(pdf.contains("Signature") && pdf.contains("Page 1 of"));
    // Self-contained: nothing to fetch.
    for external in ["<link", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "the page refers to {external}");
    }
}

fn report_of_an_allocation(db: &Db) {
    db.migrate();
    db.expect(
        0,
        &[
            "-q", "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
        ],
    );
    // The allocation is now the last successful run: the default.
    db.expect(0, &["-q", "report", "--output", "allocation.pdf"]);
    db.expect(
        0,
        &["-q", "report", "--run", "2", "--output", "allocation.html"],
    );
    let pdf = pdf_text(&db.path("allocation.pdf"));
    let html = read(&db.path("allocation.html"));
    for text in [&pdf, &html] {
        for needle in [
            "Allocation sign-off report — run 2",
            "The calculation",
            "Q4 2025 (closed)",
            "labor 1.0, capital 0.5, property 0.5",
            "Allocations sum to the pool: 10000.00 = 10000.00",
            "amara.diallo@example.org",
            "900.91 (+1 cent)",
            "2648.16",
            "9440.50",
            "sofia.rossi@example.org",
        ] {
            assert!(
                text.contains(needle),
                "the report lacks {needle:?}:\n{text}"
            );
        }
    }
    // Its changes are its 7 inserted allocations, counted; no value was changed.
    assert!(
        html.contains("<td>allocations</td><td class=\"num\">7</td>"),
        "{html}"
    );
}

fn statements_of_every_member(db: &Db) {
    db.migrate();
    db.expect(
        0,
        &[
            "-q", "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
        ],
    );
    let out = db.expect(0, &["statements", "--output", "statements"]);
    assert!(
        out.starts_with("✓ 12 member statement(s) written to statements"),
        "{out}"
    );
    let dir = db.path("statements");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("statements/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 24, "{names:?}");
    let emails: Vec<String> = read(&Path::new(TECHNE).join("members.csv"))
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    assert_eq!(emails.len(), 12);
    for email in &emails {
        assert!(
            names.contains(&format!("statement_{email}.html")),
            "{names:?}"
        );
        assert!(
            names.contains(&format!("statement_{email}.pdf")),
            "{names:?}"
        );
    }
    // Daniel: capital 5000.00 approved in Q4 2025, an allocation of 2648.16 calculated.
    let daniel = read(&dir.join("statement_daniel.reyes@example.org.html"));
    let daniel_pdf = pdf_text(&dir.join("statement_daniel.reyes@example.org.pdf"));
    for text in [&daniel, &daniel_pdf] {
        for needle in [
            "Capital account statement — Daniel Reyes",
            "Capital and property contributions by period",
            "Q4 2025",
            "5000.00",
            "2648.16",
            "0.2648164822",
            "calculated",
            "The balance and the tax basis reconcile with the records",
            "No labor contribution is recorded.",
        ] {
            assert!(
                text.contains(needle),
                "Daniel's statement lacks {needle:?}:\n{text}"
            );
        }
    }
    // Only his figures: no other member is named.
    for other in emails.iter().filter(|e| *e != "daniel.reyes@example.org") {
        assert!(
            !daniel.contains(other.as_str()),
            "Daniel's statement names {other}"
        );
        assert!(
            !daniel_pdf.contains(other.as_str()),
            "Daniel's PDF names {other}"
        );
    }
    // Lucía: labor only (patronage, not capital), her accented name printed in the PDF.
    let lucia = pdf_text(&dir.join("statement_lucia.fernandez@example.org.pdf"));
    for needle in [
        "Capital account statement — Lucía Fernández",
        "Labor contributions (patronage, not capital)",
        "1500.00",
        "No capital or property contribution is recorded.",
    ] {
        assert!(
            lucia.contains(needle),
            "Lucía's statement lacks {needle:?}:\n{lucia}"
        );
    }
    // Tom: book balance 6500.00, tax basis 4000.00, with the account's note.
    let tom = read(&dir.join("statement_tom.lindqvist@example.org.html"));
    assert!(
        tom.contains("Book balance 6500.00 differs from tax basis 4000.00"),
        "{tom}"
    );
    assert!(
        tom.contains("note: Property contribution: CNC router"),
        "{tom}"
    );

    // One member, named in any case.
    let one = db.expect(
        0,
        &[
            "statements",
            "--output",
            "one",
            "--member",
            "MAYA.Okonkwo@example.org",
        ],
    );
    assert!(one.starts_with("✓ 1 member statement(s)"), "{one}");
    assert_eq!(fs::read_dir(db.path("one")).expect("one/").count(), 2);
    let out = db.run(&[
        "statements",
        "--output",
        "none",
        "--member",
        "nobody@example.org",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", common::all_output(&out));
    assert!(
        common::all_output(&out).contains("no member with email nobody@example.org"),
        "{}",
        common::all_output(&out)
    );
}

mod postgres {
    use super::*;

    pub(super) fn tests() -> Vec<Test> {
        tests! {
            PdftotextAndPostgres: [report_of_a_migration_pg, report_of_an_allocation_pg, statements_pg],
        }
    }

    fn report_of_a_migration_pg() {
        report_of_a_migration(&Db::postgres());
    }

    fn report_of_an_allocation_pg() {
        report_of_an_allocation(&Db::postgres());
    }

    fn statements_pg() {
        statements_of_every_member(&Db::postgres());
    }
}

mod sqlite {
    use super::*;

    pub(super) fn tests() -> Vec<Test> {
        tests! {
            Pdftotext: [
                report_of_a_migration_sqlite,
                report_of_an_allocation_sqlite,
                statements_sqlite,
            ],
        }
    }

    fn report_of_a_migration_sqlite() {
        report_of_a_migration(&Db::sqlite());
    }

    fn report_of_an_allocation_sqlite() {
        report_of_an_allocation(&Db::sqlite());
    }

    fn statements_sqlite() {
        statements_of_every_member(&Db::sqlite());
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

fn usage_errors_write_nothing() {
    let db = Db::sqlite();
    db.expect(0, &["-q", "db", "init"]);
    let out = db.run(&["report", "--output", "signoff.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::all_output(&out));
    assert!(common::all_output(&out).contains("must end in .html or .pdf"));
    let out = db.run(&["report", "--output", "signoff.html"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::all_output(&out));
    assert!(common::all_output(&out).contains("no successful run recorded yet"));
    db.migrate();
    let out = db.run(&["report", "--run", "99", "--output", "signoff.pdf"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::all_output(&out));
    assert!(common::all_output(&out).contains("no run 99 recorded"));
    for name in ["signoff.txt", "signoff.html", "signoff.pdf"] {
        assert!(!db.path(name).exists(), "{name} was written");
    }
    let json: serde_json::Value =
        serde_json::from_str(&db.expect(0, &["--format", "json", "report", "--output", "r.html"]))
            .expect("one JSON document");
    assert_eq!(json["format"], "habitat-migrate/report");
    assert_eq!(json["run_id"], 1);
}

// ---------------------------------------------------------------------------------------------
// In a real browser
// ---------------------------------------------------------------------------------------------

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn a_person_sees_the_checks_a_difference_and_the_sign_off_block() {
    let db = Db::sqlite();
    db.migrate();
    db.nudge_balance("priya.raman@example.org");
    db.expect(0, &["-q", "report", "--output", "signoff.html"]);
    let browser = Browser::start();
    browser.goto(&file_url(&db.path("signoff.html")));
    assert_eq!(browser.title(), "Migration sign-off report — run 1");
    assert_eq!(
        browser.text(&browser.find("h1")),
        "Migration sign-off report — run 1"
    );
    // Every check of the run passed, shown with a green ✓; the reconciliation made now fails.
    let passed = browser.find_all("li.check.pass");
    assert!(passed.len() >= 10, "{} passing checks", passed.len());
    let marks = browser.find_all("li.check.pass .mark");
    assert_eq!(marks.len(), passed.len());
    for mark in &marks {
        assert_eq!(browser.text(mark), "✓");
        assert_eq!(browser.css(mark, "color"), "rgba(26, 127, 55, 1)");
    }
    let failed = browser.find_all("li.check.fail");
    assert_eq!(failed.len(), 1);
    assert!(
        browser
            .text(&failed[0])
            .starts_with("✗1 of 12 capital account(s) differ"),
        "{}",
        browser.text(&failed[0])
    );
    // The one difference, highlighted.
    let flagged = browser.find_all("td.flagged");
    assert_eq!(flagged.len(), 1);
    assert_eq!(browser.text(&flagged[0]), "+1.00");
    assert_eq!(
        browser.css(&flagged[0], "background-color"),
        "rgba(255, 227, 224, 1)"
    );
    let plain = browser.find("td.num:not(.flagged)");
    assert_eq!(browser.css(&plain, "background-color"), "rgba(0, 0, 0, 0)");
    // The sign-off block: two signatories, each with a line for name, date and signature.
    let block = browser.find(".signoff");
    assert!(browser.is_displayed(&block));
    let text = browser.text(&block);
    for needle in ["Treasurer", "Second signatory", "Name", "Date", "Signature"] {
        assert!(
            text.contains(needle),
            "sign-off block lacks {needle}: {text}"
        );
    }
    let lines = browser.find_all(".signoff .field .line");
    assert_eq!(lines.len(), 6);
    assert_eq!(browser.css(&lines[0], "border-bottom-style"), "solid");
}

fn a_person_sees_a_statement_and_markup_in_a_name_stays_text() {
    let db = Db::sqlite();
    db.migrate();
    let evil =
        "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>Maya";
    db.set_display_name("maya.okonkwo@example.org", evil);
    db.nudge_balance("maya.okonkwo@example.org");
    db.expect(
        0,
        &[
            "-q",
            "statements",
            "--output",
            "out",
            "--member",
            "maya.okonkwo@example.org",
        ],
    );
    let page = db
        .path("out")
        .join("statement_maya.okonkwo@example.org.html");
    let browser = Browser::start();
    browser.goto(&file_url(&page));
    std::thread::sleep(Duration::from_millis(200));
    // Had the name's script or its image's handler run, the title would be "pwned".
    assert_eq!(
        browser.title(),
        format!("Capital account statement — {evil}"),
        "the name's markup ran"
    );
    assert_eq!(
        browser.text(&browser.find("h1")),
        format!("Capital account statement — {evil}")
    );
    assert!(browser.find_all("main script, main img").is_empty());
    // The nudged balance: the statement's difference is flagged, on the book balance only.
    let flagged = browser.find_all("td.flagged");
    assert_eq!(flagged.len(), 1);
    assert_eq!(browser.text(&flagged[0]), "+1.00");
    assert_eq!(
        browser.css(&flagged[0], "background-color"),
        "rgba(255, 227, 224, 1)"
    );
    let fail = browser.find("li.check.fail");
    assert_eq!(
        browser.text(&fail),
        "✗The balance or the tax basis differs from the records (highlighted)"
    );
}
