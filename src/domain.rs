//! Domain values of the Habitat records: emails, roles, statuses, contribution types, dates.
//!
//! Each is parsed from already-trimmed text into a type that can only hold a valid value, with an
//! error precise enough to become a diagnostic. Everything after validation works with these types,
//! so no later stage re-checks a string.

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A member's email: matches the seed guide's `^[^\s@]+@[^\s@]+\.[^\s@]+$` and is stored lower-case,
/// because the same person typed `Ada@Example.org` in one sheet and `ada@example.org` in another.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email, &'static str> {
        Email::check(text)?;
        Ok(Email(fold_case(text).into_owned()))
    }

    /// The email of text that passed [`Email::check`].
    pub(crate) fn from_checked(text: &str) -> Email {
        Email(fold_case(text).into_owned())
    }

    /// What [`Email::parse`] checks, without building the email.
    pub fn check(text: &str) -> Result<(), &'static str> {
        if text.is_empty() {
            return Err("empty email");
        }
        if !text.is_ascii() {
            return check_any(text);
        }
        // Branch-free scans (the compiler turns them into vector code), then the same verdicts in
        // the same order as `check_any`. `char::is_whitespace` on ASCII is tab, line feed,
        // vertical tab, form feed, carriage return (9 to 13) and space.
        let bytes = text.as_bytes();
        let spaced = bytes.iter().fold(0u8, |any, &b| {
            any | u8::from(b == b' ') | u8::from(b.wrapping_sub(b'\t') <= b'\r' - b'\t')
        }) != 0;
        let ats = bytes
            .iter()
            .fold(0usize, |n, &b| n + usize::from(b == b'@'));
        let first_at = bytes.iter().position(|&b| b == b'@');
        if spaced {
            return Err("an email cannot contain spaces");
        }
        let Some(at) = first_at else {
            return Err("an email needs an @");
        };
        if ats > 1 {
            return Err("an email has exactly one @");
        }
        if at == 0 {
            return Err("nothing before the @");
        }
        if !has_inner_dot(&text[at + 1..]) {
            return Err("the domain needs a dot, as in example.org");
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`Email::check`] for any text.
fn check_any(text: &str) -> Result<(), &'static str> {
    if text.chars().any(char::is_whitespace) {
        return Err("an email cannot contain spaces");
    }
    let Some((local, domain)) = text.split_once('@') else {
        return Err("an email needs an @");
    };
    if domain.contains('@') {
        return Err("an email has exactly one @");
    }
    if local.is_empty() {
        return Err("nothing before the @");
    }
    if !has_inner_dot(domain) {
        return Err("the domain needs a dot, as in example.org");
    }
    Ok(())
}

/// `[^\s@]+\.[^\s@]+`: some dot in the domain with at least one character on each side.
fn has_inner_dot(domain: &str) -> bool {
    domain.len() > 2 && domain.as_bytes()[1..domain.len() - 1].contains(&b'.')
}

/// An email as it is compared and stored: lower-case (borrowed when it already is).
pub fn fold_case(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a closed set of lower-case words that maps one-to-one onto a PostgreSQL enum type.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $pg_type:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const WORDS: &'static [&'static str] = &[$($text),+];
            /// The PostgreSQL enum type this maps to.
            pub const PG_TYPE: &'static str = $pg_type;

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Exact, case-sensitive: the database enum is case-sensitive too.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// A member's role in the cooperative.
    Role, "member_role", { Member => "member", Steward => "steward", Admin => "admin" });
word_enum!(
    /// Whether a member is active.
    MemberStatus, "member_status", { Active => "active", Inactive => "inactive", Pending => "pending" });
word_enum!(
    /// Labor earns patronage; capital and property add to the capital account.
    ContributionType, "contribution_type", { Labor => "labor", Capital => "capital", Property => "property" });
word_enum!(
    /// Where a contribution is in its approval.
    ContributionStatus, "contribution_status", { Pending => "pending", Approved => "approved", Rejected => "rejected" });
word_enum!(
    /// An allocation period's life cycle.
    PeriodStatus, "period_status", { Open => "open", Closed => "closed", Archived => "archived" });
word_enum!(
    /// An allocation is `calculated` when the period's allocation is computed, and `distributed`
    /// once Habitat has credited it to the member's capital account.
    AllocationStatus, "allocation_status", { Calculated => "calculated", Distributed => "distributed" });

impl ContributionType {
    /// Whether an approved contribution of this type adds to the capital account balance.
    pub fn is_capital(self) -> bool {
        matches!(self, ContributionType::Capital | ContributionType::Property)
    }
}

/// A member's share of a period's weighted patronage, between 0 and 1 with ten decimals — the
/// scale of Habitat's `allocations.patronage_score numeric(19,10)`. Held as a whole number of
/// 10⁻¹⁰ units, like [`crate::money::Money`] holds cents, so it is exact and never a float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatronageScore(u64);

impl PatronageScore {
    /// Decimals kept: `numeric(19,10)`.
    pub const DECIMALS: u32 = 10;
    /// The units of a score of 1 (the whole pool).
    pub const ONE_UNITS: u64 = 10_000_000_000;

    /// The score of `units` ten-billionths; `None` above 1.
    pub fn from_units(units: u64) -> Option<PatronageScore> {
        (units <= PatronageScore::ONE_UNITS).then_some(PatronageScore(units))
    }

    pub fn units(self) -> u64 {
        self.0
    }

    /// Parses `0.5`, `0.1324082411`, `1`: digits, an optional point and at most ten decimals,
    /// no more than 1. What SQLite's text column holds.
    pub fn parse(text: &str) -> Option<PatronageScore> {
        let (int, frac) = match text.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !(frac.is_empty() || digits(frac)) || frac.len() > 10 {
            return None;
        }
        let whole = match int.trim_start_matches('0') {
            "" => 0,
            "1" => PatronageScore::ONE_UNITS,
            _ => return None,
        };
        let fraction = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(10)
            .fold(0u64, |units, b| units * 10 + u64::from(b - b'0'));
        PatronageScore::from_units(whole + fraction)
    }

    /// The value as a `numeric` with scale 10, for PostgreSQL.
    pub fn to_decimal(self) -> rust_decimal::Decimal {
        rust_decimal::Decimal::from_i128_with_scale(i128::from(self.0), Self::DECIMALS)
    }

    /// Reads back a `numeric`: `None` if it has more than ten decimals or is not between 0 and 1.
    pub fn from_decimal(value: rust_decimal::Decimal) -> Option<PatronageScore> {
        let mut v = value;
        v.rescale(Self::DECIMALS);
        if v != value {
            return None;
        }
        u64::try_from(v.mantissa())
            .ok()
            .and_then(PatronageScore::from_units)
    }
}

/// `0.1324082411`: always ten decimals, as `numeric(19,10)` shows it.
impl fmt::Display for PatronageScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:010}",
            self.0 / PatronageScore::ONE_UNITS,
            self.0 % PatronageScore::ONE_UNITS
        )
    }
}

/// Serialised as its exact decimal text, never as a JSON number a reader would take as a float.
impl serde::Serialize for PatronageScore {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a date is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateError {
    /// Not written as `YYYY-MM-DD`.
    Format,
    /// Written right but not a day of the calendar, like 2025-02-30.
    Calendar,
}

/// Parses a strict `YYYY-MM-DD` that is a real calendar date.
pub fn parse_date(text: &str) -> Result<Date, DateError> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(DateError::Format);
    }
    let num = |range: std::ops::Range<usize>| -> i16 {
        text[range]
            .bytes()
            .fold(0i16, |acc, c| acc * 10 + i16::from(c - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let month = i8::try_from(month).map_err(|_| DateError::Calendar)?;
    let day = i8::try_from(day).map_err(|_| DateError::Calendar)?;
    Date::new(year, month, day).map_err(|_| DateError::Calendar)
}

/// Parses a date, or (when `allow_timestamp`) a full RFC 3339 timestamp with an offset.
pub fn parse_instant(text: &str, allow_timestamp: bool) -> Result<Timestamp, DateError> {
    if allow_timestamp && text.len() > 10 {
        // `get`, not slicing: a multi-byte character must not panic.
        let date = text.get(..10).ok_or(DateError::Format)?;
        parse_date(date)?;
        if !is_rfc3339_shape(&text[10..]) {
            return Err(DateError::Format);
        }
        return text.parse::<Timestamp>().map_err(|_| DateError::Calendar);
    }
    parse_date(text).map(midnight_utc)
}

/// `THH:MM:SS`, an optional fraction of at most six digits (PostgreSQL keeps microseconds, so
/// more would be rounded), then `Z` or `±HH:MM`: RFC 3339 and nothing looser.
fn is_rfc3339_shape(rest: &str) -> bool {
    let b = rest.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 10 || !matches!(b[0], b'T' | b't') || b[3] != b':' || b[6] != b':' {
        return false;
    }
    if !(digits(1..3) && digits(4..6) && digits(7..9)) {
        return false;
    }
    let mut i = 9;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 6 {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] => {
            b.len() == i + 6 && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// A date-only value is midnight UTC of that day, never the machine's local midnight.
pub fn midnight_utc(date: Date) -> Timestamp {
    date.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The canonical text of an instant, used in SQLite and in checksums: RFC 3339, UTC, `Z`.
pub fn format_instant(ts: Timestamp) -> String {
    ts.to_string()
}

/// An ENS name: lower-case dotted labels ending in `.eth`, like `ada.habitat.eth`.
pub fn is_ens_name(text: &str) -> bool {
    let Some(stem) = text.strip_suffix(".eth") else {
        return false;
    };
    !stem.is_empty()
        && stem.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_follow_the_seed_pattern_and_fold_case() {
        assert_eq!(
            Email::parse("Ada@Example.ORG").map(|e| e.0),
            Ok("ada@example.org".to_string())
        );
        assert!(Email::parse("a@b.c").is_ok());
        assert!(Email::parse("a@b.c.d").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "ada@@example.org",
            "a da@example.org",
            "ada@.org",
            "ada@example.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        // `[^\s@]+\.[^\s@]+` only needs some inner dot: "a@b..c" matches the seed's regex.
        assert!(Email::parse("a@b..c").is_ok());
        assert_eq!(
            Email::parse("Zoë@Exämple.ORG").map(|e| e.0),
            Ok("zoë@exämple.org".to_string())
        );
        assert_eq!(
            Email::parse("a\u{a0}b@example.org"),
            Err("an email cannot contain spaces")
        );
        assert_eq!(
            Email::parse("a\u{1c}b@example.org").map(|e| e.0.len()),
            Ok(15)
        );
        assert!(Email::parse("a@é.é").is_ok());
        assert!(Email::parse("a@.é").is_err());
    }

    #[test]
    fn the_ascii_email_check_agrees_with_the_general_one() {
        let alphabet = ['a', '@', '.', ' ', '\t', 'A', '\u{b}'];
        let mut texts = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            for t in &longer {
                assert_eq!(Email::check(t), check_any(t), "{t:?}");
            }
            texts = longer;
        }
    }

    #[test]
    fn dates_are_strict_calendar_dates() {
        assert!(parse_date("2025-01-01").is_ok());
        assert!(parse_date("2024-02-29").is_ok());
        assert_eq!(parse_date("2025-02-30"), Err(DateError::Calendar));
        assert_eq!(parse_date("2025-13-01"), Err(DateError::Calendar));
        assert_eq!(parse_date("2025-1-01"), Err(DateError::Format));
        assert_eq!(parse_date("01/02/2025"), Err(DateError::Format));
        assert_eq!(parse_date("2025-01-01T00:00:00Z"), Err(DateError::Format));
    }

    #[test]
    fn date_only_values_are_midnight_utc() {
        let ts = parse_instant("2025-12-31", true).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(format_instant(ts), "2025-12-31T00:00:00Z");
        let ts = parse_instant("2025-12-31T18:30:00-05:00", true).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(format_instant(ts), "2025-12-31T23:30:00Z");
        assert_eq!(
            parse_instant("2025-12-31T18:30", true),
            Err(DateError::Format)
        );
        assert_eq!(
            parse_instant("2025-02-30T00:00:00Z", true),
            Err(DateError::Calendar)
        );
        assert_eq!(
            parse_instant("2025-12-31T00:00:00Z", false),
            Err(DateError::Format)
        );
        assert!(parse_instant("2025-03-31T10:00:00.123456Z", true).is_ok());
        for bad in [
            "2025-03-31T10:00:00.1234567Z",
            "2025-03-31T10:00Z",
            "2025-03-31T10Z",
            "2025-03-31T10:00:00+0530",
            "2025-03-31T10:00:00[America/New_York]",
            "2025-03-3\u{e9}1",
            "2025-03-31\u{e9}00:00:00Z",
        ] {
            assert_eq!(parse_instant(bad, true), Err(DateError::Format), "{bad}");
        }
    }

    #[test]
    fn ens_names() {
        assert!(is_ens_name("ada.habitat.eth"));
        assert!(is_ens_name("ada.eth"));
        for bad in ["Ada.eth", "ada.ETH", ".eth", "ada..eth", "ada", "ada_x.eth"] {
            assert!(!is_ens_name(bad), "{bad}");
        }
    }

    #[test]
    fn words_are_exact() {
        assert_eq!(Role::parse("steward"), Some(Role::Steward));
        assert_eq!(Role::parse("Steward"), None);
        assert_eq!(
            ContributionStatus::WORDS,
            &["pending", "approved", "rejected"]
        );
        assert!(ContributionType::Property.is_capital());
        assert!(!ContributionType::Labor.is_capital());
    }

    #[test]
    fn patronage_scores_are_exact_fractions_of_one() {
        let score = |t: &str| PatronageScore::parse(t).map(PatronageScore::units);
        assert_eq!(score("0.1324082411"), Some(1_324_082_411));
        assert_eq!(score("0.5"), Some(5_000_000_000));
        assert_eq!(score("1"), Some(PatronageScore::ONE_UNITS));
        assert_eq!(score("1.0000000000"), Some(PatronageScore::ONE_UNITS));
        assert_eq!(score("0"), Some(0));
        for bad in [
            "",
            ".5",
            "5.",
            "1.0000000001",
            "2",
            "10",
            "-0.5",
            "0.12345678901",
            "1e-3",
            "0,5",
        ] {
            assert_eq!(score(bad), None, "{bad}");
        }
        let s = PatronageScore::from_units(1_324_082_411).unwrap_or_default();
        assert_eq!(s.to_string(), "0.1324082411");
        assert_eq!(s.to_decimal().to_string(), "0.1324082411");
        assert_eq!(PatronageScore::from_decimal(s.to_decimal()), Some(s));
        assert_eq!(
            PatronageScore::from_decimal(rust_decimal::Decimal::new(5, 1)).map(|s| s.to_string()),
            Some("0.5000000000".into())
        );
        assert_eq!(
            PatronageScore::from_decimal(rust_decimal::Decimal::new(-5, 1)),
            None
        );
        assert_eq!(
            PatronageScore::from_units(PatronageScore::ONE_UNITS + 1),
            None
        );
    }
}
