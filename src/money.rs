//! Exact money.
//!
//! Every amount the tool touches is a [`Money`]: a whole number of cents in an `i64`. Source text is
//! parsed by hand (never through `f64`, never through a generic decimal parser that would accept
//! `1e3` or silently round `10.005`), and the value reaches PostgreSQL as `numeric` via
//! [`rust_decimal::Decimal`] and SQLite as `INTEGER` cents. Thirteen integer digits is the ceiling
//! because the Habitat money columns are `numeric(15,2)`.

use std::fmt;

use rust_decimal::Decimal;

/// The largest number of digits before the decimal point that fits `numeric(15,2)`.
pub const MAX_INTEGER_DIGITS: usize = 13;

/// An exact amount of money, in cents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a piece of text is not an amount of money. Each variant carries what the user needs to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty amount")]
    Empty,
    #[error("thousands separators are not allowed")]
    Thousands,
    #[error("currency signs and codes are not allowed")]
    Currency,
    #[error("exponent notation is not allowed")]
    Exponent,
    #[error("not a number")]
    NotANumber,
    #[error("more than two decimals ({0} given)")]
    TooManyDecimals(usize),
    #[error("more than {MAX_INTEGER_DIGITS} digits before the decimal point")]
    TooLarge,
    #[error("not a plain decimal amount")]
    Malformed,
}

impl MoneyError {
    /// A one-line hint saying how to write the amount instead.
    pub fn hint(&self) -> &'static str {
        match self {
            MoneyError::Empty => "give an amount such as 10000.00",
            MoneyError::Thousands => "write 1000.00, not 1,000.00",
            MoneyError::Currency => "write the number alone: 5.00, not $5 or 5 USD",
            MoneyError::Exponent => "write the amount in full: 1000.00, not 1e3",
            MoneyError::NotANumber => "write digits with an optional point, e.g. 10000.50",
            MoneyError::TooManyDecimals(_) => {
                "amounts have at most two decimals (cents); round in the source file so the rounding is yours, not the tool's"
            }
            MoneyError::TooLarge => "the Habitat money columns hold at most 9999999999999.99",
            MoneyError::Malformed => {
                "write digits with an optional point and at most two decimals, e.g. 10000.50"
            }
        }
    }
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// Parses `10000`, `10000.5`, `10000.50` and a leading `-` (so that a negative balance is
    /// reported as negative rather than as malformed). Whitespace must already be trimmed.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(MoneyError::Malformed);
        }
        let all_plain = body.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !all_plain {
            return Err(classify_bad(body));
        }
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        if int_part.is_empty() {
            return Err(MoneyError::Malformed);
        }
        let frac = match frac_part {
            None => "",
            Some(f) if f.contains('.') || f.is_empty() => return Err(MoneyError::Malformed),
            Some(f) => f,
        };
        if frac.len() > 2 {
            return Err(MoneyError::TooManyDecimals(frac.len()));
        }
        let significant = int_part.trim_start_matches('0');
        if significant.len() > MAX_INTEGER_DIGITS {
            return Err(MoneyError::TooLarge);
        }
        let mut cents: i64 = 0;
        for b in significant.bytes() {
            cents = cents * 10 + i64::from(b - b'0');
        }
        let mut frac_digits = frac.bytes();
        for _ in 0..2 {
            let digit = frac_digits.next().map_or(0, |b| i64::from(b - b'0'));
            cents = cents * 10 + digit;
        }
        Ok(Money(if negative { -cents } else { cents }))
    }

    /// The value as a `rust_decimal::Decimal` with scale 2, for PostgreSQL `numeric`.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Reads back a `numeric` value; `None` if it has more than two decimals or does not fit.
    pub fn from_decimal(value: Decimal) -> Option<Money> {
        let mut v = value;
        v.rescale(2);
        if v != value {
            return None;
        }
        i64::try_from(v.mantissa()).ok().map(Money)
    }
}

/// Money serialises as its exact decimal text (`"12.50"`), never as a JSON number that a reader
/// would take as a float.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn classify_bad(body: &str) -> MoneyError {
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "nan" | "inf" | "infinity" | "-inf") {
        return MoneyError::NotANumber;
    }
    let has_digit = body.bytes().any(|b| b.is_ascii_digit());
    if body.contains(',') && has_digit {
        return MoneyError::Thousands;
    }
    if body
        .chars()
        .any(|c| matches!(c, '$' | '€' | '£' | '¥' | '₿'))
        || ["usd", "eur", "gbp", "cad", "chf"]
            .iter()
            .any(|code| lower.contains(code))
    {
        return MoneyError::Currency;
    }
    let is_exponent = lower.split_once('e').is_some_and(|(mantissa, exp)| {
        !mantissa.is_empty()
            && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && !exp.is_empty()
            && exp
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b.is_ascii_digit())
    });
    if is_exponent {
        return MoneyError::Exponent;
    }
    if !has_digit {
        return MoneyError::NotANumber;
    }
    MoneyError::Malformed
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> i64 {
        Money::parse(text).map(Money::cents).unwrap_or(i64::MIN)
    }

    #[test]
    fn parses_plain_amounts_exactly() {
        assert_eq!(ok("10000"), 1_000_000);
        assert_eq!(ok("10000.5"), 1_000_050);
        assert_eq!(ok("10000.50"), 1_000_050);
        assert_eq!(ok("0.01"), 1);
        assert_eq!(ok("-0.01"), -1);
        assert_eq!(ok("007.10"), 710);
        assert_eq!(ok("9999999999999.99"), 999_999_999_999_999);
    }

    #[test]
    fn rejects_what_a_float_parser_would_accept() {
        assert_eq!(Money::parse("1e3"), Err(MoneyError::Exponent));
        assert_eq!(Money::parse("1.5E-2"), Err(MoneyError::Exponent));
        assert_eq!(Money::parse("10.005"), Err(MoneyError::TooManyDecimals(3)));
        assert_eq!(Money::parse("1,000.00"), Err(MoneyError::Thousands));
        assert_eq!(Money::parse("$5"), Err(MoneyError::Currency));
        assert_eq!(Money::parse("5 USD"), Err(MoneyError::Currency));
        assert_eq!(Money::parse("NaN"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse("12abc"), Err(MoneyError::Malformed));
        assert_eq!(Money::parse("1.2.3"), Err(MoneyError::Malformed));
        assert_eq!(Money::parse("."), Err(MoneyError::Malformed));
        assert_eq!(Money::parse("5."), Err(MoneyError::Malformed));
        assert_eq!(Money::parse(".5"), Err(MoneyError::Malformed));
        assert_eq!(Money::parse("+5"), Err(MoneyError::Malformed));
        assert_eq!(Money::parse("-"), Err(MoneyError::Malformed));
        assert_eq!(Money::parse(""), Err(MoneyError::Empty));
        assert_eq!(Money::parse("10000000000000"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn round_trips_through_text_and_decimal() {
        for text in [
            "0.00",
            "0.01",
            "-0.01",
            "12.50",
            "10000.00",
            "9999999999999.99",
        ] {
            let m = Money::parse(text).unwrap_or_default();
            assert_eq!(m.to_string(), text);
            assert_eq!(Money::from_decimal(m.to_decimal()), Some(m));
            assert_eq!(m.to_decimal().to_string(), text);
        }
        assert_eq!(Money::from_decimal(Decimal::new(10005, 3)), None);
    }
}
