-- 0002_tool_tables (SQLite): habitat-migrate's own bookkeeping, mirroring migrations/postgres/0002.
--
-- Why the design is as it is:
-- * SQLite has no schemas (short of ATTACH, which would split one database into two files), so the
--   tool's tables carry the prefix hm_ instead of living in schema habitat_migrate. The five Habitat
--   tables get no extra columns.
-- * hm_schema_migrations is not created here: the runner creates it before any file runs.
-- * hm_runs: one row per command that writes. INTEGER PRIMARY KEY AUTOINCREMENT so a run number is
--   never reused, even after a run is deleted; dry_run is 0/1; sources and counts are JSON text
--   (checked with json_valid, as jsonb would be on PostgreSQL).
-- * hm_changes: row-level before/after history, deleted with its run.
-- * hm_contribution_keys: the tool's import key per contribution (contributions have no natural
--   key), which makes re-running a bundle change nothing. run_id has no foreign key because the run
--   row is written at the end of the same transaction.
-- * hm_opening_balances: per member, the part of the balance the imported records do not explain
--   (SPEC §6), in INTEGER cents; it may be negative.
-- * Same conventions as 0001: STRICT tables, RFC 3339 UTC text timestamps, no REAL anywhere.
-- * No BEGIN/COMMIT: the runner executes the file inside its own transaction.

CREATE TABLE hm_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    command      TEXT    NOT NULL,
    invoked_by   TEXT    NOT NULL,
    tool_version TEXT    NOT NULL,
    database_url TEXT    NOT NULL,
    dry_run      INTEGER NOT NULL DEFAULT 0,
    outcome      TEXT    NOT NULL,
    message      TEXT,
    backup_file  TEXT,
    sources      TEXT    NOT NULL DEFAULT '[]',
    counts       TEXT    NOT NULL DEFAULT '{}',
    CONSTRAINT hm_runs_outcome_check CHECK (outcome IN ('succeeded', 'failed', 'rolled_back')),
    CONSTRAINT hm_runs_dry_run_check CHECK (dry_run IN (0, 1)),
    CONSTRAINT hm_runs_sources_json CHECK (json_valid(sources)),
    CONSTRAINT hm_runs_counts_json CHECK (json_valid(counts)),
    CONSTRAINT hm_runs_started_at_rfc3339 CHECK (
        started_at GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*Z'),
    CONSTRAINT hm_runs_finished_at_rfc3339 CHECK (
        finished_at GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*Z')
) STRICT;

CREATE TABLE hm_changes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL,
    table_name   TEXT    NOT NULL,
    row_id       TEXT    NOT NULL,
    row_key      TEXT    NOT NULL,
    column_name  TEXT    NOT NULL,
    before_value TEXT,
    after_value  TEXT,
    CONSTRAINT hm_changes_run_id_fkey FOREIGN KEY (run_id) REFERENCES hm_runs (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX hm_changes_run_id_idx ON hm_changes (run_id);

CREATE TABLE hm_contribution_keys (
    import_key      TEXT    NOT NULL PRIMARY KEY,
    contribution_id TEXT    NOT NULL,
    run_id          INTEGER NOT NULL,
    CONSTRAINT hm_contribution_keys_contribution_id_key UNIQUE (contribution_id),
    CONSTRAINT hm_contribution_keys_contribution_id_fkey FOREIGN KEY (contribution_id)
        REFERENCES contributions (id) ON DELETE CASCADE
) STRICT;

CREATE TABLE hm_opening_balances (
    member_id         TEXT    NOT NULL PRIMARY KEY,
    run_id            INTEGER NOT NULL,
    opening_balance   INTEGER NOT NULL,
    opening_tax_basis INTEGER NOT NULL,
    computed_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    CONSTRAINT hm_opening_balances_member_id_fkey FOREIGN KEY (member_id)
        REFERENCES members (id) ON DELETE CASCADE,
    CONSTRAINT hm_opening_balances_opening_balance_cents CHECK (
        typeof(opening_balance) = 'integer' AND abs(opening_balance) <= 9999999999999999),
    CONSTRAINT hm_opening_balances_opening_tax_basis_cents CHECK (
        typeof(opening_tax_basis) = 'integer' AND abs(opening_tax_basis) <= 9999999999999999),
    CONSTRAINT hm_opening_balances_computed_at_rfc3339 CHECK (
        computed_at GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*Z')
) STRICT;
