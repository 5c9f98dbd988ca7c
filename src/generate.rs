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

/// The columns a workbook holds as numbers (amounts) and as dates; every other column is text.
const NUMBER_COLUMNS: &[&str] = &["balance", "tax_basis", "amount"];
const DATE_COLUMNS: &[&str] = &["joined_at", "start_date", "end_date", "approved_at"];

/// Writes the CSV files of the bundle in `dir` as one workbook at `out`, a sheet per file, typed as
/// a treasurer's workbook is: amounts as number cells shown with two decimals, `YYYY-MM-DD` dates
/// as date cells, the rest as text. Sheets are written a row at a time (rust_xlsxwriter's
/// constant-memory mode), so a million rows need no more memory than ten.
pub fn bundle_to_workbook(dir: &Path, out: &Path) -> Result<(), WorkbookError> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let amount = Format::new().set_num_format("0.00");
    let day = Format::new().set_num_format("yyyy-mm-dd");
    for stem in ["members", "capital_accounts", "periods", "contributions"] {
        let path = dir.join(format!("{stem}.csv"));
        if !path.exists() {
            continue;
        }
        let mut csv = csv::Reader::from_path(&path)?;
        let header: Vec<String> = csv.headers()?.iter().map(str::to_string).collect();
        let sheet = book.add_worksheet_with_constant_memory();
        sheet.set_name(stem)?;
        for (col, name) in (0u16..).zip(&header) {
            sheet.write_string(0, col, name)?;
        }
        for (row, record) in (1u32..).zip(csv.records()) {
            let record = record?;
            for ((col, name), value) in (0u16..).zip(&header).zip(record.iter()) {
                if value.is_empty() {
                    continue;
                }
                let date = crate::domain::parse_date(value).ok();
                let number = Money::parse(value)
                    .ok()
                    .and_then(|_| value.parse::<f64>().ok());
                match (date, number) {
                    (Some(d), _) if DATE_COLUMNS.contains(&name.as_str()) => {
                        let d = ExcelDateTime::from_ymd(
                            u16::try_from(d.year()).unwrap_or(1900),
                            u8::try_from(d.month()).unwrap_or(1),
                            u8::try_from(d.day()).unwrap_or(1),
                        )?;
                        sheet.write_datetime_with_format(row, col, &d, &day)?;
                    }
                    // The amount's text parsed once to the nearest binary value, which the
                    // reader's shortest round-trip text turns back into the same digits.
                    (_, Some(n)) if NUMBER_COLUMNS.contains(&name.as_str()) => {
                        sheet.write_number_with_format(row, col, n, &amount)?;
                    }
                    _ => {
                        sheet.write_string(row, col, value)?;
                    }
                }
            }
        }
    }
    book.save(out)?;
    Ok(())
}

/// Why a bundle could not be written as a workbook.
#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// [`generate`], written as one workbook at `out` (through a CSV bundle beside it, removed after).
pub fn generate_workbook(members: u64, seed: u64, out: &Path) -> Result<Generated, WorkbookError> {
    let mut parts = out.as_os_str().to_owned();
    parts.push(".parts");
    let parts = std::path::PathBuf::from(parts);
    let generated = generate(members, seed, &parts)?;
    let written = bundle_to_workbook(&parts, out);
    fs::remove_dir_all(&parts)?;
    written.map(|()| generated)
}
