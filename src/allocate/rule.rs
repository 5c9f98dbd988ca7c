//! The allocation rule, once, in exact integer arithmetic: weighted patronage, patronage scores,
//! and the division of the pool into cents.
//!
//! - A member's weighted patronage is Σ over their approved contributions of amount × the weight
//!   of its type. Amounts are cents and weights a whole number of 10⁻ˢ units (`s` the most
//!   decimals any weight uses), so every weighted figure is an exact integer of 10⁻⁽²⁺ˢ⁾ units.
//! - `patronage_score` = member weighted ÷ total weighted, rounded half-up to ten decimals.
//! - The exact share of the pool is `pool × weighted ÷ total`, a rational number: its floor in
//!   cents is kept, and so is its remainder, as an integer numerator over `total`. Nothing is
//!   rounded before the last step: the cents the floors leave over (fewer than the number of
//!   members) go one each to the largest remainders — ties to the larger weighted patronage,
//!   then to the email that sorts first — so the amounts sum to the pool exactly and each is
//!   within one cent of its exact share.
//!
//! Habitat's own spec rounds each percentage to two decimals first and multiplies after, which
//! loses $1.20 on a $12,000 pool and then gives the whole residual to the largest allocation;
//! this rule loses nothing and moves no one more than a cent (DESIGN.md, "The allocation").
//!
//! Every product is checked: an overflow is an error, never a wrapped or rounded number.

use std::cmp::Reverse;
use std::fmt;

use uuid::Uuid;

use super::weights::Weights;
use crate::domain::{ContributionType, PatronageScore};
use crate::model::MemberPatronage;
use crate::money::Money;

/// An exact weighted amount: `units` of 10⁻`scale` (the scale is 2 + the weights' decimals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weighted {
    pub units: i128,
    pub scale: u32,
}

/// `1250.00`, `1.665`: every decimal the value has, and at least two, like money.
impl fmt::Display for Weighted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = 10i128.pow(self.scale);
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        let one = one.unsigned_abs();
        let mut frac = format!("{:0width$}", abs % one, width = self.scale as usize);
        while frac.len() > 2 && frac.ends_with('0') {
            frac.pop();
        }
        write!(f, "{sign}{}.{frac}", abs / one)
    }
}

impl serde::Serialize for Weighted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One member's line of an allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub member_id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    /// Approved amounts by type (labor, capital, property), before weighting.
    pub approved: [Money; 3],
    /// The same after weighting.
    pub weighted: [Weighted; 3],
    pub weighted_total: Weighted,
    pub patronage_score: PatronageScore,
    /// The exact share's floor in cents.
    pub floor: Money,
    /// The exact share's part below the cent: `remainder / total` of a cent.
    pub remainder: i128,
    /// Whether one of the cents the floors leave over went to this member.
    pub leftover_cent: bool,
    pub amount: Money,
}

impl Share {
    /// The exact share in currency units to ten decimals, with `…` when it goes on: the floor's
    /// cents, then the remainder's digits by long division.
    pub fn exact_share(&self, total: Weighted) -> String {
        let mut text = self.floor.to_string();
        let mut remainder = self.remainder;
        if remainder == 0 || total.units <= 0 {
            return text;
        }
        for _ in 0..8 {
            let Some(tenfold) = remainder.checked_mul(10) else {
                break;
            };
            remainder = tenfold;
            let digit = remainder / total.units;
            remainder %= total.units;
            text.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
            if remainder == 0 {
                return text;
            }
        }
        text.push('…');
        text
    }
}

/// The allocation of a pool over a period's approved contributions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calculation {
    pub pool: Money,
    pub weights: Weights,
    pub total_weighted: Weighted,
    /// Members with weighted patronage above zero, ordered by email.
    pub shares: Vec<Share>,
    /// Members whose approved contributions weigh nothing (all of types weighted 0): they get
    /// nothing.
    pub zero_patronage: Vec<String>,
    /// Cents the floors left over, given one each to the largest remainders.
    pub leftover_cents: u64,
}

impl Calculation {
    /// The sum of the amounts (the pool, by construction; checked again by whoever shows it).
    pub fn allocated(&self) -> Option<Money> {
        self.shares
            .iter()
            .try_fold(Money::ZERO, |sum, s| sum.checked_add(s.amount))
    }
}

/// Why a pool cannot be allocated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("no weighted patronage: every member's approved contributions weigh 0")]
    NoPatronage,
    #[error("the pool must be more than 0.00 (given {0})")]
    EmptyPool(Money),
    #[error("the amounts are too large to allocate exactly")]
    TooLarge,
}

/// Allocates `pool` over `members` (one entry per member, as the store sums them) with `weights`.
pub fn allocate(
    pool: Money,
    weights: &Weights,
    members: &[MemberPatronage],
) -> Result<Calculation, RuleError> {
    if pool.cents() <= 0 {
        return Err(RuleError::EmptyPool(pool));
    }
    let decimals = weights.decimals();
    let scale = 2 + decimals;
    let weighted = |units: i128| Weighted { units, scale };

    let mut shares = Vec::with_capacity(members.len());
    let mut zero_patronage = Vec::new();
    let mut total: i128 = 0;
    for m in members {
        let mut by_type = [weighted(0); 3];
        let mut member_total: i128 = 0;
        for (i, t) in ContributionType::ALL.iter().enumerate() {
            let units = i128::from(m.amount(*t).cents())
                .checked_mul(i128::from(weights.get(*t).units(decimals)))
                .ok_or(RuleError::TooLarge)?;
            by_type[i] = weighted(units);
            member_total = member_total.checked_add(units).ok_or(RuleError::TooLarge)?;
        }
        if member_total <= 0 {
            zero_patronage.push(m.email.clone());
            continue;
        }
        total = total.checked_add(member_total).ok_or(RuleError::TooLarge)?;
        shares.push(Share {
            member_id: m.member_id,
            email: m.email.clone(),
            display_name: m.display_name.clone(),
            approved: [m.labor, m.capital, m.property],
            weighted: by_type,
            weighted_total: weighted(member_total),
            patronage_score: PatronageScore::default(),
            floor: Money::ZERO,
            remainder: 0,
            leftover_cent: false,
            amount: Money::ZERO,
        });
    }
    if total <= 0 {
        return Err(RuleError::NoPatronage);
    }

    let pool_cents = i128::from(pool.cents());
    let mut floors: i128 = 0;
    for s in &mut shares {
        let units = s.weighted_total.units;
        let numerator = pool_cents.checked_mul(units).ok_or(RuleError::TooLarge)?;
        let floor = numerator / total;
        s.floor = money(floor)?;
        s.remainder = numerator % total;
        floors += floor;
        s.patronage_score = score(units, total)?;
    }
    // Σ floor > pool − n, so fewer cents are left over than there are members.
    let leftover = pool_cents - floors;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&shares[a], &shares[b]);
        (
            Reverse(x.remainder),
            Reverse(x.weighted_total.units),
            &x.email,
        )
            .cmp(&(
                Reverse(y.remainder),
                Reverse(y.weighted_total.units),
                &y.email,
            ))
    });
    let leftover_count = usize::try_from(leftover).map_err(|_| RuleError::TooLarge)?;
    for &i in order.iter().take(leftover_count) {
        shares[i].leftover_cent = true;
    }
    for s in &mut shares {
        s.amount = money(i128::from(s.floor.cents()) + i128::from(s.leftover_cent))?;
    }
    Ok(Calculation {
        pool,
        weights: *weights,
        total_weighted: weighted(total),
        shares,
        zero_patronage,
        leftover_cents: u64::try_from(leftover).map_err(|_| RuleError::TooLarge)?,
    })
}

fn money(cents: i128) -> Result<Money, RuleError> {
    i64::try_from(cents)
        .map(Money::from_cents)
        .map_err(|_| RuleError::TooLarge)
}

/// `part / total` rounded half-up to ten decimals (both positive, `part ≤ total`).
fn score(part: i128, total: i128) -> Result<PatronageScore, RuleError> {
    let scaled = part
        .checked_mul(i128::from(PatronageScore::ONE_UNITS))
        .ok_or(RuleError::TooLarge)?;
    let (quotient, remainder) = (scaled / total, scaled % total);
    let rounded = if remainder >= total - remainder {
        quotient + 1
    } else {
        quotient
    };
    u64::try_from(rounded)
        .ok()
        .and_then(PatronageScore::from_units)
        .ok_or(RuleError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(email: &str, labor: i64, capital: i64, property: i64) -> MemberPatronage {
        MemberPatronage {
            member_id: Uuid::nil(),
            email: email.into(),
            display_name: None,
            labor: Money::from_cents(labor),
            capital: Money::from_cents(capital),
            property: Money::from_cents(property),
        }
    }

    fn amounts(c: &Calculation) -> Vec<(String, String)> {
        c.shares
            .iter()
            .map(|s| (s.email.clone(), s.amount.to_string()))
            .collect()
    }

    #[test]
    fn weighted_figures_show_every_decimal_and_at_least_two() {
        let w = |units, scale| Weighted { units, scale }.to_string();
        assert_eq!(w(1_250_000, 3), "1250.00");
        assert_eq!(w(1665, 3), "1.665");
        assert_eq!(w(85050, 2), "850.50");
        assert_eq!(w(0, 8), "0.00");
    }

    /// Habitat's worked example (spec/patronage-formula.md): weighted 4050, 3000 and 2200 of
    /// 9250, pool 12,000.00. Habitat gets 5253.60 + 3891.60 + 2853.60 = 11998.80.
    ///
    /// | member | weighted | pool × weighted ÷ 9250 (cents) | floor   | remainder | amount  |
    /// |--------|----------|--------------------------------|---------|-----------|---------|
    /// | alice  | 4050     | 525405 + 3750/9250             | 5254.05 | 3750      | 5254.06 |
    /// | bob    | 3000     | 389189 + 1750/9250             | 3891.89 | 1750      | 3891.89 |
    /// | carol  | 2200     | 285405 + 3750/9250             | 2854.05 | 3750      | 2854.05 |
    ///
    /// The floors sum to 11999.99; the one cent left goes to the largest remainder, a tie
    /// between alice and carol (3750 each) that the larger weighted patronage (alice) wins.
    #[test]
    fn habitats_example_loses_nothing() {
        let members = [
            member("alice@example.org", 405_000, 0, 0),
            member("bob@example.org", 300_000, 0, 0),
            member("carol@example.org", 220_000, 0, 0),
        ];
        let weights = Weights::parse("labor=1,capital=1,property=1").unwrap_or_default();
        let c = allocate(Money::from_cents(1_200_000), &weights, &members);
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            amounts(&c),
            [
                ("alice@example.org".into(), "5254.06".into()),
                ("bob@example.org".into(), "3891.89".into()),
                ("carol@example.org".into(), "2854.05".into()),
            ]
        );
        assert_eq!(
            c.shares.iter().map(|s| s.remainder).collect::<Vec<_>>(),
            [375_000, 175_000, 375_000],
            "remainders over the total in cents (925000): 3750/9250 of a cent, 1750/9250, 3750/9250"
        );
        assert_eq!(c.leftover_cents, 1);
        assert_eq!(c.allocated(), Some(Money::from_cents(1_200_000)));
        assert_eq!(c.shares[0].patronage_score.to_string(), "0.4378378378");
        assert_eq!(c.shares[1].patronage_score.to_string(), "0.3243243243");
        assert_eq!(c.shares[2].patronage_score.to_string(), "0.2378378378");
        assert_eq!(
            c.shares[0].exact_share(c.total_weighted),
            "5254.0540540540…"
        );
        assert_eq!(c.total_weighted.to_string(), "9250.00");
    }

    /// 100.00 over three equal members: 33.33 each and one cent left, whose remainders and
    /// weighted patronage tie, so it goes to the email that sorts first.
    #[test]
    fn full_ties_go_to_the_first_email() {
        let members = [
            member("b@example.org", 0, 1000, 0),
            member("a@example.org", 0, 0, 1000),
            member("c@example.org", 0, 1000, 0),
        ];
        let c = allocate(Money::from_cents(10_000), &Weights::default(), &members)
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(String, String)> = amounts(&c);
        assert!(got.contains(&("a@example.org".into(), "33.34".into())));
        assert!(got.contains(&("b@example.org".into(), "33.33".into())));
        assert!(got.contains(&("c@example.org".into(), "33.33".into())));
        assert!(
            c.shares
                .iter()
                .all(|s| s.patronage_score.to_string() == "0.3333333333")
        );
    }

    #[test]
    fn scores_round_half_up() {
        // 1/8 = 0.125 exactly; 2/3 = 0.66666666666… rounds up; 1/3 down.
        assert_eq!(
            score(1, 8).map(|s| s.to_string()),
            Ok("0.1250000000".into())
        );
        assert_eq!(
            score(2, 3).map(|s| s.to_string()),
            Ok("0.6666666667".into())
        );
        assert_eq!(
            score(1, 3).map(|s| s.to_string()),
            Ok("0.3333333333".into())
        );
        // 1 / 20,000,000,000 = 0.00000000005: exactly half a unit, rounds up.
        assert_eq!(
            score(1, 20_000_000_000).map(|s| s.to_string()),
            Ok("0.0000000001".into())
        );
        assert_eq!(
            score(5, 5).map(|s| s.to_string()),
            Ok("1.0000000000".into())
        );
    }

    #[test]
    fn members_of_zero_weight_get_nothing_and_nothing_is_divided_by_zero() {
        let members = [
            member("labor@example.org", 5000, 0, 0),
            member("capital@example.org", 0, 5000, 0),
        ];
        let weights = Weights::parse("capital=0").unwrap_or_default();
        let c =
            allocate(Money::from_cents(999), &weights, &members).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(amounts(&c), [("labor@example.org".into(), "9.99".into())]);
        assert_eq!(c.zero_patronage, ["capital@example.org"]);
        let weights = Weights::parse("labor=0").unwrap_or_default();
        let only_labor = [member("labor@example.org", 5000, 0, 0)];
        assert_eq!(
            allocate(Money::from_cents(999), &weights, &only_labor),
            Err(RuleError::NoPatronage)
        );
        assert_eq!(
            allocate(Money::from_cents(999), &weights, &[]),
            Err(RuleError::NoPatronage)
        );
        assert_eq!(
            allocate(Money::ZERO, &weights, &members),
            Err(RuleError::EmptyPool(Money::ZERO))
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrong_number() {
        let huge = [
            member("a@example.org", i64::MAX, 0, 0),
            member("b@example.org", i64::MAX, 0, 0),
        ];
        let weights = Weights::parse("labor=999.999999").unwrap_or_default();
        assert_eq!(
            allocate(Money::from_cents(999_999_999_999_999), &weights, &huge),
            Err(RuleError::TooLarge)
        );
    }
}
