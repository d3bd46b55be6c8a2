#!/usr/bin/env python3
"""clean.py — the `clean` stage: validate and repair one landed daily sales CSV.

Usage: clean.py INPUT.csv OUTPUT.csv

INPUT must have a header with the columns date, store, region, product, quantity, unit_price
(any order, any case; other columns are dropped with a warning). OUTPUT gets those columns in
that order and one row per input row, in the same order, so a line number in OUTPUT is the
same line in INPUT (blank input lines are dropped; a warning says so).

What it repairs (rules that the end-to-end test re-implements independently):
  * every cell is trimmed of surrounding white space;
  * a date written MM/DD/YYYY becomes YYYY-MM-DD;
  * a region is title-cased ("north" -> "North"); a missing region is the store's region,
    taken from the store's other rows in the same file (when they agree on one);
  * a unit price loses a leading "$" and its thousands separators ("$1,249.00" -> "1249.00"),
    only when the separators are well placed (groups of three digits).
What it does not guess: a quantity or price that is not a number, a missing one, a row with
the wrong number of cells. Those rows are passed on unchanged, and the `analyse` stage, which
declares the column types with bad_rows = "skip", leaves them out and lists them, with line
and reason, in its rejects.csv.

Exits 2 with a message on stderr when the input cannot be read as such a CSV at all.
Python 3 standard library only.
"""

import csv
import re
import sys
from collections import Counter, defaultdict

COLUMNS = ["date", "store", "region", "product", "quantity", "unit_price"]
US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")


def fail(msg: str):
    print(f"clean.py: {msg}", file=sys.stderr)
    sys.exit(2)


def fix_date(value: str) -> str:
    m = US_DATE.match(value)
    if m:
        month, day, year = (int(g) for g in m.groups())
        return f"{year:04d}-{month:02d}-{day:02d}"
    return value


def fix_price(value: str) -> str:
    if value.startswith("$"):
        value = value[1:].strip()
    if GROUPED.match(value):
        value = value.replace(",", "")
    return value


def main(argv: list) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    try:
        with open(src, newline="", encoding="utf-8-sig") as f:
            lines = list(enumerate(csv.reader(f), start=1))
    except FileNotFoundError:
        fail(f"{src}: no such file")
    except UnicodeDecodeError as e:
        fail(f"{src}: not UTF-8 text ({e})")
    except csv.Error as e:
        fail(f"{src}: not a readable CSV ({e})")
    if not lines:
        fail(f"{src}: empty file, expected a header with {', '.join(COLUMNS)}")

    header = [h.strip().lower() for h in lines[0][1]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        fail(f"{src}:1: header {lines[0][1]} lacks column(s) {', '.join(missing)}")
    dupes = [c for c, n in Counter(header).items() if n > 1]
    if dupes:
        fail(f"{src}:1: column(s) {', '.join(dupes)} appear more than once")
    extra = [h for h in header if h not in COLUMNS]
    if extra:
        print(f"clean.py: warning: dropping column(s) {', '.join(extra)}", file=sys.stderr)
    index = [header.index(c) for c in COLUMNS]

    rows, blank = [], 0
    for line, cells in lines[1:]:
        if not any(c.strip() for c in cells):
            blank += 1
            continue
        rows.append((line, cells))
    if blank:
        print(f"clean.py: warning: dropped {blank} blank line(s); later line numbers shift",
              file=sys.stderr)

    # The store's region, from the rows that name one.
    seen = defaultdict(Counter)
    for _, cells in rows:
        if len(cells) == len(header):
            store, region = cells[index[1]].strip(), cells[index[2]].strip().title()
            if store and region:
                seen[store][region] += 1
    region_of = {}
    for store, counts in seen.items():
        if len(counts) == 1:
            region_of[store] = next(iter(counts))
        else:
            print(f"clean.py: warning: store {store} appears in regions {dict(counts)}; "
                  "its missing regions stay missing", file=sys.stderr)

    fixed = unfixable = 0
    out_rows = []
    for line, cells in rows:
        if len(cells) != len(header):
            # Cells are missing or extra: which one is which cannot be known. Passed on as is.
            unfixable += 1
            out_rows.append(cells)
            continue
        before = [cells[i] for i in index]
        date, store, region, product, quantity, price = (c.strip() for c in before)
        date = fix_date(date)
        region = region.title() or region_of.get(store, "")
        price = fix_price(price)
        after = [date, store, region, product, quantity, price]
        if after != before:
            fixed += 1
        out_rows.append(after)

    try:
        with open(dst, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            w.writerows(out_rows)
    except OSError as e:
        fail(f"cannot write {dst}: {e}")
    print(f"clean.py: {len(out_rows)} rows, {fixed} repaired, {unfixable} with the wrong "
          "number of cells (left for the analyse stage to reject)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
