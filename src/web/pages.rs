//! What each step of the page shows, as HTML built from the library's results.
//!
//! Every value that came from a file or a database is escaped ([`esc`]); nothing here decides
//! anything, it only shows what the library found. The layout, the style sheet and the script are
//! compiled in from `assets/`.

use std::fmt::Write as _;

use crate::diagnostic::{Diagnostic, Severity};
use crate::import::{ImportError, Report};
use crate::model::RunRecord;
use crate::plan::Action;
use crate::source::{Format, Table};
use crate::store::{Backend, DbUrl};
use crate::validate::Validation;
use crate::validate::repair::RepairKind;
use crate::verify::{Status, VerifyReport};

use super::workspace::{self, Upload};

pub(crate) const LAYOUT: &str = include_str!("assets/layout.html");
pub(crate) const STYLE: &str = include_str!("assets/style.css");
pub(crate) const SCRIPT: &str = include_str!("assets/app.js");

/// Rows of a file shown per page of the grid.
pub(crate) const ROWS_PER_PAGE: usize = 50;
/// Findings listed in the side list; the counts above it count all.
const LISTED: usize = 500;

/// The steps, in order: path and title.
const STEPS: [(&str, &str); 5] = [
    ("/files", "Files"),
    ("/problems", "Problems"),
    ("/plan", "Plan"),
    ("/migrate", "Migrate"),
    ("/signoff", "Sign off"),
];

/// How a run the page started ended, ready to show.
#[derive(Clone, Debug)]
pub(crate) enum RunOutcome {
    Imported(Box<Report>),
    /// Refused or failed: what to tell the person, and the checks when verification failed.
    Failed {
        message: String,
        checks: Option<Box<VerifyReport>>,
    },
}

/// Text made safe for HTML, in element content and in quoted attributes (the report's escaping).
pub(crate) fn esc(text: &str) -> String {
    crate::report::document::escape(text)
}

/// The database as the page names it: host and database name, or the SQLite file. Never the
/// user name or password.
pub(crate) fn database_label(url: &DbUrl) -> String {
    match url.backend {
        Backend::Sqlite => format!(
            "the SQLite file {}",
            url.path
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        Backend::Postgres => {
            let redacted = url.redacted();
            let rest = redacted.split_once("://").map_or(redacted, |(_, r)| r);
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let database = path.split(['?', '#']).next().unwrap_or_default();
            let host = if host.is_empty() { "localhost" } else { host };
            if database.is_empty() {
                format!("the PostgreSQL database on {host}")
            } else {
                format!("the PostgreSQL database {database} on {host}")
            }
        }
    }
}

/// A whole page: the layout around `body`, with `step` marked in the steps bar.
pub(crate) fn page(title: &str, step: &str, database: &DbUrl, body: &str) -> String {
    let mut nav = String::new();
    for (i, (path, name)) in STEPS.iter().enumerate() {
        let current = if *path == step {
            " aria-current=\"step\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{path}\"{current}>{}. {name}</a>", i + 1);
    }
    LAYOUT
        .replace("{{title}}", &esc(title))
        .replace("{{database}}", &esc(&database_label(database)))
        .replace("{{nav}}", &nav)
        .replace("{{body}}", body)
}

/// A refusal before any session: a bare page.
pub(crate) fn refusal(message: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused</title></head>\
         <body><h1>habitat-migrate</h1><p id=\"refused\">{}</p></body></html>",
        esc(message)
    ))
}

/// A message box; `kind` is `error`, `warning` or `ok`.
pub(crate) fn notice(kind: &str, message: &str) -> String {
    format!(
        "<div class=\"notice {kind}\" role=\"alert\">{}</div>",
        esc(message).replace('\n', "<br>")
    )
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

pub(crate) fn files(
    uploads: &[&Upload],
    missing: &[Table],
    validation: Option<&Validation>,
) -> String {
    let mut out = String::from(
        "<h1>1. Files</h1>\
         <p>Give the four sheets exported as CSV (or JSON): members, capital accounts, and if you \
         keep them, periods and contributions — or the workbook itself (.xlsx or .ods), one sheet \
         per table. They stay on this computer.</p>\
         <form id=\"upload\" method=\"post\" action=\"/files\" enctype=\"multipart/form-data\">\
         <label class=\"drop\" id=\"drop\">Drop the files or the workbook here, or <input id=\"file-input\" type=\"file\" \
         name=\"files\" multiple accept=\".csv,.json,.jsonl,.ndjson,.xlsx,.xlsm,.ods\"></label>\
         <button type=\"submit\">Add the files</button></form>\
         <form method=\"post\" action=\"/files/bundle\" class=\"inline\">\
         <label>Or a folder (or workbook) on this computer holding them: <input id=\"bundle-dir\" name=\"dir\" size=\"50\" \
         placeholder=\"/home/me/coop-export\"></label> <button type=\"submit\">Use this folder</button></form>",
    );
    out.push_str("<h2>What was given</h2><table id=\"given\"><thead><tr><th>Table</th><th>File</th><th>Rows</th><th>Problems</th></tr></thead><tbody>");
    for table in Table::ALL {
        let _ = write!(
            out,
            "<tr data-table=\"{}\"><td>{}</td>",
            table.stem(),
            table.stem()
        );
        match uploads.iter().find(|u| u.table == table) {
            Some(u) => {
                let rows = validation
                    .and_then(|v| v.files.iter().find(|f| f.table == table))
                    .map_or_else(String::new, |f| f.rows.to_string());
                let problems = validation.map_or_else(String::new, |v| {
                    let (e, w) = workspace::counts(v.diagnostics.items(), &u.name);
                    format!("{e} errors, {w} warnings")
                });
                let name = match &u.origin {
                    Some(o) => format!(
                        "sheet {} of {} (checked as a CSV copy)",
                        esc(&o.sheet),
                        esc(&o.book)
                    ),
                    None => esc(&u.name),
                };
                let _ = write!(
                    out,
                    "<td>{name}</td><td>{rows}</td><td>{problems}</td></tr>",
                );
            }
            None if missing.contains(&table) => {
                out.push_str("<td class=\"missing\" colspan=\"3\">missing — required</td></tr>");
            }
            None => out.push_str("<td colspan=\"3\">not given (optional)</td></tr>"),
        }
    }
    out.push_str("</tbody></table>");
    if let Some(book) = uploads.iter().find_map(|u| u.origin.as_ref()) {
        out.push_str(&notice("ok", &workbook_note(&book.book)));
    }
    if missing.is_empty() {
        out.push_str("<p><a class=\"button\" id=\"to-problems\" href=\"/problems\">Check the files →</a></p>");
    } else {
        let names: Vec<&str> = missing.iter().map(|t| t.stem()).collect();
        out.push_str(&notice(
            "warning",
            &format!("Still needed: {}.", names.join(" and ")),
        ));
    }
    if !uploads.is_empty() {
        out.push_str("<form method=\"post\" action=\"/files/clear\"><button type=\"submit\" class=\"quiet\">Start again with other files</button></form>");
    }
    out
}

/// What the page says about a workbook: where its findings are, and what downloads.
fn workbook_note(book: &str) -> String {
    format!(
        "The workbook {book} was read: each sheet is checked as a CSV copy of the text in its cells, \
         and every problem is named by sheet and cell (members!C7). Corrected files download as CSV, \
         one per sheet: copy the corrected cells back into the workbook, or import the CSV files."
    )
}

// ---------------------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------------------

/// A group of findings one repair fixes.
pub(crate) struct RepairGroup {
    pub kind: RepairKind,
    /// (file, line, column, before, after)
    pub items: Vec<(String, u64, String, String, String)>,
}

pub(crate) struct ProblemsView<'a> {
    pub uploads: Vec<&'a Upload>,
    pub current: Table,
    pub page: usize,
    pub validation: &'a Validation,
    pub groups: &'a [RepairGroup],
    pub database_note: Option<String>,
}

pub(crate) fn problems(v: &ProblemsView<'_>) -> String {
    let diags = v.validation.diagnostics.items();
    let errors = v.validation.diagnostics.count(Severity::Error);
    let warnings = v.validation.diagnostics.count(Severity::Warning);
    let mut out = String::from("<h1>2. Problems</h1>");
    if let Some(note) = &v.database_note {
        out.push_str(&notice("warning", note));
    }
    if errors == 0 {
        let _ = write!(
            out,
            "<p id=\"summary\" class=\"ok\">✓ No errors in {} rows ({warnings} warnings). \
             <a class=\"button\" id=\"to-plan\" href=\"/plan\">See the plan →</a></p>",
            v.validation.rows()
        );
    } else {
        let _ = write!(
            out,
            "<p id=\"summary\" class=\"bad\">{errors} errors and {warnings} warnings to look at. \
             Nothing can be imported until the errors are fixed.</p>"
        );
    }
    if !v.groups.is_empty() {
        out.push_str("<section id=\"repairs\"><h2>Repairs</h2><ul>");
        for g in v.groups {
            let _ = write!(
                out,
                "<li><a class=\"repair-group\" href=\"/repairs/{}\">{}</a> — review every change before it is made</li>",
                g.kind.slug(),
                esc(&g.kind.describe(g.items.len()))
            );
        }
        out.push_str("</ul></section>");
    }
    // Tabs, one per file, with counts.
    out.push_str("<nav class=\"tabs\">");
    for u in &v.uploads {
        let (e, w) = workspace::counts(diags, &u.name);
        let current = if u.table == v.current {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<a href=\"/problems?file={}\"{current} data-file=\"{}\">{} <span class=\"count\">{e} errors, {w} warnings</span></a>",
            u.table.stem(),
            u.table.stem(),
            esc(&u.name)
        );
    }
    out.push_str("</nav><div class=\"workspace\"><div class=\"grid-wrap\">");
    if let Some(u) = v.uploads.iter().find(|u| u.table == v.current) {
        if let Some(o) = &u.origin {
            out.push_str(&notice("ok", &workbook_note(&o.book)));
        }
        out.push_str(&file_level(diags, u));
        if u.format == Format::Csv {
            out.push_str(&grid(u, v.page, diags));
        } else {
            out.push_str(&notice(
                "warning",
                "JSON files are checked but shown only as the list of problems; edit them where they were written.",
            ));
        }
        let identical = if u.origin.is_some() {
            "the sheet's cells as CSV, with the cells changed here"
        } else {
            "identical to the file given except for the cells changed here"
        };
        let _ = write!(
            out,
            "<p><a id=\"download\" href=\"/download/{}\" download>Download {} with the corrections</a> \
             ({identical}) · <a id=\"download-annotated\" href=\"/annotated/{}\" download>download with \
             problems</a> (a copy with each row's problems and hints in two first columns, to filter \
             in a spreadsheet; give it back here as it is)</p>",
            u.table.stem(),
            esc(&u.download_name()),
            u.table.stem()
        );
    }
    out.push_str("</div>");
    out.push_str(&side_list(v, diags));
    out.push_str("</div>");
    out.push_str(
        "<div id=\"cell-panel\" hidden><h3 id=\"cell-where\"></h3><div id=\"cell-problems\"></div>\
         <form id=\"cell-form\"><input id=\"cell-value\" autocomplete=\"off\" size=\"40\"> \
         <button type=\"submit\" id=\"cell-save\">Save and check again</button> \
         <button type=\"button\" id=\"cell-close\" class=\"quiet\">Close</button></form>\
         <p id=\"cell-error\" class=\"bad\"></p></div>",
    );
    out
}

/// The findings about a file that no data row shows: the file's own, and its header's (an
/// unknown column, the note that a copy is annotated).
fn file_level(diags: &[Diagnostic], u: &Upload) -> String {
    let header = u.records.first().map(|h| h.line);
    let mut out = String::new();
    for d in diags
        .iter()
        .filter(|d| d.file == u.name && (d.line.is_none() || d.line == header))
    {
        let place = if d.sheet.is_some() {
            format!("{}: ", workspace::place(d))
        } else {
            String::new()
        };
        out.push_str(&notice(
            severity_class(d.severity),
            &format!(
                "{place}{}: {}{}",
                d.rule,
                d.message,
                d.hint
                    .as_ref()
                    .map(|h| format!(" — {h}"))
                    .unwrap_or_default()
            ),
        ));
    }
    out
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// One page of a CSV file as a table, the bad cells marked with their findings.
fn grid(u: &Upload, page: usize, diags: &[Diagnostic]) -> String {
    let header = u.header();
    let by_line = workspace::by_line(diags, &u.name);
    let data = u.data();
    let pages = data.len().div_ceil(ROWS_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let mut out = String::new();
    let _ = write!(
        out,
        "<table class=\"grid\" id=\"grid\" data-file=\"{}\"><thead><tr><th>{}</th>",
        u.table.stem(),
        if u.origin.is_some() { "row" } else { "line" }
    );
    for h in &header {
        let letter = u
            .origin
            .as_ref()
            .and_then(|o| o.letter(h.trim()))
            .map(|l| format!(" <span class=\"letter\">{}</span>", esc(l)))
            .unwrap_or_default();
        let _ = write!(out, "<th>{}{letter}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for span in data
        .iter()
        .skip((page - 1) * ROWS_PER_PAGE)
        .take(ROWS_PER_PAGE)
    {
        let found = by_line.get(&span.line);
        let row_level: Vec<&&Diagnostic> = found
            .map(|ds| {
                ds.iter()
                    .filter(|d| d.column.as_ref().is_none_or(|c| !header.contains(c)))
                    .collect()
            })
            .unwrap_or_default();
        let row_class = if row_level.is_empty() {
            ""
        } else {
            " class=\"row-bad\""
        };
        let row = u.row_of_line(span.line);
        let _ = write!(
            out,
            "<tr id=\"l{}\"{row_class}><th>{}</th>",
            span.line,
            row.unwrap_or(span.line)
        );
        let values = u.values(*span);
        for (i, column) in header.iter().enumerate() {
            let value = values.get(i).map_or("", String::as_str);
            let cell: Vec<&&Diagnostic> = found
                .map(|ds| {
                    ds.iter()
                        .filter(|d| d.column.as_ref() == Some(column))
                        .collect()
                })
                .unwrap_or_default();
            let worst = cell.iter().map(|d| d.severity).max();
            let edited = u.edits.contains_key(&(span.line, column.clone()));
            let mut class = String::from("cell");
            if let Some(s) = worst {
                class.push(' ');
                class.push_str(severity_class(s));
            }
            if edited {
                class.push_str(" edited");
            }
            // Where the person finds the cell: `members!C7` on a sheet, else line and column.
            let place = match (&u.origin, row) {
                (Some(o), Some(row)) => {
                    format!("{}!{}{row}", o.sheet, o.letter(column).unwrap_or_default())
                }
                _ => format!("line {}, {column}", span.line),
            };
            let _ = write!(
                out,
                "<td id=\"c{}-{}\" class=\"{class}\" tabindex=\"0\" data-line=\"{}\" data-column=\"{}\" data-place=\"{}\" data-value=\"{}\"><span class=\"v\">{}</span>",
                span.line,
                esc(column),
                span.line,
                esc(column),
                esc(&place),
                esc(value),
                esc(value)
            );
            if !cell.is_empty() {
                out.push_str("<div class=\"tip\">");
                if u.origin.is_some() {
                    let _ = write!(out, "<p class=\"place\">{}</p>", esc(&place));
                }
                for d in &cell {
                    out.push_str(&finding(d));
                }
                out.push_str("</div>");
            }
            out.push_str("</td>");
        }
        if !row_level.is_empty() {
            out.push_str("<td class=\"row-note\">");
            for d in row_level {
                out.push_str(&finding(d));
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if pages > 1 {
        out.push_str("<nav class=\"pager\">");
        for p in 1..=pages {
            if p == page {
                let _ = write!(out, "<strong>{p}</strong> ");
            } else if p == 1 || p == pages || p.abs_diff(page) <= 3 {
                let _ = write!(
                    out,
                    "<a href=\"/problems?file={}&amp;page={p}\">{p}</a> ",
                    u.table.stem()
                );
            } else if p.abs_diff(page) == 4 {
                out.push_str("… ");
            }
        }
        let _ = write!(out, "<span>({} rows)</span></nav>", data.len());
    }
    out
}

/// One finding: rule, message and hint.
fn finding(d: &Diagnostic) -> String {
    format!(
        "<p class=\"finding {}\"><code class=\"rule\">{}</code> {}{}</p>",
        severity_class(d.severity),
        esc(d.rule),
        esc(&d.message),
        d.hint
            .as_ref()
            .map(|h| format!(" <span class=\"hint\">hint: {}</span>", esc(h)))
            .unwrap_or_default()
    )
}

/// The list beside the grid: every finding, each a link to its cell.
fn side_list(v: &ProblemsView<'_>, diags: &[Diagnostic]) -> String {
    let mut out = String::from("<aside id=\"problem-list\"><h2>All findings</h2><ol>");
    for d in diags
        .iter()
        .filter(|d| d.severity != Severity::Note)
        .take(LISTED)
    {
        let Some(u) = v.uploads.iter().find(|u| u.name == d.file) else {
            continue;
        };
        let target = match (d.line, &d.column) {
            (Some(line), column) => {
                // Records are in line order: a search, not a scan, for each of up to 500 findings.
                let index = u
                    .data()
                    .binary_search_by_key(&line, |s| s.line)
                    .unwrap_or_else(|at| at);
                let page = index / ROWS_PER_PAGE + 1;
                let anchor = match column {
                    Some(c) if u.header().contains(c) => format!("c{line}-{}", esc(c)),
                    _ => format!("l{line}"),
                };
                format!("/problems?file={}&amp;page={page}#{anchor}", u.table.stem())
            }
            (None, _) => format!("/problems?file={}", u.table.stem()),
        };
        // On a sheet the column's name follows its letter, as the grid's header shows both.
        let column = match (&d.sheet, &d.column) {
            (Some(_), Some(c)) => format!(" ({})", esc(c)),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<li class=\"{}\"><a href=\"{target}\">{}{column}</a> {}</li>",
            severity_class(d.severity),
            esc(&workspace::place(d)),
            esc(&d.message)
        );
    }
    let listed = diags
        .iter()
        .filter(|d| d.severity != Severity::Note)
        .count();
    if listed > LISTED {
        let _ = write!(out, "</ol><p>… and {} more.</p></aside>", listed - LISTED);
    } else {
        out.push_str("</ol></aside>");
    }
    out
}

/// The preview of one group of repairs: every change, then one button.
pub(crate) fn repair_preview(group: &RepairGroup) -> String {
    let mut out = format!(
        "<h1>Repair: {}</h1><p>Each change below is made exactly as shown, and only when you press \
         the button. The files you download afterwards carry these changes and nothing else.</p>\
         <table id=\"repair-list\"><thead><tr><th>File</th><th>Line</th><th>Column</th><th>Before</th><th>After</th></tr></thead><tbody>",
        esc(&group.kind.describe(group.items.len()))
    );
    for (file, line, column, before, after) in &group.items {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{line}</td><td>{}</td><td class=\"before\">{}</td><td class=\"after\">{}</td></tr>",
            esc(file),
            esc(column),
            esc(before),
            esc(after)
        );
    }
    let _ = write!(
        out,
        "</tbody></table><form method=\"post\" action=\"/repairs/{}\"><button id=\"apply-repair\" type=\"submit\">Make these {} changes</button> \
         <a href=\"/problems\">Back without changing anything</a></form>",
        group.kind.slug(),
        group.items.len()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Plan, migrate, sign off
// ---------------------------------------------------------------------------------------------

fn counts_table(r: &Report) -> String {
    let mut out = String::from(
        "<table id=\"counts\"><thead><tr><th>Table</th><th>Insert</th><th>Update</th><th>Unchanged</th></tr></thead><tbody>",
    );
    for (table, c) in &r.counts {
        let _ = write!(
            out,
            "<tr data-table=\"{table}\"><td>{table}</td><td class=\"inserted\">{}</td><td class=\"updated\">{}</td><td class=\"unchanged\">{}</td></tr>",
            c.inserted, c.updated, c.unchanged
        );
    }
    out.push_str("</tbody></table>");
    out
}

pub(crate) fn plan(r: &Report, database: &DbUrl) -> String {
    let mut out = format!(
        "<h1>3. Plan</h1><p>A dry run against {}: everything a migration does, inside a \
         transaction that was rolled back. Nothing was written.</p>",
        esc(&database_label(database))
    );
    out.push_str(&counts_table(r));
    if r.nothing_changed() {
        out.push_str(&notice(
            "ok",
            "The database already holds exactly these records: a migration would change nothing.",
        ));
    }
    out.push_str("<h2>Sample rows</h2><table id=\"samples\"><thead><tr><th>Table</th><th>Line</th><th>Action</th><th>Record</th><th>Change (before → after)</th></tr></thead><tbody>");
    for (table, samples) in &r.samples {
        for s in samples {
            let action = match s.action {
                Some(Action::Insert) => "insert",
                Some(Action::Update) => "update",
                Some(Action::Unchanged) => "unchanged",
                None => "",
            };
            let _ = write!(
                out,
                "<tr class=\"{action}\"><td>{table}</td><td>{}</td><td>{action}</td><td>{}</td><td>{}</td></tr>",
                s.line,
                esc(&s.key),
                esc(&s.detail)
            );
        }
    }
    out.push_str("</tbody></table>");
    if !r.corrections.missing.is_empty() {
        out.push_str(&notice(
            "warning",
            &crate::report::corrections_refused(&r.corrections, false),
        ));
    }
    out.push_str("<p><a class=\"button\" id=\"to-migrate\" href=\"/migrate\">Go on to the migration →</a></p>");
    out
}

pub(crate) fn migrate_form(database: &DbUrl, ready: Result<(), String>) -> String {
    let label = database_label(database);
    let mut out = format!(
        "<h1>4. Migrate</h1><p>Target: <strong id=\"target\">{}</strong></p>",
        esc(&label)
    );
    match ready {
        Ok(()) => {
            let _ = write!(
                out,
                "<p>A backup of the affected tables is taken first; then everything is imported in \
                 one transaction and checked before it is committed. Either all of it lands or none.</p>\
                 <form method=\"post\" action=\"/migrate\" data-confirm=\"Migrate these files into {}? A backup is taken first.\">\
                 <button id=\"migrate\" type=\"submit\">Migrate</button></form>",
                esc(&label)
            );
        }
        Err(why) => out.push_str(&notice("warning", &why)),
    }
    out
}

pub(crate) fn running(
    what: &str,
    started: jiff::Timestamp,
    progress: &serde_json::Value,
) -> String {
    let seconds = jiff::Timestamp::now().duration_since(started).as_secs();
    let mut out = format!(
        "<h1>4. Migrate</h1><p id=\"running\" class=\"running\">{} in progress — started <span id=\"seconds\">{seconds}</span> s ago. \
         This page follows it by itself; closing it does not stop the run.</p>\
         <div id=\"progress\" data-poll=\"/api/progress\"><p>Now: <strong id=\"phase\">{}</strong> \
         <span id=\"phase-count\">{}</span></p><ol id=\"phases\">",
        esc(what),
        esc(progress["phase"].as_str().unwrap_or("starting")),
        esc(&phase_count(&progress["done"], &progress["total"]))
    );
    for phase in progress["phases"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<li class=\"{}\">{} {}</li>",
            if phase["finished"].as_bool() == Some(true) {
                "done"
            } else {
                "current"
            },
            esc(phase["name"].as_str().unwrap_or_default()),
            esc(&phase_count(&phase["done"], &phase["total"]))
        );
    }
    out.push_str("</ol></div>");
    out
}

/// `1,024 of 20,000 rows` where the total is known, `1,024 rows` where only the count is.
fn phase_count(done: &serde_json::Value, total: &serde_json::Value) -> String {
    match (done.as_u64(), total.as_u64()) {
        (Some(done), Some(total)) => format!("{done} of {total} rows"),
        (Some(done), None) if done > 0 => format!("{done} rows"),
        _ => String::new(),
    }
}

pub(crate) fn checks(v: &VerifyReport) -> String {
    let mut out = String::from("<ul id=\"checks\" class=\"checks\">");
    for c in &v.checks {
        let (mark, class) = match (c.status, c.preexisting) {
            (Status::Pass, _) => ("✓", "pass"),
            (Status::Warn, _) | (Status::Fail, true) => ("!", "warn"),
            (Status::Fail, false) => ("✗", "fail"),
        };
        let _ = write!(
            out,
            "<li class=\"{class}\" data-check=\"{}\"><span class=\"mark\">{mark}</span> {}{}",
            c.id,
            esc(&c.title),
            if c.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&c.message))
            }
        );
        if c.id == "reconciliation" && !c.columns.is_empty() {
            let rows = if c.failing_rows.is_empty() {
                &c.rows
            } else {
                &c.failing_rows
            };
            if !rows.is_empty() {
                out.push_str("<table class=\"reconciliation\"><thead><tr>");
                for col in &c.columns {
                    let _ = write!(out, "<th>{}</th>", esc(col));
                }
                out.push_str("</tr></thead><tbody>");
                for row in rows.iter().take(50) {
                    out.push_str("<tr>");
                    for cell in row {
                        let _ = write!(out, "<td>{}</td>", esc(cell));
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</tbody></table>");
            }
        }
        out.push_str("</li>");
    }
    if let Some(proof) = &v.proof {
        for p in proof {
            let (mark, class) = if p.matches {
                ("✓", "pass")
            } else {
                ("✗", "fail")
            };
            let _ = write!(
                out,
                "<li class=\"{class}\" data-check=\"read-back-{}\"><span class=\"mark\">{mark}</span> Read-back of {}: {} source rows, {} in the database</li>",
                p.table, p.table, p.source_rows, p.database_rows
            );
        }
    }
    out.push_str("</ul>");
    out
}

pub(crate) fn finished(what: &str, outcome: &RunOutcome) -> String {
    let mut out = String::from("<h1>4. Migrate</h1>");
    match outcome {
        RunOutcome::Imported(r) => {
            let _ = write!(
                out,
                "<p id=\"outcome\" class=\"ok\">✓ {} finished: run {} committed.</p>",
                esc(what),
                r.run_id
                    .map_or_else(|| "–".to_string(), |id| id.to_string())
            );
            if let Some(b) = &r.backup_file {
                let _ = write!(
                    out,
                    "<p>Backup taken before the run: <code>{}</code></p>",
                    esc(b)
                );
            }
            out.push_str(&counts_table(r));
            if let Some(v) = &r.verification {
                out.push_str("<h2>Checks</h2>");
                out.push_str(&checks(v));
            }
            let _ = write!(
                out,
                "<p><a class=\"button\" id=\"to-signoff\" href=\"/signoff{}\">Sign off →</a></p>",
                r.run_id.map(|id| format!("?run={id}")).unwrap_or_default()
            );
        }
        RunOutcome::Failed { message, checks: c } => {
            let _ = write!(
                out,
                "<p id=\"outcome\" class=\"bad\">✗ {} did not complete.</p>",
                esc(what)
            );
            out.push_str(&notice("error", message));
            if let Some(v) = c {
                out.push_str(&checks(v));
            }
        }
    }
    out
}

/// What a failed import tells the person: the library's words, never a trace.
pub(crate) fn import_failure(e: &ImportError) -> RunOutcome {
    let message = match e {
        ImportError::Invalid(_) => {
            "The files have errors; nothing was imported. Fix them on the Problems page."
                .to_string()
        }
        ImportError::Verification(_) => {
            "A check failed inside the transaction; it was rolled back and nothing was imported."
                .to_string()
        }
        ImportError::Corrections(c) => crate::report::corrections_refused(c, false),
        other => other.to_string(),
    };
    let checks = match e {
        ImportError::Verification(v) => Some(v.clone()),
        _ => None,
    };
    RunOutcome::Failed { message, checks }
}

pub(crate) fn history(runs: &[RunRecord], selected: Option<i64>, report: &str) -> String {
    let mut out = String::from("<h1>5. Sign off</h1>");
    out.push_str(report);
    out.push_str("<h2>History of runs</h2><table id=\"history\"><thead><tr><th>Run</th><th>When</th><th>Command</th><th>By</th><th>Outcome</th><th>Backup</th></tr></thead><tbody>");
    for r in runs {
        let current = if Some(r.id) == selected {
            " class=\"selected\""
        } else {
            ""
        };
        let restore = if r.backup_file.is_some() && !r.dry_run {
            format!(
                "<a class=\"restore\" href=\"/restore/{}\">restore the backup taken before it…</a>",
                r.id
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr{current} data-run=\"{}\"><td><a href=\"/signoff?run={}\">{}</a></td><td>{}</td><td>{}{}</td><td>{}</td><td class=\"outcome\">{}</td><td>{restore}</td></tr>",
            r.id,
            r.id,
            r.id,
            esc(&crate::domain::format_instant(r.started_at)),
            esc(&r.command),
            if r.dry_run { " (dry run)" } else { "" },
            esc(&r.invoked_by),
            esc(&format!("{:?}", r.outcome).to_lowercase())
        );
    }
    out.push_str("</tbody></table>");
    out
}

pub(crate) fn restore_confirm(run: &RunRecord, database: &DbUrl) -> String {
    let label = database_label(database);
    format!(
        "<h1>Restore</h1><p>This replaces the contents of the Habitat tables in <strong>{}</strong> \
         with the backup taken before run {} (<code>{}</code>), in one transaction. The current \
         contents are backed up first.</p>\
         <form method=\"post\" action=\"/restore/{}\" data-confirm=\"Really replace the tables in {} with the backup taken before run {}?\">\
         <button id=\"restore\" type=\"submit\" class=\"danger\">Restore the backup</button> \
         <a href=\"/signoff\">Back without changing anything</a></form>",
        esc(&label),
        run.id,
        esc(run.backup_file.as_deref().unwrap_or_default()),
        run.id,
        esc(&label),
        run.id
    )
}
