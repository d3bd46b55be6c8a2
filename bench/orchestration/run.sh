#!/usr/bin/env bash
# Orchestration cost per task: N no-op tasks through `sluice run` (release build), side by side
# with `xargs -P SLOTS` running the very same commands, in one run.
#
# The task is `sh -c "printf '{...}' > OUTPUT"`: no work, so what is measured is what sluice
# adds per task (plan, launch, process pool, events, job table, aggregate). For each N:
#   sluice  wall time, CPU (user+sys) per task, peak RSS, size of sluice.db (+ WAL)
#   xargs   wall time of the same N commands, SLOTS at a time
# and the ratio of the two wall times.
#
# Usage: bench/orchestration/run.sh      knobs: NS="1000 10000" SLOTS=2 SKIP_BUILD=1
#                                                TIMEOUT=1800 (s per sluice run)
# Needs: /usr/bin/time (apt-get install -y time).
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sluice-target}"
NS="${NS:-1000 10000}"
SLOTS="${SLOTS:-2}"
TIMEOUT="${TIMEOUT:-1800}"
SLUICE="$CARGO_TARGET_DIR/release/sluice"
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 1; }
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

echo "| tasks | slots | sluice wall | sluice CPU/task | sluice peak RSS | sluice.db | xargs -P $SLOTS wall | sluice / xargs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $NS; do
  dir="$work/n$n"
  mkdir -p "$dir/out"
  { echo n; seq 1 "$n"; } > "$dir/in.csv"

  start=$(date +%s.%N)
  if ! timeout "$TIMEOUT" /usr/bin/time -v -o "$dir/time.txt" \
      "$SLUICE" run "$dir/in.csv" --pipeline "$work/pipeline.toml" --workdir "$dir/w" \
      --max-parallel "$SLOTS" > "$dir/run.out" 2>&1; then
    echo "| $n | $SLOTS | not finished in ${TIMEOUT}s (or failed: $(tail -1 "$dir/run.out")) | | | | | |"
    continue
  fi
  end=$(date +%s.%N)
  grep -q "state      SUCCEEDED" "$dir/run.out" || { echo "sluice run failed:" >&2; cat "$dir/run.out" >&2; exit 1; }
  wall=$(calc "$end - $start")
  user=$(awk -F': ' '/User time/ {print $2}' "$dir/time.txt")
  sys=$(awk -F': ' '/System time/ {print $2}' "$dir/time.txt")
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$dir/time.txt")
  db=$(du -cb "$dir"/w/sluice.db* | tail -1 | cut -f1)

  start=$(date +%s.%N)
  seq 1 "$n" | xargs -P "$SLOTS" -I{} sh -c "printf '{\"k\": \"x\", \"n\": %s}' {} > $dir/out/{}.json"
  end=$(date +%s.%N)
  xwall=$(calc "$end - $start")
  [ "$(ls "$dir/out" | wc -l)" -eq "$n" ] || { echo "xargs wrote the wrong number of files" >&2; exit 1; }

  printf '| %d | %d | %.1f s | %.2f ms | %.0f MiB | %.1f MiB | %.1f s | %.1fx |\n' \
    "$n" "$SLOTS" "$wall" "$(calc "($user + $sys) * 1000 / $n")" \
    "$(calc "$rss / 1024")" "$(calc "$db / 1048576")" "$xwall" "$(calc "$wall / $xwall")"
done
