//! Workbooks (`.xlsx`, `.ods`) as bundles: each test writes the workbook it reads (with
//! rust_xlsxwriter, the well-kept writer), or reads the examples LibreOffice saved, and checks
//! what `validate-source` and `migrate` make of typed cells: number and text amounts, dates in the
//! 1900 and 1904 systems, formulas with and without a result, error values, hidden sheets, and the
//! empty rows and columns a spreadsheet leaves behind, each diagnostic in the sheet's coordinates.

use std::io::{Read, Write};
use std::path::Path;

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};
use serde_json::Value;

use crate::common;
use crate::harness::{Test, tests};

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            example_workbooks_validate_like_the_csv_bundle,
            number_and_text_amounts_are_exact_and_extra_decimals_refused,
            a_bad_cell_is_named_by_sheet_and_cell,
            dates_in_the_1900_and_1904_systems,
            date_time_keeps_its_time,
            formula_results_errors_and_booleans,
            hidden_sheets_are_not_read,
            empty_trailing_rows_and_columns_ignored_middle_row_a_note,
            missing_and_doubled_sheets_are_file_errors_naming_the_sheets,
            not_a_workbook_is_a_file_error,
            import_step_reads_the_sheet_of_its_table,
            generated_workbook_validates_clean,
        ],
    }
}

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// A cell as a treasurer might have typed it.
#[derive(Clone, Copy)]
enum C<'a> {
    T(&'a str),
    N(f64),
    /// A date cell (yyyy-mm-dd format).
    D(u16, u8, u8),
    /// A date-time cell: date, hour, minute.
    Dt(u16, u8, u8, u16, u8),
    B(bool),
    /// A formula and the result saved with it.
    F(&'a str, &'a str),
    E,
}

const MEMBERS_HEADER: &[&str] = &[
    "email",
    "display_name",
    "ens_name",
    "role",
    "status",
    "joined_at",
];

fn member<'a>(email: &'a str, name: &'a str) -> Vec<C<'a>> {
    vec![
        C::T(email),
        C::T(name),
        C::E,
        C::T("member"),
        C::T("active"),
        C::D(2025, 1, 1),
    ]
}

fn write_rows(sheet: &mut Worksheet, header: &[&str], rows: &[Vec<C<'_>>]) {
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let amount = Format::new().set_num_format("0.00");
    for (col, name) in (0u16..).zip(header) {
        sheet.write_string(0, col, *name).expect("header cell");
    }
    for (row, cells) in (1u32..).zip(rows) {
        for (col, cell) in (0u16..).zip(cells) {
            let done = match *cell {
                C::T(t) => sheet.write_string(row, col, t).map(drop),
                C::N(n) => sheet
                    .write_number_with_format(row, col, n, &amount)
                    .map(drop),
                C::D(y, m, d) => {
                    let date = ExcelDateTime::from_ymd(y, m, d).expect("a date");
                    sheet
                        .write_datetime_with_format(row, col, &date, &day)
                        .map(drop)
                }
                C::Dt(y, m, d, h, mi) => {
                    let date = ExcelDateTime::from_ymd(y, m, d)
                        .and_then(|dt| dt.and_hms(h, mi, 0))
                        .expect("a date-time");
                    sheet
                        .write_datetime_with_format(row, col, &date, &time)
                        .map(drop)
                }
                C::B(b) => sheet.write_boolean(row, col, b).map(drop),
                C::F(f, result) => sheet
                    .write_formula(row, col, Formula::new(f).set_result(result))
                    .map(drop),
                C::E => Ok(()),
            };
            done.expect("write a cell");
        }
    }
}

/// A sheet: its name, header and rows.
struct Sheet<'a> {
    name: &'a str,
    header: &'a [&'a str],
    rows: Vec<Vec<C<'a>>>,
    hidden: bool,
}

fn sheet<'a>(name: &'a str, header: &'a [&'a str], rows: Vec<Vec<C<'a>>>) -> Sheet<'a> {
    Sheet {
        name,
        header,
        rows,
        hidden: false,
    }
}

fn write_book(path: &Path, sheets: &[Sheet<'_>]) {
    let mut book = Workbook::new();
    for s in sheets {
        let ws = book.add_worksheet();
        ws.set_name(s.name).expect("sheet name");
        write_rows(ws, s.header, &s.rows);
        if s.hidden {
            ws.set_hidden(true);
        }
    }
    book.save(path).expect("save the workbook");
}

/// Two members and their capital accounts: the smallest valid workbook, plus `more` sheets.
fn book_with(path: &Path, accounts: Vec<Vec<C<'_>>>, more: Vec<Sheet<'_>>) {
    let mut sheets = vec![
        sheet(
            "members",
            MEMBERS_HEADER,
            vec![
                member("ana@example.org", "Ana"),
                member("ben@example.org", "Ben"),
            ],
        ),
        sheet(
            "capital_accounts",
            &["member_email", "balance", "tax_basis", "notes"],
            accounts,
        ),
    ];
    sheets.extend(more);
    write_book(path, &sheets);
}

fn accounts<'a>(ana: C<'a>, ben: C<'a>) -> Vec<Vec<C<'a>>> {
    vec![
        vec![C::T("ana@example.org"), ana, ana, C::E],
        vec![C::T("ben@example.org"), ben, ben, C::E],
    ]
}

/// `validate-source --format json BOOK` in a scratch directory: (exit code, report).
fn validate(book: &Path) -> (i32, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::bin()
        .current_dir(dir.path())
        .args([
            "--database-url",
            "sqlite://none.db",
            "--format",
            "json",
            "validate-source",
        ])
        .arg(book)
        .output()
        .expect("validate-source runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

/// `validate-source BOOK` as a person reads it: (exit code, all output).
fn validate_human(book: &Path) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::bin()
        .current_dir(dir.path())
        .args(["--database-url", "sqlite://none.db", "validate-source"])
        .arg(book)
        .output()
        .expect("validate-source runs");
    (out.status.code().unwrap_or(-1), common::all_output(&out))
}

/// The diagnostics of a report as `rule sheet!C7 value`, one per line, for exact comparison.
fn findings(report: &Value) -> Vec<String> {
    report["diagnostics"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|d| {
                    format!(
                        "{} {}!{}{} {}",
                        d["rule"].as_str().unwrap_or("?"),
                        d["sheet"].as_str().unwrap_or("?"),
                        d["column_letter"].as_str().unwrap_or(""),
                        d["row"].as_u64().map_or("?".into(), |r| r.to_string()),
                        d["value"].as_str().unwrap_or("-"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Migrates `book` into a fresh SQLite file: (exit code, the SQLite URL, its directory).
fn migrate(book: &Path) -> (i32, String, tempfile::TempDir) {
    let (dir, url) = common::fresh_sqlite();
    let out = common::bin()
        .current_dir(dir.path())
        .args(["--database-url", &url, "migrate"])
        .arg(book)
        .output()
        .expect("migrate runs");
    assert!(
        out.status.success(),
        "migrate failed:\n{}",
        common::all_output(&out)
    );
    (out.status.code().unwrap_or(-1), url, dir)
}

fn examples(name: &str) -> std::path::PathBuf {
    Path::new(EXAMPLES).join(name)
}

fn example_workbooks_validate_like_the_csv_bundle() {
    let (code, csv) = validate(&examples("techne"));
    assert_eq!(code, 0);
    for book in ["techne.xlsx", "techne.ods"] {
        let (code, report) = validate(&examples(book));
        assert_eq!(code, 0, "{book}: {report}");
        assert_eq!(report["summary"], csv["summary"], "{book}");
        // The one note (a property's tax basis) is on the sheet's cell.
        assert_eq!(
            findings(&report),
            ["balance.tax_basis_differs capital_accounts!C5 4000.00"],
            "{book}"
        );
        let files: Vec<&str> = report["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["path"].as_str())
            .collect();
        assert!(
            files
                .iter()
                .any(|p| p.ends_with(&format!("{book}[members]"))),
            "{files:?}"
        );
    }
}

fn number_and_text_amounts_are_exact_and_extra_decimals_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    // 1234.5 typed as a number, 850.50 typed as text: both exact.
    book_with(&book, accounts(C::N(1234.5), C::T("850.50")), vec![]);
    let (_, url, _dir) = migrate(&book);
    let conn = common::sqlite_conn(&url);
    let cents: Vec<i64> = conn
        .prepare("SELECT balance FROM capital_accounts ORDER BY balance")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(Iterator::collect::<Result<Vec<i64>, _>>)
        })
        .expect("read balances");
    assert_eq!(cents, [85_050, 123_450]);

    // What `=0.1+0.2` leaves in a cell is refused with the usual hint, not rounded.
    let sum: f64 = "0.30000000000000004".parse().expect("a float");
    book_with(&book, accounts(C::N(sum), C::N(10.0)), vec![]);
    let (code, report) = validate(&book);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [
            "money.scale capital_accounts!B2 0.30000000000000004",
            "money.scale capital_accounts!C2 0.30000000000000004",
        ]
    );
    assert!(
        report["diagnostics"][0]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("round in the source file")),
        "{report}"
    );
}

fn a_bad_cell_is_named_by_sheet_and_cell() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    let members_rows = vec![
        member("ana@example.org", "Ana"),
        member("ben@example.org", "Ben"),
        member("cy@example.org", "Cy"),
        member("dee@example.org", "Dee"),
        member("eve@example.org", "Eve"),
        vec![
            C::T("fay@example.org"),
            C::T("Fay"),
            C::E,
            C::T("boss"),
            C::T("active"),
            C::D(2025, 1, 1),
        ],
    ];
    write_book(
        &book,
        &[
            sheet("Members", MEMBERS_HEADER, members_rows),
            sheet(
                "Capital Accounts",
                &["member_email", "balance", "tax_basis", "notes"],
                accounts(C::N(1.0), C::N(2.0)),
            ),
        ],
    );
    let (code, report) = validate(&book);
    assert_eq!(code, 1);
    assert_eq!(findings(&report), ["member.role Members!D7 boss"]);
    let d = &report["diagnostics"][0];
    assert_eq!(d["column"], "role");
    assert_eq!(d["line"], 7);
    let (_, human) = validate_human(&book);
    assert!(
        human.contains("  Members!D7: error[member.role] column role: invalid role `boss`"),
        "{human}"
    );
    assert!(
        human.contains("book.xlsx[Members] (members, 6 rows)"),
        "{human}"
    );
}

/// Rewrites the XML parts of an `.xlsx` file whose names start with `prefix`.
fn patch_parts(path: &Path, prefix: &str, patch: impl Fn(String) -> String) {
    let bytes = std::fs::read(path).expect("read the workbook");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut patched = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("an entry");
        let name = entry.name().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read an entry");
        if name.starts_with(prefix) {
            let text = String::from_utf8(data).expect("UTF-8 XML");
            let changed = patch(text.clone());
            patched += usize::from(changed != text);
            data = changed.into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("an entry");
        out.write_all(&data).expect("write an entry");
    }
    assert!(patched > 0, "nothing to patch under {prefix}");
    let bytes = out.finish().expect("finish the zip").into_inner();
    std::fs::write(path, bytes).expect("write the workbook");
}

/// Sets the 1904 date system of an `.xlsx` file (which rust_xlsxwriter does not write), keeping
/// every serial number as it is: the same cells then mean dates 1,462 days later.
fn use_1904(path: &Path) {
    patch_parts(path, "xl/workbook.xml", |text| {
        if text.contains("<workbookPr ") {
            text.replacen("<workbookPr ", "<workbookPr date1904=\"1\" ", 1)
        } else {
            text.replacen("<workbookPr/>", "<workbookPr date1904=\"1\"/>", 1)
        }
    });
}

fn joined_at(url: &str) -> Vec<String> {
    let conn = common::sqlite_conn(url);
    conn.prepare("SELECT joined_at FROM members ORDER BY email")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(Iterator::collect::<Result<Vec<String>, _>>)
        })
        .expect("read joined_at")
}

fn dates_in_the_1900_and_1904_systems() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    book_with(&book, accounts(C::N(1.0), C::N(2.0)), vec![]);
    let (_, url, _d1) = migrate(&book);
    assert_eq!(
        joined_at(&url),
        ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"]
    );
    // The same serial (45658) in a 1904 workbook is four years and a day later.
    use_1904(&book);
    let (_, url, _d2) = migrate(&book);
    assert_eq!(
        joined_at(&url),
        ["2029-01-02T00:00:00Z", "2029-01-02T00:00:00Z"]
    );
}

const CONTRIBUTIONS_HEADER: &[&str] = &[
    "member_email",
    "period_name",
    "contribution_type",
    "amount",
    "description",
    "status",
    "approved_at",
];
const PERIODS_HEADER: &[&str] = &["name", "description", "start_date", "end_date", "status"];

fn periods<'a>() -> Sheet<'a> {
    sheet(
        "periods",
        PERIODS_HEADER,
        vec![vec![
            C::T("Q4 2025"),
            C::E,
            C::D(2025, 10, 1),
            C::D(2025, 12, 31),
            C::T("closed"),
        ]],
    )
}

fn contribution<'a>(amount: C<'a>, approved_at: C<'a>) -> Vec<C<'a>> {
    vec![
        C::T("ana@example.org"),
        C::T("Q4 2025"),
        C::T("labor"),
        amount,
        C::T("Work"),
        C::T("approved"),
        approved_at,
    ]
}

fn date_time_keeps_its_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    book_with(
        &book,
        accounts(C::N(100.0), C::N(2.0)),
        vec![
            periods(),
            sheet(
                "contributions",
                CONTRIBUTIONS_HEADER,
                vec![
                    contribution(C::N(10.0), C::Dt(2025, 12, 31, 17, 45)),
                    contribution(C::N(20.0), C::D(2025, 12, 30)),
                    contribution(C::N(30.0), C::T("2025-12-29T08:00:00Z")),
                ],
            ),
        ],
    );
    let (_, url, _dir) = migrate(&book);
    let conn = common::sqlite_conn(&url);
    let approved: Vec<String> = conn
        .prepare("SELECT approved_at FROM contributions ORDER BY amount")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(Iterator::collect::<Result<Vec<String>, _>>)
        })
        .expect("read approved_at");
    assert_eq!(
        approved,
        [
            "2025-12-31T17:45:00Z",
            "2025-12-30T00:00:00Z",
            "2025-12-29T08:00:00Z"
        ]
    );
}

fn formula_results_errors_and_booleans() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    book_with(
        &book,
        accounts(C::N(100.0), C::N(2.0)),
        vec![
            periods(),
            sheet(
                "contributions",
                CONTRIBUTIONS_HEADER,
                vec![
                    // A formula's saved result is the value, as the sheet shows it.
                    contribution(C::F("=1000+234.5", "1234.5"), C::D(2025, 12, 31)),
                    contribution(C::F("=1/0", "#DIV/0!"), C::D(2025, 12, 31)),
                    contribution(C::F("=A1", "#REF!"), C::D(2025, 12, 31)),
                    contribution(C::B(true), C::D(2025, 12, 31)),
                    {
                        let mut row = contribution(C::N(5.0), C::D(2025, 12, 31));
                        row[4] = C::B(false);
                        row
                    },
                    // Saved without a result (as some scripts' writers do): neither a blank nor
                    // a guess, in a required column or an optional one.
                    contribution(C::F("=SUM(X1:X9)", "0"), C::D(2025, 12, 31)),
                    {
                        let mut row = contribution(C::N(6.0), C::D(2025, 12, 31));
                        row[4] = C::F("=B1", "0");
                        row
                    },
                ],
            ),
        ],
    );
    // rust_xlsxwriter always saves a result; take those two away.
    patch_parts(&book, "xl/worksheets/", |text| {
        text.replace("<f>SUM(X1:X9)</f><v>0</v>", "<f>SUM(X1:X9)</f>")
            .replace("<f>B1</f><v>0</v>", "<f>B1</f>")
    });
    let (code, report) = validate(&book);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [
            "cell.error contributions!D3 #DIV/0!",
            "cell.error contributions!D4 #REF!",
            "cell.boolean contributions!D5 TRUE",
            "cell.boolean contributions!E6 FALSE",
            "cell.formula_without_value contributions!D7 -",
            "cell.formula_without_value contributions!E8 -",
        ]
    );
    assert_eq!(report["summary"]["errors"], 6, "and nothing else: {report}");
}

fn hidden_sheets_are_not_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    let mut old = sheet("Contributions", CONTRIBUTIONS_HEADER, vec![vec![C::T("x")]]);
    old.hidden = true;
    book_with(&book, accounts(C::N(1.0), C::N(2.0)), vec![old]);
    let (code, report) = validate(&book);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["files"], 2);

    // A required sheet that is only there hidden is missing, and the error says it is hidden.
    let mut members = sheet(
        "members",
        MEMBERS_HEADER,
        vec![member("ana@example.org", "Ana")],
    );
    members.hidden = true;
    // The first sheet is the one a workbook opens on, which cannot be hidden.
    write_book(
        &book,
        &[
            sheet(
                "capital_accounts",
                &["member_email"],
                vec![vec![C::T("ana@example.org")]],
            ),
            members,
        ],
    );
    let (code, human) = validate_human(&book);
    assert_eq!(code, 4);
    assert!(
        human.contains("no sheet named members (sheets found: capital_accounts, members (hidden))"),
        "{human}"
    );
}

fn empty_trailing_rows_and_columns_ignored_middle_row_a_note() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("members").expect("name");
    write_rows(
        ws,
        MEMBERS_HEADER,
        &[
            member("ana@example.org", "Ana"),
            vec![C::E],
            member("ben@example.org", "Ben"),
        ],
    );
    // Formatted but empty cells after the table, below and to the right of it.
    let grey = Format::new().set_background_color("#DDDDDD");
    for row in 4..40 {
        ws.write_blank(row, 0, &grey).expect("blank");
        ws.write_blank(row, 9, &grey).expect("blank");
    }
    ws.write_blank(1, 12, &grey).expect("blank");
    let ws = wb.add_worksheet();
    ws.set_name("capital_accounts").expect("name");
    write_rows(
        ws,
        &["member_email", "balance", "tax_basis"],
        &accounts(C::N(1.0), C::N(2.0)),
    );
    wb.save(&book).expect("save");
    let (code, report) = validate(&book);
    assert_eq!(code, 0, "{report}");
    assert_eq!(findings(&report), ["sheet.empty_row members!3 -"]);
    assert_eq!(report["summary"]["rows"], 4);
    let (_, human) = validate_human(&book);
    assert!(
        human.contains("  members!3:3: note[sheet.empty_row]: row 3 is empty; it is skipped"),
        "{human}"
    );
}

fn missing_and_doubled_sheets_are_file_errors_naming_the_sheets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    write_book(
        &book,
        &[
            sheet("Members", MEMBERS_HEADER, vec![]),
            sheet("Notes", &["x"], vec![]),
        ],
    );
    let (code, human) = validate_human(&book);
    assert_eq!(code, 4);
    assert!(
        human.contains("book.xlsx: no sheet named capital_accounts (sheets found: Members, Notes)"),
        "{human}"
    );
    write_book(
        &book,
        &[
            sheet("members", MEMBERS_HEADER, vec![]),
            sheet("Capital Accounts", &["x"], vec![]),
            sheet("capital_accounts", &["x"], vec![]),
        ],
    );
    let (code, human) = validate_human(&book);
    assert_eq!(code, 4);
    assert!(
        human.contains(
            "two sheets for capital_accounts: Capital Accounts and capital_accounts; keep one"
        ),
        "{human}"
    );
}

fn not_a_workbook_is_a_file_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    std::fs::write(&book, "email,display_name\n").expect("write");
    let (code, human) = validate_human(&book);
    assert_eq!(code, 4);
    assert!(
        human.contains("book.xlsx: not a readable workbook"),
        "{human}"
    );
    // An encrypted (password-protected) workbook is an OLE compound file, not a zip.
    let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole.resize(4096, 0);
    std::fs::write(&book, ole).expect("write");
    let (code, human) = validate_human(&book);
    assert_eq!(code, 4, "{human}");

    // A sheet whose XML breaks off: an error on the file, and only rows known to be whole are read
    // (the row being read when it broke, here row 3, may be cut short, so it is not checked).
    book_with(&book, accounts(C::N(1.0), C::N(2.0)), vec![]);
    patch_parts(&book, "xl/worksheets/sheet1.xml", |text| {
        text.replacen(
            "</sheetData>",
            "<row r=\"9\"><c r=\"A9\"><v>1</sheetData>",
            1,
        )
    });
    let (code, report) = validate(&book);
    assert_eq!(code, 1, "{report}");
    let rules: Vec<&str> = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["rule"].as_str())
        .collect();
    assert_eq!(rules, ["file.unreadable"], "{report}");
    assert_eq!(report["files"][0]["rows"], 1, "{report}");
}

fn import_step_reads_the_sheet_of_its_table() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, url) = common::fresh_sqlite();
    for what in ["members", "capital-accounts", "periods", "contributions"] {
        let out = common::bin()
            .current_dir(dir.path())
            .args(["--database-url", &url, "import", what, "--source"])
            .arg(examples("techne.xlsx"))
            .output()
            .expect("import runs");
        assert!(
            out.status.success(),
            "import {what}:\n{}",
            common::all_output(&out)
        );
    }
    let conn = common::sqlite_conn(&url);
    let count = |t: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(
        [
            count("members"),
            count("capital_accounts"),
            count("allocation_periods"),
            count("contributions")
        ],
        [12, 12, 2, 8]
    );
    drop(tmp);
}

fn generated_workbook_validates_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("gen.xlsx");
    common::bin()
        .args(["gen", "--members", "30", "--out"])
        .arg(&book)
        .assert()
        .success();
    let (code, report) = validate(&book);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["rows"], 30 + 30 + 5 + 300);
    assert!(!tmp.path().join("gen.xlsx.parts").exists());
}
