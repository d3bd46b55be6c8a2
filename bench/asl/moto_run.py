"""Runs one benchmark execution on a moto_server (bench/asl/run.sh; needs moto's venv python).

  moto_run.py ENDPOINT DEFINITION INPUT N

Waits for the server, enables its Step Functions executor (POST /moto-api/config) before
creating the state machine, starts one execution, polls DescribeExecution every 50 ms until it
leaves RUNNING, checks the result like gen.py check, and prints the wall time in seconds from
StartExecution to the first non-RUNNING DescribeExecution.
"""

import json
import sys
import time
import urllib.request

import boto3

endpoint, def_path, input_path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("moto_server did not start")
        time.sleep(0.1)
req = urllib.request.Request(
    endpoint + "/moto-api/config", method="POST",
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=30)

sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
with open(def_path) as f:
    definition = f.read()
with open(input_path) as f:
    execution_input = f.read()
machine = sfn.create_state_machine(name="bench", definition=definition,
                                   roleArn="arn:aws:iam::123456789012:role/x")
t0 = time.time()
arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="bench",
                          input=execution_input)["executionArn"]
while True:
    d = sfn.describe_execution(executionArn=arn)
    if d["status"] != "RUNNING":
        break
    if time.time() - t0 > 3600:
        sys.exit("moto did not finish within an hour")
    time.sleep(0.05)
wall = time.time() - t0
output = json.loads(d.get("output") or "{}")
if d["status"] != "SUCCEEDED" or output.get("count") != n or \
        output.get("first") != {"label": "item-0-of-g0", "n": 0}:
    sys.exit("moto: unexpected result: %s" % json.dumps(d, default=str)[:2000])
print("%.3f" % wall)
