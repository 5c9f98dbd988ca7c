//! Weights of the contribution types: exact decimals, parsed by hand as money is.
//!
//! A weight multiplies amounts, so it is held exactly (millionths in a `u64`), written `1.0` or
//! `0.25`, and refused in every other spelling a float parser would take (`1e0`, `1_0`, `.5`).
//! `--weights` gives some or all of them as `labor=1.0,capital=0.5,property=0.5`; a type left out
//! keeps Habitat's Q1 2026 weight.

use std::fmt;

use crate::domain::ContributionType;

/// The most decimals a weight may have.
pub const WEIGHT_DECIMALS: u32 = 6;
/// The largest weight (a weight is a multiplier of amounts; 1000 leaves the exact arithmetic
/// ample headroom).
pub const MAX_WEIGHT: u64 = 1000;
const WEIGHT_UNIT: u64 = 10u64.pow(WEIGHT_DECIMALS);

/// One type's weight: an exact decimal from 0 to [`MAX_WEIGHT`] with at most
/// [`WEIGHT_DECIMALS`] decimals, held as millionths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u64);

impl Weight {
    /// The weight written as `text`: digits with an optional point, like an amount of money.
    pub fn parse(text: &str) -> Result<Weight, WeightError> {
        let (int, frac) = match text.split_once('.') {
            Some((_, "")) => return Err(WeightError::NotANumber),
            Some(parts) => parts,
            None => (text, ""),
        };
        if let Some(rest) = text.strip_prefix('-') {
            return Err(if Weight::parse(rest).is_ok() {
                WeightError::Negative
            } else {
                WeightError::NotANumber
            });
        }
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !(frac.is_empty() || digits(frac)) {
            return Err(WeightError::NotANumber);
        }
        if frac.len() > WEIGHT_DECIMALS as usize {
            return Err(WeightError::TooManyDecimals(frac.len()));
        }
        let int = int.trim_start_matches('0');
        if int.len() > 4 {
            return Err(WeightError::TooLarge);
        }
        let whole: u64 = int.bytes().fold(0, |n, b| n * 10 + u64::from(b - b'0'));
        let fraction = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(WEIGHT_DECIMALS as usize)
            .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        let units = whole * WEIGHT_UNIT + fraction;
        if units > MAX_WEIGHT * WEIGHT_UNIT {
            return Err(WeightError::TooLarge);
        }
        Ok(Weight(units))
    }

    const fn from_tenths(tenths: u64) -> Weight {
        Weight(tenths * (WEIGHT_UNIT / 10))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The weight as a whole number of 10⁻`decimals` (at least the decimals it needs).
    pub(super) fn units(self, decimals: u32) -> u64 {
        self.0 / 10u64.pow(WEIGHT_DECIMALS - decimals.min(WEIGHT_DECIMALS))
    }

    /// The decimals this weight needs (`0.25` → 2, `1.0` → 0).
    fn decimals(self) -> u32 {
        let mut n = WEIGHT_DECIMALS;
        let mut units = self.0;
        while n > 0 && units % 10 == 0 {
            units /= 10;
            n -= 1;
        }
        n
    }
}

/// `1.0`, `0.5`, `0.25`: as few decimals as the value needs, and at least one.
impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = self.decimals().max(1);
        let frac = self.0 % WEIGHT_UNIT / 10u64.pow(WEIGHT_DECIMALS - decimals);
        write!(
            f,
            "{}.{frac:0width$}",
            self.0 / WEIGHT_UNIT,
            width = decimals as usize
        )
    }
}

impl serde::Serialize for Weight {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a weight's value is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    #[error("not a number")]
    NotANumber,
    #[error("negative")]
    Negative,
    #[error("more than {WEIGHT_DECIMALS} decimals ({0} given)")]
    TooManyDecimals(usize),
    #[error("more than {MAX_WEIGHT}")]
    TooLarge,
}

/// The weight of each contribution type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Weights {
    pub labor: Weight,
    pub capital: Weight,
    pub property: Weight,
}

impl Default for Weights {
    /// Habitat's Q1 2026 weights: labor 1.0, capital 0.5, property 0.5.
    fn default() -> Weights {
        Weights {
            labor: Weight::from_tenths(10),
            capital: Weight::from_tenths(5),
            property: Weight::from_tenths(5),
        }
    }
}

/// Why a `--weights` list is not accepted. Each says how to write it instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    #[error("{0:?} is not TYPE=WEIGHT")]
    Shape(String),
    #[error("unknown contribution type {0:?}")]
    UnknownType(String),
    #[error("{0} is given twice")]
    Twice(ContributionType),
    #[error("the weight of {contribution_type} ({value:?}) is {error}")]
    Value {
        contribution_type: ContributionType,
        value: String,
        error: WeightError,
    },
    #[error("every weight is 0, so no contribution counts")]
    AllZero,
}

impl WeightsError {
    /// A one-line hint saying how to write the weights instead.
    pub fn hint(&self) -> &'static str {
        match self {
            WeightsError::Shape(_) | WeightsError::Twice(_) => {
                "write the weights as labor=1.0,capital=0.5,property=0.5 (each type at most once)"
            }
            WeightsError::UnknownType(_) => {
                "the contribution types are labor, capital and property"
            }
            WeightsError::Value { .. } => {
                "a weight is a plain decimal from 0 to 1000 with at most 6 decimals, such as 1.0 or 0.5"
            }
            WeightsError::AllZero => "give at least one type a weight above 0",
        }
    }
}

impl Weights {
    /// Parses `labor=1.0,capital=0.5,property=0.5`; a type left out keeps its default weight.
    pub fn parse(text: &str) -> Result<Weights, WeightsError> {
        let mut weights = Weights::default();
        let mut given = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(WeightsError::Shape(item.to_string()));
            };
            let (name, value) = (name.trim(), value.trim());
            let contribution_type = ContributionType::parse(&name.to_ascii_lowercase())
                .ok_or_else(|| WeightsError::UnknownType(name.to_string()))?;
            if given.contains(&contribution_type) {
                return Err(WeightsError::Twice(contribution_type));
            }
            given.push(contribution_type);
            let weight = Weight::parse(value).map_err(|error| WeightsError::Value {
                contribution_type,
                value: value.to_string(),
                error,
            })?;
            *weights.get_mut(contribution_type) = weight;
        }
        if ContributionType::ALL
            .iter()
            .all(|t| weights.get(*t).is_zero())
        {
            return Err(WeightsError::AllZero);
        }
        Ok(weights)
    }

    pub fn get(&self, contribution_type: ContributionType) -> Weight {
        match contribution_type {
            ContributionType::Labor => self.labor,
            ContributionType::Capital => self.capital,
            ContributionType::Property => self.property,
        }
    }

    fn get_mut(&mut self, contribution_type: ContributionType) -> &mut Weight {
        match contribution_type {
            ContributionType::Labor => &mut self.labor,
            ContributionType::Capital => &mut self.capital,
            ContributionType::Property => &mut self.property,
        }
    }

    /// The decimals the weighted figures need: the most any weight uses.
    pub(super) fn decimals(&self) -> u32 {
        ContributionType::ALL
            .iter()
            .map(|t| self.get(*t).decimals())
            .max()
            .unwrap_or(0)
    }
}

/// `labor=1.0,capital=0.5,property=0.5`: what `--weights` takes.
impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "labor={},capital={},property={}",
            self.labor, self.capital, self.property
        )
    }
}

impl serde::Serialize for Weights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(3))?;
        for t in ContributionType::ALL {
            map.serialize_entry(t.as_str(), &self.get(*t))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_exactly_and_keep_defaults() {
        let w = Weights::parse("labor=1.0,capital=0.5,property=0.5");
        assert_eq!(w, Ok(Weights::default()));
        assert_eq!(
            Weights::default().to_string(),
            "labor=1.0,capital=0.5,property=0.5"
        );
        let w = Weights::parse(" Capital = 0.25 ").unwrap_or_default();
        assert_eq!(w.to_string(), "labor=1.0,capital=0.25,property=0.5");
        assert_eq!(
            Weights::parse("labor=2").map(|w| w.labor.to_string()),
            Ok("2.0".into())
        );
        assert_eq!(
            Weights::parse("labor=0.000001").map(|w| w.labor.to_string()),
            Ok("0.000001".into())
        );
    }

    #[test]
    fn weights_refuse_what_is_not_an_exact_weight() {
        let value = |text: &str| match Weights::parse(text) {
            Err(WeightsError::Value { error, .. }) => Some(error),
            _ => None,
        };
        assert_eq!(value("labor=1e3"), Some(WeightError::NotANumber));
        assert_eq!(value("labor=NaN"), Some(WeightError::NotANumber));
        assert_eq!(value("labor=.5"), Some(WeightError::NotANumber));
        assert_eq!(value("labor=5."), Some(WeightError::NotANumber));
        assert_eq!(value("labor="), Some(WeightError::NotANumber));
        assert_eq!(value("labor=1_0"), Some(WeightError::NotANumber));
        assert_eq!(value("labor=-0.5"), Some(WeightError::Negative));
        assert_eq!(
            value("labor=0.1234567"),
            Some(WeightError::TooManyDecimals(7))
        );
        assert_eq!(value("labor=1000.5"), Some(WeightError::TooLarge));
        assert_eq!(
            value("labor=99999999999999999999"),
            Some(WeightError::TooLarge)
        );
        assert_eq!(
            Weights::parse("labour=1"),
            Err(WeightsError::UnknownType("labour".into()))
        );
        assert_eq!(
            Weights::parse("labor=1,labor=2"),
            Err(WeightsError::Twice(ContributionType::Labor))
        );
        assert_eq!(
            Weights::parse("labor"),
            Err(WeightsError::Shape("labor".into()))
        );
        assert_eq!(
            Weights::parse("labor=0,capital=0,property=0.0"),
            Err(WeightsError::AllZero)
        );
    }
}
