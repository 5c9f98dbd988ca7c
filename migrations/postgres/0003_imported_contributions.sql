-- 0003_imported_contributions: which contributions this tool created, and what it last wrote there.
--
-- Why the design is as it is:
-- * A correction (SPEC §6) may delete a contribution the tool imported earlier, and only one that
--   nobody has changed since. So per contribution the tool keeps the run that created it and a
--   fingerprint (row_digest: MD5 of the row's canonical text, see DESIGN.md "Corrections") of the
--   values it last wrote; a row whose current fingerprint differs was changed by someone else.
-- * The import key of 0002 (a hash of the identifying values plus an occurrence number) is gone: a
--   source row is matched to an earlier import by the contribution's own values (member, period,
--   type, amount, description) and its rank among identical rows, computed in SQL, so the key no
--   longer has to be kept, and a row the application edited no longer matches its old key.
-- * Rows imported before this migration keep their run but get no fingerprint (NULL): that they are
--   unchanged cannot be proven, so a correction never deletes them (it names them instead).
-- * The primary key is the contribution's id (time-ordered, so inserts append to the index). There
--   is deliberately no foreign key to contributions: checking one per row doubled the cost of
--   importing a million contributions (DESIGN.md, "Speed"). A contribution the application deletes
--   leaves its record behind; every lookup joins through contributions, so such a record matches
--   nothing, and the next import that stages contributions deletes it.
-- * No BEGIN/COMMIT: the runner executes the file inside its own transaction.

CREATE TABLE habitat_migrate.imported_contributions (
    contribution_id uuid   NOT NULL,
    run_id          bigint NOT NULL,
    row_digest      bytea,
    CONSTRAINT imported_contributions_pkey PRIMARY KEY (contribution_id),
    CONSTRAINT imported_contributions_row_digest_length CHECK (octet_length(row_digest) = 16)
);

INSERT INTO habitat_migrate.imported_contributions (contribution_id, run_id)
SELECT contribution_id, run_id FROM habitat_migrate.contribution_keys;

DROP TABLE habitat_migrate.contribution_keys;
