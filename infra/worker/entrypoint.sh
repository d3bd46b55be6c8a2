#!/bin/sh
# sluice worker entrypoint (Linux). Downloads the task's inputs from S3, runs the task's command
# (the container command the launch function passes, every placeholder already rendered), then
# uploads what the command wrote.
#
# Contract with the launch function (crates/aws/src/ecs.rs, container_env): an object
# s3://bucket/key is seen in the container at /tmp/sluice/data/bucket/key.
#   SLUICE_INPUTS       what to download first, one per line: "file|dir<TAB>s3://...<TAB>/path"
#                       (the job's input CSV, a chunk of rows, earlier stages' outputs)
#   SLUICE_OUTPUT       where the command writes: a file, or a directory (SLUICE_OUTPUT_KIND)
#   SLUICE_OUTPUT_KIND  file | dir | nothing
#   SLUICE_RESULT_URI   where the output goes: s3://bucket/key, or s3://bucket/prefix/ for a dir
# Exit status: the command's own status when it fails (143 after SIGTERM, e.g. Spot reclaim);
# 75 (EX_TEMPFAIL) when an input cannot be downloaded or the output cannot be uploaded;
# 0 otherwise. A command that exits 0 without writing its output file uploads nothing and exits
# 0: the task-events handler finds no object and reports Sluice.OutputMissing, which is not
# retried by default (the step may have had side effects).
set -u

: "${SLUICE_OUTPUT_KIND:=file}"
: "${SLUICE_OUTPUT:=/tmp/sluice/result.json}"
export SLUICE_OUTPUT

if [ "$#" -eq 0 ]; then
  echo "sluice-entrypoint: no command given" >&2
  exit 64
fi

tab=$(printf '\t')
if [ -n "${SLUICE_INPUTS:-}" ]; then
  printf '%s\n' "$SLUICE_INPUTS" | while IFS="$tab" read -r kind uri path; do
    [ -n "$kind" ] || continue
    case "$kind" in
      file)
        mkdir -p "$(dirname "$path")" &&
          aws s3 cp --only-show-errors "$uri" "$path" ;;
      dir)
        mkdir -p "$path" &&
          aws s3 cp --only-show-errors --recursive "$uri" "$path" ;;
      *) false ;;
    esac || { echo "sluice-entrypoint: cannot stage input $uri ($kind) at $path" >&2; exit 75; }
  done || exit 75
fi

case "$SLUICE_OUTPUT_KIND" in
  file) mkdir -p "$(dirname "$SLUICE_OUTPUT")" ;;
  dir) mkdir -p "$SLUICE_OUTPUT" ;;
  nothing) ;;
  *)
    echo "sluice-entrypoint: SLUICE_OUTPUT_KIND must be file, dir or nothing, got '$SLUICE_OUTPUT_KIND'" >&2
    exit 75 ;;
esac

# Run the command as a child so that SIGTERM (ECS stop, Spot interruption draining) reaches it:
# a shell waiting in the foreground would not forward the signal.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"
status=$?
# `wait` returns early (status > 128) when a trapped signal arrives: wait for the real exit.
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
  status=$?
done
trap - TERM INT

if [ "$status" -ne 0 ]; then
  echo "sluice-entrypoint: command exited with status $status; nothing uploaded" >&2
  exit "$status"
fi
[ "$SLUICE_OUTPUT_KIND" = nothing ] && exit 0

case "${SLUICE_RESULT_URI:-}" in
  s3://*/*) ;;
  *)
    echo "sluice-entrypoint: SLUICE_RESULT_URI must be s3://bucket/key, got '${SLUICE_RESULT_URI:-}'" >&2
    exit 75 ;;
esac

if [ "$SLUICE_OUTPUT_KIND" = dir ]; then
  # --delete: a retried attempt leaves nothing of an earlier one behind.
  if ! aws s3 sync --only-show-errors --delete "$SLUICE_OUTPUT" "$SLUICE_RESULT_URI"; then
    echo "sluice-entrypoint: upload of $SLUICE_OUTPUT to $SLUICE_RESULT_URI failed" >&2
    exit 75
  fi
  echo "sluice-entrypoint: uploaded $SLUICE_OUTPUT/ to $SLUICE_RESULT_URI"
  exit 0
fi

if [ ! -f "$SLUICE_OUTPUT" ]; then
  echo "sluice-entrypoint: command exited 0 but wrote no output at $SLUICE_OUTPUT; nothing uploaded" >&2
  exit 0
fi
rest=${SLUICE_RESULT_URI#s3://}
bucket=${rest%%/*}
key=${rest#*/}
# The tag drives the bucket's lifecycle rule that expires per-task outputs; a job's result
# (SLUICE_OUTPUT_KEEP=1: the last stage that writes something) is kept.
if [ "${SLUICE_OUTPUT_KEEP:-}" = 1 ]; then
  set --
else
  set -- --tagging "sluice-kind=task-result"
fi
if ! aws s3api put-object \
    --bucket "$bucket" --key "$key" --body "$SLUICE_OUTPUT" "$@" \
    --output text --query ETag >/dev/null; then
  echo "sluice-entrypoint: upload to $SLUICE_RESULT_URI failed" >&2
  exit 75
fi
echo "sluice-entrypoint: uploaded $SLUICE_OUTPUT to $SLUICE_RESULT_URI"
exit 0
