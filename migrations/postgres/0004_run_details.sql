-- 0004_run_details: what a run decided and found, kept with the run.
--
-- Why the design is as it is:
-- * The sign-off report of a run is read from the database, not from a log file that may be gone:
--   the run's own report (checks before and after, the reconciliation, openings derived, the
--   corrections decided) and, for an allocation, its inputs (pool, weights) and what it computed.
-- * One JSON document rather than tables per kind of run: the report is versioned in its own
--   "version" field and read whole; nothing queries inside it.
-- * NOT NULL DEFAULT '{}': runs recorded before this migration have an empty document, which the
--   report shows as "not recorded".

ALTER TABLE habitat_migrate.runs ADD COLUMN details jsonb NOT NULL DEFAULT '{}';
