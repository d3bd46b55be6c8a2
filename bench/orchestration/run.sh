#!/usr/bin/env bash
# Orchestration cost per task: N no-op tasks through `sluice run` (release build), side by side
# with `xargs -P SLOTS` running the very same commands, in one run.
#
# The task is `sh -c "printf '{...}' > OUTPUT"`: no work, so what is measured is what sluice
# adds per task (plan, launch, process pool, events, job table, aggregate). For each N:
#   sluice  wall time; its own CPU (user+sys of the sluice process, not of the tasks) per task;
#           the tasks' CPU per task; peak RSS; size of sluice.db (+ WAL)
#   xargs   wall time of the same N commands, SLOTS at a time
# and the ratio of the two wall times. The pipeline's parallelism is SLOTS and `sluice run`
# gets --max-parallel SLOTS: at most SLOTS task processes at once, as for xargs.
#
# Usage: bench/orchestration/run.sh      knobs: NS="1000 10000 100000" SLOTS=2 SKIP_BUILD=1
#                                                TIMEOUT=3600 (s per sluice run)
# Needs: python3 (bench/orchestration/measure.py samples /proc).
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sluice-target}"
NS="${NS:-1000 10000 100000}"
SLOTS="${SLOTS:-2}"
TIMEOUT="${TIMEOUT:-3600}"
SLUICE="$CARGO_TARGET_DIR/release/sluice"
MEASURE="$(pwd)/bench/orchestration/measure.py"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p sluice-cli >&2
fi

calc() { awk "BEGIN { print $1 }"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat > "$work/pipeline.toml" <<TOML
name = "noop"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
timeout_seconds = 600
[parallelism]
max = $SLOTS
[aggregate]
group_by = "k"
sum = ["n"]
TOML

echo "| tasks | slots | sluice wall | sluice CPU/task | tasks' CPU/task | sluice peak RSS | sluice.db | xargs -P $SLOTS wall | sluice / xargs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $NS; do
  dir="$work/n$n"
  mkdir -p "$dir/out"
  { echo n; seq 1 "$n"; } > "$dir/in.csv"

  m=$(timeout "$TIMEOUT" python3 "$MEASURE" "$dir/run.out" \
      "$SLUICE" run "$dir/in.csv" --pipeline "$work/pipeline.toml" --workdir "$dir/w" \
      --max-parallel "$SLOTS") || true
  if [ -z "$m" ] || ! grep -q "state      SUCCEEDED" "$dir/run.out"; then
    echo "| $n | $SLOTS | not finished in ${TIMEOUT}s (or failed: $(tail -1 "$dir/run.out")) | | | | | | |"
    continue
  fi
  field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$m" "$1"; }
  wall=$(field wall); own=$(field own_cpu); tasks=$(field children_cpu); rss=$(field peak_rss)
  db=$(du -cb "$dir"/w/sluice.db* | tail -1 | cut -f1)

  start=$(date +%s.%N)
  seq 1 "$n" | xargs -P "$SLOTS" -I{} sh -c "printf '{\"k\": \"x\", \"n\": %s}' {} > $dir/out/{}.json"
  end=$(date +%s.%N)
  xwall=$(calc "$end - $start")
  [ "$(ls "$dir/out" | wc -l)" -eq "$n" ] || { echo "xargs wrote the wrong number of files" >&2; exit 1; }

  printf '| %d | %d | %.1f s | %.2f ms | %.2f ms | %.0f MiB | %.1f MiB | %.1f s | %.2fx |\n' \
    "$n" "$SLOTS" "$wall" "$(calc "$own * 1000 / $n")" "$(calc "$tasks * 1000 / $n")" \
    "$(calc "$rss / 1048576")" "$(calc "$db / 1048576")" "$xwall" "$(calc "$wall / $xwall")"
  # Not deleted here: on ext4, deleting N files makes every file created in the next half
  # minute slower (new inodes skip recently deleted ones), which would tax the next run. All
  # runs' files go when the script ends.
done
