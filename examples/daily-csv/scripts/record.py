#!/usr/bin/env python3
"""record.py — the `record` stage: upsert the day's report into a SQLite database.

Usage: record.py REPORT.csv DATABASE.sqlite JOB_ID

REPORT is merge.py's report.csv ({stages.merge}). Each of its rows (one per date and region,
plus the `ALL` row of each date) is upserted into the table

  daily_sales(date, region, rows, quantity, revenue_cents, job_id, recorded_at)
  PRIMARY KEY (date, region)

so running the same day again replaces that day's figures instead of adding to them. The
database file and its directory are created when missing; everything is written in one
transaction. The stage declares writes = "nothing": this is a side effect, not an output.
Exits 2 with a message when the report is missing, malformed or empty, or the database cannot
be opened.
Python 3 standard library only.
"""

import csv
import os
import re
import sqlite3
import sys
from datetime import datetime, timezone

COLUMNS = ["date", "region", "rows", "quantity", "revenue"]
MONEY = re.compile(r"^(-?)(\d+)\.(\d{2})$")
SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_sales (
    date          TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    rows          INTEGER NOT NULL,
    quantity      INTEGER NOT NULL,
    revenue_cents INTEGER NOT NULL,
    job_id        TEXT    NOT NULL,
    recorded_at   TEXT    NOT NULL,
    PRIMARY KEY (date, region)
)"""
UPSERT = """
INSERT INTO daily_sales (date, region, rows, quantity, revenue_cents, job_id, recorded_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (date, region) DO UPDATE SET
    rows = excluded.rows, quantity = excluded.quantity, revenue_cents = excluded.revenue_cents,
    job_id = excluded.job_id, recorded_at = excluded.recorded_at"""


def fail(msg: str):
    print(f"record.py: {msg}", file=sys.stderr)
    sys.exit(2)


def cents(text: str, where: str) -> int:
    m = MONEY.match(text)
    if not m:
        fail(f"{where}: revenue {text!r} is not an amount like 123.45")
    sign, units, hundredths = m.groups()
    value = int(units) * 100 + int(hundredths)
    return -value if sign else value


def main(argv: list) -> int:
    if len(argv) != 4:
        print("Usage: record.py REPORT.csv DATABASE.sqlite JOB_ID", file=sys.stderr)
        return 2
    report, db, job_id = argv[1:]
    if not job_id.strip():
        fail("JOB_ID is empty")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    records = []
    try:
        with open(report, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != COLUMNS:
                fail(f"{report}:1: header {header} is not {COLUMNS}")
            for cells in reader:
                where = f"{report}:{reader.line_num}"
                if len(cells) != len(COLUMNS):
                    fail(f"{where}: {len(cells)} cells, expected {len(COLUMNS)}")
                date, region, rows, quantity, revenue = cells
                if not date or not region:
                    fail(f"{where}: empty date or region")
                try:
                    rows, quantity = int(rows), int(quantity)
                except ValueError:
                    fail(f"{where}: rows {rows!r} / quantity {quantity!r} are not integers")
                records.append((date, region, rows, quantity, cents(revenue, where), job_id, now))
    except FileNotFoundError:
        fail(f"{report}: no such file")
    except (UnicodeDecodeError, csv.Error) as e:
        fail(f"{report}: not a readable CSV ({e})")
    if not records:
        fail(f"{report}: no rows to record")
    try:
        parent = os.path.dirname(os.path.abspath(db))
        os.makedirs(parent, exist_ok=True)
        con = sqlite3.connect(db, timeout=30)
        with con:  # one transaction: all rows or none
            con.execute(SCHEMA)
            con.executemany(UPSERT, records)
        con.close()
    except (OSError, sqlite3.Error) as e:
        fail(f"{db}: {e}")
    print(f"record.py: upserted {len(records)} rows into {db} (daily_sales)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
