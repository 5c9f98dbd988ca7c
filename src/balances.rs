//! The balance rules of SPEC §6, written once: deriving a member's opening balance, deciding
//! when a run may re-derive it, and reconciling a capital account against its records.
//!
//! Labor earns patronage; it is not capital. So per member
//! `expected = opening + Σ approved capital and property contributions + Σ allocations`, on the
//! book balance and on the tax basis. The allocations counted are the `distributed` ones: Habitat
//! credits an allocation to the balance and the tax basis when it distributes it, so one that is
//! only `calculated` (what `allocate --commit` writes) is not in the balance yet. The opening balance is the part of the balance the records
//! do not explain (a buy-in, history before the records began). If a run re-derived it every
//! time, the check above would always pass — a corrected amount imported twice would be absorbed
//! into a negative opening balance. So a run re-derives it only when that is explained
//! ([`RunEffects::reason`]), and otherwise the stored opening balance stands and the
//! reconciliation can fail.

use crate::model::{MemberTotals, Opening};
use crate::money::Money;

/// Why a run re-derives a member's opening balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The run inserted the member's capital account.
    NewAccount,
    /// The source changed the account's balance or tax basis.
    BalanceChanged,
    /// The run added contributions of the member and removed none (history the balance already
    /// reflected: step-by-step imports, a file per quarter).
    ContributionsAdded,
}

/// What a run does to one member, as far as the opening balance cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunEffects {
    pub new_account: bool,
    pub balance_changed: bool,
    pub contributions_added: bool,
    pub contributions_removed: bool,
}

impl RunEffects {
    /// Why this run may re-derive the member's opening balance, or `None`: the stored one stands.
    pub fn reason(&self) -> Option<Reason> {
        if self.new_account {
            Some(Reason::NewAccount)
        } else if self.balance_changed {
            Some(Reason::BalanceChanged)
        } else if self.contributions_added && !self.contributions_removed {
            Some(Reason::ContributionsAdded)
        } else {
            None
        }
    }
}

/// `balance − Σ approved capital/property − Σ distributed allocations`, and the same on the tax basis.
/// `None` only if the amounts overflow (they cannot with `numeric(15,2)` columns).
pub fn derive_opening(t: &MemberTotals) -> Option<Opening> {
    let explained = t.contributed.checked_add(t.allocated)?;
    Some(Opening {
        balance: t.balance.checked_sub(explained)?,
        tax_basis: t.tax_basis.checked_sub(explained)?,
    })
}

/// One measure (balance or tax basis) of one member, reconciled.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub member: String,
    pub measure: &'static str,
    /// The opening balance counted in `expected` (zero under the strict rule, which counts none).
    pub opening: Money,
    pub contributions: Money,
    pub allocations: Money,
    pub expected: Money,
    pub actual: Money,
    pub difference: Money,
}

/// How a member's account fares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both measures reconcile.
    Reconciled([Line; 2]),
    /// At least one measure differs.
    Differs([Line; 2]),
    /// The tool never derived an opening balance for this account.
    NoBaseline,
    /// An amount overflowed.
    Unreadable,
}

/// Reconciles one member. Under `strict` (the seed guide's literal rule) the opening balance is not
/// counted, so every nonzero opening balance shows as a difference of that size.
pub fn reconcile(t: &MemberTotals, strict: bool) -> Verdict {
    let Some(stored) = t.opening else {
        return Verdict::NoBaseline;
    };
    let counted = if strict {
        Opening {
            balance: Money::ZERO,
            tax_basis: Money::ZERO,
        }
    } else {
        stored
    };
    let line = |measure: &'static str, actual: Money, opening: Money| -> Option<Line> {
        let expected = opening
            .checked_add(t.contributed)?
            .checked_add(t.allocated)?;
        Some(Line {
            member: t.email.clone(),
            measure,
            opening,
            contributions: t.contributed,
            allocations: t.allocated,
            expected,
            actual,
            difference: actual.checked_sub(expected)?,
        })
    };
    let (Some(balance), Some(tax_basis)) = (
        line("balance", t.balance, counted.balance),
        line("tax_basis", t.tax_basis, counted.tax_basis),
    ) else {
        return Verdict::Unreadable;
    };
    if balance.difference == Money::ZERO && tax_basis.difference == Money::ZERO {
        Verdict::Reconciled([balance, tax_basis])
    } else {
        Verdict::Differs([balance, tax_basis])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(balance: i64, contributed: i64, opening: Option<i64>) -> MemberTotals {
        MemberTotals {
            member_id: uuid::Uuid::from_u128(1),
            email: "daniel.reyes@example.org".into(),
            balance: Money::from_cents(balance),
            tax_basis: Money::from_cents(balance),
            contributed: Money::from_cents(contributed),
            allocated: Money::ZERO,
            opening: opening.map(|o| Opening {
                balance: Money::from_cents(o),
                tax_basis: Money::from_cents(o),
            }),
        }
    }

    #[test]
    fn a_corrected_amount_without_a_new_balance_differs_by_the_correction() {
        // Imported with 5000.00 against a balance of 5000.00 (opening 0), then corrected to 5500.00.
        let v = reconcile(&totals(500_000, 550_000, Some(0)), false);
        let Verdict::Differs([balance, _]) = v else {
            panic!("expected a difference, got {v:?}");
        };
        assert_eq!(balance.difference, Money::from_cents(-50_000));
        assert_eq!(balance.expected, Money::from_cents(550_000));
    }

    #[test]
    fn strict_counts_no_opening_and_shows_it_as_the_difference() {
        let t = totals(250_000, 0, Some(250_000));
        assert!(matches!(reconcile(&t, false), Verdict::Reconciled(_)));
        let Verdict::Differs([balance, _]) = reconcile(&t, true) else {
            panic!("strict must fail a nonzero opening balance");
        };
        assert_eq!(balance.difference, Money::from_cents(250_000));
        assert_eq!(balance.opening, Money::ZERO);
    }

    #[test]
    fn no_stored_opening_is_no_baseline() {
        assert_eq!(reconcile(&totals(1, 0, None), false), Verdict::NoBaseline);
    }

    #[test]
    fn derivation_explains_the_whole_balance() {
        let t = totals(500_000, 550_000, None);
        let o = derive_opening(&t);
        assert_eq!(o.map(|o| o.balance), Some(Money::from_cents(-50_000)));
    }

    #[test]
    fn re_derivation_needs_a_reason() {
        let mut e = RunEffects::default();
        assert_eq!(e.reason(), None);
        e.contributions_added = true;
        assert_eq!(e.reason(), Some(Reason::ContributionsAdded));
        e.contributions_removed = true;
        assert_eq!(
            e.reason(),
            None,
            "a correction must reconcile, not re-derive"
        );
        e.balance_changed = true;
        assert_eq!(e.reason(), Some(Reason::BalanceChanged));
        e.new_account = true;
        assert_eq!(e.reason(), Some(Reason::NewAccount));
    }
}
