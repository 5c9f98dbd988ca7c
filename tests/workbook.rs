//! Workbooks (`.xlsx`, `.ods`) as bundles: each test writes the workbook it reads (with
//! rust_xlsxwriter, the well-kept writer), or reads the examples LibreOffice saved, and checks
//! what `validate-source` and `migrate` make of typed cells: number and text amounts, dates in the
//! 1900 and 1904 systems, formulas with and without a result, error values, hidden sheets, merged
//! header cells, the empty rows and columns a spreadsheet leaves behind, each diagnostic in the
//! sheet's coordinates, and 100,000 rows. Then the annotated copy (`--annotate DIR`): it reads
//! back with the same problems on the same cells, and once fixed imports what the fixed original
//! does.

use std::io::{Read, Write};
use std::path::Path;

use calamine::{Data, Reader as _, SheetVisible, open_workbook_auto};
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
            merged_header_cells_are_reported_never_misread,
            a_100000_row_contributions_sheet_validates,
            annotated_copy_reads_back_with_the_same_problems_on_the_same_cells,
            a_fixed_copy_imports_like_the_fixed_original,
            a_copy_annotated_again_keeps_its_columns,
            workbooks_saved_by_libreoffice,
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
    write_rows_at(sheet, 0, header, rows);
}

/// [`write_rows`] with the header on row `first` (0-based).
fn write_rows_at(sheet: &mut Worksheet, first: u32, header: &[&str], rows: &[Vec<C<'_>>]) {
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let amount = Format::new().set_num_format("0.00");
    for (col, name) in (0u16..).zip(header) {
        if !name.is_empty() {
            sheet.write_string(first, col, *name).expect("header cell");
        }
    }
    for (row, cells) in (first + 1..).zip(rows) {
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

    // Last year's `Members_`, hidden beside this year's: not a second sheet for the table, and
    // not read.
    let mut old = sheet(
        "Members_",
        MEMBERS_HEADER,
        vec![member("old@example.org", "Old")],
    );
    old.hidden = true;
    book_with(&book, accounts(C::N(1.0), C::N(2.0)), vec![old]);
    let (code, report) = validate(&book);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["files"][0]["path"],
        format!("{}[members]", book.display())
    );
    assert_eq!(report["files"][0]["rows"], 2);
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

fn merged_header_cells_are_reported_never_misread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    let accounts_sheet = |wb: &mut Workbook| {
        let ws = wb.add_worksheet();
        ws.set_name("capital_accounts").expect("name");
        write_rows(
            ws,
            &["member_email", "balance", "tax_basis"],
            &accounts(C::N(1.0), C::N(2.0)),
        );
    };
    let bold = Format::new().set_bold();

    // A title merged across the top of the table: the first row with anything in it is the
    // header, and this one names no column of the table, which the report says.
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("members").expect("name");
    ws.merge_range(0, 0, 0, 5, "Members 2025", &bold)
        .expect("merge");
    write_rows_at(
        ws,
        1,
        MEMBERS_HEADER,
        &[
            member("ana@example.org", "Ana"),
            member("ben@example.org", "Ben"),
        ],
    );
    accounts_sheet(&mut wb);
    wb.save(&book).expect("save");
    let (code, report) = validate(&book);
    assert_eq!(code, 1, "{report}");
    let missing: Vec<String> = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["rule"] == "file.missing_column" && d["row"] == 1)
        .filter_map(|d| d["column"].as_str().map(str::to_string))
        .collect();
    assert!(missing.iter().any(|c| c == "email"), "{report}");
    let (_, human) = validate_human(&book);
    assert!(human.contains("Members 2025"), "{human}");

    // A header cell merged across two columns names the first; the second column's values are
    // not taken for anything, and the first of them is reported.
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("members").expect("name");
    let header = ["email", "", "", "ens_name", "role", "status", "joined_at"];
    let two_names = |email, first, last| {
        let mut row = member(email, first);
        row.insert(2, C::T(last));
        row
    };
    write_rows(
        ws,
        &header,
        &[
            two_names("ana@example.org", "Ana", "Okafor"),
            two_names("ben@example.org", "Ben", "Lee"),
        ],
    );
    ws.merge_range(0, 1, 0, 2, "display_name", &bold)
        .expect("merge");
    accounts_sheet(&mut wb);
    wb.save(&book).expect("save");
    let (code, report) = validate(&book);
    assert_eq!(code, 0, "{report}");
    assert_eq!(findings(&report), ["sheet.unheaded_value members!C2 -"]);
    let d = &report["diagnostics"][0];
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("column C, which has no header"))
            && d["hint"].as_str().is_some_and(|h| h.contains("merged")),
        "{d}"
    );
    let (_, url, _dir) = migrate(&book);
    let conn = common::sqlite_conn(&url);
    let names: Vec<String> = conn
        .prepare("SELECT display_name FROM members ORDER BY email")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(Iterator::collect::<Result<Vec<String>, _>>)
        })
        .expect("read display names");
    assert_eq!(names, ["Ana", "Ben"]);
}

/// 10,000 members with ten contributions each, as `gen` writes them: a 100,000-row sheet.
fn a_100000_row_contributions_sheet_validates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("big.xlsx");
    common::bin()
        .args(["gen", "--members", "10000", "--out"])
        .arg(&book)
        .assert()
        .success();
    let (code, report) = validate(&book);
    assert_eq!(code, 0, "{}", report["diagnostics"]);
    let rows: Vec<(String, u64)> = report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["table"].as_str().unwrap_or_default().to_string(),
                f["rows"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        rows.contains(&("contributions".to_string(), 100_000)),
        "{rows:?}"
    );
    assert_eq!(report["summary"]["rows"], 10_000 + 10_000 + 5 + 100_000);
}

/// A workbook with a problem of each kind a cell can have, and what a treasurer leaves around a
/// table: a note right of it, a hidden old sheet, a sheet of notes.
fn spoilt_book(path: &Path) {
    let mut members = vec![
        member(
            "ana@example.org",
            "=HYPERLINK(\"http://example.com\",\"x\")",
        ),
        member("ben@example.org", "'quoted on purpose"),
        member("cy@example.org", "Cy"),
        member("dee@example.org", "Dee"),
        member("eve@example.org", "Eve"),
        member("fay@example.org", "Fay"),
    ];
    members[3][3] = C::T("boss");
    members[4][5] = C::T("2025-02-30");
    // A note the treasurer keeps in column I of row 3, right of the table.
    members[1].extend([C::E, C::E, C::T("ask Ben")]);
    let sum: f64 = "0.30000000000000004".parse().expect("a float");
    let accounts = vec![
        vec![C::T("ana@example.org"), C::N(1234.5), C::N(1234.5), C::E],
        vec![
            C::T("ben@example.org"),
            C::T("850.50"),
            C::T("850.50"),
            C::T("=not a formula"),
        ],
        vec![C::T("cy@example.org"), C::N(sum), C::N(10.0), C::E],
        vec![C::T("dee@example.org"), C::B(true), C::N(10.0), C::E],
        vec![
            C::T("eve@example.org"),
            C::F("=1/0", "#DIV/0!"),
            C::N(10.0),
            C::E,
        ],
        vec![C::T("fay@example.org"), C::N(10.0), C::F("=B7", "0"), C::E],
    ];
    let mut old = sheet("members 2024", &["x"], vec![vec![C::T("old")]]);
    old.hidden = true;
    write_book(
        path,
        &[
            sheet("members", MEMBERS_HEADER, members),
            sheet(
                "capital_accounts",
                &["member_email", "balance", "tax_basis", "notes"],
                accounts,
            ),
            old,
            periods(),
            sheet(
                "contributions",
                CONTRIBUTIONS_HEADER,
                vec![
                    contribution(C::N(10.0), C::Dt(2025, 12, 31, 17, 45)),
                    contribution(C::N(20.0), C::D(2025, 12, 30)),
                ],
            ),
            sheet("Notes", &["=SUM(1,2)"], vec![vec![C::N(3.0)]]),
        ],
    );
    // Saved without its result, as some scripts' writers do.
    patch_parts(path, "xl/worksheets/", |text| {
        text.replace("<f>B7</f><v>0</v>", "<f>B7</f>")
    });
}

/// `validate-source BOOK --annotate DIR` in `cwd`: (exit code, all output).
fn annotate(cwd: &Path, book: &Path, dir: &str) -> (i32, String) {
    let out = common::bin()
        .current_dir(cwd)
        .args(["--database-url", "sqlite://none.db", "validate-source"])
        .arg(book)
        .args(["--annotate", dir])
        .output()
        .expect("validate-source runs");
    (out.status.code().unwrap_or(-1), common::all_output(&out))
}

/// The text of the parts of a zip (an `.xlsx`) whose names start with `prefix`.
fn parts(path: &Path, prefix: &str) -> String {
    let bytes = std::fs::read(path).expect("read the workbook");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut text = String::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("an entry");
        if entry.name().starts_with(prefix) {
            entry.read_to_string(&mut text).expect("read an entry");
        }
    }
    text
}

fn annotated_copy_reads_back_with_the_same_problems_on_the_same_cells() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    spoilt_book(&book);
    let (code, original) = validate(&book);
    assert_eq!(code, 1);
    let want = findings(&original);
    for expected in [
        "member.role members!D5 boss",
        "sheet.unheaded_value members!I3 -",
        "money.scale capital_accounts!B4 0.30000000000000004",
        "cell.boolean capital_accounts!B5 TRUE",
        "cell.error capital_accounts!B6 #DIV/0!",
        "cell.formula_without_value capital_accounts!C7 -",
    ] {
        assert!(want.iter().any(|f| f == expected), "{expected}: {want:#?}");
    }

    let (code, human) = annotate(tmp.path(), &book, "fixes");
    assert_eq!(code, 1, "{human}");
    for line in [
        "✎ Annotated copy of ",
        "fixes/book.annotated.xlsx, sheet members: 3 of 6 row(s) with problems",
        "fixes/book.annotated.xlsx, sheet capital_accounts: 4 of 6 row(s) with problems",
        "fixes/book.annotated.xlsx, sheet contributions: copied from",
    ] {
        assert!(human.contains(line), "{line}: {human}");
    }
    assert!(!human.contains("save as CSV"), "{human}");
    let copy = tmp.path().join("fixes/book.annotated.xlsx");

    // Read again: the same problems on the same cells, and a note for each annotated sheet.
    let (code, again) = validate(&copy);
    assert_eq!(code, 1, "{again}");
    let (notes, got): (Vec<String>, Vec<String>) = findings(&again)
        .into_iter()
        .partition(|f| f.starts_with("file.annotated "));
    assert_eq!(got, want);
    assert_eq!(
        notes,
        [
            "file.annotated members!J1 -",
            "file.annotated capital_accounts!E1 -"
        ]
    );
    assert_eq!(again["summary"]["errors"], original["summary"]["errors"]);
    assert_eq!(
        again["summary"]["warnings"],
        original["summary"]["warnings"]
    );
    assert_eq!(again["summary"]["rows"], original["summary"]["rows"]);

    // The cells, as a spreadsheet reads them.
    let mut wb = open_workbook_auto(&copy).expect("the copy opens");
    let sheets: Vec<(String, bool)> = wb
        .sheets_metadata()
        .iter()
        .map(|s| (s.name.clone(), s.visible == SheetVisible::Visible))
        .collect();
    let shown = |name: &str, visible| (name.to_string(), visible);
    assert_eq!(
        sheets,
        [
            shown("members", true),
            shown("capital_accounts", true),
            shown("members 2024", false),
            shown("periods", true),
            shown("contributions", true),
            shown("Notes", true),
        ]
    );
    let text = |s: &str| Some(Data::String(s.to_string()));
    let members = wb.worksheet_range("members").expect("members");
    // Right of everything, the note kept in I3 included: no cell moves.
    assert_eq!(members.get_value((0, 9)).cloned(), text("_problems"));
    assert_eq!(members.get_value((0, 10)).cloned(), text("_hints"));
    assert_eq!(
        members.get_value((1, 1)).cloned(),
        text("=HYPERLINK(\"http://example.com\",\"x\")")
    );
    assert_eq!(members.get_value((2, 8)).cloned(), text("ask Ben"));
    match members.get_value((4, 9)) {
        Some(Data::String(p)) => assert!(p.contains("role: invalid role"), "{p}"),
        other => panic!("D5's row has no _problems: {other:?}"),
    }
    assert!(
        matches!(members.get_value((5, 5)), Some(Data::String(d)) if d == "2025-02-30"),
        "a date typed as text stays text"
    );
    assert!(
        matches!(members.get_value((1, 5)), Some(Data::DateTime(_))),
        "a date cell stays a date cell"
    );
    let accounts = wb.worksheet_range("capital_accounts").expect("accounts");
    assert_eq!(
        accounts.get_value((1, 1)).cloned(),
        Some(Data::Float(1234.5))
    );
    assert_eq!(accounts.get_value((2, 1)).cloned(), text("850.50"));
    assert_eq!(accounts.get_value((2, 3)).cloned(), text("=not a formula"));
    let notes = wb.worksheet_range("Notes").expect("notes");
    assert_eq!(notes.get_value((0, 0)).cloned(), text("=SUM(1,2)"));
    assert_eq!(notes.get_value((1, 0)).cloned(), Some(Data::Float(3.0)));

    // Text is never a formula in the copy; each bad cell has a comment naming its problem.
    let sheets_xml = parts(&copy, "xl/worksheets/sheet");
    for text in ["HYPERLINK", "SUM(1,2)", "not a formula"] {
        assert!(
            !sheets_xml.contains(&format!("<f>{text}"))
                && !sheets_xml.contains(&format!("<f>={text}")),
            "{text} written as a formula"
        );
    }
    let comments = parts(&copy, "xl/comments");
    let bad_cells: std::collections::BTreeSet<String> = original["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["severity"] != "note")
        .filter_map(|d| {
            Some(format!(
                "{}!{}{}",
                d["sheet"].as_str()?,
                d["column_letter"].as_str()?,
                d["row"].as_u64()?
            ))
        })
        .collect();
    assert_eq!(
        comments.matches("<comment ").count(),
        bad_cells.len(),
        "{bad_cells:?}\n{comments}"
    );
    assert!(comments.contains("ref=\"D5\""), "{comments}");
    assert!(
        comments.contains("error[member.role]: invalid role"),
        "{comments}"
    );
    assert!(
        comments.contains("hint: one of: member, steward, admin"),
        "{comments}"
    );
    assert!(
        parts(&copy, "xl/styles.xml").contains("FFFFC7CE"),
        "the bad cells' fill"
    );
}

/// The members, accounts and contributions a SQLite file holds, as text, in a fixed order.
fn imported(url: &str) -> Vec<String> {
    let conn = common::sqlite_conn(url);
    let mut out = Vec::new();
    for query in [
        "SELECT email, display_name, ens_name, role, status, joined_at FROM members ORDER BY email",
        "SELECT m.email, a.balance, a.tax_basis, a.notes FROM capital_accounts a \
         JOIN members m ON m.id = a.member_id ORDER BY m.email",
        "SELECT m.email, c.contribution_type, c.amount, c.description, c.status, c.approved_at \
         FROM contributions c JOIN members m ON m.id = c.member_id ORDER BY c.amount",
    ] {
        let mut statement = conn.prepare(query).expect("a query");
        let width = statement.column_count();
        let rows = statement
            .query_map([], |r| {
                (0..width)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .expect("rows");
        out.extend(rows.into_iter().map(|r| r.join("|")));
    }
    out
}

/// The smallest book for the round trip: one bad role, amounts as numbers and as text, a
/// date-time, and `role` given as `role_of_ben`.
fn round_trip_book(path: &Path, role_of_ben: &str) {
    let mut ben = member("ben@example.org", "=Ben");
    ben[3] = C::T(role_of_ben);
    write_book(
        path,
        &[
            sheet(
                "members",
                MEMBERS_HEADER,
                vec![member("ana@example.org", "Ana"), ben],
            ),
            sheet(
                "capital_accounts",
                &["member_email", "balance", "tax_basis", "notes"],
                accounts(C::N(1234.5), C::T("850.50")),
            ),
            periods(),
            sheet(
                "contributions",
                CONTRIBUTIONS_HEADER,
                vec![
                    contribution(C::N(10.0), C::Dt(2025, 12, 31, 17, 45)),
                    contribution(C::T("20.00"), C::D(2025, 12, 30)),
                ],
            ),
        ],
    );
}

fn a_fixed_copy_imports_like_the_fixed_original() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    round_trip_book(&book, "boss");
    let (code, human) = annotate(tmp.path(), &book, "fixes");
    assert_eq!(code, 1, "{human}");
    let copy = tmp.path().join("fixes/book.annotated.xlsx");
    // The treasurer types `member` over `boss` and saves; `_problems` and `_hints` stay.
    patch_parts(&copy, "xl/worksheets/", |text| {
        text.replace("<t>boss</t>", "<t>member</t>")
    });
    let (_, from_copy, _d1) = migrate(&copy);
    round_trip_book(&book, "member");
    let (_, from_original, _d2) = migrate(&book);
    let want = imported(&from_original);
    assert_eq!(want.len(), 2 + 2 + 2, "{want:#?}");
    assert_eq!(imported(&from_copy), want);
}

/// Annotated again without a fix: the same copy, its two columns where they were (not two more).
fn a_copy_annotated_again_keeps_its_columns() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = tmp.path().join("book.xlsx");
    spoilt_book(&book);
    let (code, human) = annotate(tmp.path(), &book, "fixes");
    assert_eq!(code, 1, "{human}");
    let first = tmp.path().join("fixes/book.annotated.xlsx");
    let (code, human) = annotate(tmp.path(), &first, "again");
    assert_eq!(code, 1, "{human}");
    let second = tmp.path().join("again/book.annotated.xlsx");
    let cells = |path: &Path| {
        let mut wb = open_workbook_auto(path).expect("opens");
        let mut all = Vec::new();
        for name in wb.sheet_names() {
            let range = wb.worksheet_range(&name).expect("a sheet");
            for (row, col, value) in range.used_cells() {
                all.push(format!("{name}!{row},{col}: {value:?}"));
            }
        }
        all
    };
    assert_eq!(cells(&second), cells(&first));
    assert_eq!(parts(&second, "xl/comments"), parts(&first, "xl/comments"));
    // And into a directory that already holds a copy: refused, nothing written over.
    let (code, human) = annotate(tmp.path(), &first, "fixes");
    assert_eq!(code, 2, "{human}");
    assert!(
        human.contains("already holds book.annotated.xlsx"),
        "{human}"
    );
}

const WORKBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workbooks");

/// The workbook of `tests/data/workbooks`, as LibreOffice saved it in each format (see the
/// README there): the same findings on the same cells from both, and annotated copies (an `.xlsx`
/// for the `.ods` too) that read back with them.
fn workbooks_saved_by_libreoffice() {
    // `=1/0`: `.xlsx` keeps the error value; `.ods` saves it as empty text (the error itself only
    // in an attribute of LibreOffice's own), which is an error on the cell all the same.
    for (name, error, error_in_copy) in [
        ("saved_by_libreoffice.ods", "-", "#N/A"),
        ("saved_by_libreoffice.xlsx", "#DIV/0!", "#DIV/0!"),
    ] {
        let expected = [
            "member.role members!D3 boss".to_string(),
            "sheet.unheaded_value Capital Accounts!E2 -".into(),
            "cell.boolean Capital Accounts!B4 TRUE".into(),
            format!("cell.error Capital Accounts!C4 {error}"),
        ];
        let book = Path::new(WORKBOOKS).join(name);
        let (code, report) = validate(&book);
        assert_eq!(code, 1, "{name}: {report}");
        assert_eq!(findings(&report), expected, "{name}: {report}");

        let tmp = tempfile::tempdir().expect("tempdir");
        let (code, human) = annotate(tmp.path(), &book, "fixes");
        assert_eq!(code, 1, "{human}");
        assert_eq!(
            human.contains("(an .xlsx workbook, though the source is .ods)"),
            name.ends_with(".ods"),
            "{human}"
        );
        let copy = tmp.path().join("fixes/saved_by_libreoffice.annotated.xlsx");
        let (code, again) = validate(&copy);
        assert_eq!(code, 1, "{name}: {again}");
        let want: Vec<String> = expected
            .iter()
            .map(|f| f.replace(&format!("C4 {error}"), &format!("C4 {error_in_copy}")))
            .collect();
        let got: Vec<String> = findings(&again)
            .into_iter()
            .filter(|f| !f.starts_with("file.annotated "))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    // What the two formats hold is imported alike once the problems are fixed: checked through
    // the rows the reader counts.
    let rows = |name: &str| validate(&Path::new(WORKBOOKS).join(name)).1["files"].clone();
    assert_eq!(
        rows("saved_by_libreoffice.ods"),
        rows("saved_by_libreoffice.xlsx")
            .as_array()
            .map_or(Value::Null, |files| {
                Value::Array(
                    files
                        .iter()
                        .map(|f| {
                            let mut f = f.clone();
                            if let Some(path) = f["path"].as_str() {
                                f["path"] = Value::from(path.replace(".xlsx[", ".ods["));
                            }
                            f
                        })
                        .collect(),
                )
            })
    );
}
