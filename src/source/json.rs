//! JSON objects read without building a value tree.
//!
//! A record's text is first checked with [`Checked`], which parses every value as a
//! `serde_json::Value` would — same errors, same messages, same recursion limit — and keeps
//! nothing.
//! A `serde_json::Value` of a hostile object — a million keys, or an array of a hundred million
//! numbers under one key — costs many times its text in memory. Instead an object is walked once:
//! the value of each known column is kept as a borrowed [`RawValue`] (a slice of the input), every
//! other value is skipped without allocating (`serde_json` skips nested values iteratively, so
//! nesting depth costs no stack either), and only the unknown keys the caller wants to report are
//! kept. A number's text is taken exactly as written, which is what `arbitrary_precision` gave.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::diagnostic::{Diagnostic, Diagnostics};

use super::header::near_miss;
use super::reader::{
    count_newlines, encoding_error, field_too_large, line_of, nul_error, size, trim, trim_bom,
};
use super::{
    Column, Inner, Input, MAX_FIELD_BYTES, MAX_JSON_FILE_BYTES, MAX_RECORD_BYTES, Reader, Record,
    SourceFile, Step, UnknownColumns,
};

/// A key of an object, in the order keys first appear.
pub(super) enum Key<'de> {
    /// A known column (the index into the table's columns), listed at its first appearance.
    Known(usize),
    /// An unknown key the caller asked to keep.
    Unknown(Cow<'de, str>),
}

/// One object's values for the known columns (the last one given, as `serde_json` keeps it) and
/// its keys in order.
pub(super) struct Object<'de> {
    pub(super) values: Vec<Option<&'de RawValue>>,
    pub(super) keys: Vec<Key<'de>>,
}

/// What one value of a known column holds.
pub(super) enum Scalar<'de> {
    Null,
    /// A string (unescaped) or a number (as written).
    Text(Cow<'de, str>),
    /// `true`, `false`, an array or an object.
    Other,
}

/// A JSON value parsed and thrown away: deserialising into it checks exactly what deserialising
/// into `serde_json::Value` checks (string escapes and surrogates included, which skipping a value
/// does not), with the same error messages, and allocates nothing that outlives one string.
pub(super) struct Checked;

impl<'de> de::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_none<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    // With `arbitrary_precision` a number arrives as a one-entry map, like an object.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// Parses `text`, one complete JSON value already checked with [`Checked`], as an object of `columns`; `Ok(None)` if the value is
/// valid JSON but not an object. `keep_unknown` is asked about each unknown key (trimmed) and says
/// whether to keep it in [`Object::keys`].
pub(super) fn object<'de>(
    text: &'de str,
    columns: &'static [Column],
    keep_unknown: &mut dyn FnMut(&str) -> bool,
) -> Result<Option<Object<'de>>, serde_json::Error> {
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let object = ObjectSeed {
        columns,
        keep_unknown,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(Some(object))
}

/// The value of a known column.
pub(super) fn scalar(raw: &RawValue) -> Result<Scalar<'_>, serde_json::Error> {
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') => match text.get(1..text.len() - 1) {
            Some(inner) if !inner.contains('\\') => Scalar::Text(Cow::Borrowed(inner)),
            _ => Scalar::Text(Cow::Owned(serde_json::from_str::<String>(text)?)),
        },
        Some(b'n') => Scalar::Null,
        Some(b'-' | b'0'..=b'9') => Scalar::Text(number_text(text)),
        _ => Scalar::Other,
    })
}

/// A number's text as `serde_json`'s `arbitrary_precision` gives it: as written, except that an
/// exponent is written `e` with a sign (`1E3` is `1e+3`).
fn number_text(text: &str) -> Cow<'_, str> {
    let Some(at) = text.find(['e', 'E']) else {
        return Cow::Borrowed(text);
    };
    let (mantissa, exponent) = (&text[..at], &text[at + 1..]);
    let sign = if exponent.starts_with(['+', '-']) {
        ""
    } else {
        "+"
    };
    Cow::Owned(format!("{mantissa}e{sign}{exponent}"))
}

struct ObjectSeed<'k> {
    columns: &'static [Column],
    keep_unknown: &'k mut dyn FnMut(&str) -> bool,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Object<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Object<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
        let mut object = Object {
            values: vec![None; self.columns.len()],
            keys: Vec::new(),
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let trimmed = key.trim();
            match self.columns.iter().position(|c| c.name == trimmed) {
                Some(i) => {
                    let value = map.next_value::<&'de RawValue>()?;
                    if object.values[i].is_none() {
                        object.keys.push(Key::Known(i));
                    }
                    object.values[i] = Some(value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if (self.keep_unknown)(trimmed) {
                        object.keys.push(Key::Unknown(match key {
                            Cow::Borrowed(k) => Cow::Borrowed(k.trim()),
                            Cow::Owned(k) => Cow::Owned(k.trim().to_string()),
                        }));
                    }
                }
            }
        }
        Ok(object)
    }
}

/// A key, borrowed from the input unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

// ---------------------------------------------------------------------------------------------
// `.json` and `.jsonl` files
// ---------------------------------------------------------------------------------------------

impl Reader {
    pub(super) fn open_json(&mut self, bytes: Vec<u8>, diags: &mut Diagnostics) {
        let body = trim_bom(&bytes);
        if body.iter().all(u8::is_ascii_whitespace) {
            self.finished = true;
            diags.push(
                Diagnostic::error(&self.file.display, "file.empty", "the file is empty")
                    .hint("give a JSON array of objects, or one object per line in a .jsonl file"),
            );
            return;
        }
        self.saw_anything = true;
        if let Err(e) = std::str::from_utf8(&bytes) {
            let line = line_of(&bytes, e.valid_up_to());
            diags.push(encoding_error(&self.file.display, line, None));
            self.finished = true;
            return;
        }
        let start = bytes.len() - body.len();
        let first = body.iter().position(|b| !b.is_ascii_whitespace());
        match first.map(|p| body[p]) {
            Some(open @ (b'[' | b'{')) => {
                let array = open == b'[';
                let pos = start + first.unwrap_or(0) + usize::from(array);
                self.inner = Inner::JsonBytes {
                    line: line_of(&bytes, pos),
                    counted_to: pos,
                    bytes,
                    pos,
                    array,
                };
            }
            _ => {
                self.finished = true;
                diags.push(
                    Diagnostic::error(
                        &self.file.display,
                        "file.json",
                        "expected a JSON array of objects",
                    )
                    .at(line_of(&bytes, start + first.unwrap_or(0)))
                    .hint("the file should look like [{\"email\": \"…\", …}, …]"),
                );
            }
        }
    }
    pub(super) fn next_json_bytes(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::JsonBytes {
            bytes,
            pos,
            line,
            counted_to,
            array,
        } = &mut self.inner
        else {
            return Step::End;
        };
        let file = &self.file.display;
        let skip_ws = |p: &mut usize| {
            while *p < bytes.len() && bytes[*p].is_ascii_whitespace() {
                *p += 1;
            }
        };
        skip_ws(pos);
        if *array && *pos < bytes.len() && bytes[*pos] == b',' && self.rows > 0 {
            *pos += 1;
            skip_ws(pos);
        }
        *line += count_newlines(&bytes[*counted_to..*pos]);
        *counted_to = *pos;
        if *pos >= bytes.len() && !*array {
            return Step::End;
        }
        if *pos >= bytes.len() {
            diags.push(
                Diagnostic::error(file, "file.json", "the JSON array is not closed")
                    .at(*line)
                    .hint("end the file with ]"),
            );
            return Step::End;
        }
        if *array && bytes[*pos] == b']' {
            return Step::End;
        }
        let start_line = *line;
        // The whole file was checked to be UTF-8 when it was opened.
        let Ok(rest) = std::str::from_utf8(&bytes[*pos..]) else {
            return Step::End;
        };
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Checked>();
        match stream.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                diags.push(
                    Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                        .at(start_line + e.line() as u64 - 1),
                );
                return Step::End;
            }
            None => return Step::End,
        }
        let text = &rest[..stream.byte_offset()];
        *pos += stream.byte_offset();
        *line += count_newlines(&bytes[*counted_to..*pos]);
        *counted_to = *pos;
        // Anything but `,` or `]` after a value is a syntax error.
        let mut p = *pos;
        skip_ws(&mut p);
        if *array && p < bytes.len() && bytes[p] != b',' && bytes[p] != b']' {
            let at = start_line + count_newlines(&bytes[*counted_to..p]);
            diags.push(
                Diagnostic::error(file, "file.json", "expected , or ] after an object").at(at),
            );
            return Step::End;
        }
        if text.len() > MAX_RECORD_BYTES {
            diags.push(
                Diagnostic::error(
                    file,
                    "file.record_too_large",
                    format!(
                        "the object is longer than {}, the most one record may hold; it is skipped",
                        size(MAX_RECORD_BYTES)
                    ),
                )
                .at(start_line)
                .hint("split the record's text, or give it in fewer characters"),
            );
            return Step::Skip;
        }
        let unknown = &mut self.unknown;
        let parsed = object(text, self.file.table.columns(), &mut |k| {
            unknown.first_sight(k)
        });
        match parsed {
            Ok(Some(object)) => json_record(
                &self.file,
                start_line,
                object,
                &mut self.record,
                &mut self.unknown,
                diags,
            ),
            Ok(None) => {
                diags.push(
                    Diagnostic::error(file, "file.json", "expected a JSON object").at(start_line),
                );
                Step::Skip
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                        .at(start_line + e.line() as u64 - 1),
                );
                Step::End
            }
        }
    }

    pub(super) fn next_json_line(&mut self, diags: &mut Diagnostics) -> Step {
        let Inner::JsonLines { input, line, buf } = &mut self.inner else {
            return Step::End;
        };
        let file = &self.file.display;
        buf.clear();
        let read = match read_line_bounded(input.as_mut(), buf, MAX_RECORD_BYTES) {
            Ok(read) => read,
            Err(e) => {
                diags.push(Diagnostic::error(file, "file.unreadable", e.to_string()).at(*line + 1));
                return Step::End;
            }
        };
        if read == LineRead::End {
            return Step::End;
        }
        *line += 1;
        let this_line = *line;
        self.saw_anything |= read == LineRead::TooLong;
        if read == LineRead::TooLong {
            diags.push(
                Diagnostic::error(
                    file,
                    "file.record_too_large",
                    format!(
                        "the line is longer than {}, the most one record may hold; it is skipped",
                        size(MAX_RECORD_BYTES)
                    ),
                )
                .at(this_line)
                .hint("each line of a .jsonl file is one JSON object"),
            );
            return Step::Skip;
        }
        let text = if this_line == 1 {
            trim_bom(buf)
        } else {
            &buf[..]
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Step::Continue;
        }
        self.saw_anything = true;
        let Ok(text) = std::str::from_utf8(text) else {
            diags.push(encoding_error(file, this_line, None));
            return Step::Skip;
        };
        if let Err(e) = serde_json::from_str::<Checked>(text) {
            diags.push(
                Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                    .at(this_line)
                    .hint("each line of a .jsonl file is one JSON object"),
            );
            return Step::Skip;
        }
        let unknown = &mut self.unknown;
        let parsed = object(text, self.file.table.columns(), &mut |k| {
            unknown.first_sight(k)
        });
        match parsed {
            Ok(Some(object)) => json_record(
                &self.file,
                this_line,
                object,
                &mut self.record,
                &mut self.unknown,
                diags,
            ),
            Ok(None) => {
                diags.push(
                    Diagnostic::error(file, "file.json", "expected a JSON object").at(this_line),
                );
                Step::Skip
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(file, "file.json", format!("invalid JSON: {e}"))
                        .at(this_line)
                        .hint("each line of a .jsonl file is one JSON object"),
                );
                Step::Skip
            }
        }
    }
}

/// Fills `record` from one parsed object, reporting its unknown keys and unusable values.
fn json_record(
    file: &SourceFile,
    line: u64,
    object: Object<'_>,
    record: &mut Record,
    unknown: &mut UnknownColumns,
    diags: &mut Diagnostics,
) -> Step {
    let columns = file.table.columns();
    record.start(line, columns.len());
    let mut bad = false;
    for key in &object.keys {
        let col = match key {
            Key::Unknown(name) => {
                let near = near_miss(name, columns, &[]);
                unknown.report(&file.display, Some(line), name, near, diags);
                continue;
            }
            Key::Known(col) => *col,
        };
        let name = columns[col].name;
        let Some(raw) = object.values[col] else {
            continue;
        };
        match scalar(raw) {
            Ok(Scalar::Null) => {}
            Ok(Scalar::Text(text)) => {
                let value = trim(&text);
                if value.len() > MAX_FIELD_BYTES {
                    diags.push(field_too_large(&file.display, line, name, ".json"));
                    bad = true;
                } else if value.contains('\0') {
                    diags.push(nul_error(&file.display, line, name, value));
                    record.refuse(col);
                } else if !value.is_empty() {
                    record.set(col, value);
                }
            }
            Ok(Scalar::Other) => {
                diags.push(
                    Diagnostic::error(&file.display, "file.json", "expected a string or a number")
                        .at(line)
                        .column(name)
                        .hint("give a string or a number"),
                );
                bad = true;
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(&file.display, "file.json", format!("invalid JSON: {e}"))
                        .at(line)
                        .column(name),
                );
                bad = true;
            }
        }
    }
    if bad { Step::Skip } else { Step::Record }
}

/// Reads a `.json` file whole, unless it is larger than [`MAX_JSON_FILE_BYTES`] (then `None`,
/// with the diagnostic saying so).
pub(super) fn read_json_file(
    file: &SourceFile,
    input: Input,
    diags: &mut Diagnostics,
) -> io::Result<Option<Vec<u8>>> {
    let limit = MAX_JSON_FILE_BYTES;
    let bytes = match input {
        Input::Bytes(bytes) => bytes,
        Input::File(handle) => {
            if handle.metadata()?.len() > limit {
                diags.push(json_too_large(file));
                return Ok(None);
            }
            let mut bytes = Vec::new();
            // `take`: the size from the file system is only a hint for a file still being written.
            BufReader::new(handle)
                .take(limit + 1)
                .read_to_end(&mut bytes)?;
            bytes
        }
    };
    if bytes.len() as u64 > limit {
        diags.push(json_too_large(file));
        return Ok(None);
    }
    Ok(Some(bytes))
}

fn json_too_large(file: &SourceFile) -> Diagnostic {
    Diagnostic::error(
        &file.display,
        "file.too_large",
        format!(
            "a .json file is read whole and may hold at most {}; this one is larger",
            size(usize::try_from(MAX_JSON_FILE_BYTES).unwrap_or(usize::MAX))
        ),
    )
    .hint("write one object per line in a .jsonl file, which is read a line at a time")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineRead {
    Line,
    /// The line was longer than the limit; it was read to its end and dropped.
    TooLong,
    End,
}

/// `read_until(b'\n')` that keeps at most `max` bytes of a line.
fn read_line_bounded(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        input.consume(take);
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => LineRead::End,
        (true, true) => LineRead::TooLong,
        (true, false) => LineRead::Line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const COLUMNS: &[Column] = &[super::super::req("amount"), super::super::opt("note")];

    /// What the reader took from a known value when it parsed objects into `serde_json::Value`.
    fn old_text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    #[test]
    fn values_are_what_a_value_tree_gave() {
        for value in [
            r#""250.50""#,
            r#""a \"quoted\" \u00e9 word""#,
            "250.5",
            "-0",
            "1E3",
            "1e-7",
            "2.5E+2",
            "-7e0",
            "12345678901234567890.123456789",
            "0.10",
            "null",
        ] {
            let text = format!(r#"{{"amount": {value}}}"#);
            let mut keep = |_: &str| true;
            let object = object(&text, COLUMNS, &mut keep)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("{text} is an object"));
            let raw = object.values[0].unwrap_or_else(|| panic!("{text} has amount"));
            let got = match scalar(raw) {
                Ok(Scalar::Text(t)) => Some(t.into_owned()),
                _ => None,
            };
            let tree: Value = serde_json::from_str(&text).unwrap_or_default();
            assert_eq!(got, old_text(&tree["amount"]), "{text}");
        }
    }

    #[test]
    fn the_last_of_repeated_keys_wins_and_keys_keep_their_order() {
        let text =
            r#"{"x": 1, "amount": true, " note ": {"deep": [1, [2]]}, "amount": "5", "x": 2}"#;
        let mut asked = Vec::new();
        let mut keep = |k: &str| {
            asked.push(k.to_string());
            true
        };
        let object = object(text, COLUMNS, &mut keep).ok().flatten();
        let Some(object) = object else {
            panic!("an object")
        };
        assert_eq!(object.values[0].map(RawValue::get), Some(r#""5""#));
        assert!(matches!(
            object.values[1].map(scalar),
            Some(Ok(Scalar::Other))
        ));
        let order: Vec<String> = object
            .keys
            .iter()
            .map(|k| match k {
                Key::Known(i) => COLUMNS[*i].name.to_string(),
                Key::Unknown(k) => k.to_string(),
            })
            .collect();
        assert_eq!(order, ["x", "amount", "note", "x"]);
        assert_eq!(asked, ["x", "x"]);
    }

    #[test]
    fn not_an_object_and_deep_nesting() {
        let mut keep = |_: &str| true;
        assert!(matches!(object("[1, 2]", COLUMNS, &mut keep), Ok(None)));
        assert!(matches!(object("7", COLUMNS, &mut keep), Ok(None)));
        let deep = format!(
            r#"{{"note": {}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(object(&deep, COLUMNS, &mut keep), Ok(Some(_))));
        assert!(object(r#"{"amount": 1"#, COLUMNS, &mut keep).is_err());
    }

    #[test]
    fn checking_fails_where_a_value_tree_fails_with_the_same_message() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for text in [
            r#"{"a": 1,}"#,
            r#"{"a": "\ud800"}"#,
            "{\"a\": \"tab\there\"}",
            r#"{"a": [1, 2,]}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1} x"#,
            deep.as_str(),
            r#"{"a": {"b": 1e}}"#,
            r#"{"a": 1.5e+3, "b": [true, null, {"c": "\u00e9"}]}"#,
        ] {
            let tree = serde_json::from_str::<Value>(text)
                .map(drop)
                .map_err(|e| e.to_string());
            let checked = serde_json::from_str::<Checked>(text)
                .map(drop)
                .map_err(|e| e.to_string());
            assert_eq!(checked, tree, "{text}");
        }
    }
}
