#!/usr/bin/env python3
"""Runs a command and prints, as JSON: wall seconds, the process's own CPU seconds (user+sys of
the process itself, not of the task processes it starts), its children's CPU seconds, and its
peak resident set (VmHWM), sampled from /proc every 10 ms until it exits.

The last sample can miss up to 10 ms of the process's own CPU; for runs of seconds that is
below the noise of a shared machine. The children's CPU is taken once the process has been
waited for (the CPU of everything it started and waited for, minus its own), so it also counts
grandchildren that /proc only adds when their parent exits (`sh -c "xargs ..."`).
"""
import json
import os
import resource
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICK
    children = (int(fields[13]) + int(fields[14])) / TICK
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return own, children, hwm


def main():
    out = open(sys.argv[1], "w")
    start = time.monotonic()
    proc = subprocess.Popen(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
    own = children = peak = 0
    while proc.poll() is None:
        try:
            own, children, hwm = sample(proc.pid)
            peak = max(peak, hwm)
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.01)
    wall = time.monotonic() - start
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = max(children, waited.ru_utime + waited.ru_stime - own)
    print(json.dumps({"rc": proc.returncode, "wall": wall, "own_cpu": own,
                      "children_cpu": children, "peak_rss": peak}))


if __name__ == "__main__":
    main()
