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

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::Column;

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
