#!/usr/bin/env bash
# The BER reference job: its makespan against its tasks' CPU, under `sluice run` and then the
# very same commands under `xargs -P SLOTS`, in one run.
#
#   sluice  makespan (wall), the tasks' CPU, the tasks' CPU / SLOTS, sluice's own CPU, peak RSS;
#           what the slots did (bench/orchestration/slots.py: idle slot-seconds, the tail, the
#           gap from a task's end to the next start)
#   xargs   the 200 commands sluice ran (taken from its events.jsonl), SLOTS at a time
#
# "Makespan over tasks' CPU / SLOTS" is what orchestration and the machine add to the work; the
# xargs row shows what the machine adds on its own.
#
# Usage: bench/orchestration/ber.sh      knobs: SCALE=1 SLOTS=2 SKIP_BUILD=1
# Needs: python3. Takes about 2 x 8.5 minutes at SCALE=1 on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sluice-target}"
SCALE="${SCALE:-1}"
SLOTS="${SLOTS:-2}"
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BENCH="$(pwd)/bench/orchestration"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p sluice-cli -p ber-sim >&2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

m=$(python3 "$BENCH/measure.py" "$work/run.out" "$SLUICE" run examples/ber/ber-job.csv \
    --pipeline examples/ber/pipeline.toml --workdir "$work/w" --scale "$SCALE" \
    --max-parallel "$SLOTS")
grep -q "state      SUCCEEDED" "$work/run.out" || { tail -5 "$work/run.out" >&2; exit 1; }
slots=$(python3 "$BENCH/slots.py" "$work/w" "$SLOTS")

# The same commands, writing beside the run instead of into its data bucket.
mkdir -p "$work/x"
python3 - "$work/w/events.jsonl" "$work/x" "$(dirname "$SLUICE")" > "$work/x/cmds.txt" <<'PY'
import json, os, shlex, sys
events, out, bin_dir = sys.argv[1:]
for line in open(events):
    e = json.loads(line)
    d = e.get("detail", {})
    if e.get("detail-type") != "ECS Task State Change" or d.get("lastStatus") != "STOPPED":
        continue
    argv = d["overrides"]["containerOverrides"][0]["command"]
    argv = [os.path.join(bin_dir, argv[0])] + [
        os.path.join(out, os.path.basename(a)) if a.endswith(".json") else a for a in argv[1:]
    ]
    print(" ".join(shlex.quote(a) for a in argv))
PY
x=$(python3 "$BENCH/measure.py" "$work/x/run.out" \
    sh -c "xargs -P $SLOTS -d '\n' -I{} sh -c {} < '$work/x/cmds.txt'")

python3 - "$m" "$x" "$slots" "$SLOTS" <<'PY'
import json, sys
m, x, slots, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
print("| | makespan | tasks' CPU | tasks' CPU / slots | makespan over it | sluice's own CPU | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, r, own in (("`sluice run`", m, True), (f"`xargs -P {n}`", x, False)):
    per = r["children_cpu"] / n
    own_cpu = f'{r["own_cpu"]:.2f} s ({100 * r["own_cpu"] / r["children_cpu"]:.2f}%)' if own else "—"
    rss = f'{r["peak_rss"] / 1048576:.0f} MiB' if own else "—"
    print(f'| {name} | {r["wall"]:.1f} s | {r["children_cpu"]:.1f} s | {per:.1f} s | '
          f'{100 * (r["wall"] / per - 1):+.1f}% | {own_cpu} | {rss} |')
print()
print(f'slots under sluice: busy {slots["busy_slot_s"]:.1f} slot-s, idle {slots["idle_slot_s"]:.1f} '
      f'(the tail {slots["tail_idle_slot_s"]:.1f}); from a task\'s end to the next start '
      f'{slots["gap_mean_ms"]:.2f} ms on average, {slots["gap_max_ms"]:.0f} ms at most')
PY
