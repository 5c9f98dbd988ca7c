#!/usr/bin/env bash
# Copies the test data into each fuzz target's corpus (fuzz/corpus/TARGET/), the way the target
# reads it: a first byte picks what the rest is (csv_reader: the table; json_reader: the table and
# .json or .jsonl; validate_*: CSV, JSON or JSON lines — see each target), then the file as it is.
# Files the fuzzer adds to a corpus stay; seeds are only ever added.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
DATA=../tests/data

seed() { # target, selector byte or "", file
    local dir="corpus/$1" name
    mkdir -p "$dir"
    name="seed-$({ printf '%s' "$2"; cat "$3"; } | sha256sum | cut -c1-16)"
    if [ -n "$2" ]; then
        { printf '%s' "$2"; cat "$3"; } > "$dir/$name"
    else
        cp "$3" "$dir/$name"
    fi
}

table_number() { # file stem -> 0 members, 1 capital accounts, 2 contributions, 3 periods
    case "$1" in
        members) echo 0 ;;
        capital_accounts) echo 1 ;;
        contributions) echo 2 ;;
        *) echo 3 ;;
    esac
}

json_selector() { # file stem, extension -> the json_reader selector byte
    local n
    n=$(($(table_number "$1") * 2))
    if [ "$2" != json ]; then n=$((n + 1)); fi
    printf '%s' "$n"
}

selector() { # extension -> the validate_* selector byte
    case "$1" in
        csv) printf '0' ;;
        json) printf '1' ;;
        *) printf '2' ;;
    esac
}

while IFS= read -r -d '' file; do
    base=$(basename "$file")
    stem=${base%%.*}
    ext=${base##*.}
    case "$ext" in
        csv) seed csv_reader "$(table_number "$stem")" "$file" ;;
        json | jsonl | ndjson) seed json_reader "$(json_selector "$stem" "$ext")" "$file" ;;
        *) continue ;;
    esac
    case "$stem" in
        members | capital_accounts | contributions | periods)
            seed "validate_$stem" "$(selector "$ext")" "$file"
            ;;
    esac
done < <(find "$DATA" ../examples -type f \( -name '*.csv' -o -name '*.json' -o -name '*.jsonl' -o -name '*.ndjson' \) -print0)

# The CSV files again as a JSON array and as JSON lines, where python3 is at hand: the test data
# holds few JSON files.
if command -v python3 > /dev/null 2>&1; then
    for file in "$DATA"/good/*.csv ../examples/*/*.csv; do
        stem=$(basename "$file" .csv)
        for ext in json jsonl; do
            out="corpus/.converted.$ext"
            mkdir -p corpus
            python3 - "$file" "$ext" > "$out" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8-sig")))
if sys.argv[2] == "json":
    print(json.dumps(rows, indent=2, ensure_ascii=False))
else:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
PY
            seed json_reader "$(json_selector "$stem" "$ext")" "$out"
            case "$stem" in
                members | capital_accounts | contributions | periods)
                    seed "validate_$stem" "$(selector "$ext")" "$out"
                    ;;
            esac
            rm -f "$out"
        done
    done
fi

for dir in corpus/*; do
    echo "seed: $(ls "$dir" | wc -l) inputs in $dir"
done
