#!/usr/bin/env python3
"""Definitions, inputs and result checks for bench/asl/run.sh (standard library only).

  gen.py definition INLINE|DISTRIBUTED|READER   print the benchmark state machine
  gen.py input N                                print the execution input with N items
  gen.py check OUT.json N                       exit 1 unless OUT is a SUCCEEDED run over N items

The Map's ItemProcessor has three states: a Pass with States.Format in Parameters, a Choice
and a Pass. READER is the DISTRIBUTED machine with an S3 ItemReader instead of ItemsPath, used
to check whether `sluice asl run` can serve one.
"""

import json
import sys


def processor(mode):
    config = {"Mode": mode}
    if mode == "DISTRIBUTED":
        config["ExecutionType"] = "EXPRESS"
    return {
        "ProcessorConfig": config,
        "StartAt": "Label",
        "States": {
            "Label": {
                "Type": "Pass",
                "Parameters": {
                    "id.$": "$.id",
                    "n.$": "$.n",
                    "label.$": "States.Format('item-{}-of-{}', $.id, $.group)",
                },
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.n", "NumericGreaterThanEquals": 50, "Next": "Done"}
                ],
                "Default": "Done",
            },
            "Done": {
                "Type": "Pass",
                "Parameters": {"label.$": "$.label", "n.$": "$.n"},
                "End": True,
            },
        },
    }


def definition(kind):
    mode = "INLINE" if kind == "INLINE" else "DISTRIBUTED"
    # ResultSelector keeps the Map's result small: the whole result array of 100,000 items
    # (~6.5 MB) would exceed the 256 KiB payload limit (States.DataLimitExceeded), as on AWS.
    each = {"Type": "Map", "ItemProcessor": processor(mode),
            "ResultSelector": {"count.$": "States.ArrayLength($)", "first.$": "$[0]"},
            "ResultPath": "$.summary", "OutputPath": "$.summary", "End": True}
    if kind == "READER":
        each["ItemReader"] = {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "bench", "Key": "items.json"},
        }
    else:
        each["ItemsPath"] = "$.items"
    return {
        "Comment": f"sluice asl benchmark: Map ({kind}) over N items, 3-state ItemProcessor",
        "StartAt": "Each",
        "States": {"Each": each},
    }


def main():
    cmd = sys.argv[1]
    if cmd == "definition":
        json.dump(definition(sys.argv[2]), sys.stdout, indent=1)
    elif cmd == "input":
        n = int(sys.argv[2])
        json.dump({"items": [{"id": i, "n": i % 100, "group": "g%d" % (i % 7)} for i in range(n)]},
                  sys.stdout, separators=(",", ":"))
    elif cmd == "check":
        with open(sys.argv[2]) as f:
            out = json.load(f)
        n = int(sys.argv[3])
        output = out.get("output") or {}
        ok = (out.get("status") == "SUCCEEDED" and output.get("count") == n
              and output.get("first") == {"label": "item-0-of-g0", "n": 0})
        if not ok:
            print(json.dumps(out)[:2000], file=sys.stderr)
            sys.exit(1)
    else:
        sys.exit("usage: gen.py definition KIND | input N | check OUT N")


if __name__ == "__main__":
    main()
