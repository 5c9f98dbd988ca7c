//! Repairs: for a finding of validation, the one fix that is unambiguous, if there is one.
//!
//! A repair is offered only where a person would make the same change without having to think
//! about what was meant: `1,234.50` → `1234.50`, `$5.00` → `5.00`, `2025/05/01` → `2025-05-01`,
//! `Active` → `active`. Where a value could mean two things (`05/01/2025`, `12.345`), there is no
//! repair and the person decides. A suggestion is checked against the same parser that refused
//! the value, so a repair never produces a value that validation refuses again for the same rule.
//!
//! Nothing here changes a file: callers (the web page) show every before → after and apply them
//! only when asked. The rules live next to the validation rules so that the page carries no second
//! copy of what a valid amount or date is.

use crate::domain::{self, ContributionStatus, ContributionType, MemberStatus, PeriodStatus, Role};
use crate::money::Money;

/// The kinds of repair, one group of findings each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepairKind {
    /// `1,234.50` → `1234.50`.
    ThousandsSeparators,
    /// `$5.00`, `5.00 EUR` → `5.00`.
    CurrencySign,
    /// `2025/05/01`, `2025.05.01` → `2025-05-01`.
    DateSeparators,
    /// `Active` → `active`, for a column whose words are a fixed list.
    WordCase,
}

impl RepairKind {
    pub const ALL: [RepairKind; 4] = [
        RepairKind::ThousandsSeparators,
        RepairKind::CurrencySign,
        RepairKind::DateSeparators,
        RepairKind::WordCase,
    ];

    /// A stable name, for links and forms.
    pub fn slug(self) -> &'static str {
        match self {
            RepairKind::ThousandsSeparators => "thousands-separators",
            RepairKind::CurrencySign => "currency-sign",
            RepairKind::DateSeparators => "date-separators",
            RepairKind::WordCase => "word-case",
        }
    }

    pub fn from_slug(slug: &str) -> Option<RepairKind> {
        RepairKind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// What a group of `count` such findings is, in a treasurer's words.
    pub fn describe(self, count: usize) -> String {
        let (one, many) = match self {
            RepairKind::ThousandsSeparators => (
                "amount written with thousands separators",
                "amounts written with thousands separators",
            ),
            RepairKind::CurrencySign => (
                "amount written with a currency sign or code",
                "amounts written with a currency sign or code",
            ),
            RepairKind::DateSeparators => (
                "date written with / or . instead of -",
                "dates written with / or . instead of -",
            ),
            RepairKind::WordCase => (
                "role, status or type written with capitals",
                "roles, statuses or types written with capitals",
            ),
        };
        format!("{count} {}", if count == 1 { one } else { many })
    }
}

/// One suggested fix: the value to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub kind: RepairKind,
    pub after: String,
}

/// The unambiguous repair of `value` (the cell as written, trimmed) for a finding of `rule` on
/// `column`, if there is one.
pub fn suggest(rule: &str, column: &str, value: &str) -> Option<Repair> {
    let value = value.trim();
    match rule {
        "money.format" => thousands(value).or_else(|| currency(value)),
        "date.format" => date_separators(value),
        "member.role"
        | "member.status"
        | "contribution.type"
        | "contribution.status"
        | "period.status" => word_case(column, value),
        _ => None,
    }
}

/// `1,234,567.50` with groups of exactly three digits: anything else (`1,5`, `12,34`) could be a
/// decimal comma and is left to a person.
fn thousands(value: &str) -> Option<Repair> {
    let (int_part, frac) = match value.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (value, None),
    };
    let mut groups = int_part.split(',');
    let first = groups.next()?;
    let first_ok = (1..=3).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_digit());
    let rest: Vec<&str> = groups.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
    if !first_ok || !rest_ok {
        return None;
    }
    let mut after = int_part.replace(',', "");
    if let Some(f) = frac {
        after.push('.');
        after.push_str(f);
    }
    Money::parse(&after).ok()?;
    Some(Repair {
        kind: RepairKind::ThousandsSeparators,
        after,
    })
}

/// A currency sign before or a three-letter code after (or before) an otherwise plain amount.
fn currency(value: &str) -> Option<Repair> {
    const SIGNS: [char; 5] = ['$', '€', '£', '¥', '₿'];
    const CODES: [&str; 5] = ["USD", "EUR", "GBP", "CAD", "CHF"];
    let mut body = value.trim_start_matches(SIGNS).trim_end_matches(SIGNS);
    for code in CODES {
        let upper = body.to_ascii_uppercase();
        if upper.ends_with(code) {
            body = &body[..body.len() - code.len()];
        } else if upper.starts_with(code) {
            body = &body[code.len()..];
        }
    }
    let body = body.trim();
    if body.len() == value.len() || body.is_empty() {
        return None;
    }
    // The amount as the person wrote it (`5` stays `5`, not `5.00`): the file stays theirs.
    Money::parse(body).ok()?;
    Some(Repair {
        kind: RepairKind::CurrencySign,
        after: body.to_string(),
    })
}

/// Year first with `/` or `.` between: `2025/05/01` is the 1st of May whatever the locale.
fn date_separators(value: &str) -> Option<Repair> {
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b[7] || !matches!(b[4], b'/' | b'.') {
        return None;
    }
    let after = format!("{}-{}-{}", &value[0..4], &value[5..7], &value[8..10]);
    domain::parse_date(&after).ok()?;
    Some(Repair {
        kind: RepairKind::DateSeparators,
        after,
    })
}

/// A word of a fixed list written with other letter case.
fn word_case(column: &str, value: &str) -> Option<Repair> {
    let words: &[&str] = match column {
        "role" => Role::WORDS,
        "contribution_type" => ContributionType::WORDS,
        // `status` is the member's, the contribution's or the period's: the lower-case word must
        // be one of the lists, and all three are lower case.
        "status" => &[],
        _ => return None,
    };
    let lower = value.to_lowercase();
    let known = words.contains(&lower.as_str())
        || (column == "status"
            && (MemberStatus::parse(&lower).is_some()
                || ContributionStatus::parse(&lower).is_some()
                || PeriodStatus::parse(&lower).is_some()));
    (known && lower != value).then_some(Repair {
        kind: RepairKind::WordCase,
        after: lower,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(rule: &str, column: &str, value: &str) -> Option<String> {
        suggest(rule, column, value).map(|r| r.after)
    }

    #[test]
    fn thousands_separators_in_groups_of_three_only() {
        assert_eq!(
            after("money.format", "balance", "1,234.50").as_deref(),
            Some("1234.50")
        );
        assert_eq!(
            after("money.format", "balance", "12,345,678").as_deref(),
            Some("12345678")
        );
        // A decimal comma, or groups that are not thousands: a person decides.
        assert_eq!(after("money.format", "balance", "1,5"), None);
        assert_eq!(after("money.format", "balance", "12,34.00"), None);
        assert_eq!(after("money.format", "balance", "1,234.567"), None);
    }

    #[test]
    fn currency_signs_and_codes() {
        assert_eq!(
            after("money.format", "amount", "$5.00").as_deref(),
            Some("5.00")
        );
        assert_eq!(
            after("money.format", "amount", "250 EUR").as_deref(),
            Some("250")
        );
        assert_eq!(after("money.format", "amount", "$five"), None);
        assert_eq!(after("money.format", "amount", "1e3"), None);
    }

    #[test]
    fn dates_year_first_only() {
        assert_eq!(
            after("date.format", "joined_at", "2025/05/01").as_deref(),
            Some("2025-05-01")
        );
        assert_eq!(
            after("date.format", "joined_at", "2025.12.31").as_deref(),
            Some("2025-12-31")
        );
        assert_eq!(after("date.format", "joined_at", "05/01/2025"), None);
        assert_eq!(after("date.format", "joined_at", "2025/02/30"), None);
        assert_eq!(after("date.format", "joined_at", "2025/05-01"), None);
    }

    #[test]
    fn words_in_other_case() {
        assert_eq!(
            after("member.role", "role", "Steward").as_deref(),
            Some("steward")
        );
        assert_eq!(
            after("member.status", "status", "ACTIVE").as_deref(),
            Some("active")
        );
        assert_eq!(
            after("contribution.status", "status", "Approved").as_deref(),
            Some("approved")
        );
        assert_eq!(after("member.role", "role", "boss"), None);
    }

    #[test]
    fn other_rules_have_no_repair() {
        assert_eq!(after("email.format", "email", "ada@"), None);
        assert_eq!(after("money.scale", "amount", "1.005"), None);
    }
}
