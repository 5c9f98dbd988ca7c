//! One spreadsheet cell as text: what a workbook's typed cells become before the rules read them.
//!
//! The validation rules read text, written once for CSV; a cell is turned into the text a
//! treasurer would have typed, and nothing is guessed. A text cell is its text. A number cell is
//! the shortest decimal text that reads back as the same binary value (Rust's `{}` of an `f64`,
//! exact-to-shortest, no exponent): the text Excel and LibreOffice themselves write into the file
//! for a typed `1234.5`, so `1234.5` becomes `"1234.5"` and then exactly 1234.50 through
//! [`crate::money::Money::parse`], and a formula's `0.30000000000000004` stays that and is refused
//! for its decimals. No arithmetic is ever done on the `f64`. A date cell (a serial number with a
//! date format) becomes `YYYY-MM-DD`, or an RFC 3339 UTC timestamp when it has a time of day; the
//! serial's decimal text is split and counted in integers. Booleans, error values, durations and
//! formulas with no saved result are [`CellProblem`]s, reported, never read as a value.

use calamine::{Data, DataRef};
use jiff::Span;
use jiff::civil::{Date, date};

/// What one non-empty cell holds, as the reader hands it on. The rules read the text of a text,
/// number or date cell alike; the kind is kept for the annotated copy, which writes each cell back
/// as the kind it was (`annotate::workbook`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CellValue {
    Text(String),
    /// A number cell, as the shortest decimal text of its value ([`number_text`]).
    Number(String),
    /// A date or date-time cell, as `YYYY-MM-DD` or an RFC 3339 timestamp ([`serial_to_text`]).
    Date(String),
    Problem(CellProblem),
}

impl CellValue {
    /// The text the rules read; `None` for a cell that holds no value.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            CellValue::Text(t) | CellValue::Number(t) | CellValue::Date(t) => Some(t),
            CellValue::Problem(_) => None,
        }
    }
}

/// A cell that holds no value the rules can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CellProblem {
    Boolean(bool),
    /// An error value such as `#REF!` or `#DIV/0!`.
    Error(String),
    /// A duration (`[h]:mm` format), written out as the serial's text.
    Duration(String),
    /// A date serial that is no day (negative, or past the year 9999).
    BadDate(String),
    /// A formula whose result was never saved in the file.
    FormulaWithoutValue,
    /// An `.ods` formula whose saved result is empty text: LibreOffice saves an error value
    /// (`#DIV/0!`) so, with the error only in an attribute calamine does not read, and a formula
    /// `=""` alike. A blank read where the sheet shows `#DIV/0!` would be a silent guess.
    EmptyFormulaResult,
}

impl CellProblem {
    /// Rule, message, the value to show and the hint of the diagnostic for this cell.
    pub(crate) fn describe(&self) -> (&'static str, String, String, &'static str) {
        match self {
            CellProblem::Boolean(b) => (
                "cell.boolean",
                "a TRUE/FALSE cell, not a value this column takes".into(),
                if *b { "TRUE" } else { "FALSE" }.into(),
                "type the value as text or a number",
            ),
            CellProblem::Error(e) => (
                "cell.error",
                format!("the cell shows the error {e}"),
                e.clone(),
                "fix the formula so that it gives a value, or type the value",
            ),
            CellProblem::Duration(d) => (
                "cell.duration",
                "a duration cell ([h]:mm format), not a value this column takes".into(),
                d.clone(),
                "type the value as text, or format the cell as a date",
            ),
            CellProblem::BadDate(d) => (
                "cell.date",
                "a date cell whose serial number is no calendar day".into(),
                d.clone(),
                "type the date as YYYY-MM-DD",
            ),
            CellProblem::EmptyFormulaResult => (
                "cell.error",
                "a formula whose saved result is empty: an .ods file saves an error value (#DIV/0!, #REF!, …) that way".into(),
                String::new(),
                "fix the formula so that it gives a value, or type the value (clear the cell if it is meant to be empty)",
            ),
            CellProblem::FormulaWithoutValue => (
                "cell.formula_without_value",
                "a formula whose result is not saved in the file".into(),
                String::new(),
                "open the workbook in Excel or LibreOffice and save it, so that each formula's result is saved with it",
            ),
        }
    }
}

/// A cell of an `.xlsx` sheet; `None` for an empty one. `is_1904`: the workbook counts days from
/// 1904-01-01 (old Mac Excel) rather than from 1900.
pub(crate) fn from_ref(cell: DataRef<'_>, is_1904: bool) -> Option<CellValue> {
    Some(match cell {
        DataRef::Empty => return None,
        DataRef::String(s) => CellValue::Text(s),
        DataRef::SharedString(s) => CellValue::Text(s.to_string()),
        DataRef::Int(i) => CellValue::Number(i.to_string()),
        DataRef::Float(f) => CellValue::Number(number_text(f)),
        DataRef::Bool(b) => CellValue::Problem(CellProblem::Boolean(b)),
        DataRef::Error(e) => CellValue::Problem(CellProblem::Error(e.to_string())),
        DataRef::DateTime(dt) => {
            let serial = number_text(dt.as_f64());
            if dt.is_duration() {
                CellValue::Problem(CellProblem::Duration(serial))
            } else {
                match serial_to_text(&serial, is_1904) {
                    Some(text) => CellValue::Date(text),
                    None => CellValue::Problem(CellProblem::BadDate(serial)),
                }
            }
        }
        DataRef::DateTimeIso(s) => CellValue::Date(iso_text(s)),
        DataRef::DurationIso(s) => CellValue::Problem(CellProblem::Duration(s)),
    })
}

/// A cell of an `.ods` sheet (dates there are ISO 8601 text already); `None` for an empty one.
pub(crate) fn from_data(cell: &Data) -> Option<CellValue> {
    Some(match cell {
        Data::Empty => return None,
        Data::String(s) => CellValue::Text(s.clone()),
        Data::Int(i) => CellValue::Number(i.to_string()),
        Data::Float(f) => CellValue::Number(number_text(*f)),
        Data::Bool(b) => CellValue::Problem(CellProblem::Boolean(*b)),
        Data::Error(e) => CellValue::Problem(CellProblem::Error(e.to_string())),
        Data::DateTime(dt) => return from_ref(DataRef::DateTime(*dt), false),
        Data::DateTimeIso(s) => CellValue::Date(iso_text(s.clone())),
        Data::DurationIso(s) => CellValue::Problem(CellProblem::Duration(s.clone())),
    })
}

/// The shortest decimal text that reads back as `value`, never in exponent form: Rust's `{}` of an
/// `f64` (exact-to-shortest, like Ryū). A formatting, not an arithmetic operation.
pub(crate) fn number_text(value: f64) -> String {
    format!("{value}")
}

/// `2025-12-31T10:30:00` (ODS, no offset) read as UTC like a date-time cell of `.xlsx`; a date or
/// a value with an offset as it is.
fn iso_text(mut text: String) -> String {
    let has_offset = text.len() > 19 && {
        let tail = &text[19..];
        tail.ends_with('Z') || tail.contains('+') || tail.contains('-')
    };
    if text.len() > 10 && text.as_bytes().get(10) == Some(&b'T') && !has_offset {
        text.push('Z');
    }
    text
}

/// Milliseconds in a day: a date-time serial's fraction of a day is rounded to the millisecond,
/// finer than any spreadsheet shows a time and coarser than the 17 significant digits of the
/// serial can blur (about a microsecond for dates of this century).
const MS_PER_DAY: i128 = 86_400_000;

/// A date serial's decimal text (`45657`, `45657.4375`) as `YYYY-MM-DD`, or with a time of day as
/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`; `None` when it is no day of years 1–9999. Integer arithmetic on
/// the digits only.
///
/// The 1900 system counts 1900-01-01 as day 1 and, copying Lotus 1-2-3, has a 29 February 1900
/// at 60 that never was: from 61 on, day n is 1899-12-30 plus n days. Serial 60 is given as
/// `1900-02-29` and day 0 as `1900-01-00`, which the date rules then refuse as no calendar date,
/// as they are. The 1904 system counts 1904-01-01 as day 0.
pub(crate) fn serial_to_text(serial: &str, is_1904: bool) -> Option<String> {
    if serial.starts_with('-') {
        return None;
    }
    let (whole, fraction) = serial.split_once('.').unwrap_or((serial, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 7 {
        return None;
    }
    let mut days: i64 = whole.parse().ok()?;
    let mut ms = fraction_of_day_ms(fraction)?;
    if ms == MS_PER_DAY {
        ms = 0;
        days += 1;
    }
    let day = if is_1904 {
        date(1904, 1, 1).checked_add(Span::new().days(days)).ok()?
    } else {
        match days {
            0 => return Some(with_time("1900-01-00".into(), ms)),
            60 => return Some(with_time("1900-02-29".into(), ms)),
            1..=59 => date(1899, 12, 31)
                .checked_add(Span::new().days(days))
                .ok()?,
            _ => date(1899, 12, 30)
                .checked_add(Span::new().days(days))
                .ok()?,
        }
    };
    if day > Date::new(9999, 12, 31).ok()? {
        return None;
    }
    Some(with_time(day.to_string(), ms))
}

/// `0.4375` (its digits after the point) → milliseconds, rounded half up, at most a whole day.
fn fraction_of_day_ms(digits: &str) -> Option<i128> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    let numerator: i128 = digits.parse().ok()?;
    let denominator = 10i128.checked_pow(u32::try_from(digits.len()).ok()?)?;
    // round(numerator / denominator × MS_PER_DAY), in integers.
    Some((numerator * MS_PER_DAY * 2 + denominator) / (denominator * 2))
}

fn with_time(day: String, ms: i128) -> String {
    if ms == 0 {
        return day;
    }
    let (h, m, s, milli) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000,
    );
    if milli == 0 {
        format!("{day}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{day}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
    }
}

/// `C` for column index 2, `AA` for 26: the column letters a spreadsheet shows.
pub fn column_letters(index: u32) -> String {
    let mut n = u64::from(index) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + u8::try_from(rem).unwrap_or(0));
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Money, MoneyError};

    #[test]
    fn numbers_become_the_text_the_sheet_shows() {
        let money = |f: f64| Money::parse(&number_text(f));
        assert_eq!(money(1234.5), Ok(Money::from_cents(123_450)));
        assert_eq!(money(850.5), Ok(Money::from_cents(85_050)));
        assert_eq!(money(0.1), Ok(Money::from_cents(10)));
        assert_eq!(money(2500.0), Ok(Money::from_cents(250_000)));
        assert_eq!(money(-12.34), Ok(Money::from_cents(-1_234)));
        assert_eq!(
            money(9_999_999_999_999.99),
            Ok(Money::from_cents(999_999_999_999_999))
        );
        // What `=0.1+0.2` leaves in a cell: refused for its decimals, never rounded here.
        let sum: f64 = "0.30000000000000004".parse().unwrap_or_default();
        assert_eq!(number_text(sum), "0.30000000000000004");
        assert_eq!(money(sum), Err(MoneyError::TooManyDecimals(17)));
        assert_eq!(number_text(1e21), "1000000000000000000000");
    }

    #[test]
    fn serials_become_dates_in_both_systems() {
        assert_eq!(
            serial_to_text("45657", false).as_deref(),
            Some("2024-12-31")
        );
        assert_eq!(serial_to_text("44195", true).as_deref(), Some("2024-12-31"));
        assert_eq!(serial_to_text("1", false).as_deref(), Some("1900-01-01"));
        assert_eq!(serial_to_text("59", false).as_deref(), Some("1900-02-28"));
        assert_eq!(serial_to_text("60", false).as_deref(), Some("1900-02-29"));
        assert_eq!(serial_to_text("61", false).as_deref(), Some("1900-03-01"));
        assert_eq!(serial_to_text("0", true).as_deref(), Some("1904-01-01"));
        assert_eq!(
            serial_to_text("45657.4375", false).as_deref(),
            Some("2024-12-31T10:30:00Z")
        );
        // 10:31 is no exact binary fraction of a day; the millisecond rounding finds it.
        assert_eq!(
            serial_to_text("45657.438194444445", false).as_deref(),
            Some("2024-12-31T10:31:00Z")
        );
        assert_eq!(
            serial_to_text("45657.99999999999", false).as_deref(),
            Some("2025-01-01")
        );
        assert_eq!(serial_to_text("-1", false), None);
        assert_eq!(serial_to_text("99999999", false), None);
        assert_eq!(serial_to_text("2958466", false), None);
    }

    #[test]
    fn iso_date_times_without_offset_are_utc() {
        assert_eq!(iso_text("2025-12-31".into()), "2025-12-31");
        assert_eq!(
            iso_text("2025-12-31T10:30:00".into()),
            "2025-12-31T10:30:00Z"
        );
        assert_eq!(
            iso_text("2025-12-31T10:30:00+01:00".into()),
            "2025-12-31T10:30:00+01:00"
        );
    }

    #[test]
    fn column_letters_count_like_a_spreadsheet() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(2), "C");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16_383), "XFD");
    }
}
