//! Schema migrations: ordered SQL files embedded in the binary, each recorded with its SHA-256.
//!
//! `db init` applies the files not yet recorded, each in its own transaction, and never touches a
//! Habitat table that already exists: when the application created them first, migration 1 is
//! *adopted* after [`EXPECTED_COLUMNS`] and [`EXPECTED_ENUMS`] are checked against the live schema,
//! and every difference is reported instead. `db status` lists what is applied and whether a
//! recorded checksum no longer matches the file shipped in this binary (drift).

use crate::checksum::sha256_bytes;

/// One embedded migration file.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
    /// Whether the file creates the Habitat application's own tables (adopted if they exist).
    pub habitat_tables: bool,
}

impl Migration {
    pub fn checksum(&self) -> String {
        sha256_bytes(self.sql.as_bytes())
    }
}

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "habitat_tables",
        sql: include_str!("../../migrations/postgres/0001_habitat_tables.sql"),
        habitat_tables: true,
    },
    Migration {
        version: 2,
        name: "tool_tables",
        sql: include_str!("../../migrations/postgres/0002_tool_tables.sql"),
        habitat_tables: false,
    },
    Migration {
        version: 3,
        name: "imported_contributions",
        sql: include_str!("../../migrations/postgres/0003_imported_contributions.sql"),
        habitat_tables: false,
    },
    Migration {
        version: 4,
        name: "run_details",
        sql: include_str!("../../migrations/postgres/0004_run_details.sql"),
        habitat_tables: false,
    },
];

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "habitat_tables",
        sql: include_str!("../../migrations/sqlite/0001_habitat_tables.sql"),
        habitat_tables: true,
    },
    Migration {
        version: 2,
        name: "tool_tables",
        sql: include_str!("../../migrations/sqlite/0002_tool_tables.sql"),
        habitat_tables: false,
    },
    Migration {
        version: 3,
        name: "imported_contributions",
        sql: include_str!("../../migrations/sqlite/0003_imported_contributions.sql"),
        habitat_tables: false,
    },
    Migration {
        version: 4,
        name: "run_details",
        sql: include_str!("../../migrations/sqlite/0004_run_details.sql"),
        habitat_tables: false,
    },
];

/// Columns the tool reads or writes, as PostgreSQL's `information_schema.columns` describes them:
/// (table, column, data_type, udt_name for enums, must be NOT NULL).
pub const EXPECTED_COLUMNS: &[(&str, &str, &str, &str, bool)] = &[
    ("members", "id", "uuid", "", true),
    ("members", "email", "character varying", "", true),
    ("members", "ens_name", "character varying", "", false),
    ("members", "display_name", "character varying", "", false),
    ("members", "role", "USER-DEFINED", "member_role", true),
    ("members", "status", "USER-DEFINED", "member_status", true),
    ("members", "joined_at", "timestamp with time zone", "", true),
    (
        "members",
        "created_at",
        "timestamp with time zone",
        "",
        true,
    ),
    ("allocation_periods", "id", "uuid", "", true),
    ("allocation_periods", "name", "character varying", "", true),
    ("allocation_periods", "description", "text", "", false),
    (
        "allocation_periods",
        "start_date",
        "timestamp with time zone",
        "",
        true,
    ),
    (
        "allocation_periods",
        "end_date",
        "timestamp with time zone",
        "",
        true,
    ),
    (
        "allocation_periods",
        "status",
        "USER-DEFINED",
        "period_status",
        true,
    ),
    ("capital_accounts", "id", "uuid", "", true),
    ("capital_accounts", "member_id", "uuid", "", true),
    ("capital_accounts", "balance", "numeric", "", true),
    ("capital_accounts", "tax_basis", "numeric", "", true),
    ("capital_accounts", "notes", "text", "", false),
    (
        "capital_accounts",
        "last_updated",
        "timestamp with time zone",
        "",
        false,
    ),
    ("contributions", "id", "uuid", "", true),
    ("contributions", "member_id", "uuid", "", true),
    ("contributions", "period_id", "uuid", "", true),
    (
        "contributions",
        "contribution_type",
        "USER-DEFINED",
        "contribution_type",
        true,
    ),
    ("contributions", "amount", "numeric", "", true),
    ("contributions", "description", "text", "", false),
    (
        "contributions",
        "status",
        "USER-DEFINED",
        "contribution_status",
        true,
    ),
    (
        "contributions",
        "approved_at",
        "timestamp with time zone",
        "",
        false,
    ),
    ("allocations", "id", "uuid", "", true),
    ("allocations", "member_id", "uuid", "", true),
    ("allocations", "period_id", "uuid", "", true),
    ("allocations", "amount", "numeric", "", true),
];

/// Enum labels the tool writes.
pub const EXPECTED_ENUMS: &[(&str, &[&str])] = &[
    ("member_role", crate::domain::Role::WORDS),
    ("member_status", crate::domain::MemberStatus::WORDS),
    ("contribution_type", crate::domain::ContributionType::WORDS),
    (
        "contribution_status",
        crate::domain::ContributionStatus::WORDS,
    ),
    ("period_status", crate::domain::PeriodStatus::WORDS),
];

/// A column as found in the database.
#[derive(Clone, Debug)]
pub struct FoundColumn {
    pub table: String,
    pub column: String,
    pub data_type: String,
    pub udt_name: String,
    pub not_null: bool,
    pub numeric_precision: Option<i32>,
    pub numeric_scale: Option<i32>,
}

/// Compares the live columns and enums with what the tool needs; one line per difference.
pub fn incompatibilities(found: &[FoundColumn], enums: &[(String, Vec<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, column, data_type, udt, not_null) in EXPECTED_COLUMNS {
        let Some(col) = found
            .iter()
            .find(|c| c.table == *table && c.column == *column)
        else {
            if found.iter().any(|c| c.table == *table) {
                problems.push(format!(
                    "missing column {table}.{column} (expected {data_type})"
                ));
            } else if !problems
                .iter()
                .any(|p| p == &format!("missing table {table}"))
            {
                problems.push(format!("missing table {table}"));
            }
            continue;
        };
        if col.data_type != *data_type || (!udt.is_empty() && col.udt_name != *udt) {
            let expected = if udt.is_empty() { data_type } else { udt };
            let actual = if col.data_type == "USER-DEFINED" {
                &col.udt_name
            } else {
                &col.data_type
            };
            problems.push(format!(
                "{table}.{column} has type {actual}, expected {expected}"
            ));
        }
        if *not_null && !col.not_null {
            problems.push(format!("{table}.{column} allows NULL, expected NOT NULL"));
        }
        // Money must be exactly numeric(p,2) with p >= 15 (SPEC §4): another scale would give
        // back `12.5000` for `12.50`, an unconstrained numeric would accept any scale.
        if col.data_type == "numeric"
            && (col.numeric_scale != Some(2) || col.numeric_precision.is_none_or(|p| p < 15))
        {
            let shown = match (col.numeric_precision, col.numeric_scale) {
                (Some(p), Some(s)) => format!("numeric({p},{s})"),
                _ => "numeric without precision and scale".to_string(),
            };
            problems.push(format!(
                "{table}.{column} is {shown}, expected numeric(p,2) with p of at least 15"
            ));
        }
    }
    for (type_name, labels) in EXPECTED_ENUMS {
        let Some((_, found_labels)) = enums.iter().find(|(n, _)| n == type_name) else {
            if !problems.iter().any(|p| p.contains(type_name)) {
                problems.push(format!("missing enum type {type_name}"));
            }
            continue;
        };
        for label in *labels {
            if !found_labels.iter().any(|l| l == label) {
                problems.push(format!("enum {type_name} lacks the value '{label}'"));
            }
        }
    }
    problems
}

/// What `db init` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct InitReport {
    /// (version, name, how): how is `applied` or `adopted`.
    pub applied: Vec<(i32, String, String)>,
    pub already_applied: usize,
}

/// One migration's state.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VersionStatus {
    pub version: i32,
    pub name: String,
    pub applied_at: Option<String>,
    pub how: Option<String>,
    /// `Some(false)` when the recorded checksum differs from the shipped file.
    pub checksum_matches: Option<bool>,
}

/// What `db status` reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SchemaStatus {
    pub database: String,
    pub versions: Vec<VersionStatus>,
}

impl SchemaStatus {
    pub fn drift(&self) -> bool {
        self.versions
            .iter()
            .any(|v| v.checksum_matches == Some(false))
    }

    pub fn pending(&self) -> usize {
        self.versions
            .iter()
            .filter(|v| v.applied_at.is_none())
            .count()
    }

    /// Builds the status from recorded rows `(version, checksum, applied_at, how)`.
    pub fn from_recorded(
        database: String,
        migrations: &[Migration],
        recorded: &[(i32, String, String, String)],
    ) -> SchemaStatus {
        let versions = migrations
            .iter()
            .map(|m| {
                let rec = recorded.iter().find(|r| r.0 == m.version);
                VersionStatus {
                    version: m.version,
                    name: m.name.to_string(),
                    applied_at: rec.map(|r| r.2.clone()),
                    how: rec.map(|r| r.3.clone()),
                    checksum_matches: rec.map(|r| r.1 == m.checksum()),
                }
            })
            .collect();
        SchemaStatus { database, versions }
    }
}
