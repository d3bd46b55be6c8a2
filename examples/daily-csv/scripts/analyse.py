#!/usr/bin/env python3
"""analyse.py — one `analyse` task: totals of one chunk of clean sales rows.

Usage: analyse.py ROWS.csv OUTPUT.json CHUNK

ROWS is the chunk sluice hands the task ({rows}: the header and this chunk's rows of clean's
CSV, bad rows already left out). OUTPUT gets one JSON object:

  {"chunk": 3, "rows": 50,
   "groups": [{"date": "2026-12-01", "region": "East", "rows": 12, "quantity": 40,
               "revenue_cents": 123456}, ...]}

Revenue is quantity x unit price, in whole cents, computed with exact decimals (a price with
more than two decimals is rounded half-even to the cent), so the merge can add partials
without floating-point drift. Exits 2 with a message naming the line when a row does not have
what sluice's column check should already have guaranteed (a missing column, a quantity that
is not an integer, a price that is not a finite non-negative number).
Python 3 standard library only.
"""

import csv
import json
import sys
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

COLUMNS = ["date", "store", "region", "product", "quantity", "unit_price"]
CENT = Decimal("0.01")


def fail(msg: str):
    print(f"analyse.py: {msg}", file=sys.stderr)
    sys.exit(2)


def main(argv: list) -> int:
    if len(argv) != 4:
        print("Usage: analyse.py ROWS.csv OUTPUT.json CHUNK", file=sys.stderr)
        return 2
    src, dst, chunk = argv[1:]
    try:
        chunk = int(chunk)
    except ValueError:
        fail(f"CHUNK must be an integer, got {chunk!r}")
    groups = {}
    n = 0
    try:
        with open(src, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                fail(f"{src}:1: missing column(s) {', '.join(missing)} in {reader.fieldnames}")
            for row in reader:
                line = reader.line_num
                if None in row.values() or None in row:
                    fail(f"{src}:{line}: wrong number of cells")
                try:
                    quantity = int(row["quantity"])
                except ValueError:
                    fail(f"{src}:{line}: quantity {row['quantity']!r} is not an integer")
                try:
                    price = Decimal(row["unit_price"])
                except InvalidOperation:
                    fail(f"{src}:{line}: unit_price {row['unit_price']!r} is not a number")
                if not price.is_finite() or price < 0:
                    fail(f"{src}:{line}: unit_price {row['unit_price']!r} is not a price")
                cents = int(price.quantize(CENT, rounding=ROUND_HALF_EVEN) * 100)
                key = (row["date"], row["region"])
                g = groups.setdefault(key, {"date": key[0], "region": key[1], "rows": 0,
                                            "quantity": 0, "revenue_cents": 0})
                g["rows"] += 1
                g["quantity"] += quantity
                g["revenue_cents"] += quantity * cents
                n += 1
    except FileNotFoundError:
        fail(f"{src}: no such file")
    except (UnicodeDecodeError, csv.Error) as e:
        fail(f"{src}: not a readable CSV ({e})")
    result = {"chunk": chunk, "rows": n, "groups": [groups[k] for k in sorted(groups)]}
    try:
        with open(dst, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    except OSError as e:
        fail(f"cannot write {dst}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
