//! SQLite schema tests (SPEC §4, the embedded default): `habitat-migrate db init` on a new SQLite
//! file creates the five Habitat tables with the same column and constraint names as on PostgreSQL
//! plus the tool's own `hm_*` tables; money is INTEGER cents, never REAL; the database itself
//! rejects rows that break the rules of SPEC §3 (checks, uniqueness, foreign keys); a second
//! `db init` changes nothing; `db status` names the applied versions.

use std::collections::BTreeSet;
use std::process::Output;

use crate::common::{all_output, bin, fresh_sqlite, sqlite_conn};
use crate::harness::{Test, tests};
use rusqlite::Connection;
use rusqlite::types::Value;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            db_init_creates_every_table_and_column,
            foreign_keys_are_declared_as_on_postgresql,
            money_is_stored_as_integer_cents_never_real,
            database_rejects_rows_that_break_the_rules,
            second_db_init_changes_nothing,
            db_status_names_every_version,
        ],
    }
}

/// (table, column, declared type, NOT NULL) for every table the schema files create.
/// hm_schema_migrations is the runner's own and is checked by column names only.
const EXPECTED_COLUMNS: &[(&str, &str, &str, bool)] = &[
    ("members", "id", "TEXT", true),
    ("members", "email", "TEXT", true),
    ("members", "ens_name", "TEXT", false),
    ("members", "display_name", "TEXT", false),
    ("members", "role", "TEXT", true),
    ("members", "status", "TEXT", true),
    ("members", "joined_at", "TEXT", true),
    ("members", "password_hash", "TEXT", false),
    ("members", "created_at", "TEXT", true),
    ("members", "updated_at", "TEXT", true),
    ("allocation_periods", "id", "TEXT", true),
    ("allocation_periods", "name", "TEXT", true),
    ("allocation_periods", "description", "TEXT", false),
    ("allocation_periods", "start_date", "TEXT", true),
    ("allocation_periods", "end_date", "TEXT", true),
    ("allocation_periods", "status", "TEXT", true),
    ("allocation_periods", "closed_at", "TEXT", false),
    ("allocation_periods", "created_at", "TEXT", true),
    ("allocation_periods", "updated_at", "TEXT", true),
    ("capital_accounts", "id", "TEXT", true),
    ("capital_accounts", "member_id", "TEXT", true),
    ("capital_accounts", "balance", "INTEGER", true),
    ("capital_accounts", "tax_basis", "INTEGER", true),
    ("capital_accounts", "notes", "TEXT", false),
    ("capital_accounts", "last_updated", "TEXT", true),
    ("capital_accounts", "created_at", "TEXT", true),
    ("contributions", "id", "TEXT", true),
    ("contributions", "member_id", "TEXT", true),
    ("contributions", "period_id", "TEXT", true),
    ("contributions", "contribution_type", "TEXT", true),
    ("contributions", "amount", "INTEGER", true),
    ("contributions", "description", "TEXT", false),
    ("contributions", "status", "TEXT", true),
    ("contributions", "approved_by", "TEXT", false),
    ("contributions", "approved_at", "TEXT", false),
    ("contributions", "created_at", "TEXT", true),
    ("contributions", "updated_at", "TEXT", true),
    ("allocations", "id", "TEXT", true),
    ("allocations", "member_id", "TEXT", true),
    ("allocations", "period_id", "TEXT", true),
    ("allocations", "amount", "INTEGER", true),
    ("allocations", "patronage_score", "TEXT", true),
    ("allocations", "status", "TEXT", true),
    ("allocations", "distributed_at", "TEXT", false),
    ("allocations", "created_at", "TEXT", true),
    ("allocations", "updated_at", "TEXT", true),
    ("hm_runs", "id", "INTEGER", true),
    ("hm_runs", "started_at", "TEXT", true),
    ("hm_runs", "finished_at", "TEXT", false),
    ("hm_runs", "command", "TEXT", true),
    ("hm_runs", "invoked_by", "TEXT", true),
    ("hm_runs", "tool_version", "TEXT", true),
    ("hm_runs", "database_url", "TEXT", true),
    ("hm_runs", "dry_run", "INTEGER", true),
    ("hm_runs", "outcome", "TEXT", true),
    ("hm_runs", "message", "TEXT", false),
    ("hm_runs", "backup_file", "TEXT", false),
    ("hm_runs", "sources", "TEXT", true),
    ("hm_runs", "counts", "TEXT", true),
    ("hm_runs", "details", "TEXT", true),
    ("hm_changes", "id", "INTEGER", true),
    ("hm_changes", "run_id", "INTEGER", true),
    ("hm_changes", "table_name", "TEXT", true),
    ("hm_changes", "row_id", "TEXT", true),
    ("hm_changes", "row_key", "TEXT", true),
    ("hm_changes", "column_name", "TEXT", true),
    ("hm_changes", "before_value", "TEXT", false),
    ("hm_changes", "after_value", "TEXT", false),
    ("hm_imported_contributions", "contribution_id", "TEXT", true),
    ("hm_imported_contributions", "run_id", "INTEGER", true),
    ("hm_imported_contributions", "row_digest", "BLOB", false),
    ("hm_opening_balances", "member_id", "TEXT", true),
    ("hm_opening_balances", "run_id", "INTEGER", true),
    ("hm_opening_balances", "opening_balance", "INTEGER", true),
    ("hm_opening_balances", "opening_tax_basis", "INTEGER", true),
    ("hm_opening_balances", "computed_at", "TEXT", true),
];

/// Money columns: INTEGER cents.
const MONEY_COLUMNS: &[(&str, &str)] = &[
    ("capital_accounts", "balance"),
    ("capital_accounts", "tax_basis"),
    ("contributions", "amount"),
    ("allocations", "amount"),
    ("hm_opening_balances", "opening_balance"),
    ("hm_opening_balances", "opening_tax_basis"),
];

// ---------------------------------------------------------------------------------------------
// helpers

/// Runs `habitat-migrate --database-url URL ARGS...` with `dir` as working directory.
fn run_tool(dir: &std::path::Path, url: &str, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .expect("run habitat-migrate")
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {:?}\n{}",
        output.status.code(),
        all_output(output)
    )
}

fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: expected exit {code}\n{}",
        describe(output)
    );
}

/// A new SQLite database on which `db init` has succeeded, and a connection to it
/// (foreign keys on, as the tool has them).
fn initialised_db() -> (tempfile::TempDir, String, Connection) {
    let (dir, url) = fresh_sqlite();
    let out = run_tool(dir.path(), &url, &["db", "init"]);
    assert_exit(&out, 0, "db init on a new SQLite file");
    let conn = sqlite_conn(&url);
    (dir, url, conn)
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(sql)
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"));
    stmt.query_map([], |row| row.get::<_, Value>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
        .into_iter()
        .map(|value| match value {
            Value::Null => String::new(),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Text(t) => t,
            Value::Blob(b) => format!("{b:?}"),
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Every object's definition and every applied version: what a second `db init` must not touch.
fn snapshot(conn: &Connection) -> Vec<String> {
    let mut out = strings(
        conn,
        "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '')
         FROM sqlite_master ORDER BY type, name",
    );
    out.extend(strings(
        conn,
        "SELECT version || ' ' || name || ' ' || checksum || ' ' || applied_at || ' ' || how
         FROM hm_schema_migrations ORDER BY version",
    ));
    out
}

/// Asserts that `sql` fails as a constraint violation whose message contains `message`.
fn assert_rejected(conn: &Connection, sql: &str, message: &str) {
    let Err(err) = conn.execute_batch(sql) else {
        panic!("the database accepted a row it must reject:\n{sql}");
    };
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation),
        "{sql}\nfailed, but not as a constraint violation: {err}"
    );
    assert!(
        err.to_string().contains(message),
        "{sql}\nfailed with `{err}`, expected a message containing `{message}`"
    );
}

// ---------------------------------------------------------------------------------------------
// the created schema

fn db_init_creates_every_table_and_column() {
    let (_dir, _url, conn) = initialised_db();
    let tables: BTreeSet<String> = strings(
        &conn,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .into_iter()
    .collect();
    assert_eq!(
        tables,
        set(&[
            "allocation_periods",
            "allocations",
            "capital_accounts",
            "contributions",
            "members",
            "hm_changes",
            "hm_imported_contributions",
            "hm_opening_balances",
            "hm_runs",
            "hm_schema_migrations",
        ])
    );

    let actual: BTreeSet<String> = strings(
        &conn,
        "SELECT m.name || ' | ' || p.name || ' | ' || p.type || ' | ' ||
                CASE WHEN p.\"notnull\" = 1 OR (p.pk = 1 AND p.type = 'INTEGER')
                     THEN 'not null' ELSE 'null' END
         FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND m.name <> 'hm_schema_migrations'",
    )
    .into_iter()
    .collect();
    let expected: BTreeSet<String> = EXPECTED_COLUMNS
        .iter()
        .map(|(table, column, ty, not_null)| {
            let null = if *not_null { "not null" } else { "null" };
            format!("{table} | {column} | {ty} | {null}")
        })
        .collect();
    let missing: Vec<_> = expected.difference(&actual).collect();
    let unexpected: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "columns differ\nmissing or different: {missing:#?}\nunexpected: {unexpected:#?}"
    );

    let runner_table: BTreeSet<String> = strings(
        &conn,
        "SELECT name FROM pragma_table_info('hm_schema_migrations')",
    )
    .into_iter()
    .collect();
    assert_eq!(
        runner_table,
        set(&["version", "name", "checksum", "applied_at", "how"])
    );

    let indexes: BTreeSet<String> =
        strings(&conn, "SELECT name FROM sqlite_master WHERE type = 'index'")
            .into_iter()
            .collect();
    for index in [
        "contributions_member_id_idx",
        "contributions_period_id_idx",
        "allocations_member_id_idx",
        "allocations_period_id_idx",
        "hm_changes_run_id_idx",
    ] {
        assert!(
            indexes.contains(index),
            "index {index} missing: {indexes:?}"
        );
    }

    assert_eq!(strings(&conn, "PRAGMA integrity_check"), ["ok"]);
    assert!(strings(&conn, "PRAGMA foreign_key_check").is_empty());
}

fn foreign_keys_are_declared_as_on_postgresql() {
    let (_dir, _url, conn) = initialised_db();
    let actual: BTreeSet<String> = strings(
        &conn,
        "SELECT m.name || '.' || f.\"from\" || ' -> ' || f.\"table\" || '.' || f.\"to\"
                || ' on delete ' || lower(f.on_delete)
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
         WHERE m.type = 'table'",
    )
    .into_iter()
    .collect();
    assert_eq!(
        actual,
        set(&[
            "capital_accounts.member_id -> members.id on delete no action",
            "contributions.member_id -> members.id on delete no action",
            "contributions.period_id -> allocation_periods.id on delete no action",
            "contributions.approved_by -> members.id on delete no action",
            "allocations.member_id -> members.id on delete no action",
            "allocations.period_id -> allocation_periods.id on delete no action",
            "hm_changes.run_id -> hm_runs.id on delete cascade",
            "hm_opening_balances.member_id -> members.id on delete cascade",
        ])
    );
}

fn money_is_stored_as_integer_cents_never_real() {
    let (_dir, _url, conn) = initialised_db();
    for (table, column) in MONEY_COLUMNS {
        let ty = strings(
            &conn,
            &format!("SELECT type FROM pragma_table_info('{table}') WHERE name = '{column}'"),
        );
        assert_eq!(ty, ["INTEGER"], "{table}.{column}");
    }
    let inexact = strings(
        &conn,
        "SELECT m.name || '.' || p.name || ' ' || p.type
         FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table'
           AND (upper(p.type) LIKE '%REAL%' OR upper(p.type) LIKE '%FLOA%'
                OR upper(p.type) LIKE '%DOUB%' OR upper(p.type) LIKE '%NUMERIC%'
                OR upper(p.type) LIKE '%DECIMAL%')",
    );
    assert!(
        inexact.is_empty(),
        "columns with inexact affinity: {inexact:?}"
    );

    conn.execute_batch(
        "INSERT INTO members (id, email, joined_at)
             VALUES ('m1', 'ada@example.org', '2025-01-01T00:00:00Z');
         INSERT INTO capital_accounts (id, member_id, balance, tax_basis)
             VALUES ('c1', 'm1', 1250050, 1000000);",
    )
    .expect("a capital account in cents");
    assert_eq!(
        strings(
            &conn,
            "SELECT typeof(balance) || ' ' || balance || ' ' || typeof(tax_basis)
             FROM capital_accounts"
        ),
        ["integer 1250050 integer"]
    );
    // Summing cents stays an exact integer.
    assert_eq!(
        strings(&conn, "SELECT typeof(sum(balance)) FROM capital_accounts"),
        ["integer"]
    );
    // A float, or text that is not a whole number of cents, never gets in.
    assert_rejected(
        &conn,
        "UPDATE capital_accounts SET balance = 12.5",
        "capital_accounts.balance",
    );
    assert_rejected(
        &conn,
        "UPDATE capital_accounts SET balance = '12.50'",
        "capital_accounts.balance",
    );
}

// ---------------------------------------------------------------------------------------------
// the constraints at work

fn database_rejects_rows_that_break_the_rules() {
    let (_dir, _url, conn) = initialised_db();
    // Valid rows go in: the rejections below are for the rule broken, not for a broken setup.
    conn.execute_batch(
        "INSERT INTO members (id, email, joined_at, ens_name)
             VALUES ('m1', 'ada@example.org', '2025-01-01T00:00:00Z', 'ada.habitat.eth'),
                    ('m2', 'bob@example.org', '2025-01-01T00:00:00Z', NULL);
         INSERT INTO allocation_periods (id, name, start_date, end_date)
             VALUES ('p1', '2025-Q1', '2025-01-01T00:00:00Z', '2025-03-31T00:00:00Z'),
                    ('p0', 'one day', '2024-12-31T00:00:00Z', '2024-12-31T00:00:00Z');
         INSERT INTO capital_accounts (id, member_id, balance, tax_basis)
             VALUES ('c1', 'm1', 10050, 0);
         INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, status,
                                    approved_by, approved_at)
             VALUES ('k1', 'm1', 'p1', 'capital', 1, 'approved', 'm2', '2025-02-01T12:30:00Z'),
                    ('k2', 'm1', 'p1', 'labor', 1000, 'rejected', NULL, '2025-02-01T12:30:00.5Z');
         INSERT INTO allocations (id, member_id, period_id, amount, patronage_score)
             VALUES ('a1', 'm1', 'p1', 500, '0.1234567891');
         INSERT INTO hm_runs (started_at, command, invoked_by, tool_version, database_url, outcome)
             VALUES ('2025-01-01T00:00:00Z', 'migrate', 'me', '0.1.0', 'sqlite://x', 'succeeded');
         INSERT INTO hm_imported_contributions VALUES ('k1', 1, NULL);",
    )
    .expect("valid rows must be accepted");

    let cases: &[(&str, &str)] = &[
        (
            "INSERT INTO capital_accounts (id, member_id, balance, tax_basis) VALUES ('c2', 'm2', -1, 0)",
            "CHECK constraint failed: capital_accounts_balance_check",
        ),
        (
            "INSERT INTO capital_accounts (id, member_id, balance, tax_basis) VALUES ('c2', 'm2', 0, -1)",
            "CHECK constraint failed: capital_accounts_tax_basis_check",
        ),
        (
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount) VALUES ('k3', 'm1', 'p1', 'labor', 0)",
            "CHECK constraint failed: contributions_amount_check",
        ),
        (
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, status) VALUES ('k3', 'm1', 'p1', 'capital', 10, 'approved')",
            "CHECK constraint failed: contributions_approved_at_check",
        ),
        (
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount) VALUES ('k3', 'm1', 'p1', 'expertise', 10)",
            "CHECK constraint failed: contributions_contribution_type_check",
        ),
        (
            "INSERT INTO allocation_periods (id, name, start_date, end_date) VALUES ('p2', 'backwards', '2025-06-30T00:00:00Z', '2025-04-01T00:00:00Z')",
            "CHECK constraint failed: allocation_periods_end_date_check",
        ),
        (
            "INSERT INTO allocation_periods (id, name, start_date, end_date) VALUES ('p2', '2025-Q1', '2025-04-01T00:00:00Z', '2025-06-30T00:00:00Z')",
            "UNIQUE constraint failed: allocation_periods.name",
        ),
        (
            "INSERT INTO members (id, email, joined_at) VALUES ('m3', 'ada@example.org', '2025-01-01T00:00:00Z')",
            "UNIQUE constraint failed: members.email",
        ),
        (
            "INSERT INTO members (id, email, joined_at) VALUES ('m3', 'Carol@example.org', '2025-01-01T00:00:00Z')",
            "CHECK constraint failed: members_email_lowercase",
        ),
        (
            "INSERT INTO members (id, email, joined_at) VALUES ('m3', 'carol at example.org', '2025-01-01T00:00:00Z')",
            "CHECK constraint failed: members_email_format",
        ),
        (
            "INSERT INTO members (id, email, joined_at) VALUES ('m3', 'carol@example', '2025-01-01T00:00:00Z')",
            "CHECK constraint failed: members_email_format",
        ),
        (
            "INSERT INTO members (id, email, joined_at, ens_name) VALUES ('m3', 'carol@example.org', '2025-01-01T00:00:00Z', 'Carol.eth')",
            "CHECK constraint failed: members_ens_name_format",
        ),
        (
            "INSERT INTO members (id, email, joined_at, ens_name) VALUES ('m3', 'carol@example.org', '2025-01-01T00:00:00Z', 'ada.habitat.eth')",
            "UNIQUE constraint failed: members.ens_name",
        ),
        (
            "INSERT INTO members (id, email, joined_at, role) VALUES ('m3', 'carol@example.org', '2025-01-01T00:00:00Z', 'owner')",
            "CHECK constraint failed: members_role_check",
        ),
        (
            "INSERT INTO members (id, email, joined_at) VALUES ('m3', 'carol@example.org', NULL)",
            "NOT NULL constraint failed: members.joined_at",
        ),
        (
            "INSERT INTO members (id, email, joined_at) VALUES ('m3', 'carol@example.org', '2025-01-01 00:00:00+02:00')",
            "CHECK constraint failed: members_joined_at_rfc3339",
        ),
        (
            "INSERT INTO capital_accounts (id, member_id, balance, tax_basis) VALUES ('c2', 'm1', 1, 1)",
            "UNIQUE constraint failed: capital_accounts.member_id",
        ),
        (
            "INSERT INTO capital_accounts (id, member_id, balance, tax_basis) VALUES ('c2', 'nobody', 1, 1)",
            "FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount) VALUES ('k3', 'nobody', 'p1', 'labor', 1)",
            "FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount) VALUES ('k3', 'm1', 'no-period', 'labor', 1)",
            "FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, approved_by) VALUES ('k3', 'm1', 'p1', 'labor', 1, 'nobody')",
            "FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO allocations (id, member_id, period_id, amount) VALUES ('a2', 'm1', 'p1', 1)",
            "UNIQUE constraint failed: allocations.member_id, allocations.period_id",
        ),
        (
            "UPDATE allocations SET status = 'distributed'",
            "CHECK constraint failed: allocations_distributed_at_check",
        ),
        (
            "DELETE FROM members WHERE id = 'm2'",
            "FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO hm_runs (started_at, command, invoked_by, tool_version, database_url, outcome) VALUES ('2025-01-01T00:00:00Z', 'migrate', 'me', '0', 'sqlite://x', 'done')",
            "CHECK constraint failed: hm_runs_outcome_check",
        ),
        (
            "INSERT INTO hm_imported_contributions VALUES ('k1', 2, NULL)",
            "UNIQUE constraint failed: hm_imported_contributions.contribution_id",
        ),
        (
            "INSERT INTO hm_imported_contributions VALUES ('k2', 1, x'00')",
            "CHECK constraint failed: hm_imported_contributions_row_digest_length",
        ),
    ];
    for (sql, message) in cases {
        assert_rejected(&conn, sql, message);
    }

    // Nothing of the rejected rows got in.
    assert_eq!(
        strings(
            &conn,
            "SELECT (SELECT count(*) FROM members) || ' ' || (SELECT count(*) FROM allocation_periods)
                    || ' ' || (SELECT count(*) FROM capital_accounts)
                    || ' ' || (SELECT count(*) FROM contributions)
                    || ' ' || (SELECT count(*) FROM allocations)"
        ),
        ["2 2 1 2 1"]
    );

    // No foreign key: deleting a contribution leaves its record (the next import deletes it).
    conn.execute_batch("DELETE FROM contributions WHERE id = 'k1'")
        .expect("delete a contribution");
    assert_eq!(
        strings(&conn, "SELECT count(*) FROM hm_imported_contributions"),
        ["1"]
    );
}

// ---------------------------------------------------------------------------------------------
// the runner

fn second_db_init_changes_nothing() {
    let (dir, url, conn) = initialised_db();
    let before = snapshot(&conn);
    assert_eq!(
        strings(
            &conn,
            "SELECT version FROM hm_schema_migrations ORDER BY version"
        ),
        ["1", "2", "3", "4"]
    );

    let out = run_tool(dir.path(), &url, &["db", "init"]);
    assert_exit(&out, 0, "second db init");

    assert_eq!(snapshot(&conn), before);
}

fn db_status_names_every_version() {
    let (dir, url, conn) = initialised_db();
    let names = strings(
        &conn,
        "SELECT name FROM hm_schema_migrations ORDER BY version",
    );
    assert_eq!(names.len(), 4, "{names:?}");

    let out = run_tool(dir.path(), &url, &["db", "status"]);
    assert_exit(&out, 0, "db status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in &names {
        assert!(
            stdout.contains(name.as_str()),
            "db status does not name `{name}`:\n{}",
            describe(&out)
        );
    }
}
