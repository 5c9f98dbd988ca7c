//! The annotated copy of a `.json` or `.jsonl` file, written as CSV: its records on the lines
//! the reader gives them, the table's columns and then the file's other keys.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{BufRead, Read};

use serde_json::{Map, Value};

use crate::source::{Format, MAX_COLUMNS, MAX_JSON_FILE_BYTES, MAX_RECORD_BYTES, SourceFile};

use super::{Failure, Input, RowWriter, is_annotation_column};

/// One JSON record: the line the reader gives it, and its keys and values in order.
struct JsonRecord {
    line: u64,
    object: Map<String, Value>,
}

/// The records of a `.json` or `.jsonl` file, on the lines the reader gives them.
fn json_records(
    file: &SourceFile,
    input: &Input<'_>,
    each: &mut dyn FnMut(JsonRecord) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let not_json = |line: u64, what: &dyn std::fmt::Display| {
        Failure::Unreadable(format!("line {line}: {what}; fix the JSON first"))
    };
    let mut reader = input.open().map_err(Failure::Read)?;
    if file.format == Format::JsonLines {
        let mut line = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = u64::try_from(MAX_RECORD_BYTES).unwrap_or(u64::MAX) + 1;
            let read = reader
                .as_mut()
                .take(limit)
                .read_until(b'\n', &mut buf)
                .map_err(Failure::Read)?;
            if read == 0 {
                return Ok(());
            }
            line += 1;
            if buf.len() > MAX_RECORD_BYTES {
                return Err(not_json(line, &"the line is longer than one record may be"));
            }
            let text = if line == 1 {
                buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf)
            } else {
                &buf[..]
            };
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let object = serde_json::from_slice::<Map<String, Value>>(text)
                .map_err(|e| not_json(line, &e))?;
            each(JsonRecord { line, object })?;
        }
    }
    let mut bytes = Vec::new();
    reader
        .as_mut()
        .take(MAX_JSON_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Failure::Read)?;
    if bytes.len() as u64 > MAX_JSON_FILE_BYTES {
        return Err(Failure::Unreadable(
            "the file is larger than a .json file may be; write it as .jsonl".into(),
        ));
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Err(Failure::Unreadable("the file is not valid UTF-8".into()));
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let offset = text.len() - body.len();
    let ws = |t: &str, p: usize| {
        p + t[p..]
            .find(|c: char| !c.is_ascii_whitespace())
            .unwrap_or(t.len() - p)
    };
    let mut pos = ws(text, offset);
    let array = text[pos..].starts_with('[');
    pos += usize::from(array);
    let (mut line, mut counted) = (1u64, 0usize);
    let mut records = 0u64;
    loop {
        pos = ws(text, pos);
        if array && text[pos..].starts_with(',') && records > 0 {
            pos = ws(text, pos + 1);
        }
        line += text[counted..pos].matches('\n').count() as u64;
        counted = pos;
        if pos >= text.len() {
            return if array {
                Err(not_json(line, &"the JSON array is not closed"))
            } else {
                Ok(())
            };
        }
        if array && text[pos..].starts_with(']') {
            return Ok(());
        }
        let mut stream =
            serde_json::Deserializer::from_str(&text[pos..]).into_iter::<Map<String, Value>>();
        match stream.next() {
            Some(Ok(object)) => each(JsonRecord { line, object })?,
            Some(Err(e)) => return Err(not_json(line, &e)),
            None => return Ok(()),
        }
        pos += stream.byte_offset();
        records += 1;
    }
}

/// A JSON value as the text a CSV cell holds: strings as they are, numbers as written, `null`
/// as nothing, anything else as its JSON text (the report already calls it an error).
fn cell_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

/// The annotated copy of a JSON file, as CSV: a spreadsheet does not open JSON. Its columns are
/// the table's, in the usual order, then the file's unknown keys (so a misspelt one can be
/// renamed in the header); each record is one row. Lines are the CSV file's own: the treasurer
/// edits the copy, and the next run reports lines of the copy.
pub(super) fn json_copy(
    file: &SourceFile,
    input: &Input<'_>,
    w: &mut RowWriter<'_, '_>,
) -> Result<(), Failure> {
    let known: Vec<&str> = file.table.columns().iter().map(|c| c.name).collect();
    let mut unknown: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    json_records(file, input, &mut |record| {
        for key in record.object.keys() {
            let key = key.trim();
            if !known.contains(&key)
                && !is_annotation_column(key)
                && unknown.len() < MAX_COLUMNS
                && seen.insert(key.to_string())
            {
                unknown.push(key.to_string());
            }
        }
        Ok(())
    })?;
    let columns: Vec<&str> = known
        .iter()
        .copied()
        .chain(unknown.iter().map(String::as_str))
        .collect();
    w.header(columns.iter().map(|c| c.as_bytes()), false)?;
    let mut pending: Option<JsonRecord> = None;
    let mut first_line = None;
    let emit = |w: &mut RowWriter<'_, '_>, record: &JsonRecord, to: u64| {
        // The reader trims keys; the last of repeated keys wins, as here.
        let mut values: Vec<Cow<'_, str>> = vec![Cow::Borrowed(""); columns.len()];
        for (key, value) in &record.object {
            if let Some(i) = columns.iter().position(|c| *c == key.trim()) {
                values[i] = cell_text(value);
            }
        }
        w.row(record.line, to, values.iter().map(|v| v.as_bytes()), false)
    };
    json_records(file, input, &mut |record| {
        first_line.get_or_insert(record.line);
        if let Some(before) = pending.take() {
            emit(w, &before, record.line)?;
        }
        pending = Some(record);
        Ok(())
    })?;
    if let Some(last) = pending {
        emit(w, &last, u64::MAX)?;
    }
    // Problems before the first record are about the file as a whole.
    w.annotated.file_problems =
        w.problems.count(0, first_line.unwrap_or(u64::MAX)) + w.problems.without_line;
    Ok(())
}
