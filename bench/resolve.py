#!/usr/bin/env python3
"""Turn a habitat-migrate bundle into the baseline CSVs for bench/run.sh.

The baselines (`psql \\copy`, `sqlite3 .import`) load rows "straight into the same tables", so the
ids a loader cannot know (member_id, period_id) are resolved here, beforehand, outside the timing.
Ids are uuid5 of the natural key, so the files are deterministic. Dates become midnight UTC in the
same RFC 3339 form the tool writes. For SQLite, money is written as integer cents (its columns are
INTEGER cents), computed from the decimal text without floating point.
"""
import csv
import sys
import uuid
from pathlib import Path

NS = uuid.UUID("6f1c4d0e-2b3a-4c5d-8e9f-0a1b2c3d4e5f")


def uid(kind, key):
    return str(uuid.uuid5(NS, f"{kind}:{key}"))


def ts(date):
    return f"{date}T00:00:00Z" if date else ""


def cents(text):
    whole, _, frac = text.partition(".")
    return str(int(whole) * 100 + int((frac + "00")[:2]))


def main(bundle, out):
    bundle, out = Path(bundle), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for flavour in ("pg", "sqlite"):
        money = (lambda t: t) if flavour == "pg" else cents
        with open(bundle / "periods.csv", newline="") as f, open(out / f"{flavour}_periods.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "name", "description", "start_date", "end_date", "status"])
            for r in csv.DictReader(f):
                w.writerow([uid("p", r["name"]), r["name"], r["description"], ts(r["start_date"]), ts(r["end_date"]), r["status"]])
        with open(bundle / "members.csv", newline="") as f, open(out / f"{flavour}_members.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "email", "display_name", "ens_name", "role", "status", "joined_at"])
            for r in csv.DictReader(f):
                w.writerow([uid("m", r["email"]), r["email"], r["display_name"], r["ens_name"], r["role"], r["status"], ts(r["joined_at"])])
        with open(bundle / "capital_accounts.csv", newline="") as f, open(out / f"{flavour}_capital_accounts.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "member_id", "balance", "tax_basis", "notes"])
            for r in csv.DictReader(f):
                w.writerow([uid("a", r["member_email"]), uid("m", r["member_email"]), money(r["balance"]), money(r["tax_basis"]), r["notes"]])
        with open(bundle / "contributions.csv", newline="") as f, open(out / f"{flavour}_contributions.csv", "w", newline="") as o:
            w = csv.writer(o, lineterminator="\n")
            w.writerow(["id", "member_id", "period_id", "contribution_type", "amount", "description", "status", "approved_at"])
            for i, r in enumerate(csv.DictReader(f)):
                w.writerow([uid("c", i), uid("m", r["member_email"]), uid("p", r["period_name"]), r["contribution_type"], money(r["amount"]), r["description"], r["status"], ts(r["approved_at"])])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
