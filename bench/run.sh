#!/usr/bin/env bash
# Whole-command benchmark of habitat-migrate against the databases' own bulk loaders, measured in
# the same run on the same rows.
#
#   bench/run.sh [MEMBERS ...]        default: 10000 100000   (each member: 12 rows)
#   RUNS=3 STEPS="pg sqlite validate" bench/run.sh 1000000
#
# For each size it generates a bundle with `habitat-migrate gen` (and its "1% of rows changed"
# variant, bench/vary.py), resolves the ids a plain loader cannot know (bench/resolve.py:
# time-ordered UUIDs, as a real load makes them), and then, RUNS times, alternating the order of
# the two databases:
#   pg_copy        psql: text COPY of the four files straight into the tables (the baseline)
#   pg_script      psql: COPY into TEMP staging, then INSERT … SELECT … ON CONFLICT (a plain script)
#   pg_migrate     habitat-migrate migrate BUNDLE on a database that has just had `db init`
#   pg_rerun       the same migrate again: nothing changes
#   pg_1pct        migrate of the variant with 1% of rows changed (backup included)
#   sqlite3_import sqlite3 .import into TEMP tables + INSERT … SELECT, one transaction (baseline)
#   sqlite_migrate, sqlite_rerun, sqlite_1pct   as for PostgreSQL, on a SQLite file
#   validate       habitat-migrate validate-source on the bundle
# Each step's wall time and peak resident memory (GNU time) go to bench-data/results.tsv; every
# load is checked for the full row count. bench/summary.py then writes the table (medians, rows/s,
# ratio to the baseline, peak RSS) into bench/README.md and plots bench/scaling.png.
#
# Needs python3, psql, sqlite3, GNU time and a PostgreSQL server (HM_BENCH_PG_ADMIN_URL, default
# postgres://postgres@127.0.0.1:5432/postgres). Data goes to bench-data/ (ignored by git).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000)
RUNS=${RUNS:-3}
STEPS=${STEPS:-"pg sqlite validate"}
PG_ADMIN=${HM_BENCH_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB="${PG_ADMIN%/*}/hm_bench"
BIN=$PWD/target/release/habitat-migrate
RESULTS=bench-data/results.tsv
mkdir -p bench-data
[ -f "$RESULTS" ] || printf 'size\trows\tstep\tseconds\trss_kb\n' > "$RESULTS"

cargo build --release --locked --quiet

for MEMBERS in "${SIZES[@]}"; do
    WORK=bench-data/$MEMBERS
    mkdir -p "$WORK"
    if [ ! -f "$WORK/bundle/contributions.csv" ]; then
        "$BIN" gen --members "$MEMBERS" --out "$WORK/bundle" > /dev/null
    fi
    if [ ! -f "$WORK/bundle_1pct/contributions.csv" ]; then
        python3 bench/vary.py "$WORK/bundle" "$WORK/bundle_1pct" > /dev/null
    fi
    if [ ! -f "$WORK/resolved/sqlite_contributions.csv" ]; then
        python3 bench/resolve.py "$WORK/bundle" "$WORK/resolved"
    fi
    ROWS=$(( $(cat "$WORK"/bundle/*.csv | wc -l) - 4 ))
    R=$PWD/$WORK/resolved

    timed() {
        local name=$1
        shift
        if ! /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err"; then
            echo "bench: $name failed:" >&2
            tail -n 20 "$WORK/last.err" "$WORK/last.out" >&2
            exit 1
        fi
        local secs rss
        read -r secs rss < <(tail -n 1 "$WORK/time.txt")
        printf '%s\t%s\t%s\t%s\t%s\n' "$MEMBERS" "$ROWS" "$name" "$secs" "$rss" >> "$RESULTS"
        printf '  %-16s %8ss  %8s KB\n' "$name" "$secs" "$rss"
    }

    fresh_pg() {
        psql "$PG_ADMIN" -X -q -c "DROP DATABASE IF EXISTS hm_bench WITH (FORCE)" -c "CREATE DATABASE hm_bench"
        "$BIN" --database-url "$PG_DB" db init > /dev/null
    }

    fresh_sqlite() {
        rm -f "$WORK"/bench.db "$WORK"/bench.db-*
        "$BIN" --database-url "sqlite://$WORK/bench.db" db init > /dev/null
    }

    expect_count() {
        if [ "$1" != "$ROWS" ]; then
            echo "bench: expected $ROWS rows, found $1" >&2
            exit 1
        fi
    }

    COUNT="SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM capital_accounts)
        + (SELECT count(*) FROM allocation_periods) + (SELECT count(*) FROM contributions)"
    pg_rows() { psql "$PG_DB" -X -At -c "$COUNT"; }
    sqlite_rows() { sqlite3 "$WORK/bench.db" "$COUNT"; }

    cat > "$WORK/copy.psql" <<SQL
\\copy allocation_periods (id, name, description, start_date, end_date, status) from '$R/pg_periods.csv' with (format csv, header true)
\\copy members (id, email, display_name, ens_name, role, status, joined_at) from '$R/pg_members.csv' with (format csv, header true)
\\copy capital_accounts (id, member_id, balance, tax_basis, notes) from '$R/pg_capital_accounts.csv' with (format csv, header true)
\\copy contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at) from '$R/pg_contributions.csv' with (format csv, header true)
SQL

    # The plain script a DBA would write: staging tables, then one INSERT … SELECT per table.
    cat > "$WORK/script.psql" <<SQL
CREATE TEMP TABLE s_periods (LIKE allocation_periods INCLUDING DEFAULTS);
CREATE TEMP TABLE s_members (LIKE members INCLUDING DEFAULTS);
CREATE TEMP TABLE s_accounts (LIKE capital_accounts INCLUDING DEFAULTS);
CREATE TEMP TABLE s_contributions (LIKE contributions INCLUDING DEFAULTS);
\\copy s_periods (id, name, description, start_date, end_date, status) from '$R/pg_periods.csv' with (format csv, header true)
\\copy s_members (id, email, display_name, ens_name, role, status, joined_at) from '$R/pg_members.csv' with (format csv, header true)
\\copy s_accounts (id, member_id, balance, tax_basis, notes) from '$R/pg_capital_accounts.csv' with (format csv, header true)
\\copy s_contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at) from '$R/pg_contributions.csv' with (format csv, header true)
INSERT INTO allocation_periods SELECT * FROM s_periods ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description;
INSERT INTO members SELECT * FROM s_members ON CONFLICT (email) DO UPDATE SET display_name = EXCLUDED.display_name;
INSERT INTO capital_accounts SELECT * FROM s_accounts ON CONFLICT (member_id) DO UPDATE SET balance = EXCLUDED.balance;
INSERT INTO contributions SELECT * FROM s_contributions ON CONFLICT (id) DO NOTHING;
SQL

    # sqlite3 .import cannot write NULL, so rows pass through TEMP tables and one INSERT … SELECT
    # each, all in one transaction, with the pragmas the tool uses.
    cat > "$WORK/import.sqlite" <<SQL
PRAGMA foreign_keys = ON;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA cache_size = -49152;
PRAGMA temp_store = MEMORY;
BEGIN IMMEDIATE;
CREATE TEMP TABLE s_periods (id, name, description, start_date, end_date, status);
CREATE TEMP TABLE s_members (id, email, display_name, ens_name, role, status, joined_at);
CREATE TEMP TABLE s_accounts (id, member_id, balance, tax_basis, notes);
CREATE TEMP TABLE s_contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at);
.import --csv --skip 1 --schema temp $R/sqlite_periods.csv s_periods
.import --csv --skip 1 --schema temp $R/sqlite_members.csv s_members
.import --csv --skip 1 --schema temp $R/sqlite_capital_accounts.csv s_accounts
.import --csv --skip 1 --schema temp $R/sqlite_contributions.csv s_contributions
INSERT INTO allocation_periods (id, name, description, start_date, end_date, status)
  SELECT id, name, nullif(description, ''), start_date, end_date, status FROM s_periods;
INSERT INTO members (id, email, display_name, ens_name, role, status, joined_at)
  SELECT id, email, display_name, nullif(ens_name, ''), role, status, joined_at FROM s_members;
INSERT INTO capital_accounts (id, member_id, balance, tax_basis, notes)
  SELECT id, member_id, CAST(balance AS INTEGER), CAST(tax_basis AS INTEGER), nullif(notes, '') FROM s_accounts;
INSERT INTO contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at)
  SELECT id, member_id, period_id, contribution_type, CAST(amount AS INTEGER), nullif(description, ''), status, nullif(approved_at, '') FROM s_contributions;
COMMIT;
SQL

    # /usr/bin/time runs programs, not shell functions: the migrate command line, for a URL.
    migrate_args() { # url bundle
        echo "$BIN --database-url $1 migrate $2 --backup-dir $WORK/backups --log-dir $WORK/logs"
    }

    pg_steps() {
        fresh_pg
        timed pg_copy psql "$PG_DB" -X -q -1 -v ON_ERROR_STOP=1 -f "$WORK/copy.psql"
        expect_count "$(pg_rows)"
        fresh_pg
        timed pg_script psql "$PG_DB" -X -q -1 -v ON_ERROR_STOP=1 -f "$WORK/script.psql"
        expect_count "$(pg_rows)"
        fresh_pg
        rm -rf "$WORK/backups" "$WORK/logs"
        timed pg_migrate $(migrate_args "$PG_DB" "$WORK/bundle")
        expect_count "$(pg_rows)"
        timed pg_rerun $(migrate_args "$PG_DB" "$WORK/bundle")
        grep -q "Nothing changed" "$WORK/last.out"
        timed pg_1pct $(migrate_args "$PG_DB" "$WORK/bundle_1pct")
        expect_count "$(pg_rows)"
    }

    sqlite_steps() {
        fresh_sqlite
        timed sqlite3_import sqlite3 "$WORK/bench.db" ".read $WORK/import.sqlite"
        expect_count "$(sqlite_rows)"
        fresh_sqlite
        rm -rf "$WORK/backups" "$WORK/logs"
        timed sqlite_migrate $(migrate_args "sqlite://$WORK/bench.db" "$WORK/bundle")
        expect_count "$(sqlite_rows)"
        timed sqlite_rerun $(migrate_args "sqlite://$WORK/bench.db" "$WORK/bundle")
        grep -q "Nothing changed" "$WORK/last.out"
        timed sqlite_1pct $(migrate_args "sqlite://$WORK/bench.db" "$WORK/bundle_1pct")
        expect_count "$(sqlite_rows)"
    }

    validate_step() {
        timed validate "$BIN" --database-url "sqlite://$WORK/none.db" validate-source \
            --members "$WORK/bundle/members.csv" --capital-accounts "$WORK/bundle/capital_accounts.csv" \
            --contributions "$WORK/bundle/contributions.csv" --periods "$WORK/bundle/periods.csv"
    }

    echo "bench: $ROWS rows ($MEMBERS members), $RUNS run(s): $STEPS"
    for i in $(seq 1 "$RUNS"); do
        echo "run $i"
        order="$STEPS"
        # Alternate which database goes first, so neither always runs on a warm machine.
        if [ $((i % 2)) -eq 0 ]; then order=$(echo "$STEPS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
        for step in $order; do
            case $step in
            pg) pg_steps ;;
            sqlite) sqlite_steps ;;
            validate) validate_step ;;
            esac
        done
    done
done

python3 bench/summary.py "$RESULTS" bench/README.md bench/scaling.png
