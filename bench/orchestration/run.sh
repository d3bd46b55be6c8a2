#!/usr/bin/env bash
# Orchestration cost per task: N no-op tasks through `sluice run` (release build), side by side
# with `xargs -P SLOTS` running the very same commands, in one run.
#
# The task is `sh -c "printf '{...}' > OUTPUT"`: no work, so what is measured is what sluice
# adds per task (plan, launch, process pool, events, job table, aggregate). For each N:
#   sluice  wall time; its own CPU (user+sys of the sluice process, not of the tasks) per task;
#           the tasks' CPU per task; peak RSS; size of sluice.db (+ WAL)
#   xargs   wall time of the same N commands, SLOTS at a time, and the CPU per task of that
#           side (xargs's forks and the tasks; both sides measured by measure.py)
# and the ratio of the two wall times. The pipeline's parallelism is SLOTS and `sluice run`
# gets --max-parallel SLOTS: at most SLOTS task processes at once, as for xargs.
#
# Each N runs ROUNDS times, sluice and xargs taking turns to go first; the table has the median
# of each column (the ratio is of the median walls), and each round's walls go to stderr.
#
# With PRINT=1 each task also prints a line ("task N"), as most real tasks do: sluice keeps it
# in the job's logs (logs/<job>/succeeded.log), xargs's side appends it to one file.
#
# Usage: bench/orchestration/run.sh      knobs: NS="1000 10000 100000" SLOTS=2 SKIP_BUILD=1
#                                                ROUNDS=3 TIMEOUT=3600 (s per sluice run) PRINT=1
# Needs: python3 (bench/orchestration/measure.py samples /proc).
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sluice-target}"
NS="${NS:-1000 10000 100000}"
SLOTS="${SLOTS:-2}"
TIMEOUT="${TIMEOUT:-3600}"
ROUNDS="${ROUNDS:-3}"
SLUICE="$CARGO_TARGET_DIR/release/sluice"
MEASURE="$(pwd)/bench/orchestration/measure.py"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p sluice-cli >&2
fi

calc() { awk "BEGIN { print $1 }"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say_sluice=""; say_xargs=""
if [ -n "${PRINT:-}" ]; then say_sluice="echo task {n}; "; say_xargs="echo task {}; "; fi
cat > "$work/pipeline.toml" <<TOML
name = "noop"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "${say_sluice}printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
timeout_seconds = 600
[parallelism]
max = $SLOTS
[aggregate]
group_by = "k"
sum = ["n"]
TOML

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_sluice() { # N DIR INPUT -> "wall own tasks rss db" on stdout, or nothing if it did not finish
  local n=$1 dir=$2 in=$3 m
  m=$(timeout "$TIMEOUT" python3 "$MEASURE" "$dir/run.out" \
      "$SLUICE" run "$in" --pipeline "$work/pipeline.toml" --workdir "$dir/w" \
      --max-parallel "$SLOTS") || true
  if [ -z "$m" ] || ! grep -q "state      SUCCEEDED" "$dir/run.out"; then
    echo "sluice did not finish $n tasks in ${TIMEOUT}s (or failed): $(tail -1 "$dir/run.out")" >&2
    return
  fi
  python3 -c "import json,sys; m=json.loads(sys.argv[1]); print(m['wall'], m['own_cpu'], m['children_cpu'], m['peak_rss'])" "$m" | tr '\n' ' '
  du -cb "$dir"/w/sluice.db* | tail -1 | cut -f1
}

# The xargs side as a script of its own (N, DIR), so measure.py can run it as it runs sluice.
cat > "$work/xargs.sh" <<SH
seq 1 "\$1" | xargs -P $SLOTS -I{} sh -c "${say_xargs}printf '{\"k\": \"x\", \"n\": %s}' {} > \$2/out/{}.json" > "\$2/xargs.log"
SH

run_xargs() { # N DIR -> "wall tasks" on stdout, measured as sluice is (measure.py)
  local n=$1 dir=$2 m
  mkdir -p "$dir/out"
  m=$(python3 "$MEASURE" "$dir/xargs.out" sh "$work/xargs.sh" "$n" "$dir")
  [ "$(ls "$dir/out" | wc -l)" -eq "$n" ] || { echo "xargs wrote the wrong number of files" >&2; exit 1; }
  python3 -c "import json,sys; m=json.loads(sys.argv[1]); print(m['wall'], m['children_cpu'])" "$m"
}

echo "| tasks | slots | sluice wall | sluice CPU/task | tasks' CPU/task | sluice peak RSS | sluice.db | xargs -P $SLOTS wall | xargs side CPU/task | sluice / xargs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $NS; do
  in="$work/in$n.csv"
  { echo n; seq 1 "$n"; } > "$in"
  sluice_runs=(); xargs_runs=()
  for r in $(seq 1 "$ROUNDS"); do
    # Alternating which goes first: the machine drifts, and what one run leaves behind (page
    # cache, a directory of N new files) may help or tax the next.
    if [ $((r % 2)) -eq 1 ]; then order="sluice xargs"; else order="xargs sluice"; fi
    for who in $order; do
      dir="$work/n$n-r$r-$who"
      mkdir -p "$dir"
      if [ "$who" = sluice ]; then
        row=$(run_sluice "$n" "$dir" "$in")
        [ -n "$row" ] && sluice_runs+=("$row")
      else
        xargs_runs+=("$(run_xargs "$n" "$dir")")
      fi
    done
  done
  if [ "${#sluice_runs[@]}" -eq 0 ]; then
    echo "| $n | $SLOTS | not finished in ${TIMEOUT}s (or failed) | | | | | | |"
    continue
  fi
  col() { # RUNS-ARRAY-NAME FIELD -> the median of that field over the runs
    local -n runs=$1
    for row in "${runs[@]}"; do echo "$row" | cut -d' ' -f"$2"; done | median
  }
  wall=$(col sluice_runs 1); own=$(col sluice_runs 2); tasks=$(col sluice_runs 3)
  rss=$(col sluice_runs 4); db=$(col sluice_runs 5)
  xwall=$(col xargs_runs 1); xtasks=$(col xargs_runs 2)
  printf '| %d | %d | %.1f s | %.2f ms | %.2f ms | %.0f MiB | %.1f MiB | %.1f s | %.2f ms | %.2fx |\n' \
    "$n" "$SLOTS" "$wall" "$(calc "$own * 1000 / $n")" "$(calc "$tasks * 1000 / $n")" \
    "$(calc "$rss / 1048576")" "$(calc "$db / 1048576")" "$xwall" "$(calc "$xtasks * 1000 / $n")" \
    "$(calc "$wall / $xwall")"
  if [ "$ROUNDS" -gt 1 ]; then
    echo "  $n tasks, each round: sluice $(for r in "${sluice_runs[@]}"; do printf '%.1f ' "${r%% *}"; done)s; xargs $(for r in "${xargs_runs[@]}"; do printf '%.1f ' "${r%% *}"; done)s" >&2
  fi
  # Not deleted here: on ext4, deleting N files makes every file created in the next half
  # minute slower (new inodes skip recently deleted ones), which would tax the next run. All
  # runs' files go when the script ends.
done
