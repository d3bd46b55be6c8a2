#!/usr/bin/env python3
"""make-data.py — generate the example's landed CSV: one day of point-of-sale lines.

Usage: scripts/make-data.py [--date 2026-12-01] [--rows 320] [--seed 20261201] [--out FILE]

Writes data/sales-<date>.csv (or --out) with the columns
    date,store,region,product,quantity,unit_price
It is deterministic for a given seed, and messy on purpose, like a real export:
  * fixable rows, that clean.py repairs: padded cells, region in the wrong case, a missing
    region (the store's region is known from its other rows), "$" and thousands separators in
    prices, dates written 12/01/2026;
  * a handful of unfixable rows, which clean.py passes on unchanged and the analyse stage
    rejects (bad_rows = "skip"): unparseable or missing quantity / unit_price, a row cut short.
Python 3 standard library only.
"""

import argparse
import csv
import random
import sys

STORES = {
    "S01": "North", "S02": "North", "S03": "North",
    "S04": "South", "S05": "South", "S06": "South",
    "S07": "East", "S08": "East", "S09": "East",
    "S10": "West", "S11": "West", "S12": "West",
}
PRODUCTS = {
    "espresso-beans-1kg": 18.90,
    "filter-papers-100": 3.49,
    "milk-frother": 34.99,
    "grinder-burr": 129.00,
    "travel-mug": 14.50,
    "descaler": 7.25,
    "tea-sampler": 11.80,
    "kettle-gooseneck": 59.95,
    "cold-brew-jar": 22.40,
    "barista-kit": 1249.00,
}
# Unfixable rows, inserted at fixed positions so the file does not depend on the seed for them.
BAD = {
    17: lambda r: r.__setitem__(4, "twelve"),  # quantity is not a number
    58: lambda r: r.__setitem__(4, ""),  # quantity missing
    101: lambda r: r.__setitem__(5, "n/a"),  # unit price not a number
    142: lambda r: r.__setitem__(5, ""),  # unit price missing
    187: lambda r: r.__setitem__(4, "2.5"),  # a fractional quantity: not a count
    233: lambda r: r.__setitem__(5, "12,99.0"),  # mangled separators
    276: lambda r: r.__delitem__(slice(4, None)),  # the row was cut short: no quantity, no price
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default="2026-12-01")
    ap.add_argument("--rows", type=int, default=320)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.rows <= max(BAD):
        print(f"make-data.py: --rows must be more than {max(BAD)}", file=sys.stderr)
        return 2
    y, m, d = args.date.split("-")
    us_date = f"{m}/{d}/{y}"
    rng = random.Random(args.seed)
    out = args.out or f"data/sales-{args.date}.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", "store", "region", "product", "quantity", "unit_price"])
        stores, products = sorted(STORES), sorted(PRODUCTS)
        for i in range(args.rows):
            store = rng.choice(stores)
            product = rng.choice(products)
            qty = rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 10, 24]) if product != "barista-kit" else 1
            price = f"{PRODUCTS[product]:.2f}"
            row = [args.date, store, STORES[store], product, str(qty), price]
            mess = rng.random()
            if mess < 0.05:
                row[1] = f" {store} "
            elif mess < 0.10:
                row[2] = row[2].lower()
            elif mess < 0.13:
                row[2] = ""
            elif mess < 0.18:
                row[5] = f"${PRODUCTS[product]:,.2f}"
            elif mess < 0.40 and product == "barista-kit":
                row[5] = f"{PRODUCTS[product]:,.2f}"
            elif mess < 0.22:
                row[0] = us_date
            if i in BAD:
                BAD[i](row)
            w.writerow(row)
    print(f"wrote {out}: {args.rows} rows, {len(BAD)} of them unfixable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
