#!/usr/bin/env python3
"""How long another process waits for the job table's write lock while `sluice run` is busy.

Starts `sluice run` on N no-op tasks (2 slots) in a fresh work directory and, while it runs,
takes the write lock of its sluice.db from this process over and over (BEGIN IMMEDIATE, one
read, ROLLBACK), as `sluice cancel` or a second `sluice run` in the same work directory would,
in two ways, alternating:

  sqlite-default  SQLite's own busy handler (what `busy_timeout` installs: sleeps of 1, 2, 5 ...
                  up to 100 ms between tries)
  poll-250us      trying again every 250 microseconds, as sluice's connections do
                  (`wait_for_the_write_lock` in crates/local/src/store.rs)

and prints the median, 90th and 99th percentile and the longest wait of each.

Usage: bench/orchestration/lock_wait.py SLUICE_BINARY [N=10000] [SECONDS=8]
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

PIPELINE = """name = "noop"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "printf '{{\\"k\\": \\"x\\", \\"n\\": %s}}' {n} > {output}"]
timeout_seconds = 600
[parallelism]
max = 2
[aggregate]
group_by = "k"
sum = ["n"]
"""


def take_lock(db, poll):
    """Seconds until BEGIN IMMEDIATE succeeded."""
    start = time.monotonic()
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError:
            if poll is None:
                raise
            time.sleep(poll)
    waited = time.monotonic() - start
    db.execute("SELECT COUNT(*) FROM leases").fetchone()
    db.execute("ROLLBACK")
    return waited


def summary(name, waits):
    waits = sorted(waits)
    if not waits:
        return f"| {name} | 0 | | | | |"
    pick = lambda q: 1000 * waits[min(len(waits) - 1, int(len(waits) * q))]
    return (f"| {name} | {len(waits)} | {pick(0.5):.1f} ms | {pick(0.9):.1f} ms | "
            f"{pick(0.99):.1f} ms | {1000 * waits[-1]:.1f} ms |")


def main():
    sluice = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "pipeline.toml"), "w") as f:
            f.write(PIPELINE)
        with open(os.path.join(work, "in.csv"), "w") as f:
            f.write("n\n" + "".join(f"{i}\n" for i in range(1, n + 1)))
        run = subprocess.Popen(
            [sluice, "run", "in.csv", "--pipeline", "pipeline.toml", "--workdir", "w",
             "--max-parallel", "2"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        db_path = os.path.join(work, "w", "sluice.db")
        while not os.path.exists(db_path) and run.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)  # past planning, into the tasks
        default = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        polling = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        waits = {"sqlite-default": [], "poll-250us": []}
        end = time.monotonic() + seconds
        while time.monotonic() < end and run.poll() is None:
            waits["sqlite-default"].append(take_lock(default, None))
            time.sleep(0.02)
            waits["poll-250us"].append(take_lock(polling, 0.00025))
            time.sleep(0.02)
        still_running = run.poll() is None
        run.wait()
        print(f"sluice run of {n} no-op tasks, probed for {seconds:.0f} s"
              + ("" if still_running else " (the run ended before the probe did)"))
        print("| waiter | tries | median | p90 | p99 | longest |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, w in waits.items():
            print(summary(name, w))


if __name__ == "__main__":
    main()
