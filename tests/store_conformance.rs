//! The store's conformance suite, at the library level: every behaviour of `habitat_migrate::store`
//! called directly, the same function against a fresh PostgreSQL database and a fresh SQLite file.
//!
//! What it proves, on both backends alike:
//! - members, periods and capital accounts go in and come back as the same typed values (roles,
//!   statuses, money to the cent, instants to the microsecond, text in any script);
//! - the change history gives back exactly the text it was given — an `approved_at` with
//!   microseconds included — and so does a contribution update's history, computed by the store;
//! - the fingerprint PostgreSQL computes in SQL for the read-back equals the Rust one, byte for
//!   byte, on the awkward values (a `|` and non-ASCII in a description, no description, microseconds);
//! - matching: re-staging what was imported matches every row unchanged; identical rows pair by
//!   rank (two imported, three in the file: one new); a changed status is a change; an earlier import
//!   the file no longer lists is missing, with the row that probably replaced it; a (member, period)
//!   the file does not cover is never looked at;
//! - applying a staged plan inserts, updates and deletes exactly what it said, and records them;
//! - member totals sum approved capital and property contributions and allocations, exactly;
//! - opening balances are stored and replaced; the checks find planted problems.

use crate::common;
use crate::harness::Test;
use habitat_migrate::domain::{
    ContributionStatus, ContributionType, MemberStatus, PeriodStatus, Role,
};
use habitat_migrate::model::{
    Account, Change, ContributionValues, DigestSum, Member, Opening, Period, RunRecord,
    StagedContribution,
};
use habitat_migrate::money::Money;
use habitat_migrate::store::{self, DbUrl, ReadBackScope, Store};
use jiff::Timestamp;
use uuid::Uuid;

/// The tests of this file (see `harness.rs`): `postgres::…` and `sqlite::…`, from [`on_both!`].
pub(crate) fn tests() -> Vec<Test> {
    let mut all = postgres::tests();
    all.extend(sqlite::tests());
    all
}

/// A fresh database of one backend, opened through the library, schema created, in a write
/// transaction; and what keeps it alive.
struct Db {
    pub store: Box<dyn Store>,
    pub url: String,
    _keep: Keep,
}

enum Keep {
    Pg(#[allow(dead_code)] common::PgDb),
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
}

impl Db {
    fn postgres() -> Db {
        let db = common::fresh_pg();
        let url = db.url.clone();
        Db::open(url, Keep::Pg(db))
    }

    fn sqlite() -> Db {
        let (dir, url) = common::fresh_sqlite();
        Db::open(url, Keep::Sqlite(dir))
    }

    fn open(url: String, keep: Keep) -> Db {
        let parsed = DbUrl::parse(&url).expect("a database URL");
        let mut store = store::open(&parsed, true).expect("open the store");
        store.init().expect("db init");
        store.begin_write().expect("begin");
        Db {
            store,
            url,
            _keep: keep,
        }
    }

    fn is_pg(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("an instant")
}

fn member(email: &str, role: Role) -> Member {
    Member {
        id: Uuid::now_v7(),
        email: email.to_string(),
        display_name: Some("Łucja Ñúñez-O'Brien 山田".into()),
        ens_name: None,
        role,
        status: MemberStatus::Active,
        joined_at: at("2025-01-01T00:00:00Z"),
    }
}

fn period(name: &str) -> Period {
    Period {
        id: Uuid::now_v7(),
        name: name.to_string(),
        description: Some("a | period".into()),
        start_date: at("2025-10-01T00:00:00Z"),
        end_date: at("2025-12-31T00:00:00Z"),
        status: PeriodStatus::Closed,
    }
}

fn values(m: &Member, p: &Period, amount: i64, description: Option<&str>) -> ContributionValues {
    ContributionValues {
        member_id: m.id,
        period_id: p.id,
        contribution_type: ContributionType::Capital,
        amount: Money::from_cents(amount),
        description: description.map(str::to_string),
        status: ContributionStatus::Approved,
        approved_at: Some(at("2025-12-31T23:59:59.123456Z")),
        approved_by: None,
    }
}

fn staged(line: u64, v: ContributionValues) -> StagedContribution {
    StagedContribution::new(line, v)
}

/// Two members, a period, capital accounts; returned for the test to build on.
fn seed(db: &mut Db) -> (Member, Member, Period, Period) {
    let (ada, grace) = (
        member("ada@example.org", Role::Admin),
        member("grace@example.org", Role::Member),
    );
    let (q4, q1) = (period("Q4 2025"), period("Q1 2026"));
    db.store
        .insert_periods(&[q4.clone(), q1.clone()])
        .expect("periods");
    db.store
        .insert_members(&mut vec![ada.clone(), grace.clone()].into_iter())
        .expect("members");
    let accounts = vec![
        Account {
            id: Uuid::now_v7(),
            member_id: ada.id,
            balance: Money::from_cents(1_000_000),
            tax_basis: Money::from_cents(900_001),
            notes: Some("buy-in | property".into()),
        },
        Account {
            id: Uuid::now_v7(),
            member_id: grace.id,
            balance: Money::from_cents(1),
            tax_basis: Money::from_cents(1),
            notes: None,
        },
    ];
    db.store
        .insert_accounts(&mut accounts.into_iter())
        .expect("accounts");
    (ada, grace, q4, q1)
}

fn run(db: &mut Db) -> i64 {
    let run = RunRecord::start("test", &db.url);
    db.store.insert_run(&run).expect("a run")
}

fn typed_rows_round_trip(mut db: Db) {
    let (ada, grace, q4, q1) = seed(&mut db);
    let mut members = Vec::new();
    db.store
        .for_each_member(&mut |m| {
            members.push(m);
            Ok(())
        })
        .expect("members");
    members.sort_by(|a, b| a.email.cmp(&b.email));
    assert_eq!(members, [ada.clone(), grace.clone()]);
    let mut periods = db.store.periods().expect("periods");
    periods.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(periods, [q1, q4]);
    let by_id = db.store.members_by_id(&[grace.id]).expect("by id");
    assert_eq!(by_id, [grace]);
    let mut accounts = Vec::new();
    db.store
        .for_each_account(&mut |a| {
            accounts.push(a);
            Ok(())
        })
        .expect("accounts");
    let ada_account = accounts
        .iter()
        .find(|a| a.member_id == ada.id)
        .expect("ada's account");
    assert_eq!(ada_account.tax_basis, Money::from_cents(900_001));
    assert_eq!(ada_account.notes.as_deref(), Some("buy-in | property"));

    let mut updated = ada.clone();
    updated.role = Role::Steward;
    updated.display_name = None;
    db.store.update_members(&[updated.clone()]).expect("update");
    assert_eq!(db.store.members_by_id(&[ada.id]).expect("by id"), [updated]);
}

fn change_history_round_trips_exactly(mut db: Db) {
    seed(&mut db);
    let run_id = run(&mut db);
    let changes = vec![Change {
        table: "contributions",
        row_id: Uuid::from_u128(7),
        row_key: "ada@example.org Q4 2025 capital 10.00".into(),
        column: "approved_at",
        before: None,
        after: Some("2025-12-31T23:59:59.123456Z".into()),
    }];
    db.store.record_changes(run_id, &changes).expect("record");
    let (_, recorded) = db.store.run(run_id).expect("read").expect("the run");
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].after.as_deref(),
        Some("2025-12-31T23:59:59.123456Z")
    );
    assert_eq!(recorded[0].before, None);
    assert_eq!(recorded[0].row_key, "ada@example.org Q4 2025 capital 10.00");
}

fn update_history_keeps_microseconds(mut db: Db) {
    let (ada, _, q4, _) = seed(&mut db);
    let run_id = run(&mut db);
    let mut v = values(&ada, &q4, 1000, Some("funding"));
    v.status = ContributionStatus::Pending;
    v.approved_at = None;
    db.store
        .insert_new_contributions(run_id, &mut std::iter::once(staged(2, v.clone())))
        .expect("insert");
    // The file now approves it, at an instant with microseconds.
    let mut approved = v.clone();
    approved.status = ContributionStatus::Approved;
    approved.approved_at = Some(at("2026-01-15T10:20:30.000042Z"));
    let counts = db
        .store
        .stage_contributions(&mut std::iter::once(staged(2, approved)))
        .expect("stage");
    assert_eq!((counts.matched, counts.changed, counts.new), (1, 1, 0));
    let applied = db
        .store
        .apply_staged_contributions(run_id, counts, false)
        .expect("apply");
    assert_eq!(applied.updated, 1);
    // The update's history is recorded as the update is applied: status and approval date.
    assert_eq!(applied.changes_recorded, 2);
    assert!(applied.changes.is_empty(), "{:?}", applied.changes);
    let (_, recorded) = db.store.run(run_id).expect("read").expect("the run");
    let at_change = recorded
        .iter()
        .find(|c| c.column == "approved_at")
        .unwrap_or_else(|| panic!("an approved_at change in {recorded:?}"));
    assert_eq!(at_change.before, None);
    assert_eq!(
        at_change.after.as_deref(),
        Some("2026-01-15T10:20:30.000042Z")
    );
}

fn fingerprints_agree_with_the_database(mut db: Db) {
    let (ada, grace, q4, q1) = seed(&mut db);
    let run_id = run(&mut db);
    let rows = vec![
        values(&ada, &q4, 1, Some("a|b")),
        values(&ada, &q4, 999_999_999_999_999, Some("Müller’s 山 workshop")),
        values(&grace, &q1, 5050, None),
        ContributionValues {
            status: ContributionStatus::Pending,
            approved_at: None,
            contribution_type: ContributionType::Labor,
            ..values(&grace, &q4, 12, Some(""))
        },
    ];
    let mut source = DigestSum::default();
    for v in &rows {
        source.add(v.source_digest());
    }
    let mut staged_rows = rows
        .iter()
        .enumerate()
        .map(|(i, v)| staged(i as u64 + 2, v.clone()));
    db.store
        .insert_new_contributions(run_id, &mut staged_rows)
        .expect("insert");
    assert_eq!(
        db.store
            .contributions_digest(ReadBackScope::Run(run_id))
            .expect("digest"),
        source,
        "the database's fingerprint of the rows equals the source's"
    );
    assert_eq!(
        db.store
            .contributions_digest(ReadBackScope::All)
            .expect("digest"),
        source
    );
}

fn matching_pairs_identical_rows_by_rank(mut db: Db) {
    let (ada, grace, q4, q1) = seed(&mut db);
    let run_id = run(&mut db);
    let dues = values(&ada, &q4, 10_000, Some("monthly dues"));
    let other_quarter = values(&grace, &q1, 500, Some("Q1 only"));
    db.store
        .insert_new_contributions(
            run_id,
            &mut vec![
                staged(2, dues.clone()),
                staged(3, dues.clone()),
                staged(4, other_quarter),
            ]
            .into_iter(),
        )
        .expect("insert");
    assert!(db.store.has_imported_contributions().expect("has"));

    // The same two rows again: both matched, nothing new, nothing missing; Q1 is not covered.
    let counts = db
        .store
        .stage_contributions(
            &mut vec![staged(2, dues.clone()), staged(3, dues.clone())].into_iter(),
        )
        .expect("stage");
    assert_eq!(
        (counts.new, counts.matched, counts.changed, counts.missing),
        (0, 2, 0, 0)
    );

    // Three identical rows: the third is new.
    let counts = db
        .store
        .stage_contributions(
            &mut vec![
                staged(2, dues.clone()),
                staged(3, dues.clone()),
                staged(4, dues.clone()),
            ]
            .into_iter(),
        )
        .expect("stage");
    assert_eq!((counts.new, counts.matched, counts.missing), (1, 2, 0));

    // One of them, corrected: one new, one earlier import missing, replaced by line 3.
    let mut corrected = dues.clone();
    corrected.amount = Money::from_cents(11_000);
    let counts = db
        .store
        .stage_contributions(&mut vec![staged(2, dues.clone()), staged(3, corrected)].into_iter())
        .expect("stage");
    assert_eq!((counts.new, counts.matched, counts.missing), (1, 1, 1));
    let missing = db.store.missing_contributions().expect("missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].member_email, "ada@example.org");
    assert_eq!(missing[0].period_name, "Q4 2025");
    assert!(missing[0].unchanged_since_import());
    let replacement = missing[0].replacement.as_ref().expect("a replacement");
    assert_eq!(
        (replacement.line, replacement.amount),
        (3, Money::from_cents(11_000))
    );

    // Applied with deletion: exactly one row goes, one comes, Q1's row stays.
    let applied = db
        .store
        .apply_staged_contributions(run_id, counts, true)
        .expect("apply");
    assert_eq!(
        (
            applied.inserted,
            applied.deleted,
            applied.updated,
            applied.unchanged
        ),
        (1, 1, 0, 1)
    );
    assert_eq!(applied.removed_members, [ada.id]);
    assert_eq!(applied.added_members, [ada.id]);
    assert!(
        applied.changes.iter().any(|c| c.column == "(deleted row)"),
        "{:?}",
        applied.changes
    );
    let mut total = DigestSum::default();
    for v in [&dues, &values(&grace, &q1, 500, Some("Q1 only"))] {
        total.add(v.source_digest());
    }
    let mut corrected = dues.clone();
    corrected.amount = Money::from_cents(11_000);
    total.add(corrected.source_digest());
    assert_eq!(
        db.store
            .contributions_digest(ReadBackScope::All)
            .expect("digest"),
        total,
        "the table holds exactly the kept row, the corrected row and Q1's row"
    );
}

fn member_totals_and_openings(mut db: Db) {
    let (ada, grace, q4, _) = seed(&mut db);
    let run_id = run(&mut db);
    let labor = ContributionValues {
        contribution_type: ContributionType::Labor,
        ..values(&ada, &q4, 70_000, Some("labor is not capital"))
    };
    let pending = ContributionValues {
        status: ContributionStatus::Pending,
        approved_at: None,
        ..values(&ada, &q4, 30_000, Some("pending is not yet capital"))
    };
    let property = ContributionValues {
        contribution_type: ContributionType::Property,
        ..values(&ada, &q4, 250_050, Some("property"))
    };
    db.store
        .insert_new_contributions(
            run_id,
            &mut vec![
                staged(2, values(&ada, &q4, 100_000, Some("capital"))),
                staged(3, labor),
                staged(4, pending),
                staged(5, property),
            ]
            .into_iter(),
        )
        .expect("insert");
    db.store
        .write_openings(
            run_id,
            &mut [(
                grace.id,
                Opening {
                    balance: Money::from_cents(-5),
                    tax_basis: Money::ZERO,
                },
            )]
            .into_iter(),
        )
        .expect("openings");
    let mut totals = Vec::new();
    db.store
        .for_each_member_totals(&mut |t| {
            totals.push(t);
            Ok(())
        })
        .expect("totals");
    totals.sort_by(|a, b| a.email.cmp(&b.email));
    assert_eq!(totals.len(), 2);
    assert_eq!(totals[0].email, "ada@example.org");
    assert_eq!(totals[0].contributed, Money::from_cents(350_050));
    assert_eq!(totals[0].allocated, Money::ZERO);
    assert_eq!(totals[0].opening, None);
    assert_eq!(
        totals[1].opening,
        Some(Opening {
            balance: Money::from_cents(-5),
            tax_basis: Money::ZERO
        })
    );
    // Replaced, not added.
    db.store
        .write_openings(
            run_id,
            &mut [(
                grace.id,
                Opening {
                    balance: Money::from_cents(1),
                    tax_basis: Money::from_cents(1),
                },
            )]
            .into_iter(),
        )
        .expect("openings");
    let mut graces = Vec::new();
    db.store
        .for_each_member_totals(&mut |t| {
            if t.member_id == grace.id {
                graces.push(t.opening);
            }
            Ok(())
        })
        .expect("totals");
    assert_eq!(
        graces,
        [Some(Opening {
            balance: Money::from_cents(1),
            tax_basis: Money::from_cents(1)
        })]
    );
}

fn checks_find_nothing_on_a_clean_database(mut db: Db) {
    seed(&mut db);
    assert_eq!(db.store.member_count().expect("count"), 2);
    assert!(
        db.store
            .accounts_without_member()
            .expect("check")
            .is_empty()
    );
    assert!(
        db.store
            .contributions_without_references()
            .expect("check")
            .is_empty()
    );
    assert!(db.store.negative_balances().expect("check").is_empty());
    assert!(
        db.store
            .approved_without_timestamp()
            .expect("check")
            .is_empty()
    );
    assert!(db.store.orphans().expect("check").is_empty());
    assert!(
        db.store.references_enforced().expect("enforced"),
        "the tool's schema enforces every reference ({})",
        if db.is_pg() { "PostgreSQL" } else { "SQLite" }
    );
    let sums = db.store.table_checksums().expect("checksums");
    assert_eq!(sums.len(), 7);
    assert!(sums.iter().any(|t| t.table == "members" && t.rows == 2));
}

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
    typed_rows_round_trip,
    change_history_round_trips_exactly,
    update_history_keeps_microseconds,
    fingerprints_agree_with_the_database,
    matching_pairs_identical_rows_by_rank,
    member_totals_and_openings,
    checks_find_nothing_on_a_clean_database,
);
