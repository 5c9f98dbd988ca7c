//! The PDF rendering of a [`Document`]: A4 pages laid out here, written by `krilla` (pure Rust, no
//! browser, no system font), with DejaVu Sans embedded so that ✓, ✗, — and accented names print.
//!
//! Layout is deliberately simple — one column, text wrapped at spaces (or anywhere in a word
//! longer than the line), tables sized to their content and wrapped in their cells, a table's
//! header repeated on each page it continues on — because the documents are simple; what matters
//! is that every figure and every check of the HTML page is there, in order, and that the text can
//! be extracted (krilla writes a `ToUnicode` map for the subset of the font it embeds, so
//! `pdftotext` gives back exactly the characters drawn). See DESIGN.md for why krilla.
//!
//! Coordinates are points (1/72 inch), y downwards from the top of the page. They are `f32`
//! because that is what a PDF and krilla speak; no amount is ever one (amounts arrive as text).

// Page geometry is floating point by nature; amounts never pass through here as numbers.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use krilla::Document as PdfDocument;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, MetadataProvider};

use super::document::{Block, Cell, CheckLine, Document, Mark, Table};

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 46.0;
/// Room kept at the bottom of each page for the footer line.
const FOOTER: f32 = 22.0;
const WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

const TITLE: f32 = 17.0;
const HEADING: f32 = 12.5;
const BODY: f32 = 9.5;
const SMALL: f32 = 8.0;
const LEADING: f32 = 1.35;
const CELL_PAD: f32 = 3.5;

type Colour = (u8, u8, u8);
const INK: Colour = (0x1d, 0x24, 0x33);
const QUIET: Colour = (0x5b, 0x64, 0x75);
const RULE: Colour = (0xd5, 0xd9, 0xe0);
const HEAD: Colour = (0xf3, 0xf5, 0xf8);
const PASS: Colour = (0x1a, 0x7f, 0x37);
const WARN: Colour = (0x9a, 0x67, 0x00);
const FAIL: Colour = (0xcf, 0x22, 0x2e);
const FLAG: Colour = (0xff, 0xe3, 0xe0);
const FLAG_INK: Colour = (0x82, 0x07, 0x1e);

/// Why a PDF could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded font could not be read")]
    Font,
    #[error("the PDF could not be written: {0}")]
    Render(String),
}

/// The document as PDF bytes.
pub fn render(doc: &Document) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::load().ok_or(PdfError::Font)?;
    let mut layout = Layout::new(&fonts);
    layout.text_wrapped(&doc.title, TITLE, true, INK, 0.0);
    layout.gap(2.0);
    layout.text_wrapped(&doc.subtitle, BODY, false, QUIET, 0.0);
    layout.gap(6.0);
    for block in &doc.blocks {
        layout.block(block);
    }
    let pages = layout.finish();
    write(doc, &fonts, &pages)
}

/// One thing drawn on a page.
enum Op {
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        bold: bool,
        colour: Colour,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        colour: Colour,
    },
    Line {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
        colour: Colour,
    },
}

/// The two faces, for drawing (krilla) and for measuring (skrifa, on the same bytes).
struct Fonts {
    regular: Font,
    bold: Font,
    regular_metrics: Metrics,
    bold_metrics: Metrics,
}

struct Metrics {
    font: FontRef<'static>,
    /// Advances at 1 point: multiplied by the size.
    advances: GlyphMetrics<'static>,
    /// The advances of ASCII, looked up once: nearly every character measured is one.
    ascii: [f32; 128],
}

impl Metrics {
    fn load(bytes: &'static [u8]) -> Option<Metrics> {
        let font = FontRef::new(bytes).ok()?;
        let advances = font.glyph_metrics(Size::new(1.0), LocationRef::default());
        let mut metrics = Metrics {
            font,
            advances,
            ascii: [0.0; 128],
        };
        for (code, slot) in (0u8..128).zip(0..128) {
            metrics.ascii[slot] = metrics.lookup(char::from(code));
        }
        Some(metrics)
    }

    fn lookup(&self, c: char) -> f32 {
        self.font
            .charmap()
            .map(c)
            .and_then(|g| self.advances.advance_width(g))
            // A character the font lacks is drawn as its empty box, about 0.6 em.
            .unwrap_or(0.6)
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let em: f32 = text
            .chars()
            .map(|c| match self.ascii.get(c as usize) {
                Some(advance) => *advance,
                None => self.lookup(c),
            })
            .sum();
        em * size
    }
}

impl Fonts {
    fn load() -> Option<Fonts> {
        Some(Fonts {
            regular: Font::new(REGULAR.to_vec().into(), 0)?,
            bold: Font::new(BOLD.to_vec().into(), 0)?,
            regular_metrics: Metrics::load(REGULAR)?,
            bold_metrics: Metrics::load(BOLD)?,
        })
    }

    fn width(&self, text: &str, size: f32, bold: bool) -> f32 {
        if bold {
            self.bold_metrics.width(text, size)
        } else {
            self.regular_metrics.width(text, size)
        }
    }

    /// `text` broken into lines no wider than `width`: at spaces, and inside a word only when the
    /// word alone is wider than the line (a checksum, a long email).
    fn wrap(&self, text: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
        let space = self.width(" ", size, bold);
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let (mut line, mut line_width) = (String::new(), 0.0_f32);
            for word in paragraph.split(' ') {
                let word_width = self.width(word, size, bold);
                if line.is_empty() && word_width <= width {
                    line.push_str(word);
                    line_width = word_width;
                    continue;
                }
                if !line.is_empty() && line_width + space + word_width <= width {
                    line.push(' ');
                    line.push_str(word);
                    line_width += space + word_width;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word starts a line; split it if it is wider than one.
                line_width = 0.0;
                for c in word.chars() {
                    let advance = self.width(c.encode_utf8(&mut [0; 4]), size, bold);
                    if line_width + advance > width && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line_width = 0.0;
                    }
                    line.push(c);
                    line_width += advance;
                }
            }
            lines.push(line);
        }
        lines
    }
}

/// Blocks placed on pages, top to bottom.
struct Layout<'f> {
    fonts: &'f Fonts,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl<'f> Layout<'f> {
    fn new(fonts: &'f Fonts) -> Layout<'f> {
        Layout {
            fonts,
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn bottom() -> f32 {
        PAGE_HEIGHT - MARGIN - FOOTER
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Starts a new page unless `height` more fits on this one (a block taller than a page
    /// starts at the top of one and runs over).
    fn ensure(&mut self, height: f32) -> bool {
        if self.y + height > Self::bottom() && self.y > MARGIN {
            self.new_page();
            return true;
        }
        false
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn gap(&mut self, height: f32) {
        self.y += height;
    }

    fn finish(self) -> Vec<Vec<Op>> {
        self.pages
    }

    fn text(&mut self, x: f32, baseline: f32, size: f32, bold: bool, colour: Colour, text: &str) {
        if !text.is_empty() {
            self.push(Op::Text {
                x,
                baseline,
                size,
                bold,
                colour,
                text: text.to_string(),
            });
        }
    }

    /// Wrapped text across the content width from `indent`, a page break allowed between lines.
    fn text_wrapped(&mut self, text: &str, size: f32, bold: bool, colour: Colour, indent: f32) {
        let line_height = size * LEADING;
        for line in self.fonts.wrap(text, size, bold, WIDTH - indent) {
            self.ensure(line_height);
            self.text(MARGIN + indent, self.y + size, size, bold, colour, &line);
            self.y += line_height;
        }
    }

    fn block(&mut self, block: &Block) {
        match block {
            Block::Heading(text) => {
                self.gap(12.0);
                // Keep a heading with at least a few lines of what follows it.
                self.ensure(HEADING * LEADING + 5.0 * BODY * LEADING);
                self.text_wrapped(text, HEADING, true, INK, 0.0);
                self.push(Op::Line {
                    x1: MARGIN,
                    x2: MARGIN + WIDTH,
                    y: self.y + 1.0,
                    width: 0.6,
                    colour: RULE,
                });
                self.gap(6.0);
            }
            Block::Paragraph(text) => {
                self.text_wrapped(text, BODY, false, INK, 0.0);
                self.gap(3.0);
            }
            Block::Note(text) => {
                self.text_wrapped(text, SMALL, false, QUIET, 0.0);
                self.gap(3.0);
            }
            Block::Facts(facts) => self.facts(facts),
            Block::Checks(lines) => {
                for line in lines {
                    self.check(line);
                }
                self.gap(3.0);
            }
            Block::Table(table) => self.table(table),
            Block::SignOff(signatories) => self.sign_off(signatories),
        }
    }

    fn facts(&mut self, facts: &[(String, String)]) {
        let label_width = facts
            .iter()
            .map(|(label, _)| self.fonts.width(label, BODY, true))
            .fold(0.0_f32, f32::max)
            .min(150.0)
            + 12.0;
        let line_height = BODY * LEADING;
        for (label, value) in facts {
            let labels = self.fonts.wrap(label, BODY, true, label_width - 12.0);
            let values = self.fonts.wrap(value, BODY, false, WIDTH - label_width);
            let lines = labels.len().max(values.len());
            self.ensure(lines as f32 * line_height);
            for (i, l) in labels.iter().enumerate() {
                let baseline = self.y + BODY + i as f32 * line_height;
                self.text(MARGIN, baseline, BODY, true, INK, l);
            }
            for (i, v) in values.iter().enumerate() {
                let baseline = self.y + BODY + i as f32 * line_height;
                self.text(MARGIN + label_width, baseline, BODY, false, INK, v);
            }
            self.y += lines as f32 * line_height;
        }
        self.gap(3.0);
    }

    fn check(&mut self, line: &CheckLine) {
        let indent = 16.0;
        let colour = match line.mark {
            Mark::Pass => PASS,
            Mark::Warn => WARN,
            Mark::Fail => FAIL,
        };
        let line_height = BODY * LEADING;
        let texts = self.fonts.wrap(&line.text, BODY, false, WIDTH - indent);
        self.ensure(line_height * texts.len().min(3) as f32);
        self.text(
            MARGIN,
            self.y + BODY,
            BODY,
            true,
            colour,
            line.mark.symbol(),
        );
        for text in texts {
            self.ensure(line_height);
            self.text(MARGIN + indent, self.y + BODY, BODY, false, INK, &text);
            self.y += line_height;
        }
        if let Some(detail) = &line.detail {
            self.text_wrapped(detail, SMALL, false, QUIET, indent);
        }
        self.gap(1.5);
    }

    /// Column widths: each column's natural width; figures keep theirs, text columns share what
    /// is left (and wrap); if even the figures do not fit, every column shrinks in proportion.
    fn column_widths(&self, table: &Table) -> Vec<f32> {
        let natural: Vec<f32> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let body = table
                    .rows
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|cell| self.fonts.width(&cell.text, SMALL, cell.flagged))
                    .fold(0.0_f32, f32::max);
                // The total line is bold.
                let cells = table
                    .footer
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|cell| self.fonts.width(&cell.text, SMALL, true))
                    .fold(body, f32::max);
                cells.max(self.fonts.width(&column.name, SMALL, true)) + 2.0 * CELL_PAD + 1.0
            })
            .collect();
        let total: f32 = natural.iter().sum();
        if total <= WIDTH {
            // Spread the spare width over the text columns, so tables span the page.
            let text_total: f32 = table
                .columns
                .iter()
                .zip(&natural)
                .filter(|(c, _)| !c.numeric)
                .map(|(_, w)| w)
                .sum();
            let spare = WIDTH - total;
            return table
                .columns
                .iter()
                .zip(&natural)
                .map(|(c, w)| {
                    if c.numeric || text_total <= 0.0 {
                        *w + if text_total <= 0.0 {
                            spare / natural.len() as f32
                        } else {
                            0.0
                        }
                    } else {
                        w + spare * w / text_total
                    }
                })
                .collect();
        }
        let figures: f32 = table
            .columns
            .iter()
            .zip(&natural)
            .filter(|(c, _)| c.numeric)
            .map(|(_, w)| w)
            .sum();
        let left = WIDTH - figures;
        // Each text column keeps its natural width up to a floor (a label or an email is not
        // broken); what is left goes to the wider ones in proportion to what they lack.
        let floor = |w: f32| w.min(130.0);
        let floors: f32 = table
            .columns
            .iter()
            .zip(&natural)
            .filter(|(c, _)| !c.numeric)
            .map(|(_, w)| floor(*w))
            .sum();
        let wanting: f32 = table
            .columns
            .iter()
            .zip(&natural)
            .filter(|(c, _)| !c.numeric)
            .map(|(_, w)| w - floor(*w))
            .sum();
        if left > floors && wanting > 0.0 {
            table
                .columns
                .iter()
                .zip(&natural)
                .map(|(c, w)| {
                    if c.numeric {
                        *w
                    } else {
                        floor(*w) + (left - floors) * (w - floor(*w)) / wanting
                    }
                })
                .collect()
        } else {
            natural.iter().map(|w| w * WIDTH / total).collect()
        }
    }

    fn table(&mut self, table: &Table) {
        let widths = self.column_widths(table);
        let header: Vec<Cell> = table
            .columns
            .iter()
            .map(|c| Cell::from(c.name.as_str()))
            .collect();
        let header_height = self.row_height(&header, &widths, true);
        self.ensure(header_height + 2.0 * (SMALL * LEADING + 2.0 * CELL_PAD));
        self.row(table, &header, &widths, Style::Header);
        for cells in &table.rows {
            let height = self.row_height(cells, &widths, false);
            if self.ensure(height) {
                self.row(table, &header, &widths, Style::Header);
            }
            self.row(table, cells, &widths, Style::Body);
        }
        if let Some(footer) = &table.footer {
            let height = self.row_height(footer, &widths, true);
            if self.ensure(height) {
                self.row(table, &header, &widths, Style::Header);
            }
            self.row(table, footer, &widths, Style::Footer);
        }
        self.gap(4.0);
        if let Some(note) = &table.note {
            self.text_wrapped(note, SMALL, false, QUIET, 0.0);
        }
        self.gap(3.0);
    }

    fn cell_lines(&self, cell: &Cell, width: f32, bold: bool) -> Vec<String> {
        self.fonts.wrap(
            &cell.text,
            SMALL,
            bold || cell.flagged,
            width - 2.0 * CELL_PAD,
        )
    }

    fn row_height(&self, cells: &[Cell], widths: &[f32], bold: bool) -> f32 {
        let lines = cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| self.cell_lines(cell, *w, bold).len())
            .max()
            .unwrap_or(1);
        lines as f32 * SMALL * LEADING + 2.0 * CELL_PAD
    }

    fn row(&mut self, table: &Table, cells: &[Cell], widths: &[f32], style: Style) {
        let bold = style != Style::Body;
        let height = self.row_height(cells, widths, bold);
        if style == Style::Header {
            self.push(Op::Rect {
                x: MARGIN,
                y: self.y,
                w: widths.iter().sum(),
                h: height,
                colour: HEAD,
            });
        }
        let mut x = MARGIN;
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let numeric = table.columns.get(i).is_some_and(|c| c.numeric);
            if cell.flagged {
                self.push(Op::Rect {
                    x,
                    y: self.y,
                    w: *width,
                    h: height,
                    colour: FLAG,
                });
            }
            let colour = if cell.flagged { FLAG_INK } else { INK };
            for (j, line) in self.cell_lines(cell, *width, bold).iter().enumerate() {
                let line_width = self.fonts.width(line, SMALL, bold || cell.flagged);
                let left = if numeric {
                    x + width - CELL_PAD - line_width
                } else {
                    x + CELL_PAD
                };
                let baseline = self.y + CELL_PAD + SMALL + j as f32 * SMALL * LEADING - 1.0;
                self.text(left, baseline, SMALL, bold || cell.flagged, colour, line);
            }
            x += width;
        }
        self.y += height;
        self.push(Op::Line {
            x1: MARGIN,
            x2: x,
            y: self.y,
            width: if style == Style::Body { 0.4 } else { 0.8 },
            colour: if style == Style::Body { RULE } else { QUIET },
        });
    }

    fn sign_off(&mut self, signatories: &[String]) {
        let each = BODY * LEADING + 44.0;
        self.ensure(each * signatories.len() as f32 + 10.0);
        self.gap(10.0);
        let fields = [
            ("Name", 0.0, 0.3),
            ("Date", 0.34, 0.24),
            ("Signature", 0.62, 0.38),
        ];
        for who in signatories {
            self.text(MARGIN, self.y + BODY, BODY, true, INK, who);
            self.y += BODY * LEADING + 24.0;
            for (label, start, share) in fields {
                let x = MARGIN + start * WIDTH;
                self.push(Op::Line {
                    x1: x,
                    x2: x + share * WIDTH,
                    y: self.y,
                    width: 0.8,
                    colour: INK,
                });
                self.text(x, self.y + SMALL + 3.0, SMALL, false, QUIET, label);
            }
            self.y += 20.0;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Header,
    Body,
    Footer,
}

fn fill(colour: Colour) -> Fill {
    Fill {
        paint: rgb::Color::new(colour.0, colour.1, colour.2).into(),
        ..Fill::default()
    }
}

fn draw(surface: &mut Surface<'_>, fonts: &Fonts, op: &Op) {
    match op {
        Op::Text {
            x,
            baseline,
            size,
            bold,
            colour,
            text,
        } => {
            surface.set_fill(Some(fill(*colour)));
            let font = if *bold { &fonts.bold } else { &fonts.regular };
            surface.draw_text(
                Point::from_xy(*x, *baseline),
                font.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rect { x, y, w, h, colour } => {
            let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) else {
                return;
            };
            let mut path = PathBuilder::new();
            path.push_rect(rect);
            if let Some(path) = path.finish() {
                surface.set_fill(Some(fill(*colour)));
                surface.set_stroke(None);
                surface.draw_path(&path);
            }
        }
        Op::Line {
            x1,
            x2,
            y,
            width,
            colour,
        } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y);
            path.line_to(*x2, *y);
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: rgb::Color::new(colour.0, colour.1, colour.2).into(),
                    width: *width,
                    ..Stroke::default()
                }));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
    }
}

fn write(doc: &Document, fonts: &Fonts, pages: &[Vec<Op>]) -> Result<Vec<u8>, PdfError> {
    let mut pdf = PdfDocument::new();
    pdf.set_metadata(
        Metadata::new()
            .title(doc.title.clone())
            .creator(format!("habitat-migrate {}", env!("CARGO_PKG_VERSION")))
            .language("en".to_string()),
    );
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or(PdfError::Render("page size".into()))?;
    for (number, ops) in pages.iter().enumerate() {
        let mut page = pdf.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, fonts, op);
        }
        let footer_line = PAGE_HEIGHT - MARGIN - FOOTER + 10.0;
        let page_label = format!("Page {} of {}", number + 1, pages.len());
        let label_width = fonts.width(&page_label, SMALL, false);
        for op in [
            Op::Line {
                x1: MARGIN,
                x2: MARGIN + WIDTH,
                y: footer_line,
                width: 0.4,
                colour: RULE,
            },
            Op::Text {
                x: MARGIN,
                baseline: footer_line + 12.0,
                size: SMALL,
                bold: false,
                colour: QUIET,
                text: doc.title.clone(),
            },
            Op::Text {
                x: MARGIN + WIDTH - label_width,
                baseline: footer_line + 12.0,
                size: SMALL,
                bold: false,
                colour: QUIET,
                text: page_label,
            },
        ] {
            draw(&mut surface, fonts, &op);
        }
        surface.finish();
        page.finish();
    }
    pdf.finish().map_err(|e| PdfError::Render(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::document::Column;

    #[test]
    fn a_document_renders_to_a_pdf() {
        let doc = Document {
            title: "Sign-off report — run 1".into(),
            subtitle: "Zoë Müller ✓".into(),
            blocks: vec![
                Block::Heading("Checks".into()),
                Block::Checks(vec![CheckLine {
                    mark: Mark::Pass,
                    text: "All members have valid emails".into(),
                    detail: None,
                }]),
                Block::Table(Table {
                    columns: vec![Column::text("member"), Column::figure("difference")],
                    rows: (0..200)
                        .map(|i| vec![format!("m{i}@example.org").into(), Cell::flagged("1.00")])
                        .collect(),
                    ..Table::default()
                }),
                Block::SignOff(vec!["Treasurer".into()]),
            ],
        };
        let pdf = render(&doc).expect("renders");
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
    }

    #[test]
    fn wrapping_breaks_long_words_and_keeps_short_lines() {
        let fonts = Fonts::load().expect("fonts");
        let lines = fonts.wrap(&"a".repeat(400), BODY, false, 100.0);
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|l| fonts.width(l, BODY, false) <= 100.0));
        assert_eq!(
            fonts.wrap("two words", BODY, false, 500.0),
            vec!["two words"]
        );
    }
}
