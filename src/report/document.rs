//! A printed document — the sign-off report, a member's statement — as data, and its rendering
//! as one self-contained HTML page.
//!
//! The report and the statements are built once as a [`Document`] (headings, facts, check lines,
//! tables with flagged cells, a sign-off block) and rendered twice: [`Document::to_html`] here and
//! [`super::pdf::render`]. So the HTML a browser shows and the PDF a treasurer signs cannot say
//! different things. Every text in a document is plain text; the HTML renderer escapes all of it,
//! so a display name like `<script>` is shown, never run.

use std::fmt::Write;

/// A whole document: a title, a line under it, and its blocks in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    pub title: String,
    pub subtitle: String,
    pub blocks: Vec<Block>,
}

/// One part of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// A paragraph of running text.
    Paragraph(String),
    /// A smaller, quieter paragraph: what a table leaves out, where to find the rest.
    Note(String),
    /// Label and value pairs ("Started", "2026-11-27T18:27:58Z").
    Facts(Vec<(String, String)>),
    /// Check lines, each with its ✓, ! or ✗.
    Checks(Vec<CheckLine>),
    Table(Table),
    /// Signature lines, one per signatory (e.g. "Treasurer").
    SignOff(Vec<String>),
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Warn,
    Fail,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Pass => "✓",
            Mark::Warn => "!",
            Mark::Fail => "✗",
        }
    }

    /// The CSS class of its line.
    pub fn class(self) -> &'static str {
        match self {
            Mark::Pass => "pass",
            Mark::Warn => "warn",
            Mark::Fail => "fail",
        }
    }
}

/// One check line: its mark, its text, and an optional detail under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    pub mark: Mark,
    pub text: String,
    pub detail: Option<String>,
}

/// A table: columns, rows of cells, and a note under it (what it leaves out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// The total line, shown in bold under the rows.
    pub footer: Option<Vec<Cell>>,
    pub note: Option<String>,
}

/// A column's header and whether it holds figures (right-aligned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub numeric: bool,
}

impl Column {
    pub fn text(name: &str) -> Column {
        Column {
            name: name.to_string(),
            numeric: false,
        }
    }

    pub fn figure(name: &str) -> Column {
        Column {
            name: name.to_string(),
            numeric: true,
        }
    }
}

/// One cell; a flagged cell is highlighted (a difference that needs a look).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub flagged: bool,
}

impl Cell {
    pub fn flagged(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            flagged: true,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Cell {
        Cell {
            text: text.into(),
            flagged: false,
        }
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by entities: safe in element content and in
/// quoted attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's only style sheet, inline: the file is read offline and fetches nothing. Colours
/// are kept when printing (`print-color-adjust`), so a flagged difference stays visible on paper.
const STYLE: &str = r#"
:root { --ink: #1d2433; --quiet: #5b6475; --rule: #d5d9e0; --pass: #1a7f37; --warn: #9a6700;
        --fail: #cf222e; --flag: #ffe3e0; --head: #f3f5f8; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 14px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
.subtitle { color: var(--quiet); margin: 0 0 1.5rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; padding-bottom: .25rem;
     border-bottom: 1px solid var(--rule); }
p { margin: .4rem 0; }
p.note { color: var(--quiet); font-size: .85rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.checks { list-style: none; padding: 0; margin: 0; }
ul.checks li { margin: .2rem 0; padding-left: 1.6rem; text-indent: -1.6rem; }
.mark { display: inline-block; width: 1.6rem; text-indent: 0; font-weight: 700; }
li.pass .mark { color: var(--pass); }
li.warn .mark { color: var(--warn); }
li.fail .mark { color: var(--fail); }
li .detail { display: block; color: var(--quiet); font-size: .85rem; text-indent: 0; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: .3rem 0; }
th, td { border: 1px solid var(--rule); padding: .25rem .45rem; text-align: left;
         vertical-align: top; overflow-wrap: break-word; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.flagged { background: var(--flag); color: #82071e; font-weight: 700; }
tfoot td { font-weight: 700; }
.signoff { margin-top: 2.5rem; }
.signatory { display: grid; grid-template-columns: 1fr 1fr 1.3fr; gap: 1.5rem;
             margin: 1.8rem 0 0; break-inside: avoid; }
.signatory .role { grid-column: 1 / -1; font-weight: 600; margin-bottom: -1rem; }
.field { display: flex; flex-direction: column; }
.field .line { border-bottom: 1px solid var(--ink); height: 2.2rem; }
.field .label { color: var(--quiet); font-size: .8rem; }
@media print {
  @page { size: A4; margin: 16mm 14mm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  tr, li, dl.facts { break-inside: avoid; }
  thead { display: table-header-group; }
  .signoff { break-inside: avoid; }
}
"#;

impl Document {
    /// The document as one HTML page with its style inline and no external resource.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"habitat-migrate {}\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
             <header>\n<h1>{}</h1>\n<p class=\"subtitle\">{}</p>\n</header>\n",
            env!("CARGO_PKG_VERSION"),
            escape(&self.title),
            escape(&self.title),
            escape(&self.subtitle),
        );
        for block in &self.blocks {
            block_html(&mut out, block);
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

fn block_html(out: &mut String, block: &Block) {
    match block {
        Block::Heading(text) => {
            let _ = writeln!(out, "<h2>{}</h2>", escape(text));
        }
        Block::Paragraph(text) => {
            let _ = writeln!(out, "<p>{}</p>", escape(text));
        }
        Block::Note(text) => {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(text));
        }
        Block::Facts(facts) => {
            out.push_str("<dl class=\"facts\">\n");
            for (label, value) in facts {
                let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(value));
            }
            out.push_str("</dl>\n");
        }
        Block::Checks(lines) => {
            out.push_str("<ul class=\"checks\">\n");
            for line in lines {
                let _ = write!(
                    out,
                    "<li class=\"check {}\"><span class=\"mark\">{}</span>{}",
                    line.mark.class(),
                    line.mark.symbol(),
                    escape(&line.text)
                );
                if let Some(detail) = &line.detail {
                    let _ = write!(out, "<span class=\"detail\">{}</span>", escape(detail));
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        Block::Table(table) => table_html(out, table),
        Block::SignOff(signatories) => {
            out.push_str("<section class=\"signoff\">\n");
            for who in signatories {
                let _ = writeln!(
                    out,
                    "<div class=\"signatory\"><div class=\"role\">{}</div>\
                     <div class=\"field\"><span class=\"line\"></span><span class=\"label\">Name</span></div>\
                     <div class=\"field\"><span class=\"line\"></span><span class=\"label\">Date</span></div>\
                     <div class=\"field\"><span class=\"line\"></span><span class=\"label\">Signature</span></div></div>",
                    escape(who)
                );
            }
            out.push_str("</section>\n");
        }
    }
}

fn table_html(out: &mut String, table: &Table) {
    let class = |numeric: bool, flagged: bool| match (numeric, flagged) {
        (true, true) => " class=\"num flagged\"",
        (true, false) => " class=\"num\"",
        (false, true) => " class=\"flagged\"",
        (false, false) => "",
    };
    out.push_str("<table>\n<thead><tr>");
    for c in &table.columns {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            class(c.numeric, false),
            escape(&c.name)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let row = |out: &mut String, cells: &[Cell]| {
        out.push_str("<tr>");
        for (i, cell) in cells.iter().enumerate() {
            let numeric = table.columns.get(i).is_some_and(|c| c.numeric);
            let _ = write!(
                out,
                "<td{}>{}</td>",
                class(numeric, cell.flagged),
                escape(&cell.text)
            );
        }
        out.push_str("</tr>\n");
    };
    for cells in &table.rows {
        row(out, cells);
    }
    out.push_str("</tbody>\n");
    if let Some(footer) = &table.footer {
        out.push_str("<tfoot>\n");
        row(out, footer);
        out.push_str("</tfoot>\n");
    }
    out.push_str("</table>\n");
    if let Some(note) = &table.note {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_escaped() {
        let evil = "<script>alert('x')</script> & \"q\"";
        let doc = Document {
            title: evil.into(),
            subtitle: evil.into(),
            blocks: vec![
                Block::Heading(evil.into()),
                Block::Paragraph(evil.into()),
                Block::Note(evil.into()),
                Block::Facts(vec![(evil.into(), evil.into())]),
                Block::Checks(vec![CheckLine {
                    mark: Mark::Fail,
                    text: evil.into(),
                    detail: Some(evil.into()),
                }]),
                Block::Table(Table {
                    columns: vec![Column::text(evil)],
                    rows: vec![vec![Cell::flagged(evil)]],
                    footer: Some(vec![evil.into()]),
                    note: Some(evil.into()),
                }),
                Block::SignOff(vec![evil.into()]),
            ],
        };
        let html = doc.to_html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("'x'"));
        assert_eq!(html.matches("&lt;script&gt;").count(), 15);
    }

    #[test]
    fn flagged_figures_get_both_classes() {
        let doc = Document {
            blocks: vec![Block::Table(Table {
                columns: vec![Column::text("member"), Column::figure("difference")],
                rows: vec![vec!["a@example.org".into(), Cell::flagged("-1.00")]],
                ..Table::default()
            })],
            ..Document::default()
        };
        assert!(
            doc.to_html()
                .contains("<td>a@example.org</td><td class=\"num flagged\">-1.00</td>")
        );
    }
}
