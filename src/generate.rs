//! The synthetic bundle generator behind `habitat-migrate gen`.
//!
//! Output is a pure function of `(members, seed)`: a small PRNG of our own (SplitMix64) rather
//! than a crate's, so that a dependency upgrade can never change the bytes a benchmark or a test
//! was written against. Every person is at example.org, every row is valid, and each member has
//! one capital account and ten contributions spread over the generated periods. Each capital
//! account's balance and tax basis cover the member's approved capital and property contributions,
//! so every opening balance is positive, as in real books.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use crate::money::Money;

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    pub members: u64,
    pub capital_accounts: u64,
    pub contributions: u64,
    pub periods: u64,
}

pub const CONTRIBUTIONS_PER_MEMBER: u64 = 10;

const PERIODS: &[(&str, &str, &str, &str)] = &[
    ("Q1 2025", "2025-01-01", "2025-03-31", "closed"),
    ("Q2 2025", "2025-04-01", "2025-06-30", "closed"),
    ("Q3 2025", "2025-07-01", "2025-09-30", "closed"),
    ("Q4 2025", "2025-10-01", "2025-12-31", "closed"),
    ("Q1 2026", "2026-01-01", "2026-03-31", "open"),
];

const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Leslie",
    "Margaret", "John", "Hedy", "Dennis", "Karen", "Niklaus", "Shafi", "Tim", "Sophie", "Guido",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Lamport",
    "Hamilton",
    "Backus",
    "Lamarr",
    "Ritchie",
    "Jones",
    "Wirth",
    "Goldwasser",
    "Berners",
    "Wilson",
    "Rossum",
];
const WORK: &[&str] = &[
    "Studio formation work",
    "Bookkeeping, month end",
    "Member onboarding",
    "Workshop facilitation",
    "Grant writing",
    "Infrastructure upkeep",
    "Design review, \"Habitat\" dashboard",
    "Event hosting",
];

/// SplitMix64: tiny, fast, and fixed forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
}

/// Writes members.csv, capital_accounts.csv, periods.csv and contributions.csv into `out`.
pub fn generate(members: u64, seed: u64, out: &Path) -> io::Result<Generated> {
    fs::create_dir_all(out)?;
    let mut rng = Rng(seed);
    let open = |name: &str| -> io::Result<csv::Writer<BufWriter<File>>> {
        Ok(csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(BufWriter::with_capacity(
                1 << 16,
                File::create(out.join(name))?,
            )))
    };
    let mut periods = open("periods.csv")?;
    periods.write_record(["name", "description", "start_date", "end_date", "status"])?;
    for (name, start, end, status) in PERIODS {
        let description = format!("Allocation period {name}");
        periods.write_record([name, &description.as_str(), start, end, status])?;
    }
    periods.flush()?;

    let mut m = open("members.csv")?;
    m.write_record([
        "email",
        "display_name",
        "ens_name",
        "role",
        "status",
        "joined_at",
    ])?;
    let mut ca = open("capital_accounts.csv")?;
    ca.write_record(["member_email", "balance", "tax_basis", "notes"])?;
    let mut c = open("contributions.csv")?;
    c.write_record([
        "member_email",
        "period_name",
        "contribution_type",
        "amount",
        "description",
        "status",
        "approved_at",
    ])?;
    for i in 1..=members {
        let email = format!("member{i:07}@example.org");
        let name = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
        let ens = if rng.below(4) == 0 {
            format!("member{i:07}.habitat.eth")
        } else {
            String::new()
        };
        let role = match rng.below(20) {
            0 => "admin",
            1..=3 => "steward",
            _ => "member",
        };
        let status = match rng.below(20) {
            0 => "inactive",
            1 => "pending",
            _ => "active",
        };
        let day = jiff::civil::date(2024, 1, 1)
            .checked_add(jiff::Span::new().days(i64::try_from(rng.below(700)).unwrap_or(0)))
            .unwrap_or(jiff::civil::date(2024, 1, 1));
        m.write_record([&email, &name, &ens, role, status, &day.to_string()])?;

        // The contributions first: the capital account must cover the approved capital and
        // property ones, or the member's opening balance (what the records do not explain) would
        // be negative, which no real cooperative's books show.
        let mut contributions = Vec::new();
        let mut approved_capital_cents: i64 = 0;
        for _ in 0..CONTRIBUTIONS_PER_MEMBER {
            let (period, _, end, _) =
                PERIODS[usize::try_from(rng.below(PERIODS.len() as u64)).unwrap_or(0)];
            let kind = match rng.below(10) {
                0 => "property",
                1..=2 => "capital",
                _ => "labor",
            };
            let amount = Money::from_cents(i64::try_from(rng.below(500_000)).unwrap_or(0) + 1_000);
            let (status, approved_at) = match rng.below(20) {
                0 => ("rejected", ""),
                1..=3 => ("pending", ""),
                _ => ("approved", end),
            };
            if status == "approved" && kind != "labor" {
                approved_capital_cents = approved_capital_cents.saturating_add(amount.cents());
            }
            contributions.push((period, kind, amount, rng.pick(WORK), status, approved_at));
        }

        let opening = i64::try_from(rng.below(5_000_000)).unwrap_or(0) + 10_000;
        let balance = Money::from_cents(approved_capital_cents.saturating_add(opening));
        let tax_basis = if rng.below(20) == 0 {
            // Appraised property: a lower tax basis, still covering the contributions.
            Money::from_cents(approved_capital_cents.saturating_add(opening / 2))
        } else {
            balance
        };
        let note = if tax_basis == balance {
            "Initial capital contribution"
        } else {
            "Property contribution, appraised"
        };
        ca.write_record([&email, &balance.to_string(), &tax_basis.to_string(), note])?;

        for (period, kind, amount, description, status, approved_at) in contributions {
            c.write_record([
                &email,
                period,
                kind,
                &amount.to_string(),
                description,
                status,
                approved_at,
            ])?;
        }
    }
    m.flush()?;
    ca.flush()?;
    c.flush()?;
    Ok(Generated {
        members,
        capital_accounts: members,
        contributions: members * CONTRIBUTIONS_PER_MEMBER,
        periods: PERIODS.len() as u64,
    })
}
