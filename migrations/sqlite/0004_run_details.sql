-- 0004_run_details (SQLite): mirrors migrations/postgres/0004. The JSON is text, checked valid.

ALTER TABLE hm_runs ADD COLUMN details TEXT NOT NULL DEFAULT '{}'
    CONSTRAINT hm_runs_details_json CHECK (json_valid(details));
