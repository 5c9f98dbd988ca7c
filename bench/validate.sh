#!/usr/bin/env bash
# Validation throughput: `validate-source` on a generated bundle (100,000 members, 1.2 M rows by
# default), release build, median wall time and median peak memory (GNU time's maximum RSS) of
# RUNS runs, and rows per second. The database URL names a SQLite file that does not exist, so only
# the files are read (validate-source never creates a database).
#
#   bench/validate.sh [MEMBERS] [RUNS] [BINARY]     defaults: 100000 members, 5 runs, the release build
#
# Needs GNU time (/usr/bin/time). Data goes to bench-data/ (ignored by git). Figures depend on the
# machine and its load: the script prints the load average before and after; rerun before quoting.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MEMBERS=${1:-100000}
RUNS=${2:-5}
BIN=${3:-}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "$BIN" ]; then
    cargo build --release --locked --quiet
    BIN=$TARGET/release/habitat-migrate
fi
WORK=bench-data/validate-$MEMBERS
mkdir -p "$WORK"
if [ ! -f "$WORK/bundle/contributions.csv" ]; then
    "$BIN" gen --members "$MEMBERS" --out "$WORK/bundle" > /dev/null
fi
ROWS=$(( $(cat "$WORK"/bundle/*.csv | wc -l) - 4 ))

echo "bench: $BIN, $ROWS rows, $RUNS runs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$WORK/times.txt"
for i in $(seq 1 "$RUNS"); do
    if ! /usr/bin/time -f "%e %M" -o "$WORK/time.txt" \
        "$BIN" --database-url "sqlite://$WORK/none.db" validate-source \
        --members "$WORK/bundle/members.csv" \
        --capital-accounts "$WORK/bundle/capital_accounts.csv" \
        --contributions "$WORK/bundle/contributions.csv" \
        --periods "$WORK/bundle/periods.csv" > "$WORK/last.out" 2> "$WORK/last.err"; then
        echo "bench: validate-source failed:" >&2
        tail -20 "$WORK/last.out" "$WORK/last.err" >&2
        exit 1
    fi
    tail -n 1 "$WORK/time.txt" >> "$WORK/times.txt"
    printf '  run %d: %ss %s KB\n' "$i" $(tail -n 1 "$WORK/time.txt")
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
SECS=$(cut -d' ' -f1 "$WORK/times.txt" | median)
RSS=$(cut -d' ' -f2 "$WORK/times.txt" | median)
RATE=$(awk -v r="$ROWS" -v s="$SECS" 'BEGIN { printf "%d", (s > 0) ? r / s : 0 }')
echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'validate-source: %d rows, median %s s, %s rows/s, median peak RSS %s KB\n' "$ROWS" "$SECS" "$RATE" "$RSS"
