"""A/B comparison of two `sluice` binaries on the ASL benchmark's definitions.

  python3 bench/asl/ab.py BEFORE_BINARY AFTER_BINARY [ROUNDS]

On a shared machine a single timed run (what bench/asl/run.sh does) moves by tens of percent
with the load of other processes. This runs the two binaries alternately, ROUNDS times each
(default 9), on the same inputs, and reports for each the least wall time and the least CPU
time (user + system) seen: both binaries meet the same load, and the minimum is the run the
load disturbed least. (Peak RSS is bench/asl/run.sh's business: a child's rusage here would
include the Python process it was forked from.) Inputs come from bench/asl/gen.py (inline N = 1,000 and
100,000; distributed with the items in the input, N = 100,000). Every run must exit 0.
"""

import os
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
binaries = {"before": sys.argv[1], "after": sys.argv[2]}
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 9


def gen(*args: str) -> str:
    return subprocess.run([sys.executable, os.path.join(here, "gen.py"), *args],
                          check=True, capture_output=True, text=True).stdout


with tempfile.TemporaryDirectory() as work:
    files = {}
    for name, args in {"inline": ("definition", "INLINE"), "dist": ("definition", "DISTRIBUTED"),
                       "1000": ("input", "1000"), "100000": ("input", "100000")}.items():
        files[name] = os.path.join(work, name + ".json")
        with open(files[name], "w") as f:
            f.write(gen(*args))
    for definition, n in (("inline", "1000"), ("inline", "100000"), ("dist", "100000")):
        wall = {k: float("inf") for k in binaries}
        cpu = {k: float("inf") for k in binaries}
        for _ in range(rounds):
            for key, binary in binaries.items():
                start = time.perf_counter()
                proc = subprocess.Popen([binary, "asl", "run", files[definition], "--input-file",
                                         files[n], "--state-machine-name", "bench"],
                                        stdout=subprocess.DEVNULL)
                _, status, usage = os.wait4(proc.pid, 0)
                elapsed = time.perf_counter() - start
                if status != 0:
                    sys.exit(f"{binary} failed on {definition} N={n} (status {status})")
                wall[key] = min(wall[key], elapsed)
                cpu[key] = min(cpu[key], usage.ru_utime + usage.ru_stime)
        print(f"{definition:7} N={n:>6}  wall {wall['before'] * 1000:7.1f} -> {wall['after'] * 1000:7.1f} ms"
              f" ({wall['after'] / wall['before']:.2f}x)  cpu {cpu['before'] * 1000:7.1f} -> "
              f"{cpu['after'] * 1000:7.1f} ms ({cpu['after'] / cpu['before']:.2f}x)")
