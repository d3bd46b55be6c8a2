#!/usr/bin/env bash
# Benchmark ber-sim's throughput (bits/s per core) and compare it with the same
# algorithm in GNU Octave (ber.m, vectorised per frame like the AWS sample) and
# numpy (ber.py). Octave/numpy runs are skipped with a message if not installed.
#
# Usage: bench/ber-sim/run.sh        (from anywhere; knobs via environment)
#   EBN0=4 FRAMES=4096 BPF=30000     ber-sim size: 1 task of FRAMES x BPF bits
#   REF_FRAMES=256                   frames for Octave/numpy (same frame size; they are slow)
#   REPEAT=3                         best-of-N runs per configuration
#   FULL_TASK=1                      also time one full-size task (4096 x 300000 bits)
#
# "per core" = bits / (user + sys CPU seconds): robust on a shared machine,
# where wall time also counts time spent waiting for a core.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sluice-target}"
EBN0="${EBN0:-4}"
FRAMES="${FRAMES:-4096}"
BPF="${BPF:-30000}"
REF_FRAMES="${REF_FRAMES:-256}"
REPEAT="${REPEAT:-3}"
FULL_TASK="${FULL_TASK:-1}"
SEED=1
# One thread for the interpreters' math libraries too: we compare per core.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "# ber-sim benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(grep -c ^processor /proc/cpuinfo) CPUs, load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# rustc: $(rustc --version)"
cargo build --release -p ber-sim --quiet
BIN="$CARGO_TARGET_DIR/release/ber-sim"

printf '%-22s %7s %12s %9s %9s %14s %14s\n' tool threads bits wall_s cpu_s bits/s_wall bits/s_per_core
declare -A PER_CORE

# measure LABEL THREADS BITS CMD... : best-of-REPEAT by CPU time; prints a row.
measure() {
  local label="$1" threads="$2" bits="$3"
  shift 3
  local best_cpu="" best_wall="" wall user sys cpu
  for _ in $(seq "$REPEAT"); do
    TIMEFORMAT='%R %U %S'
    { time "$@" >"$work/out" 2>"$work/err"; } 2>"$work/time" || {
      echo "  $label failed:"; sed 's/^/    /' "$work/err"; return 1; }
    read -r wall user sys <"$work/time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
    if [[ -z "$best_cpu" ]] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
      best_cpu="$cpu"; best_wall="$wall"
    fi
  done
  local per_core
  per_core=$(awk -v b="$bits" -v c="$best_cpu" 'BEGIN { printf "%.3e", b / c }')
  PER_CORE["$label"]="$per_core"
  printf '%-22s %7s %12s %9s %9s %14s %14s\n' "$label" "$threads" "$bits" "$best_wall" "$best_cpu" \
    "$(awk -v b="$bits" -v w="$best_wall" 'BEGIN { printf "%.3e", b / w }')" "$per_core"
}

# loop_rate LABEL: the interpreters' CPU time above includes start-up (~0.2-0.5 s);
# also take the rate of their simulation loop alone (elapsed_s in their JSON
# output, single-threaded) and keep the better of the two, which favours them.
loop_rate() {
  local label="$1" line rate
  line="$(cat "$work/out")"
  echo "  $label: $line"
  rate=$(echo "$line" | sed -E 's/.*"bits": ([0-9]+).*"elapsed_s": ([0-9.e+-]+).*/\1 \2/' |
    awk '{ printf "%.3e", $1 / $2 }')
  echo "  $label simulation loop only: $rate bits/s"
  if awk -v a="$rate" -v b="${PER_CORE[$label]}" 'BEGIN { exit !(a > b) }'; then
    PER_CORE["$label"]="$rate"
  fi
}

bits=$((FRAMES * BPF))
for kernel in $("$BIN" --help >/dev/null && echo portable avx2 avx512); do
  # Only kernels this CPU supports (ber-sim refuses the others).
  "$BIN" --ebn0-db 0 --seed 0 --frames 1 --bits-per-frame 8 --kernel "$kernel" --output - >/dev/null 2>&1 || continue
  measure "ber-sim ($kernel)" 1 "$bits" "$BIN" --ebn0-db "$EBN0" --seed "$SEED" --frames "$FRAMES" \
    --bits-per-frame "$BPF" --threads 1 --kernel "$kernel" --output -
done
measure "ber-sim (auto)" 2 "$bits" "$BIN" --ebn0-db "$EBN0" --seed "$SEED" --frames "$FRAMES" \
  --bits-per-frame "$BPF" --threads 2 --output -

ref_bits=$((REF_FRAMES * BPF))
if command -v octave-cli >/dev/null 2>&1; then
  measure "octave" 1 "$ref_bits" octave-cli --no-gui --quiet bench/ber-sim/ber.m "$EBN0" "$REF_FRAMES" "$BPF" "$SEED"
  loop_rate octave
else
  echo "octave: not installed, skipped (apt-get install -y octave)"
fi
if python3 -c 'import numpy' >/dev/null 2>&1; then
  measure "numpy" 1 "$ref_bits" python3 bench/ber-sim/ber.py "$EBN0" "$REF_FRAMES" "$BPF" "$SEED"
  loop_rate numpy
else
  echo "numpy: not installed, skipped (pip install numpy)"
fi

best_label="ber-sim (auto)"
for k in avx512 avx2 portable; do
  if [[ -n "${PER_CORE["ber-sim ($k)"]:-}" ]]; then best_label="ber-sim ($k)"; break; fi
done
best="${PER_CORE[$best_label]}"
echo
echo "best single-thread ber-sim: $best bits/s per core ($best_label)"
for ref in octave numpy; do
  if [[ -n "${PER_CORE[$ref]:-}" ]]; then
    echo "speed-up vs $ref per core (vs its best rate ${PER_CORE[$ref]}): $(awk -v a="$best" -v b="${PER_CORE[$ref]}" 'BEGIN { printf "%.0fx", a / b }')"
  fi
done
job_bits=$((200 * 4096 * 300000))
echo "projected full job ($job_bits bits) on 2 cores at that rate: $(awk -v j="$job_bits" -v r="$best" 'BEGIN { printf "%.0f s (%.1f min)", j / (2 * r), j / (2 * r) / 60 }')"

if [[ "$FULL_TASK" == 1 ]]; then
  echo
  echo "one full-size task (4096 x 300000 bits, 2 threads):"
  TIMEFORMAT='  wall %R s, user %U s, sys %S s'
  time "$BIN" --ebn0-db 12 --seed 7 --frames 4096 --bits-per-frame 300000 --threads 2 --output "$work/full.json"
fi
