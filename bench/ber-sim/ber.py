#!/usr/bin/env python3
"""Reference BER simulation with numpy, vectorised per frame (same algorithm as
ber.m and the AWS sample): random bits, BPSK 2b-1, Gaussian noise, hard decision.

Usage: ber.py EBN0_DB FRAMES BITS_PER_FRAME SEED
Prints one JSON line: {"tool": "numpy", "ebn0_db", "bits", "errors", "ber", "elapsed_s"}.
"""
import json
import sys
import time

import numpy as np


def main() -> int:
    if len(sys.argv) != 5:
        print("usage: ber.py EBN0_DB FRAMES BITS_PER_FRAME SEED", file=sys.stderr)
        return 2
    try:
        ebn0_db = float(sys.argv[1])
        frames, bpf, seed = (int(a) for a in sys.argv[2:])
    except ValueError as e:
        print(f"ber.py: bad arguments: {e}", file=sys.stderr)
        return 2
    if frames < 1 or bpf < 1:
        print("ber.py: frames and bits per frame must be >= 1", file=sys.stderr)
        return 2
    # PCG64 + numpy's ziggurat normal: the fastest stock numpy path.
    rng = np.random.default_rng(seed)
    sigma = (1.0 / (2.0 * 10 ** (ebn0_db / 10))) ** 0.5
    errors = 0
    t0 = time.perf_counter()
    for _ in range(frames):
        b = rng.integers(0, 2, bpf, dtype=np.int8)
        s = 2.0 * b - 1.0
        r = s + sigma * rng.standard_normal(bpf)
        errors += int(np.count_nonzero((r > 0) != (b == 1)))
    elapsed = time.perf_counter() - t0
    bits = frames * bpf
    print(json.dumps({"tool": "numpy", "ebn0_db": ebn0_db, "bits": bits, "errors": errors,
                      "ber": errors / bits, "elapsed_s": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
