#!/bin/sh
# sluice worker entrypoint (Linux). Runs the task's command (the container command that the
# launch function passes, e.g. `ber-sim --ebn0-db 2 --seed 7 ... --output /tmp/sluice/result.json`),
# then uploads the result file to $SLUICE_RESULT_URI.
#
# Contract with the launch function and the task definition:
#   SLUICE_OUTPUT      where the command writes its result (task definition sets /tmp/sluice/result.json;
#                      the pipeline's {output} placeholder must render to the same path)
#   SLUICE_RESULT_URI  s3://<data-bucket>/jobs/<jobId>/task_results/<taskId>/<attempt>.json (per attempt)
# Exit status: the command's own status when it fails (143 after SIGTERM, e.g. Spot reclaim);
# 75 (EX_TEMPFAIL) when the result is missing or cannot be uploaded; 0 once uploaded.
set -u

: "${SLUICE_OUTPUT:=/tmp/sluice/result.json}"
export SLUICE_OUTPUT

if [ "$#" -eq 0 ]; then
  echo "sluice-entrypoint: no command given" >&2
  exit 64
fi
mkdir -p "$(dirname "$SLUICE_OUTPUT")"

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
if [ ! -s "$SLUICE_OUTPUT" ]; then
  echo "sluice-entrypoint: command succeeded but wrote no result to $SLUICE_OUTPUT" >&2
  exit 75
fi
case "${SLUICE_RESULT_URI:-}" in
  s3://*/*) ;;
  *)
    echo "sluice-entrypoint: SLUICE_RESULT_URI must be s3://bucket/key, got '${SLUICE_RESULT_URI:-}'" >&2
    exit 75
    ;;
esac

rest=${SLUICE_RESULT_URI#s3://}
bucket=${rest%%/*}
key=${rest#*/}

# The tag drives the bucket's lifecycle rule that expires per-task results.
if ! aws s3api put-object \
    --bucket "$bucket" --key "$key" --body "$SLUICE_OUTPUT" \
    --content-type application/json \
    --tagging "sluice-kind=task-result" \
    --output text --query ETag >/dev/null; then
  echo "sluice-entrypoint: upload to $SLUICE_RESULT_URI failed" >&2
  exit 75
fi
echo "sluice-entrypoint: uploaded $SLUICE_OUTPUT to $SLUICE_RESULT_URI"
exit 0
