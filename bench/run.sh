#!/usr/bin/env bash
# Whole-command benchmark: validate and migrate a generated bundle into PostgreSQL and SQLite, and,
# in the same run, load the same rows with the databases' own bulk loaders as a baseline:
# `psql \copy` (text COPY) and `sqlite3 .import`, straight into the same tables, ids resolved
# beforehand. Runs alternate their order; the summary gives medians, rows per second, ratios to the
# baseline and the client's peak memory (GNU time's maximum RSS).
#
#   bench/run.sh [MEMBERS] [RUNS]        defaults: 100000 members (1.2 M rows), 3 runs
#
# Needs python3, psql, sqlite3, GNU time (/usr/bin/time) and a PostgreSQL server
# (HM_BENCH_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres). Data goes to
# bench-data/ (ignored by git). Figures depend on the machine: rerun before quoting them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MEMBERS=${1:-100000}
RUNS=${2:-3}
PG_ADMIN=${HM_BENCH_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB="${PG_ADMIN%/*}/hm_bench"
BIN=target/release/habitat-migrate
WORK=bench-data/$MEMBERS
mkdir -p "$WORK"
RESULTS=$WORK/results.tsv
: > "$RESULTS"

cargo build --release --locked --quiet
if [ ! -f "$WORK/bundle/contributions.csv" ]; then
    "$BIN" gen --members "$MEMBERS" --out "$WORK/bundle" > /dev/null
fi
if [ ! -f "$WORK/resolved/sqlite_contributions.csv" ]; then
    python3 bench/resolve.py "$WORK/bundle" "$WORK/resolved"
fi
ROWS=$(( $(cat "$WORK"/bundle/*.csv | wc -l) - 4 ))

timed() {
    local name=$1
    shift
    if ! /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err"; then
        echo "bench: $name failed:" >&2
        tail -20 "$WORK/last.err" >&2
        exit 1
    fi
    local secs rss
    read -r secs rss < <(tail -n 1 "$WORK/time.txt")
    printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >> "$RESULTS"
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
    local got=$1
    if [ "$got" != "$ROWS" ]; then
        echo "bench: expected $ROWS rows, found $got" >&2
        exit 1
    fi
}

pg_rows() {
    psql "$PG_DB" -X -At -c "SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM capital_accounts)
        + (SELECT count(*) FROM allocation_periods) + (SELECT count(*) FROM contributions)"
}

sqlite_rows() {
    sqlite3 "$WORK/bench.db" "SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM capital_accounts)
        + (SELECT count(*) FROM allocation_periods) + (SELECT count(*) FROM contributions)"
}

R=$WORK/resolved
cat > "$WORK/copy.psql" <<SQL
\\copy allocation_periods (id, name, description, start_date, end_date, status) from '$R/pg_periods.csv' with (format csv, header true)
\\copy members (id, email, display_name, ens_name, role, status, joined_at) from '$R/pg_members.csv' with (format csv, header true)
\\copy capital_accounts (id, member_id, balance, tax_basis, notes) from '$R/pg_capital_accounts.csv' with (format csv, header true)
\\copy contributions (id, member_id, period_id, contribution_type, amount, description, status, approved_at) from '$R/pg_contributions.csv' with (format csv, header true)
SQL

# sqlite3 .import cannot write NULL, so rows pass through TEMP tables and one INSERT … SELECT each,
# all in one transaction, with the same pragmas the tool uses.
cat > "$WORK/import.sqlite" <<SQL
PRAGMA foreign_keys = ON;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA cache_size = -262144;
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

echo "bench: $ROWS rows ($MEMBERS members), $RUNS runs; results in $RESULTS"
for i in $(seq 1 "$RUNS"); do
    echo "run $i"
    timed validate "$BIN" --database-url "sqlite://$WORK/none.db" validate-source \
        --members "$WORK/bundle/members.csv" --capital-accounts "$WORK/bundle/capital_accounts.csv" \
        --contributions "$WORK/bundle/contributions.csv" --periods "$WORK/bundle/periods.csv"
    order="pg_copy pg_migrate sqlite_import sqlite_migrate"
    if [ $((i % 2)) -eq 0 ]; then order="sqlite_migrate sqlite_import pg_migrate pg_copy"; fi
    for step in $order; do
        case $step in
        pg_copy)
            fresh_pg
            timed psql_copy psql "$PG_DB" -X -q -1 -v ON_ERROR_STOP=1 -f "$WORK/copy.psql"
            expect_count "$(pg_rows)" ;;
        pg_migrate)
            fresh_pg
            rm -rf "$WORK/backups" "$WORK/logs"
            timed pg_migrate "$BIN" --database-url "$PG_DB" --backup-dir "$WORK/backups" \
                --log-dir "$WORK/logs" migrate "$WORK/bundle"
            expect_count "$(pg_rows)" ;;
        sqlite_import)
            fresh_sqlite
            timed sqlite3_import sqlite3 "$WORK/bench.db" ".read $WORK/import.sqlite"
            expect_count "$(sqlite_rows)" ;;
        sqlite_migrate)
            fresh_sqlite
            rm -rf "$WORK/backups" "$WORK/logs"
            timed sqlite_migrate "$BIN" --database-url "sqlite://$WORK/bench.db" --backup-dir "$WORK/backups" \
                --log-dir "$WORK/logs" migrate "$WORK/bundle"
            expect_count "$(sqlite_rows)" ;;
        esac
    done
done

python3 - "$RESULTS" "$ROWS" <<'PY'
import statistics, sys
rows = int(sys.argv[2])
data = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split("\t")
    data.setdefault(name, []).append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in data.items()}
base = {"pg_migrate": "psql_copy", "sqlite_migrate": "sqlite3_import"}
print(f"\n{'step':<16}{'runs':>5}{'median s':>10}{'rows/s':>10}{'vs baseline':>13}{'peak RSS MB':>13}")
for k in ["validate", "psql_copy", "pg_migrate", "sqlite3_import", "sqlite_migrate"]:
    if k not in data:
        continue
    ratio = f"{med[k] / med[base[k]]:.2f}x" if k in base else ""
    rss = max(r for _, r in data[k]) / 1024
    print(f"{k:<16}{len(data[k]):>5}{med[k]:>10.2f}{rows / med[k]:>10.0f}{ratio:>13}{rss:>13.0f}")
PY
