//! Finds the formula cells of an `.xlsx` sheet that were saved without their result.
//!
//! calamine's streaming cell reader gives such a cell as empty, the same as a blank cell, and a
//! blank read where the treasurer sees a formula would be a guess. So before a sheet is read, its
//! XML is scanned once more, streaming, for `<c>` elements holding an `<f>` and no non-empty `<v>`.
//! The sheet's part is found the way a spreadsheet finds it: `xl/workbook.xml` names the sheet's
//! relationship, `xl/_rels/workbook.xml.rels` its part. Memory: one position per such cell, at
//! most [`MAX_LISTED`] of them.

use std::io::{BufReader, Read, Seek};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

/// The most formula cells without a result that are kept (8 bytes each); a sheet with more has
/// the first ones reported, which is enough to know what to do.
const MAX_LISTED: usize = 100_000;

/// The (row, column) positions, 0-based and in the sheet's order, of the formula cells of `sheet`
/// that have no saved result. Any trouble finding or reading the part gives an empty list: the
/// cell reader that follows reports a broken sheet itself.
pub(super) fn formulas_without_value<RS: Read + Seek>(input: RS, sheet: &str) -> Vec<(u32, u32)> {
    let Ok(mut zip) = ZipArchive::new(input) else {
        return Vec::new();
    };
    let Some(part) = sheet_part(&mut zip, sheet) else {
        return Vec::new();
    };
    let Ok(file) = zip.by_name(&part) else {
        return Vec::new();
    };
    scan(BufReader::new(file))
}

fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// The zip path of the worksheet named `sheet`, e.g. `xl/worksheets/sheet2.xml`.
fn sheet_part<RS: Read + Seek>(zip: &mut ZipArchive<RS>, sheet: &str) -> Option<String> {
    let mut rel_id = None;
    each_element(zip, "xl/workbook.xml", |e| {
        if e.local_name().as_ref() == b"sheet" && attribute(e, b"name").as_deref() == Some(sheet) {
            rel_id = attribute(e, b"id");
        }
    });
    let rel_id = rel_id?;
    let mut target = None;
    each_element(zip, "xl/_rels/workbook.xml.rels", |e| {
        if e.local_name().as_ref() == b"Relationship"
            && attribute(e, b"Id").as_deref() == Some(rel_id.as_str())
        {
            target = attribute(e, b"Target");
        }
    });
    let target = target?;
    Some(match target.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => format!("xl/{target}"),
    })
}

/// Calls `visit` on every start or empty element of a (small) part.
fn each_element<RS: Read + Seek>(
    zip: &mut ZipArchive<RS>,
    part: &str,
    mut visit: impl FnMut(&BytesStart<'_>),
) {
    let Ok(file) = zip.by_name(part) else {
        return;
    };
    let mut xml = Reader::from_reader(BufReader::new(file));
    let mut buf = Vec::new();
    loop {
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => visit(&e),
            Ok(Event::Eof) | Err(_) => return,
            _ => {}
        }
        buf.clear();
    }
}

/// Scans a worksheet's XML.
fn scan(input: impl std::io::BufRead) -> Vec<(u32, u32)> {
    let mut xml = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut found = Vec::new();
    let (mut row, mut col) = (0u32, 0u32);
    // Within a cell: its position, whether it has a formula, a value, and whether in its <v>.
    let (mut here, mut formula, mut value, mut in_value) = ((0, 0), false, false, false);
    loop {
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"row" => {
                    if let Some(r) = attribute(&e, b"r").and_then(|r| r.parse::<u32>().ok()) {
                        row = r.saturating_sub(1);
                    }
                    col = 0;
                }
                b"c" => {
                    here = cell_position(&e, row, col);
                    col = here.1 + 1;
                    (formula, value, in_value) = (false, false, false);
                }
                b"f" => formula = true,
                b"v" | b"is" => in_value = true,
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"c" => {
                    col = cell_position(&e, row, col).1 + 1;
                }
                b"f" => formula = true,
                b"row" => {
                    if let Some(r) = attribute(&e, b"r").and_then(|r| r.parse::<u32>().ok()) {
                        row = r;
                    }
                }
                _ => {}
            },
            Ok(Event::Text(t)) if in_value && !t.is_empty() => value = true,
            Ok(Event::GeneralRef(_)) if in_value => value = true,
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"v" | b"is" => in_value = false,
                b"c" if formula && !value && found.len() < MAX_LISTED => found.push(here),
                b"row" => row = row.saturating_add(1),
                b"sheetData" => break,
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    found
}

/// A cell's position from its `r` attribute (`C7`), or the next one in its row without one.
fn cell_position(e: &BytesStart<'_>, row: u32, col: u32) -> (u32, u32) {
    let Some(r) = attribute(e, b"r") else {
        return (row, col);
    };
    let letters = r.bytes().take_while(u8::is_ascii_uppercase).count();
    let column = r.bytes().take(letters).fold(0u32, |n, b| {
        n.saturating_mul(26).saturating_add(u32::from(b - b'A') + 1)
    });
    let number = r[letters..].parse::<u32>().unwrap_or(row + 1);
    (number.saturating_sub(1), column.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_without_a_saved_value_are_found() {
        let xml = br#"<worksheet><sheetData>
            <row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><f>1+1</f><v>2</v></c></row>
            <row r="2"><c r="A2"><f>SUM(B:B)</f></c><c r="C2" t="str"><f>A1</f><v></v></c>
              <c r="D2"><f t="shared" si="0"/></c><c r="E2" s="1"/></row>
        </sheetData></worksheet>"#;
        assert_eq!(scan(&xml[..]), [(1, 0), (1, 2), (1, 3)]);
    }
}
