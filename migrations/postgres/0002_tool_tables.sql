-- 0002_tool_tables: habitat-migrate's own bookkeeping, in schema `habitat_migrate`.
--
-- Why the design is as it is:
-- * SPEC §4: the tool's records never go into `public`, where the Habitat application and its
--   contract test look, and the tool adds no column to the five Habitat tables. So everything here is
--   in a schema of its own, and it works the same whether 0001 created the Habitat tables or the
--   Habitat application did (only their `id` primary keys are referenced).
-- * habitat_migrate.schema_migrations is not created here: the runner creates it (and with it the
--   schema) before any file runs, to know which files are applied. Hence CREATE SCHEMA IF NOT EXISTS.
-- * runs: one row per command that writes (who, when, tool version, redacted URL, source files with
--   their SHA-256 in `sources`, per-table counts in `counts`, backup file, outcome). Identity key,
--   because nothing outside the tool refers to a run by anything but its number.
-- * changes: the row-level history of updates (before/after per column); deleted with its run.
-- * contribution_keys: a contribution has no natural key in Habitat's table, so the tool keeps its
--   own import key per imported contribution; this is what makes re-running a bundle change nothing.
--   run_id has no foreign key because the run row is written at the end of the same transaction.
-- * opening_balances: per member, the part of the balance the imported records do not explain
--   (SPEC §6 reconciliation). It may be negative, so there is no >= 0 check.
-- * Every *_at column is timestamptz: Habitat's contract test checks *_date columns in every schema.
-- * No BEGIN/COMMIT: the runner executes the file inside its own transaction.

CREATE SCHEMA IF NOT EXISTS habitat_migrate;

CREATE TABLE habitat_migrate.runs (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    command      text        NOT NULL,
    invoked_by   text        NOT NULL,
    tool_version text        NOT NULL,
    database_url text        NOT NULL,
    dry_run      boolean     NOT NULL DEFAULT false,
    outcome      text        NOT NULL,
    message      text,
    backup_file  text,
    sources      jsonb       NOT NULL DEFAULT '[]',
    counts       jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT runs_pkey PRIMARY KEY (id),
    CONSTRAINT runs_outcome_check CHECK (outcome IN ('succeeded', 'failed', 'rolled_back'))
);

CREATE TABLE habitat_migrate.changes (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    run_id       bigint NOT NULL,
    table_name   text   NOT NULL,
    row_id       uuid   NOT NULL,
    row_key      text   NOT NULL,
    column_name  text   NOT NULL,
    before_value text,
    after_value  text,
    CONSTRAINT changes_pkey PRIMARY KEY (id),
    CONSTRAINT changes_run_id_fkey FOREIGN KEY (run_id)
        REFERENCES habitat_migrate.runs (id) ON DELETE CASCADE
);
CREATE INDEX changes_run_id_idx ON habitat_migrate.changes (run_id);

CREATE TABLE habitat_migrate.contribution_keys (
    import_key      text   NOT NULL,
    contribution_id uuid   NOT NULL,
    run_id          bigint NOT NULL,
    CONSTRAINT contribution_keys_pkey PRIMARY KEY (import_key),
    CONSTRAINT contribution_keys_contribution_id_key UNIQUE (contribution_id),
    CONSTRAINT contribution_keys_contribution_id_fkey FOREIGN KEY (contribution_id)
        REFERENCES public.contributions (id) ON DELETE CASCADE
);

CREATE TABLE habitat_migrate.opening_balances (
    member_id         uuid          NOT NULL,
    run_id            bigint        NOT NULL,
    opening_balance   numeric(16,2) NOT NULL,
    opening_tax_basis numeric(16,2) NOT NULL,
    computed_at       timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT opening_balances_pkey PRIMARY KEY (member_id),
    CONSTRAINT opening_balances_member_id_fkey FOREIGN KEY (member_id)
        REFERENCES public.members (id) ON DELETE CASCADE
);
