//! The allocation and the period close (issue 11, item 4), against both backends and as
//! properties of the rule.
//!
//! What it proves:
//! - a hand-worked example, every cent asserted: Habitat's own worked example (weighted 4050,
//!   3000, 2200 of a 12,000.00 pool) reached through labor, capital and property at the default
//!   weights, with a pending and a rejected contribution that must count for nothing; the one
//!   cent left over goes to the larger of two equal remainders by weighted patronage. And a full
//!   tie (equal remainders, equal patronage) decided by the email;
//! - on examples/techne, `allocate --period "Q4 2025" --pool 10000.00` previews without writing
//!   and commits seven `calculated` allocations summing to exactly 10000.00, recorded as a run
//!   whose `runs show` prints the calculation; `verify` still passes afterwards;
//! - a second identical commit changes nothing; a different pool is refused unless `--replace`,
//!   which keeps the old values in the change history; a distributed allocation is never replaced;
//! - a commit on an open period is refused; `period close` refuses pending contributions unless
//!   `--allow-pending`, sets `closed_at`, and `period close "Q1 2026"` then `allocate` explains that
//!   there are no approved contributions (exit 1) instead of dividing by zero;
//! - the store's allocation operations, called directly, read and write typed values alike on
//!   both backends (scores to the tenth decimal, a distributed row never overwritten);
//! - usage errors (an inexact pool, bad weights) exit 2 before any database is opened;
//! - properties (proptest): the amounts always sum to the pool, no one with zero weighted
//!   patronage gets anything, each amount is within one cent of the exact share, and the cents
//!   left over go to the largest remainders.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common;
use crate::harness::{Test, tests};
use habitat_migrate::allocate::{Weights, rule};
use habitat_migrate::domain::{AllocationStatus, ContributionType, PatronageScore, PeriodStatus};
use habitat_migrate::model::{AllocationRow, AllocationWrites, MemberPatronage};
use habitat_migrate::money::Money;
use habitat_migrate::store::{self, DbUrl};
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

/// The tests of this file (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    let mut all = postgres::tests();
    all.extend(sqlite::tests());
    all.extend(tests! {
        Nothing: [
            inexact_pool_and_weights_are_usage_errors,
            amounts_sum_to_the_pool_within_a_cent_of_the_exact_share,
        ],
    });
    all
}

/// The example bundle shipped with the crate.
const TECHNE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/techne");

// ---------------------------------------------------------------------------------------------
// A database under test
// ---------------------------------------------------------------------------------------------

/// A fresh database of one backend and the working directory the binary runs in.
struct Db {
    url: String,
    work: tempfile::TempDir,
    pg: Option<common::PgDb>,
    _sqlite: Option<tempfile::TempDir>,
}

impl Db {
    fn postgres() -> Db {
        let db = common::fresh_pg();
        Db {
            url: db.url.clone(),
            work: tempfile::tempdir().expect("work dir"),
            pg: Some(db),
            _sqlite: None,
        }
    }

    fn sqlite() -> Db {
        let (dir, url) = common::fresh_sqlite();
        Db {
            url,
            work: tempfile::tempdir().expect("work dir"),
            pg: None,
            _sqlite: Some(dir),
        }
    }

    fn is_pg(&self) -> bool {
        self.pg.is_some()
    }

    fn run(&self, args: &[&str]) -> Output {
        common::bin()
            .current_dir(self.work.path())
            .env("NO_COLOR", "1")
            .arg("--database-url")
            .arg(&self.url)
            .arg("--backup-dir")
            .arg(self.work.path().join("backups"))
            .arg("--log-dir")
            .arg(self.work.path().join("logs"))
            .args(args)
            .timeout(Duration::from_secs(300))
            .output()
            .expect("run habitat-migrate")
    }

    /// Runs the binary and asserts its exit code; returns standard output.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}:\n{}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `--format json` with exit 0, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.expect(0, &all)).expect("one JSON document")
    }

    fn migrate(&self, bundle: &Path) {
        self.expect(0, &["-q", "migrate", path(bundle)]);
    }

    /// Every value of every row as text; money as PostgreSQL shows `numeric` (`900.91`), which on
    /// SQLite is written so from the integer cents.
    fn query(&self, pg_sql: &str, sqlite_sql: &str) -> Vec<Vec<String>> {
        if let Some(db) = &self.pg {
            let mut client = common::pg_client(&db.url);
            client
                .simple_query(pg_sql)
                .unwrap_or_else(|e| panic!("{pg_sql}: {e}"))
                .into_iter()
                .filter_map(|m| match m {
                    ::postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_string())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        } else {
            let conn = common::sqlite_conn(&self.url);
            let mut stmt = conn
                .prepare(sqlite_sql)
                .unwrap_or_else(|e| panic!("{sqlite_sql}: {e}"));
            let width = stmt.column_count();
            let mut rows = stmt.query([]).expect("query");
            let mut out = Vec::new();
            while let Some(row) = rows.next().expect("row") {
                out.push(
                    (0..width)
                        .map(|i| match row.get_ref(i).expect("value") {
                            rusqlite::types::ValueRef::Null => "NULL".to_string(),
                            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            other => format!("{other:?}"),
                        })
                        .collect(),
                );
            }
            out
        }
    }

    fn scalar(&self, sql: &str) -> String {
        self.query(sql, sql)
            .first()
            .and_then(|r| r.first().cloned())
            .unwrap_or_else(|| panic!("no row from {sql}"))
    }

    fn exec(&self, pg_sql: &str, sqlite_sql: &str) {
        if let Some(db) = &self.pg {
            common::pg_client(&db.url)
                .batch_execute(pg_sql)
                .unwrap_or_else(|e| panic!("{pg_sql}: {e}"));
        } else {
            common::sqlite_conn(&self.url)
                .execute_batch(sqlite_sql)
                .unwrap_or_else(|e| panic!("{sqlite_sql}: {e}"));
        }
    }

    /// The period's allocations: (email, amount, patronage_score, status), by email.
    fn allocations(&self, period: &str) -> Vec<[String; 4]> {
        let from = format!(
            "FROM allocations a JOIN members m ON m.id = a.member_id
              JOIN allocation_periods p ON p.id = a.period_id
             WHERE p.name = '{period}' ORDER BY m.email"
        );
        self.query(
            &format!(
                "SELECT m.email, a.amount::text, a.patronage_score::text, a.status::text {from}"
            ),
            &format!("SELECT m.email, a.amount, a.patronage_score, a.status {from}"),
        )
        .into_iter()
        .map(|r| {
            let amount = if self.is_pg() {
                r[1].clone()
            } else {
                Money::from_cents(r[1].parse().expect("cents")).to_string()
            };
            [r[0].clone(), amount, r[2].clone(), r[3].clone()]
        })
        .collect()
    }

    /// The sum of the period's allocations, as money text.
    fn allocated(&self, period: &str) -> String {
        let sql = format!(
            "SELECT sum(a.amount) FROM allocations a JOIN allocation_periods p ON p.id = a.period_id
              WHERE p.name = '{period}'"
        );
        let sum = self.scalar(&sql);
        if self.is_pg() {
            sum
        } else {
            Money::from_cents(sum.parse().expect("cents")).to_string()
        }
    }

    /// `allocations` whole (ids, amounts, scores, times), to show a command changed nothing.
    fn allocation_rows(&self) -> Vec<Vec<String>> {
        self.query(
            "SELECT id::text, amount::text, patronage_score::text, status::text, created_at::text,
                    updated_at::text FROM allocations ORDER BY id",
            "SELECT id, amount, patronage_score, status, created_at, updated_at
               FROM allocations ORDER BY id",
        )
    }

    fn runs(&self) -> u64 {
        let table = if self.is_pg() {
            "habitat_migrate.runs"
        } else {
            "hm_runs"
        };
        self.scalar(&format!("SELECT count(*) FROM {table}"))
            .parse()
            .expect("a count")
    }

    /// The hand-worked bundle below, written into the work dir.
    fn hand_worked_bundle(&self) -> PathBuf {
        let dir = self.work.path().join("hand-worked");
        fs::create_dir_all(&dir).expect("bundle dir");
        for (name, text) in HAND_WORKED {
            fs::write(dir.join(name), text).expect("write bundle file");
        }
        dir
    }
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn row(email: &str, amount: &str, score: &str) -> [String; 4] {
    [email, amount, score, "calculated"].map(str::to_string)
}

/// A member's line of an allocation document: (amount, patronage_score, leftover_cent).
fn line(doc: &Value, email: &str) -> (String, String, bool) {
    let m = doc["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["member"] == email))
        .unwrap_or_else(|| panic!("{email} in {doc:#}"));
    (
        m["amount"].as_str().unwrap_or_default().to_string(),
        m["patronage_score"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        m["leftover_cent"] == true,
    )
}

// ---------------------------------------------------------------------------------------------
// The hand-worked example
// ---------------------------------------------------------------------------------------------

/// Four synthetic people, three periods.
///
/// **Q2 2025, pool 12000.00, default weights (labor 1.0, capital 0.5, property 0.5)** — Habitat's
/// worked example (spec/patronage-formula.md), where rounding percentages first allocates only
/// 11998.80:
///
/// | member | labor×1.0 | capital×0.5 | property×0.5 | weighted | pool × weighted ÷ 9250, in cents | amount   | score        |
/// |--------|-----------|-------------|--------------|----------|----------------------------------|----------|--------------|
/// | alice  | 3050.00   | 2000 → 1000 | –            | 4050.00  | 525405 + 3750/9250               | 5254.06  | 0.4378378378 |
/// | bob    | 2000.00   | –           | 2000 → 1000  | 3000.00  | 389189 + 1750/9250               | 3891.89  | 0.3243243243 |
/// | carol  | –         | 4400 → 2200 | –            | 2200.00  | 285405 + 3750/9250               | 2854.05  | 0.2378378378 |
/// | total  |           |             |              | 9250.00  | floors 1199999, 1 cent left      | 12000.00 |              |
///
/// The cent left goes to the largest remainder: alice and carol tie at 3750/9250 and alice has
/// the larger weighted patronage. Dan's pending 500.00 and alice's rejected 999.00 count for
/// nothing.
///
/// **Q3 2025, pool 100.00** — weighted alice 30.00 (labor), bob 30.00 (capital 60.00), carol
/// 20.00 (labor 10.00 + property 20.00), dan 10.00 (labor); total 90.00. Shares in cents: 3333 +
/// 30/90, 3333 + 30/90, 2222 + 20/90, 1111 + 10/90; floors 9999, one cent left. alice and bob tie
/// on remainder and on patronage: the email decides, alice. Amounts 33.34, 33.33, 22.22, 11.11;
/// scores 0.3333333333, 0.3333333333, 0.2222222222, 0.1111111111.
///
/// **Q4 2025** is open, with one approved contribution (alice, labor 100.00) and one pending
/// (bob).
const HAND_WORKED: [(&str, &str); 4] = [
    (
        "members.csv",
        "email,display_name,ens_name,role,status,joined_at
alice@example.org,Alice Example,,admin,active,2025-01-01
bob@example.org,Bob Example,,member,active,2025-01-01
carol@example.org,Carol Example,,member,active,2025-01-01
dan@example.org,Dan Example,,member,active,2025-01-01
",
    ),
    (
        "capital_accounts.csv",
        "member_email,balance,tax_basis,notes
alice@example.org,2000.00,2000.00,
bob@example.org,2060.00,2060.00,
carol@example.org,4420.00,4420.00,
dan@example.org,0.00,0.00,
",
    ),
    (
        "periods.csv",
        "name,description,start_date,end_date,status
Q2 2025,Habitat's worked example,2025-04-01,2025-06-30,closed
Q3 2025,A full tie,2025-07-01,2025-09-30,closed
Q4 2025,Still open,2025-10-01,2025-12-31,open
",
    ),
    (
        "contributions.csv",
        "member_email,period_name,contribution_type,amount,description,status,approved_at
alice@example.org,Q2 2025,labor,3050.00,Design,approved,2025-06-30
alice@example.org,Q2 2025,capital,2000.00,Buy-in,approved,2025-06-30
bob@example.org,Q2 2025,labor,2000.00,Build,approved,2025-06-30
bob@example.org,Q2 2025,property,2000.00,Tools,approved,2025-06-30
carol@example.org,Q2 2025,capital,4400.00,Loan,approved,2025-06-30
dan@example.org,Q2 2025,labor,500.00,Not approved yet,pending,
alice@example.org,Q2 2025,labor,999.00,Turned down,rejected,
alice@example.org,Q3 2025,labor,30.00,,approved,2025-09-30
bob@example.org,Q3 2025,capital,60.00,,approved,2025-09-30
carol@example.org,Q3 2025,labor,10.00,,approved,2025-09-30
carol@example.org,Q3 2025,property,20.00,,approved,2025-09-30
dan@example.org,Q3 2025,labor,10.00,,approved,2025-09-30
alice@example.org,Q4 2025,labor,100.00,,approved,2025-12-31
bob@example.org,Q4 2025,labor,50.00,,pending,
",
    ),
];

fn hand_worked_example_every_cent(db: Db) {
    db.migrate(&db.hand_worked_bundle());

    let preview = db.json(&["allocate", "--period", "Q2 2025", "--pool", "12000.00"]);
    assert_eq!(preview["format"], "habitat-migrate/allocation");
    assert_eq!(preview["committed"], false);
    assert_eq!(preview["total_weighted"], "9250.00");
    assert_eq!(preview["allocated"], "12000.00");
    assert_eq!(preview["sum_equals_pool"], true);
    assert_eq!(preview["leftover_cents"], 1);
    assert_eq!(
        preview["weights"],
        serde_json::json!({"labor": "1.0", "capital": "0.5", "property": "0.5"})
    );
    let alice = &preview["members"][0];
    assert_eq!(alice["weighted"]["labor"], "3050.00");
    assert_eq!(alice["weighted"]["capital"], "1000.00");
    assert_eq!(alice["approved"]["capital"], "2000.00");
    assert_eq!(alice["weighted_total"], "4050.00");
    assert_eq!(alice["exact_share"], "5254.0540540540…");
    assert_eq!(
        line(&preview, "alice@example.org"),
        ("5254.06".into(), "0.4378378378".into(), true)
    );
    assert_eq!(
        line(&preview, "bob@example.org"),
        ("3891.89".into(), "0.3243243243".into(), false)
    );
    assert_eq!(
        line(&preview, "carol@example.org"),
        ("2854.05".into(), "0.2378378378".into(), false)
    );
    assert_eq!(preview["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        preview["pending"]["members"],
        serde_json::json!(["dan@example.org"])
    );
    assert_eq!(db.allocation_rows().len(), 0, "a preview writes nothing");

    db.expect(
        0,
        &[
            "allocate", "--period", "Q2 2025", "--pool", "12000.00", "--commit",
        ],
    );
    assert_eq!(
        db.allocations("Q2 2025"),
        [
            row("alice@example.org", "5254.06", "0.4378378378"),
            row("bob@example.org", "3891.89", "0.3243243243"),
            row("carol@example.org", "2854.05", "0.2378378378"),
        ]
    );
    assert_eq!(db.allocated("Q2 2025"), "12000.00");

    let tie = db.json(&[
        "allocate", "--period", "Q3 2025", "--pool", "100.00", "--commit",
    ]);
    assert_eq!(tie["committed"], true);
    assert_eq!(
        db.allocations("Q3 2025"),
        [
            row("alice@example.org", "33.34", "0.3333333333"),
            row("bob@example.org", "33.33", "0.3333333333"),
            row("carol@example.org", "22.22", "0.2222222222"),
            row("dan@example.org", "11.11", "0.1111111111"),
        ]
    );
    assert_eq!(db.allocated("Q3 2025"), "100.00");
    // Calculated allocations are not in the capital accounts yet: the balances still reconcile.
    db.expect(0, &["verify"]);
}

/// Weights are inputs: with capital weighted 0, a member whose only approved contributions are
/// capital gets nothing and is named; the rest share the whole pool.
fn zero_weight_members_get_nothing(db: Db) {
    db.migrate(&db.hand_worked_bundle());
    let doc = db.json(&[
        "allocate",
        "--period",
        "Q2 2025",
        "--pool",
        "12000.00",
        "--weights",
        "capital=0",
    ]);
    assert_eq!(
        doc["zero_patronage"],
        serde_json::json!(["carol@example.org"])
    );
    // alice 3050.00 (labor), bob 2000.00 + 1000.00: 3050/6050 and 3000/6050 of 12000.00.
    assert_eq!(line(&doc, "alice@example.org").0, "6049.59");
    assert_eq!(line(&doc, "bob@example.org").0, "5950.41");
    assert_eq!(doc["allocated"], "12000.00");
    assert_eq!(doc["weights"]["capital"], "0.0");
}

// ---------------------------------------------------------------------------------------------
// examples/techne
// ---------------------------------------------------------------------------------------------

/// The "done when": Q4 2025 of the example is closed, with approved labor, capital and property
/// contributions and one pending.
fn techne_q4_2025_previews_and_commits_exactly(db: Db) {
    db.migrate(Path::new(TECHNE));
    let runs = db.runs();
    let preview = db.expect(
        0,
        &["allocate", "--period", "Q4 2025", "--pool", "10000.00"],
    );
    for text in [
        "Allocation of Q4 2025 (closed): pool 10000.00, weights labor=1.0, capital=0.5, property=0.5",
        "member                       labor×1.0  capital×0.5  property×0.5  weighted  patronage_score    amount",
        "amara.diallo@example.org        850.50         0.00          0.00    850.50     0.0900905672    900.91",
        "tom.lindqvist@example.org         0.00         0.00       1500.00   1500.00     0.1588898893   1588.90",
        "total                                                               9440.50                   10000.00",
        "✓ Allocations sum to the pool: 10000.00 = 10000.00",
        "! 1 contribution still pending approval is excluded from this period's allocation: sofia.rossi@example.org",
        "Preview only: nothing was written",
    ] {
        assert!(preview.contains(text), "{text:?} in:\n{preview}");
    }
    assert_eq!(db.allocation_rows().len(), 0, "a preview writes nothing");
    assert_eq!(db.runs(), runs, "a preview records no run");

    let committed = db.expect(
        0,
        &[
            "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
        ],
    );
    assert!(
        committed.contains("✓ Allocations committed for Q4 2025 in one transaction (status calculated): 7 inserted, 0 updated, 0 unchanged, 0 deleted"),
        "{committed}"
    );
    // pool × weighted ÷ 9440.50: the floors leave 4 cents, which go to the remainders
    // 860450 (priya), 839550 (lucia, tom: same weighted, so by email) and 535500 (amara), of 944050.
    assert_eq!(
        db.allocations("Q4 2025"),
        [
            row("amara.diallo@example.org", "900.91", "0.0900905672"),
            row("daniel.reyes@example.org", "2648.16", "0.2648164822"),
            row("jonas.weber@example.org", "677.93", "0.0677930194"),
            row("lucia.fernandez@example.org", "1588.90", "0.1588898893"),
            row("maya.okonkwo@example.org", "1324.08", "0.1324082411"),
            row("priya.raman@example.org", "1271.12", "0.1271119114"),
            row("tom.lindqvist@example.org", "1588.90", "0.1588898893"),
        ]
    );
    assert_eq!(db.allocated("Q4 2025"), "10000.00");
    if !db.is_pg() {
        assert_eq!(
            db.scalar("SELECT count(*) FROM allocations WHERE typeof(amount) <> 'integer'"),
            "0",
            "SQLite money is INTEGER cents"
        );
    }

    // The run keeps its inputs and its calculation; `runs show` prints it.
    let run = (runs + 1).to_string();
    let shown = db.expect(0, &["runs", "show", &run]);
    for text in [
        "allocate --period \"Q4 2025\" --pool 10000.00 --weights labor=1.0,capital=0.5,property=0.5 --commit — succeeded",
        "counts    allocations 7/0/0",
        "priya.raman@example.org        1200.00         0.00          0.00   1200.00     0.1271119114   1271.12",
        "✓ Allocations sum to the pool: 10000.00 = 10000.00",
    ] {
        assert!(shown.contains(text), "{text:?} in:\n{shown}");
    }
    let details = db.json(&["runs", "show", &run]);
    let details = &details["run"]["details"];
    assert_eq!(details["pool"], "10000.00");
    assert_eq!(details["weights"]["labor"], "1.0");
    assert_eq!(details["run_id"], runs + 1);
    assert_eq!(details["members"].as_array().map(Vec::len), Some(7));

    // Calculated allocations are not in the balances yet, so the reconciliation still holds.
    let verified = db.expect(0, &["verify"]);
    assert!(
        verified.contains("✓ All verification checks passed"),
        "{verified}"
    );
}

fn second_identical_commit_changes_nothing(db: Db) {
    db.migrate(Path::new(TECHNE));
    let commit = [
        "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
    ];
    db.expect(0, &commit);
    let before = db.allocation_rows();
    let again = db.json(&commit);
    assert_eq!(again["counts"]["unchanged"], 7);
    assert_eq!(again["counts"]["inserted"], 0);
    assert_eq!(db.allocation_rows(), before, "not even updated_at moves");
    let text = db.expect(0, &commit);
    assert!(
        text.contains("✓ Nothing changed: Q4 2025 already holds exactly these 7 allocations"),
        "{text}"
    );
    // The preview says so too.
    let preview = db.expect(
        0,
        &["allocate", "--period", "Q4 2025", "--pool", "10000.00"],
    );
    assert!(
        preview.contains("✓ These are the 7 allocations already committed for Q4 2025"),
        "{preview}"
    );
}

fn different_pool_is_refused_unless_replace(db: Db) {
    db.migrate(Path::new(TECHNE));
    db.expect(
        0,
        &[
            "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
        ],
    );
    let before = db.allocation_rows();
    let runs = db.runs();
    let out = db.run(&[
        "allocate", "--period", "Q4 2025", "--pool", "12000.00", "--commit",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Q4 2025 already has 7 allocation(s), totalling 10000.00, that differ from this calculation")
            && said.contains("--replace"),
        "{said}"
    );
    assert_eq!(db.allocation_rows(), before, "nothing written");
    assert_eq!(db.runs(), runs + 1, "the refused attempt is on record");
    // Different weights: the same refusal.
    let out = db.run(&[
        "allocate",
        "--period",
        "Q4 2025",
        "--pool",
        "10000.00",
        "--weights",
        "labor=2",
        "--commit",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));

    let replaced = db.json(&[
        "allocate",
        "--period",
        "Q4 2025",
        "--pool",
        "12000.00",
        "--commit",
        "--replace",
    ]);
    assert_eq!(replaced["counts"]["updated"], 7);
    assert_eq!(db.allocated("Q4 2025"), "12000.00");
    let ids = |rows: &[Vec<String>]| rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&db.allocation_rows()),
        ids(&before),
        "rows updated in place"
    );
    let run = replaced["run_id"].to_string();
    let shown = db.expect(0, &["runs", "show", &run]);
    assert!(
        shown.contains("allocations.amount of priya.raman@example.org Q4 2025: 1271.12 → 1525.34"),
        "{shown}"
    );
    // Scores do not depend on the pool: no change recorded for them.
    assert!(!shown.contains("allocations.patronage_score"), "{shown}");
}

fn distributed_allocations_are_never_replaced(db: Db) {
    db.migrate(Path::new(TECHNE));
    db.expect(
        0,
        &[
            "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
        ],
    );
    let one = "(SELECT id FROM members WHERE email = 'maya.okonkwo@example.org')";
    db.exec(
        &format!(
            "UPDATE allocations SET status = 'distributed', distributed_at = now() WHERE member_id = {one}"
        ),
        &format!(
            "UPDATE allocations SET status = 'distributed', distributed_at = '2026-04-01T00:00:00Z'
              WHERE member_id = {one}"
        ),
    );
    let before = db.allocation_rows();
    let out = db.run(&[
        "allocate",
        "--period",
        "Q4 2025",
        "--pool",
        "12000.00",
        "--commit",
        "--replace",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "Q4 2025 has 1 distributed allocation(s) (of 7): they are in the members' capital accounts and are never replaced"
        ),
        "{}",
        describe(&out)
    );
    assert_eq!(db.allocation_rows(), before);
    // The same calculation again still changes nothing (and leaves the distributed row alone).
    db.expect(
        0,
        &[
            "allocate", "--period", "Q4 2025", "--pool", "10000.00", "--commit",
        ],
    );
    assert_eq!(db.allocation_rows(), before);
}

// ---------------------------------------------------------------------------------------------
// The period close
// ---------------------------------------------------------------------------------------------

fn open_period_is_closed_before_committing(db: Db) {
    db.migrate(&db.hand_worked_bundle());
    let draft = db.expect(0, &["allocate", "--period", "Q4 2025", "--pool", "50.00"]);
    assert!(
        draft.contains("! Draft: Q4 2025 is open; close it (`habitat-migrate period close \"Q4 2025\"`) before --commit"),
        "{draft}"
    );
    let out = db.run(&[
        "allocate", "--period", "Q4 2025", "--pool", "50.00", "--commit",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Q4 2025 is open: allocations are committed only on a closed period"),
        "{}",
        describe(&out)
    );
    assert_eq!(db.allocation_rows().len(), 0);

    let out = db.run(&["period", "close", "Q4 2025"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Q4 2025 has 1 contribution(s) still pending approval (bob@example.org)")
            && said.contains("--allow-pending"),
        "{said}"
    );
    let status = "SELECT status || ' ' || coalesce(closed_at::text, '-') FROM allocation_periods WHERE name = 'Q4 2025'";
    let sqlite_status = "SELECT status || ' ' || coalesce(closed_at, '-') FROM allocation_periods WHERE name = 'Q4 2025'";
    assert_eq!(db.query(status, sqlite_status)[0][0], "open -");

    let closed = db.json(&["period", "close", "Q4 2025", "--allow-pending"]);
    assert_eq!(closed["format"], "habitat-migrate/period-close");
    assert_eq!(closed["already_closed"], false);
    let at = closed["closed_at"].as_str().unwrap_or_default().to_string();
    let stored = db.query(status, sqlite_status)[0][0].clone();
    assert!(stored.starts_with("closed 20"), "{stored}");
    assert_eq!(
        at.parse::<jiff::Timestamp>().ok(),
        stored
            .trim_start_matches("closed ")
            .replace(' ', "T")
            .replace("+00", "Z")
            .parse::<jiff::Timestamp>()
            .ok(),
        "closed_at as reported is what is stored"
    );
    let again = db.expect(0, &["period", "close", "Q4 2025"]);
    assert!(
        again.contains("✓ Q4 2025 is already closed (since"),
        "{again}"
    );
    assert_eq!(
        db.query(status, sqlite_status)[0][0],
        stored,
        "nothing changed"
    );

    db.expect(
        0,
        &[
            "allocate", "--period", "Q4 2025", "--pool", "50.00", "--commit",
        ],
    );
    assert_eq!(
        db.allocations("Q4 2025"),
        [row("alice@example.org", "50.00", "1.0000000000")]
    );
}

/// The "done when": closing Q1 2026 of the example (no contributions) and allocating on it says
/// why there is nothing to allocate, exit 1, and writes nothing.
fn closed_period_without_approved_contributions_is_explained(db: Db) {
    db.migrate(Path::new(TECHNE));
    let closed = db.expect(0, &["period", "close", "Q1 2026"]);
    assert!(
        closed.contains("✓ Closed Q1 2026 at ") && closed.contains("(0 approved contributions)"),
        "{closed}"
    );
    for commit in [false, true] {
        let mut args = vec!["allocate", "--period", "Q1 2026", "--pool", "10000.00"];
        if commit {
            args.push("--commit");
        }
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(
                "Q1 2026 has no approved contributions, so there is no patronage to divide the pool by: nothing to allocate"
            ),
            "{said}"
        );
        assert!(!said.contains("panicked"), "{said}");
    }
    let mut args = vec!["--format", "json"];
    args.extend(["allocate", "--period", "Q1 2026", "--pool", "10000.00"]);
    let out = db.run(&args);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["format"], "habitat-migrate/error");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(db.allocation_rows().len(), 0);

    let out = db.run(&["allocate", "--period", "Q3 2026", "--pool", "1.00"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no allocation period named \"Q3 2026\" (periods: Q4 2025, Q1 2026)"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// The store's allocation operations, called directly
// ---------------------------------------------------------------------------------------------

fn score(units: u64) -> PatronageScore {
    PatronageScore::from_units(units).expect("a score")
}

/// What the allocation reads and writes through `Store`, typed, on both backends: a period's
/// standing, its approved contributions summed per member and type, allocations inserted,
/// updated and deleted with scores to the tenth decimal, a write refused on a distributed row,
/// and the close to the microsecond.
fn store_reads_and_writes_allocations(db: Db) {
    db.migrate(&db.hand_worked_bundle());
    let url = DbUrl::parse(&db.url).expect("a database URL");
    let mut store = store::open(&url, false).expect("open the store");

    let standing = store
        .period_standing("Q2 2025")
        .expect("read")
        .expect("Q2 2025");
    assert_eq!(standing.period.status, PeriodStatus::Closed);
    assert_eq!((standing.approved, standing.pending), (5, 1));
    assert_eq!(standing.pending_members, ["dan@example.org"]);
    assert_eq!(standing.closed_at, None, "an import sets no closed_at");
    assert!(store.period_standing("Q2 2024").expect("read").is_none());
    let period = standing.period.id;

    let sums = store.approved_patronage(period).expect("read");
    let cents = |m: &MemberPatronage| [m.labor, m.capital, m.property].map(Money::cents);
    assert_eq!(
        sums.iter()
            .map(|m| (m.email.as_str(), cents(m)))
            .collect::<Vec<_>>(),
        [
            ("alice@example.org", [305_000, 200_000, 0]),
            ("bob@example.org", [200_000, 0, 200_000]),
            ("carol@example.org", [0, 440_000, 0]),
        ],
        "approved only: dan's pending and alice's rejected rows are not summed"
    );
    assert_eq!(sums[0].display_name.as_deref(), Some("Alice Example"));

    let (alice, bob) = (sums[0].member_id, sums[1].member_id);
    let rows = [
        AllocationRow {
            id: Uuid::now_v7(),
            member_id: alice,
            amount: Money::from_cents(999_999_999_999_999),
            patronage_score: score(1_234_567_891),
        },
        AllocationRow {
            id: Uuid::now_v7(),
            member_id: bob,
            amount: Money::from_cents(1),
            patronage_score: score(PatronageScore::ONE_UNITS),
        },
    ];
    store.begin_write().expect("begin");
    let insert = AllocationWrites {
        insert: rows.to_vec(),
        ..AllocationWrites::default()
    };
    store.write_allocations(period, &insert).expect("insert");
    store.commit().expect("commit");
    let stored = store.allocations(period).expect("read");
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (
            stored[0].id,
            &stored[0].email,
            stored[0].amount,
            stored[0].status
        ),
        (
            rows[0].id,
            &"alice@example.org".to_string(),
            rows[0].amount,
            AllocationStatus::Calculated
        )
    );
    assert_eq!(stored[0].patronage_score.to_string(), "0.1234567891");
    assert_eq!(stored[1].patronage_score.to_string(), "1.0000000000");

    store.begin_write().expect("begin");
    let change = AllocationWrites {
        update: vec![AllocationRow {
            amount: Money::from_cents(250),
            patronage_score: score(1),
            ..rows[0]
        }],
        delete: vec![rows[1].id],
        ..AllocationWrites::default()
    };
    store
        .write_allocations(period, &change)
        .expect("update and delete");
    store.commit().expect("commit");
    let stored = store.allocations(period).expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].amount, Money::from_cents(250));
    assert_eq!(stored[0].patronage_score.to_string(), "0.0000000001");

    // A row distributed behind the tool's back is never overwritten.
    db.exec(
        "UPDATE allocations SET status = 'distributed', distributed_at = now()",
        "UPDATE allocations SET status = 'distributed', distributed_at = '2026-01-01T00:00:00Z'",
    );
    store.begin_write().expect("begin");
    let refused = store.write_allocations(
        period,
        &AllocationWrites {
            update: vec![AllocationRow {
                amount: Money::from_cents(1),
                ..rows[0]
            }],
            ..AllocationWrites::default()
        },
    );
    assert!(refused.is_err(), "{refused:?}");
    store.rollback().expect("rollback");
    assert_eq!(
        store.allocations(period).expect("read")[0].amount,
        Money::from_cents(250)
    );

    let open = store
        .period_standing("Q4 2025")
        .expect("read")
        .expect("Q4 2025");
    let at: jiff::Timestamp = "2026-01-02T03:04:05.123456Z".parse().expect("an instant");
    store.begin_write().expect("begin");
    store.close_period(open.period.id, at).expect("close");
    store.commit().expect("commit");
    let closed = store
        .period_standing("Q4 2025")
        .expect("read")
        .expect("Q4 2025");
    assert_eq!(closed.period.status, PeriodStatus::Closed);
    assert_eq!(closed.closed_at, Some(at));
}

/// `-q` prints nothing but failures, here as in every command.
fn quiet_prints_nothing_but_failures(db: Db) {
    db.migrate(&db.hand_worked_bundle());
    for args in [
        vec!["allocate", "--period", "Q2 2025", "--pool", "1.00"],
        vec![
            "allocate", "--period", "Q2 2025", "--pool", "1.00", "--commit",
        ],
        vec!["period", "close", "Q4 2025", "--allow-pending"],
        vec!["period", "close", "Q4 2025"],
    ] {
        let mut all = vec!["-q"];
        all.extend(&args);
        let out = db.run(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "-q {args:?} printed:\n{}",
            describe(&out)
        );
    }
    let out = db.run(&[
        "-q", "allocate", "--period", "Q2 2025", "--pool", "2.00", "--commit",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already has 3 allocation(s)"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Without a database
// ---------------------------------------------------------------------------------------------

fn inexact_pool_and_weights_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("none.db").display());
    for (args, says) in [
        (vec!["--pool", "1e4"], "exponent notation is not allowed"),
        (vec!["--pool", "10000.005"], "more than two decimals"),
        (
            vec!["--pool", "10,000.00"],
            "thousands separators are not allowed",
        ),
        (vec!["--pool", "0.00"], "the pool must be more than 0.00"),
        (vec!["--pool", "-5"], "the pool must be more than 0.00"),
        (
            vec!["--pool", "1", "--weights", "labor=0.1234567"],
            "more than 6 decimals",
        ),
        (
            vec!["--pool", "1", "--weights", "labour=1"],
            "unknown contribution type \"labour\"",
        ),
        (
            vec!["--pool", "1", "--weights", "labor=1.0e0"],
            "not a number",
        ),
        (vec!["--pool", "1", "--weights", "labor=-1"], "negative"),
        (
            vec!["--pool", "1", "--weights", "labor=0,capital=0,property=0"],
            "every weight is 0",
        ),
        (vec!["--pool", "1", "--replace"], "--commit"),
    ] {
        let out = common::bin()
            .current_dir(dir.path())
            .args(["--database-url", &url, "allocate", "--period", "Q4 2025"])
            .args(&args)
            .output()
            .expect("run habitat-migrate");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?} says {says:?}: {}",
            describe(&out)
        );
    }
    assert!(
        !dir.path().join("none.db").exists(),
        "a usage error opens no database"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties of the rule
// ---------------------------------------------------------------------------------------------

/// Members with approved amounts per type (cents up to 10 million dollars each, some zero).
fn members() -> impl Strategy<Value = Vec<MemberPatronage>> {
    let amount = prop_oneof![Just(0i64), 1i64..=100_000, 1i64..=1_000_000_000];
    proptest::collection::vec((amount.clone(), amount.clone(), amount), 1..40).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (labor, capital, property))| MemberPatronage {
                member_id: Uuid::from_u128(i as u128 + 1),
                email: format!("m{i:03}@example.org"),
                display_name: None,
                labor: Money::from_cents(labor),
                capital: Money::from_cents(capital),
                property: Money::from_cents(property),
            })
            .collect()
    })
}

/// Weights of up to 6 decimals, 0 allowed, at least one above 0.
fn weights() -> impl Strategy<Value = Weights> {
    let weight = prop_oneof![
        Just("0".to_string()),
        Just("1.0".to_string()),
        Just("0.5".to_string()),
        (0u32..=1000, 0u32..1_000_000).prop_map(|(w, f)| format!("{w}.{f:06}")),
    ];
    (weight.clone(), weight.clone(), weight)
        .prop_filter_map("at least one weight above 0", |(l, c, p)| {
            Weights::parse(&format!("labor={l},capital={c},property={p}")).ok()
        })
}

proptest! {
    fn amounts_sum_to_the_pool_within_a_cent_of_the_exact_share(
        members in members(),
        weights in weights(),
        pool in prop_oneof![1i64..=100, 1i64..=999_999_999_999_999],
    ) {
        let pool = Money::from_cents(pool);
        match rule::allocate(pool, &weights, &members) {
            Err(rule::RuleError::NoPatronage) => {
                // Only when no member's contributions weigh anything.
                for m in &members {
                    for t in ContributionType::ALL {
                        prop_assert!(m.amount(*t) == Money::ZERO || weights.get(*t).is_zero());
                    }
                }
            }
            Err(e) => prop_assert!(false, "{e}"),
            Ok(c) => {
                prop_assert_eq!(c.allocated(), Some(pool), "the amounts sum to the pool");
                let total = c.total_weighted.units;
                let mut weighted_sum = 0i128;
                for s in &c.shares {
                    prop_assert!(s.weighted_total.units > 0, "{} has patronage", s.email);
                    weighted_sum += s.weighted_total.units;
                    // |amount − pool × weighted ÷ total| < 1 cent, in integers.
                    let exact = i128::from(pool.cents()) * s.weighted_total.units;
                    let given = i128::from(s.amount.cents()) * total;
                    prop_assert!((given - exact).abs() < total, "{} within a cent", s.email);
                    prop_assert!(s.amount.cents() >= 0);
                }
                prop_assert_eq!(weighted_sum, total);
                // Whoever has no weighted patronage is not allocated anything.
                for m in &members {
                    let weighs = ContributionType::ALL
                        .iter()
                        .any(|t| m.amount(*t) != Money::ZERO && !weights.get(*t).is_zero());
                    prop_assert_eq!(
                        c.shares.iter().any(|s| s.email == m.email),
                        weighs,
                        "{}", m.email
                    );
                    prop_assert_eq!(c.zero_patronage.contains(&m.email), !weighs);
                }
                // The leftover cents went to the largest remainders.
                let given: Vec<&rule::Share> = c.shares.iter().filter(|s| s.leftover_cent).collect();
                prop_assert_eq!(given.len() as u64, c.leftover_cents);
                prop_assert!(c.leftover_cents < c.shares.len() as u64);
                for s in c.shares.iter().filter(|s| !s.leftover_cent) {
                    for g in &given {
                        prop_assert!(
                            (g.remainder, g.weighted_total.units, std::cmp::Reverse(&g.email))
                                >= (s.remainder, s.weighted_total.units, std::cmp::Reverse(&s.email))
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every behaviour against both backends
// ---------------------------------------------------------------------------------------------

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use crate::harness::{Test, tests};

            pub(super) fn tests() -> Vec<Test> {
                tests!(Postgres: [$($name),*])
            }

            $(
                fn $name() {
                    super::$name(super::Db::postgres());
                }
            )*
        }
        mod sqlite {
            use crate::harness::{Test, tests};

            pub(super) fn tests() -> Vec<Test> {
                tests!(Nothing: [$($name),*])
            }

            $(
                fn $name() {
                    super::$name(super::Db::sqlite());
                }
            )*
        }
    };
}

on_both!(
    store_reads_and_writes_allocations,
    hand_worked_example_every_cent,
    zero_weight_members_get_nothing,
    techne_q4_2025_previews_and_commits_exactly,
    second_identical_commit_changes_nothing,
    different_pool_is_refused_unless_replace,
    distributed_allocations_are_never_replaced,
    open_period_is_closed_before_committing,
    closed_period_without_approved_contributions_is_explained,
    quiet_prints_nothing_but_failures,
);
