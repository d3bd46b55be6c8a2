#!/usr/bin/env python3
"""What the slots did during a `sluice run`, from its events.jsonl.

Every task's STOPPED event (the ECS "Task State Change" the local pool emits) carries the
process's `startedAt` and `stoppedAt`. From those, for the tasks that ran:

  span         first task start to last task stop
  busy         sum of the tasks' run times (slot-seconds)
  idle         SLOTS x span - busy: slot-seconds no task ran, the tail included
  tail         idle slot-seconds after the first slot ran out of work for good
  gap          from a task's stop to the next start after it (the freed slot's next task), mean
               and longest, in ms

Usage: slots.py WORKDIR SLOTS     (WORKDIR as given to `sluice run --workdir`)
Timestamps are in milliseconds: gaps shorter than a millisecond read as 0 or 1.
"""
import bisect
import json
import sys
from datetime import datetime


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    workdir, slots = sys.argv[1], int(sys.argv[2])
    runs = []
    with open(f"{workdir}/events.jsonl") as f:
        for line in f:
            event = json.loads(line)
            detail = event.get("detail", {})
            if event.get("detail-type") != "ECS Task State Change":
                continue
            if detail.get("lastStatus") != "STOPPED" or "startedAt" not in detail:
                continue
            if detail.get("stopCode") == "TaskFailedToStart":
                continue
            runs.append((when(detail["startedAt"]), when(detail["stoppedAt"])))
    if not runs:
        sys.exit(f"{workdir}/events.jsonl: no stopped tasks")
    runs.sort()
    starts = [s for s, _ in runs]
    first, last = starts[0], max(e for _, e in runs)
    span = last - first
    busy = sum(e - s for s, e in runs)
    # The tail: from the last start (no work left to hand out) to the end, the slots that had
    # already finished sat idle.
    last_start = starts[-1]
    tail = slots * (last - last_start) - sum(
        min(e, last) - max(s, last_start) for s, e in runs if e > last_start
    )
    gaps = []
    for _, end in runs:
        i = bisect.bisect_left(starts, end)
        if i < len(starts):
            gaps.append(starts[i] - end)
    print(
        json.dumps(
            {
                "tasks": len(runs),
                "span_s": round(span, 3),
                "busy_slot_s": round(busy, 3),
                "idle_slot_s": round(slots * span - busy, 3),
                "tail_idle_slot_s": round(tail, 3),
                "gap_mean_ms": round(1000 * sum(gaps) / len(gaps), 3) if gaps else None,
                "gap_max_ms": round(1000 * max(gaps), 3) if gaps else None,
            }
        )
    )


if __name__ == "__main__":
    main()
