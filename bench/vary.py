#!/usr/bin/env python3
"""Make the "1% of rows change" variant of a generated bundle, for bench/run.sh.

One row in a hundred of each file changes in a way a treasurer's next export would: a member's
display name, a capital account's balance and tax basis (+1.00 each, so the opening balance is
re-derived and still reconciles), and a pending labor contribution approved (labor is not capital,
so no balance moves). Periods stay. Deterministic: the same input gives the same output.
"""
import csv
import sys
from pathlib import Path


def cents_plus(text, cents):
    whole, _, frac = text.partition(".")
    total = int(whole) * 100 + int((frac + "00")[:2]) + cents
    return f"{total // 100}.{total % 100:02d}"


def rewrite(src, dst, change):
    with open(src, newline="") as f, open(dst, "w", newline="") as o:
        r = csv.DictReader(f)
        w = csv.DictWriter(o, fieldnames=r.fieldnames, lineterminator="\n")
        w.writeheader()
        n = 0
        for i, row in enumerate(r):
            if i % 100 == 0 and change(row):
                n += 1
            w.writerow(row)
    return n


def main(bundle, out):
    bundle, out = Path(bundle), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "periods.csv").write_bytes((bundle / "periods.csv").read_bytes())

    def member(row):
        row["display_name"] += " (renamed)"
        return True

    def account(row):
        row["balance"] = cents_plus(row["balance"], 100)
        row["tax_basis"] = cents_plus(row["tax_basis"], 100)
        return True


    members = rewrite(bundle / "members.csv", out / "members.csv", member)
    accounts = rewrite(bundle / "capital_accounts.csv", out / "capital_accounts.csv", account)
    ends = {
        "Q1 2025": "2025-03-31",
        "Q2 2025": "2025-06-30",
        "Q3 2025": "2025-09-30",
        "Q4 2025": "2025-12-31",
        "Q1 2026": "2026-03-31",
    }
    with open(bundle / "contributions.csv", newline="") as f, open(out / "contributions.csv", "w", newline="") as o:
        r = csv.DictReader(f)
        w = csv.DictWriter(o, fieldnames=r.fieldnames, lineterminator="\n")
        w.writeheader()
        due, changed = False, 0
        for i, row in enumerate(r):
            # From every hundredth row on, approve the next pending labor contribution.
            if i % 100 == 0:
                due = True
            if due and row["status"] == "pending" and row["contribution_type"] == "labor":
                row["status"], row["approved_at"] = "approved", ends.get(row["period_name"], "2026-03-31")
                due, changed = False, changed + 1
            w.writerow(row)
    print(f"changed {members} members, {accounts} capital accounts, {changed} contributions")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
