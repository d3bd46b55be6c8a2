#!/usr/bin/env python3
"""notify.py — the pipeline's [notify] command: append the job summary to a log file.

Usage: notify.py LOG.jsonl JOB_ID STATUS   (the job summary, as JSON, on stdin)

sluice runs it when a job ends, with the summary on stdin. It appends one line to LOG (created
with its directory when missing):

  {"received_at": "...", "job_id": "...", "status": "SUCCEEDED", "summary": {...}}

A stand-in for mail or chat: swap it for anything that reads JSON on stdin. Exits 2 with a
message when stdin is empty or not a JSON object, or the log cannot be written (sluice retries
a failing notification a few times, logs it, and never changes the job's outcome).
Python 3 standard library only.
"""

import json
import os
import sys
from datetime import datetime, timezone


def fail(msg: str):
    print(f"notify.py: {msg}", file=sys.stderr)
    sys.exit(2)


def main(argv: list) -> int:
    if len(argv) != 4:
        print("Usage: notify.py LOG.jsonl JOB_ID STATUS  < summary.json", file=sys.stderr)
        return 2
    log, job_id, status = argv[1:]
    text = sys.stdin.read()
    if not text.strip():
        fail("no job summary on stdin")
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"the job summary on stdin is not JSON ({e})")
    if not isinstance(summary, dict):
        fail(f"the job summary on stdin is a {type(summary).__name__}, not a JSON object")
    entry = {
        "received_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "job_id": job_id,
        "status": status,
        "summary": summary,
    }
    try:
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError as e:
        fail(f"cannot append to {log}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
