-- 0003_imported_contributions (SQLite): mirrors migrations/postgres/0003.
--
-- Why the design is as it is:
-- * Per contribution the tool created: the run that created it and a fingerprint (row_digest, the
--   16-byte MD5 of the row's canonical text, see DESIGN.md "Corrections") of the values it last
--   wrote, so that a correction deletes only rows nobody has changed since.
-- * The import key of 0002 is gone: source rows are matched to earlier imports by the contribution's
--   own values and their rank among identical rows, computed in SQL.
-- * Rows imported before this migration get no fingerprint (NULL): a correction never deletes them.
-- * No foreign key to contributions, as on PostgreSQL: a record whose contribution was deleted
--   matches nothing and is deleted by the next import that stages contributions.
-- * Same conventions as 0002: STRICT.

CREATE TABLE hm_imported_contributions (
    contribution_id TEXT    NOT NULL PRIMARY KEY,
    run_id          INTEGER NOT NULL,
    row_digest      BLOB,
    CONSTRAINT hm_imported_contributions_row_digest_length CHECK (length(row_digest) = 16)
) STRICT, WITHOUT ROWID;

INSERT INTO hm_imported_contributions (contribution_id, run_id)
SELECT contribution_id, run_id FROM hm_contribution_keys;

DROP TABLE hm_contribution_keys;
