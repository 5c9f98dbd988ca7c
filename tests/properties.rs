//! Properties (issue 12), checked on generated inputs with proptest:
//!
//! - `Money`: format then parse is the identity on every amount the money columns hold, and parse
//!   then format is the identity on every amount written in canonical form;
//! - the readers and the validation never panic, whatever the bytes;
//! - every bundle that validates imports, reads back identical, and the imported amounts sum to
//!   the source's to the cent. These run the **binary** (`migrate` into a fresh SQLite file, read
//!   back with rusqlite: money is INTEGER cents there), so they hold whatever the import's insides
//!   become; each case starts two processes, so there are few cases (`PROPTEST_CASES` to change).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::common;
use crate::harness::{Test, tests};
use habitat_migrate::diagnostic::Diagnostics;
use habitat_migrate::money::{MAX_INTEGER_DIGITS, Money};
use habitat_migrate::report;
use habitat_migrate::source::{Reader, SourceFile, Table};
use habitat_migrate::validate::{self, KnownRefs};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            money_format_then_parse_is_the_identity,
            money_parse_then_format_is_the_identity_on_canonical_text,
            money_accepts_exactly_plain_decimals,
            money_parse_never_panics,
            readers_never_panic_on_arbitrary_bytes,
            readers_never_panic_on_csv_and_json_shaped_noise,
            validation_and_its_reports_never_panic,
            bundles_that_validate_import_and_read_back_identical,
        ],
    }
}

/// The largest amount `numeric(15,2)` holds, in cents.
const MAX_CENTS: i64 = 999_999_999_999_999;

// ---------------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------------

proptest! {
    fn money_format_then_parse_is_the_identity(cents in -MAX_CENTS..=MAX_CENTS) {
        let money = Money::from_cents(cents);
        prop_assert_eq!(Money::parse(&money.to_string()), Ok(money));
    }

    fn money_parse_then_format_is_the_identity_on_canonical_text(
        text in "-?(0|[1-9][0-9]{0,12})\\.[0-9]{2}"
    ) {
        prop_assume!(text != "-0.00");
        let money = Money::parse(&text);
        prop_assert_eq!(money.map(|m| m.to_string()), Ok(text));
    }

    /// Any text the parser accepts is digits, an optional point and at most two decimals, and
    /// means what integer arithmetic says it means.
    fn money_accepts_exactly_plain_decimals(
        negative: bool,
        int in "0{0,3}[0-9]{1,14}",
        frac in proptest::option::of("[0-9]{1,3}"),
    ) {
        let text = format!(
            "{}{int}{}",
            if negative { "-" } else { "" },
            frac.as_deref().map(|f| format!(".{f}")).unwrap_or_default()
        );
        let significant = int.trim_start_matches('0');
        let fits = significant.len() <= MAX_INTEGER_DIGITS
            && frac.as_ref().is_none_or(|f| f.len() <= 2);
        let parsed = Money::parse(&text);
        prop_assert_eq!(parsed.is_ok(), fits, "{}", text);
        if let Ok(money) = parsed {
            let mut cents: i64 = 0;
            for digit in significant.bytes() {
                cents = cents * 10 + i64::from(digit - b'0');
            }
            let decimals = format!("{:0<2}", frac.unwrap_or_default());
            cents = cents * 100 + decimals.parse::<i64>().unwrap_or_default();
            prop_assert_eq!(money.cents(), if negative { -cents } else { cents });
            prop_assert_eq!(Money::parse(&money.to_string()), Ok(money));
        }
    }

    fn money_parse_never_panics(text in any::<String>()) {
        if let Ok(money) = Money::parse(&text) {
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-'));
            prop_assert_eq!(Money::parse(&money.to_string()), Ok(money));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The readers and the validation never panic
// ---------------------------------------------------------------------------------------------

const TABLES: [Table; 4] = [
    Table::Members,
    Table::CapitalAccounts,
    Table::Contributions,
    Table::Periods,
];

fn source(table: Table, extension: &str) -> SourceFile {
    SourceFile::new(format!("{}.{extension}", table.stem()), table)
}

/// Reads every record, checking what a record promises: lines never go back, values are trimmed,
/// never empty and never hold a NUL.
fn read_all(file: &SourceFile, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let mut diags = Diagnostics::default();
    let mut reader = Reader::from_bytes(file, bytes, &mut diags);
    let mut last_line = 0;
    while reader.advance(&mut diags) {
        let record = reader.record();
        prop_assert!(
            record.line >= last_line,
            "line {} after {last_line}",
            record.line
        );
        prop_assert!(record.line >= 1);
        last_line = record.line;
        for index in 0..file.table.columns().len() {
            if let Some(value) = record.get(index) {
                prop_assert!(!value.is_empty());
                prop_assert_eq!(value, value.trim());
                prop_assert!(!value.contains('\0'));
            }
        }
    }
    prop_assert!(!reader.advance(&mut diags), "the end stays the end");
    for d in diags.items() {
        prop_assert!(d.rule.contains('.'));
        prop_assert!(d.value.as_ref().is_none_or(|v| v.chars().count() <= 101));
    }
    Ok(())
}

/// Bytes that make CSV and JSON parsers take their less common turns.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b",".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b":".to_vec()),
        Just(b"\\u0000".to_vec()),
        Just(b"\\ud800".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xff".to_vec()),
        Just(b"email".to_vec()),
        Just(b"\"email\"".to_vec()),
        Just(b"member_email".to_vec()),
        Just(b"amount".to_vec()),
        Just(b"12.50".to_vec()),
        Just(b"1e3".to_vec()),
        Just(b"null".to_vec()),
        Just(b"true".to_vec()),
        Just("é€".as_bytes().to_vec()),
        "[ -~]{0,8}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(token, 0..120).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    fn readers_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        table in 0..4usize,
        extension in prop_oneof![Just("csv"), Just("json"), Just("jsonl")],
    ) {
        read_all(&source(TABLES[table], extension), bytes)?;
    }

    fn readers_never_panic_on_csv_and_json_shaped_noise(
        bytes in noise(),
        table in 0..4usize,
        extension in prop_oneof![Just("csv"), Just("json"), Just("jsonl")],
    ) {
        read_all(&source(TABLES[table], extension), bytes)?;
    }

    fn validation_and_its_reports_never_panic(
        files in proptest::collection::vec((noise(), prop_oneof![Just("csv"), Just("json"), Just("jsonl")]), 4),
    ) {
        let sources: Vec<(SourceFile, Vec<u8>)> = files
            .into_iter()
            .zip(TABLES)
            .map(|((bytes, extension), table)| (source(table, extension), bytes))
            .collect();
        let v = validate::validate_bytes(&sources, &KnownRefs::default());
        let _ = report::validation_human(&v);
        let json = report::validation_json(&v);
        prop_assert_eq!(json["ok"].as_bool(), Some(v.ok()));
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles that validate import and read back identical
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Member {
    email: String,
    display_name: String,
    ens_name: Option<String>,
    role: &'static str,
    status: &'static str,
    joined_at: Day,
}

#[derive(Clone, Debug)]
struct Account {
    balance: Amount,
    tax_basis: Amount,
    notes: Option<String>,
}

#[derive(Clone, Debug)]
struct Period {
    name: String,
    description: Option<String>,
    start: Day,
    days: i64,
    status: Option<&'static str>,
}

#[derive(Clone, Debug)]
struct Contribution {
    member: usize,
    period: usize,
    kind: &'static str,
    amount: Amount,
    description: Option<String>,
    status: &'static str,
    approved_at: Option<When>,
}

/// A day, as a number of days after 2000-01-01.
#[derive(Clone, Copy, Debug)]
struct Day(i64);

impl Day {
    fn date(self) -> jiff::civil::Date {
        jiff::civil::date(2000, 1, 1)
            .checked_add(jiff::Span::new().days(self.0))
            .unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }

    /// What the database holds: midnight UTC of the day.
    fn stored(self) -> String {
        format!("{}T00:00:00Z", self.date())
    }
}

/// `approved_at` as written: a date, or a full timestamp with an offset.
#[derive(Clone, Debug)]
enum When {
    Day(Day),
    Timestamp {
        day: Day,
        seconds: i64,
        micros: Option<u32>,
        offset_minutes: i32,
    },
}

impl When {
    fn text(&self) -> String {
        match self {
            When::Day(day) => day.date().to_string(),
            When::Timestamp {
                day,
                seconds,
                micros,
                offset_minutes,
            } => {
                let mut text = format!(
                    "{}T{:02}:{:02}:{:02}",
                    day.date(),
                    seconds / 3600,
                    seconds / 60 % 60,
                    seconds % 60
                );
                if let Some(m) = micros {
                    let _ = write!(text, ".{m:06}");
                }
                if *offset_minutes == 0 {
                    text.push('Z');
                } else {
                    let sign = if *offset_minutes < 0 { '-' } else { '+' };
                    let abs = offset_minutes.unsigned_abs();
                    let _ = write!(text, "{sign}{:02}:{:02}", abs / 60, abs % 60);
                }
                text
            }
        }
    }

    /// What the database holds: the instant in UTC, as jiff writes it.
    fn stored(&self) -> String {
        match self {
            When::Day(day) => day.stored(),
            When::Timestamp { .. } => self
                .text()
                .parse::<jiff::Timestamp>()
                .map(|t| t.to_string())
                .unwrap_or_else(|e| panic!("{}: {e}", self.text())),
        }
    }
}

/// An amount in cents and how the file writes it.
#[derive(Clone, Copy, Debug)]
struct Amount {
    cents: i64,
    style: u8,
    json_number: bool,
}

impl Amount {
    fn text(self) -> String {
        let (int, frac) = (self.cents / 100, self.cents % 100);
        match self.style % 4 {
            // 1234.50
            0 => format!("{int}.{frac:02}"),
            // 1234.5 where it can be, or 1234 for whole amounts
            1 if frac == 0 => format!("{int}"),
            1 if frac % 10 == 0 => format!("{int}.{}", frac / 10),
            // leading zeros: 007.05
            2 => format!("00{int}.{frac:02}"),
            _ => format!("{int}.{frac:02}"),
        }
    }
}

#[derive(Clone, Debug)]
struct Source {
    members: Vec<(Member, Account)>,
    periods: Vec<Period>,
    contributions: Vec<Contribution>,
    /// Per table: 0 CSV, 1 JSON array, 2 JSON lines.
    formats: [u8; 4],
    /// Pad values with spaces (the tool trims them).
    pad: bool,
}

/// Text a treasurer's file may hold: commas, quotes, line breaks, accents, other scripts.
fn text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9]{1,8}",
        Just(" ".to_string()),
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\n".to_string()),
        Just("\\".to_string()),
        Just("Zoë".to_string()),
        Just("Łódź".to_string()),
        Just("李".to_string()),
        Just("🌱".to_string()),
        Just("\t".to_string()),
        Just("{\"a\": [1]}".to_string()),
    ];
    proptest::collection::vec(piece, 1..max)
        .prop_map(|p| p.concat())
        .prop_filter("not blank", |t| !t.trim().is_empty())
}

fn amount(min: i64, max: i64) -> impl Strategy<Value = Amount> {
    (min..=max, any::<u8>(), any::<bool>()).prop_map(|(cents, style, json_number)| Amount {
        cents,
        style,
        json_number,
    })
}

fn day() -> impl Strategy<Value = Day> {
    (0i64..12_000).prop_map(Day)
}

fn member() -> impl Strategy<Value = (Member, Account)> {
    (
        "[a-z][a-z0-9._+-]{0,10}",
        prop_oneof![
            Just("example.org"),
            Just("Example.ORG"),
            Just("mail.example.org")
        ],
        any::<bool>(),
        text(6).prop_filter("fits varchar(255)", |t| t.trim().chars().count() <= 255),
        any::<bool>(),
        prop_oneof![Just("member"), Just("steward"), Just("admin")],
        prop_oneof![Just("active"), Just("inactive"), Just("pending")],
        day(),
        amount(0, MAX_CENTS),
        amount(0, MAX_CENTS),
        proptest::option::of(text(5)),
    )
        .prop_map(
            |(
                local,
                domain,
                upper,
                display_name,
                ens,
                role,
                status,
                joined_at,
                balance,
                tax_basis,
                notes,
            )| {
                let email = if upper {
                    format!("{}@{domain}", local.to_uppercase())
                } else {
                    format!("{local}@{domain}")
                };
                (
                    Member {
                        email,
                        display_name,
                        ens_name: ens.then(String::new),
                        role,
                        status,
                        joined_at,
                    },
                    Account {
                        balance,
                        tax_basis,
                        notes,
                    },
                )
            },
        )
}

fn period() -> impl Strategy<Value = Period> {
    (
        text(4).prop_filter("fits varchar(255)", |t| t.trim().chars().count() <= 200),
        proptest::option::of(text(5)),
        day(),
        0i64..400,
        proptest::option::of(prop_oneof![Just("open"), Just("closed"), Just("archived")]),
    )
        .prop_map(|(name, description, start, days, status)| Period {
            name,
            description,
            start,
            days,
            status,
        })
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        day().prop_map(When::Day),
        (
            day(),
            0i64..86_400,
            proptest::option::of(0u32..1_000_000),
            -720i32..=840
        )
            .prop_map(|(day, seconds, micros, offset)| When::Timestamp {
                day,
                seconds,
                micros,
                // Whole quarter hours, as real offsets are.
                offset_minutes: offset / 15 * 15,
            }),
    ]
}

fn contribution() -> impl Strategy<Value = Contribution> {
    (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop_oneof![Just("labor"), Just("capital"), Just("property")],
        amount(1, 10_000_000_000),
        proptest::option::of(text(6)),
        prop_oneof![Just("pending"), Just("approved"), Just("rejected")],
        when(),
        any::<bool>(),
    )
        .prop_map(
            |(member, period, kind, amount, description, status, when, give_when)| Contribution {
                member: member.index(usize::MAX),
                period: period.index(usize::MAX),
                kind,
                amount,
                description,
                status,
                approved_at: (status == "approved" || give_when).then_some(when),
            },
        )
}

fn bundle() -> impl Strategy<Value = Source> {
    (
        proptest::collection::vec(member(), 1..6),
        proptest::collection::vec(period(), 1..4),
        proptest::collection::vec(contribution(), 0..10),
        any::<[u8; 4]>(),
        any::<bool>(),
    )
        .prop_map(
            |(mut members, mut periods, mut contributions, formats, pad)| {
                // Unique emails, ENS names and period names, as a valid file has them.
                for (i, (m, _)) in members.iter_mut().enumerate() {
                    m.email = m.email.replacen('@', &format!("{i}@"), 1);
                    if let Some(ens) = &mut m.ens_name {
                        *ens = format!("member{i}.habitat.eth");
                    }
                }
                for (i, p) in periods.iter_mut().enumerate() {
                    p.name = format!("P{i} {}", p.name.trim());
                }
                for c in &mut contributions {
                    c.member %= members.len();
                    c.period %= periods.len();
                }
                Source {
                    members,
                    periods,
                    contributions,
                    formats,
                    pad,
                }
            },
        )
}

/// One field of a record: its column, and its text or (for JSON) its raw number.
enum Field {
    Text(String),
    Number(String),
    Empty,
}

impl Source {
    fn padded(&self, text: &str) -> String {
        if self.pad {
            format!("  {text} ")
        } else {
            text.to_string()
        }
    }

    fn text(&self, text: &str) -> Field {
        Field::Text(self.padded(text))
    }

    fn optional(&self, text: Option<&String>) -> Field {
        text.map_or(Field::Empty, |t| self.text(t))
    }

    fn amount(&self, amount: Amount, json: bool) -> Field {
        if json && amount.json_number {
            // A JSON number has no leading zeros.
            let plain = Amount {
                style: amount.style % 2,
                ..amount
            };
            Field::Number(plain.text())
        } else {
            self.text(&amount.text())
        }
    }

    fn rows(&self, table: Table, json: bool) -> Vec<Vec<Field>> {
        match table {
            Table::Members => self
                .members
                .iter()
                .map(|(m, _)| {
                    vec![
                        self.text(&m.email),
                        self.text(&m.display_name),
                        self.optional(m.ens_name.as_ref()),
                        self.text(m.role),
                        self.text(m.status),
                        self.text(&m.joined_at.date().to_string()),
                    ]
                })
                .collect(),
            Table::CapitalAccounts => self
                .members
                .iter()
                .map(|(m, a)| {
                    vec![
                        self.text(&m.email),
                        self.amount(a.balance, json),
                        self.amount(a.tax_basis, json),
                        self.optional(a.notes.as_ref()),
                    ]
                })
                .collect(),
            Table::Periods => self
                .periods
                .iter()
                .map(|p| {
                    vec![
                        self.text(&p.name),
                        self.optional(p.description.as_ref()),
                        self.text(&p.start.date().to_string()),
                        self.text(&Day(p.start.0 + p.days).date().to_string()),
                        p.status.map_or(Field::Empty, |s| self.text(s)),
                    ]
                })
                .collect(),
            Table::Contributions => self
                .contributions
                .iter()
                .map(|c| {
                    vec![
                        self.text(&self.members[c.member].0.email),
                        self.text(&self.periods[c.period].name),
                        self.text(c.kind),
                        self.amount(c.amount, json),
                        self.optional(c.description.as_ref()),
                        self.text(c.status),
                        c.approved_at
                            .as_ref()
                            .map_or(Field::Empty, |w| self.text(&w.text())),
                    ]
                })
                .collect(),
        }
    }

    fn write(&self, dir: &Path) {
        for (i, table) in TABLES.iter().enumerate() {
            let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
            let format = self.formats[i] % 3;
            let rows = self.rows(*table, format != 0);
            if rows.is_empty() && *table == Table::Contributions {
                continue;
            }
            let (extension, body) = match format {
                0 => ("csv", csv_text(&names, &rows)),
                1 => (
                    "json",
                    format!("[\n{}\n]\n", json_lines(&names, &rows).join(",\n")),
                ),
                _ => ("jsonl", json_lines(&names, &rows).join("\n") + "\n"),
            };
            fs::write(dir.join(format!("{}.{extension}", table.stem())), body)
                .expect("write a source file");
        }
    }
}

fn csv_text(names: &[&str], rows: &[Vec<Field>]) -> String {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = out.write_record(names);
    for row in rows {
        let fields: Vec<&str> = row
            .iter()
            .map(|f| match f {
                Field::Text(t) | Field::Number(t) => t.as_str(),
                Field::Empty => "",
            })
            .collect();
        let _ = out.write_record(fields);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn json_lines(names: &[&str], rows: &[Vec<Field>]) -> Vec<String> {
    rows.iter()
        .map(|row| {
            let members: Vec<String> = names
                .iter()
                .zip(row)
                .filter_map(|(name, field)| {
                    let value = match field {
                        Field::Text(t) => serde_json::to_string(t).unwrap_or_default(),
                        Field::Number(n) => n.clone(),
                        Field::Empty => return None,
                    };
                    Some(format!(
                        "{}: {value}",
                        serde_json::to_string(name).unwrap_or_default()
                    ))
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        })
        .collect()
}

/// A value as the tool stores it: trimmed, and blank as NULL.
fn stored(text: Option<&String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

type MemberRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);
type AccountRow = (String, i64, i64, Option<String>);
type PeriodRow = (String, Option<String>, String, String, String);
type ContributionRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    String,
    Option<String>,
);

impl Source {
    fn expected_members(&self) -> Vec<MemberRow> {
        let mut rows: Vec<MemberRow> = self
            .members
            .iter()
            .map(|(m, _)| {
                (
                    m.email.to_lowercase(),
                    stored(Some(&m.display_name)),
                    m.ens_name.clone(),
                    m.role.to_string(),
                    m.status.to_string(),
                    m.joined_at.stored(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    fn expected_accounts(&self) -> Vec<AccountRow> {
        let mut rows: Vec<AccountRow> = self
            .members
            .iter()
            .map(|(m, a)| {
                (
                    m.email.to_lowercase(),
                    a.balance.cents,
                    a.tax_basis.cents,
                    stored(a.notes.as_ref()),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    fn expected_periods(&self) -> Vec<PeriodRow> {
        let mut rows: Vec<PeriodRow> = self
            .periods
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    stored(p.description.as_ref()),
                    p.start.stored(),
                    Day(p.start.0 + p.days).stored(),
                    p.status.unwrap_or("open").to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    fn expected_contributions(&self) -> Vec<ContributionRow> {
        let mut rows: Vec<ContributionRow> = self
            .contributions
            .iter()
            .map(|c| {
                (
                    self.members[c.member].0.email.to_lowercase(),
                    self.periods[c.period].name.clone(),
                    c.kind.to_string(),
                    c.amount.cents,
                    stored(c.description.as_ref()),
                    c.status.to_string(),
                    c.approved_at.as_ref().map(When::stored),
                )
            })
            .collect();
        rows.sort();
        rows
    }
}

fn query<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T>
where
    T: Ord,
{
    let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows: Vec<T> = statement
        .query_map([], row)
        .and_then(Iterator::collect)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.sort();
    rows
}

fn sum(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or(0)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(Config { cases: cases(), ..Config::default() })]

    fn bundles_that_validate_import_and_read_back_identical(source in bundle()) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let bundle = dir.path().join("bundle");
        fs::create_dir(&bundle).expect("bundle directory");
        source.write(&bundle);
        let db = dir.path().join("habitat.db");
        let url = format!("sqlite://{}", db.display());
        let run = |args: &[String]| {
            common::bin()
                .current_dir(dir.path())
                .args(["--database-url", url.as_str(), "--backup-dir", "backups", "--log-dir", "logs"])
                .args(args)
                .output()
                .expect("run habitat-migrate")
        };

        // The generator makes valid bundles only: one that does not validate is a finding too.
        let mut args = vec!["--format".to_string(), "json".to_string(), "validate-source".to_string()];
        for entry in fs::read_dir(&bundle).expect("list the bundle").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let flag = match name.split('.').next() {
                Some("members") => "--members",
                Some("capital_accounts") => "--capital-accounts",
                Some("periods") => "--periods",
                _ => "--contributions",
            };
            args.push(flag.to_string());
            args.push(format!("bundle/{name}"));
        }
        let validation = run(&args);
        prop_assert_eq!(validation.status.code(), Some(0), "validate-source:\n{}", common::all_output(&validation));

        let migrate = run(&["migrate".to_string(), "bundle".to_string()]);
        prop_assert_eq!(migrate.status.code(), Some(0), "migrate:\n{}", common::all_output(&migrate));

        let conn = common::sqlite_conn(&url);
        let members = query(&conn, "SELECT email, display_name, ens_name, role, status, joined_at FROM members", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        });
        prop_assert_eq!(members, source.expected_members());
        let accounts = query(&conn, "SELECT m.email, a.balance, a.tax_basis, a.notes FROM capital_accounts a JOIN members m ON m.id = a.member_id", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        });
        prop_assert_eq!(accounts, source.expected_accounts());
        let periods = query(&conn, "SELECT name, description, start_date, end_date, status FROM allocation_periods", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        });
        prop_assert_eq!(periods, source.expected_periods());
        let contributions = query(&conn, "SELECT m.email, p.name, c.contribution_type, c.amount, c.description, c.status, c.approved_at \
             FROM contributions c JOIN members m ON m.id = c.member_id JOIN allocation_periods p ON p.id = c.period_id", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        });
        prop_assert_eq!(contributions, source.expected_contributions());

        // The sums, to the cent.
        let source_sum = |f: fn(&Source) -> i64| f(&source);
        prop_assert_eq!(
            sum(&conn, "SELECT sum(amount) FROM contributions"),
            source_sum(|s| s.contributions.iter().map(|c| c.amount.cents).sum())
        );
        prop_assert_eq!(
            sum(&conn, "SELECT sum(balance) FROM capital_accounts"),
            source_sum(|s| s.members.iter().map(|(_, a)| a.balance.cents).sum())
        );
        prop_assert_eq!(
            sum(&conn, "SELECT sum(tax_basis) FROM capital_accounts"),
            source_sum(|s| s.members.iter().map(|(_, a)| a.tax_basis.cents).sum())
        );
    }
}
