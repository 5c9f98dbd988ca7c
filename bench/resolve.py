#!/usr/bin/env python3
"""Turn a habitat-migrate bundle into the baseline CSVs for bench/run.sh.

The baselines (`psql \\copy`, `sqlite3 .import`) load rows "straight into the same tables", so the
ids a loader cannot know (member_id, period_id) are resolved here, beforehand, outside the timing.
Ids are time-ordered (UUID version 7 layout: a 48-bit millisecond timestamp, then a counter), as a
real load makes them — random ids would slow the baseline's index inserts down and flatter the
tool's ratio. They are deterministic: each table counts from its own fixed timestamp, so the same
bundle always gives the same files, and every member's id is known to its accounts and
contributions. Dates become midnight UTC in the RFC 3339 form the tool writes. For SQLite, money
is written as integer cents (its columns are INTEGER cents), computed from the decimal text without
floating point.
"""
import csv
import sys
from pathlib import Path

# 2026-11-27T00:00:00Z in milliseconds, one table a second apart.
BASE_MS = 1_795_737_600_000
TABLE_MS = {"p": 0, "m": 1000, "a": 2000, "c": 3000}


def v7(kind, n):
    """A version-7 UUID: timestamp of the table, then `n` as a 74-bit counter, in order."""
    ms = BASE_MS + TABLE_MS[kind]
    rand_a = (n >> 62) & 0xFFF
    rand_b = n & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def ts(date):
    return f"{date}T00:00:00Z" if date else ""


def cents(text):
    whole, _, frac = text.partition(".")
    return str(int(whole) * 100 + int((frac + "00")[:2]))


def main(bundle, out):
    bundle, out = Path(bundle), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    periods, members = {}, {}
    with open(bundle / "periods.csv", newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            periods[r["name"]] = v7("p", i)
    with open(bundle / "members.csv", newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            members[r["email"].lower()] = v7("m", i)
    for flavour in ("pg", "sqlite"):
        money = (lambda t: t) if flavour == "pg" else cents
        with open(bundle / "periods.csv", newline="") as f, open(out / f"{flavour}_periods.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "name", "description", "start_date", "end_date", "status"])
            for r in csv.DictReader(f):
                w.writerow([periods[r["name"]], r["name"], r["description"], ts(r["start_date"]), ts(r["end_date"]), r["status"]])
        with open(bundle / "members.csv", newline="") as f, open(out / f"{flavour}_members.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "email", "display_name", "ens_name", "role", "status", "joined_at"])
            for r in csv.DictReader(f):
                w.writerow([members[r["email"].lower()], r["email"].lower(), r["display_name"], r["ens_name"], r["role"], r["status"], ts(r["joined_at"])])
        with open(bundle / "capital_accounts.csv", newline="") as f, open(out / f"{flavour}_capital_accounts.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "member_id", "balance", "tax_basis", "notes"])
            for i, r in enumerate(csv.DictReader(f)):
                w.writerow([v7("a", i), members[r["member_email"].lower()], money(r["balance"]), money(r["tax_basis"]), r["notes"]])
        with open(bundle / "contributions.csv", newline="") as f, open(out / f"{flavour}_contributions.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "member_id", "period_id", "contribution_type", "amount", "description", "status", "approved_at"])
            for i, r in enumerate(csv.DictReader(f)):
                w.writerow([v7("c", i), members[r["member_email"].lower()], periods[r["period_name"]], r["contribution_type"], money(r["amount"]), r["description"], r["status"], ts(r["approved_at"])])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
