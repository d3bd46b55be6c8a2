#!/usr/bin/env python3
"""merge.py — the `merge` stage: add up the analyse partials into the day's report.

Usage: merge.py PARTIALS_DIR REPORT.csv

PARTIALS_DIR is what the analyse fan-out wrote ({stages.analyse}): one JSON file per chunk task,
as analyse.py writes them. REPORT gets one row per (date, region), sorted, then one `ALL` row
per date with the day's totals:

  date,region,rows,quantity,revenue
  2026-12-01,East,78,301,12345.67
  ...
  2026-12-01,ALL,313,1234,56789.01

Revenue is added in whole cents and printed with two decimals. Exits 2 with a message when the
directory is missing or empty, when a partial is not valid JSON or lacks a field, or when two
partials claim the same chunk.
Python 3 standard library only.
"""

import csv
import json
import os
import sys

FIELDS = ("rows", "quantity", "revenue_cents")


def fail(msg: str):
    print(f"merge.py: {msg}", file=sys.stderr)
    sys.exit(2)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def main(argv: list) -> int:
    if len(argv) != 3:
        print("Usage: merge.py PARTIALS_DIR REPORT.csv", file=sys.stderr)
        return 2
    src, dst = argv[1:]
    if not os.path.isdir(src):
        fail(f"{src}: not a directory (expected the analyse stage's output)")
    names = sorted(n for n in os.listdir(src) if n.endswith(".json"))
    if not names:
        fail(f"{src}: no .json partials in it")
    totals, chunks, rows_in = {}, {}, 0
    for name in names:
        path = os.path.join(src, name)
        try:
            with open(path, encoding="utf-8") as f:
                part = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            fail(f"{path}: not a readable JSON partial ({e})")
        try:
            chunk, groups, rows = part["chunk"], part["groups"], part["rows"]
            if chunk in chunks:
                fail(f"{path}: chunk {chunk} is also in {chunks[chunk]}")
            chunks[chunk] = name
            counted = 0
            for g in groups:
                key = (str(g["date"]), str(g["region"]))
                t = totals.setdefault(key, dict.fromkeys(FIELDS, 0))
                for k in FIELDS:
                    if not isinstance(g[k], int) or isinstance(g[k], bool):
                        fail(f"{path}: {k} = {g[k]!r} is not an integer")
                    t[k] += g[k]
                counted += g["rows"]
        except (KeyError, TypeError) as e:
            fail(f"{path}: not an analyse partial (missing or malformed {e})")
        if counted != rows:
            fail(f"{path}: its groups add up to {counted} rows, it says {rows}")
        rows_in += rows
    days = {}
    for (date, _), t in totals.items():
        d = days.setdefault(date, dict.fromkeys(FIELDS, 0))
        for k in FIELDS:
            d[k] += t[k]
    try:
        with open(dst, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["date", "region", "rows", "quantity", "revenue"])
            for (date, region), t in sorted(totals.items()):
                w.writerow([date, region, t["rows"], t["quantity"], money(t["revenue_cents"])])
            for date, t in sorted(days.items()):
                w.writerow([date, "ALL", t["rows"], t["quantity"], money(t["revenue_cents"])])
    except OSError as e:
        fail(f"cannot write {dst}: {e}")
    print(f"merge.py: {len(names)} partials, {rows_in} rows, {len(totals)} (date, region) "
          "groups", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
