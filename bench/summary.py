#!/usr/bin/env python3
"""Summarise bench/run.sh's results: medians, rows per second, ratios, peak memory.

    bench/summary.py RESULTS.tsv README.md PLOT.png

Writes the table between the `<!-- bench:begin -->` and `<!-- bench:end -->` markers of README.md
(with the machine it ran on) and, if matplotlib can be imported, a log-log plot of time and peak
memory against rows, so that linear time and flat memory can be seen at a glance. Each migrate step
is compared with the baseline of its database measured in the same invocation: pg_* with pg_copy,
sqlite_* with sqlite3_import.
"""
import csv
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

BASELINE = {"pg": "pg_copy", "sqlite": "sqlite3_import"}
ORDER = [
    "validate",
    "pg_copy",
    "pg_script",
    "pg_migrate",
    "pg_rerun",
    "pg_1pct",
    "sqlite3_import",
    "sqlite_migrate",
    "sqlite_rerun",
    "sqlite_1pct",
]


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // (1024 * 1024)} GiB"
                break
    except OSError:
        pass
    try:
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pg = "psql not found"
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {pg}, {platform.system()} {platform.release()}"


def main(results, readme, plot):
    data = {}
    rows_of = {}
    for r in csv.DictReader(open(results), delimiter="\t"):
        key = (int(r["size"]), r["step"])
        data.setdefault(key, []).append((float(r["seconds"]), int(r["rss_kb"])))
        rows_of[int(r["size"])] = int(r["rows"])
    lines = [
        "| members | rows | step | runs | median s | rows/s | vs baseline | peak RSS MiB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    medians = {}
    for size in sorted({s for s, _ in data}):
        for step in ORDER:
            runs = data.get((size, step))
            if not runs:
                continue
            med = statistics.median(s for s, _ in runs)
            medians[(size, step)] = med
            base = BASELINE.get(step.split("_")[0]) if step not in BASELINE.values() else None
            ratio = ""
            if base and (size, base) in data:
                ratio = f"{med / statistics.median(s for s, _ in data[(size, base)]):.2f}×"
            rss = max(r for _, r in runs) / 1024
            rows = rows_of[size]
            lines.append(
                f"| {size:,} | {rows:,} | {step} | {len(runs)} | {med:.2f} | {rows / med:,.0f} | {ratio} | {rss:.0f} |"
            )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        "<!-- bench:begin -->\n"
        f"Measured {stamp} on {machine()}, by `bench/run.sh` (results in `bench-data/results.tsv`).\n\n"
        + "\n".join(lines)
        + "\n<!-- bench:end -->"
    )
    text = open(readme).read() if os.path.exists(readme) else ""
    if "<!-- bench:begin -->" in text and "<!-- bench:end -->" in text:
        head, rest = text.split("<!-- bench:begin -->", 1)
        _, tail = rest.split("<!-- bench:end -->", 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Measured\n\n" + block + "\n"
    open(readme, "w").write(text)
    print("\n".join(lines))

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("summary: matplotlib not installed (pip install matplotlib); no plot", file=sys.stderr)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for step in ORDER:
        sizes = sorted(s for s, st in data if st == step)
        if len(sizes) < 1:
            continue
        xs = [rows_of[s] for s in sizes]
        style = "--" if step in BASELINE.values() or step == "pg_script" else "-"
        left.plot(xs, [medians[(s, step)] for s in sizes], style, marker="o", label=step)
        right.plot(xs, [max(r for _, r in data[(s, step)]) / 1024 for s in sizes], style, marker="o", label=step)
    for ax, title, unit in ((left, "time", "seconds (median)"), (right, "peak memory", "MB (max RSS)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    right.axhline(200, color="red", linewidth=0.8, linestyle=":")
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    print(f"summary: wrote {plot}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
