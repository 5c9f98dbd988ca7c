#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another, on a corpus seeded from
# tests/data (fuzz/seed.sh), and prints per target the time, the runs and whether it crashed.
# Exits non-zero if any target crashed, leaked or timed out; the input that did it is kept in
# fuzz/artifacts/TARGET/ (replay: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Builds into
# fuzz/target (or FUZZ_TARGET_DIR); logs go to fuzz/logs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

SECONDS_PER_TARGET=${1:-60}
shift || true
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target}

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo "+$TOOLCHAIN" fuzz list)
fi

./seed.sh > /dev/null
cargo "+$TOOLCHAIN" fuzz build -O 2>&1 | tail -n 1
mkdir -p logs

failed=0
printf '%-28s %8s %12s %s\n' target seconds runs result
for target in "${TARGETS[@]}"; do
    log="logs/$target.log"
    start=$(date +%s)
    # -timeout: one input taking 10 s is a finding; -rss_limit_mb: so is one taking 2 GB.
    if cargo "+$TOOLCHAIN" fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 > "$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$target/)"
        failed=1
    fi
    elapsed=$(($(date +%s) - start))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)
    printf '%-28s %8s %12s %s\n' "$target" "$elapsed" "${runs:-?}" "$result"
done
exit "$failed"
