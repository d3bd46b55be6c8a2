#!/usr/bin/env python3
"""Project-specific checks of infra/template.yaml that cfn-lint and checkov do not make.

Run by `make lint-infra` with the cfn-lint virtualenv's Python (it parses CloudFormation YAML,
short-form tags included, with cfnlint.decode):

    infra/.tools/cfn-lint/bin/python infra/scripts/check_template.py [template.yaml]

Checks:
  * IAM: no action wildcard in any identity policy; Resource "*" only in the statements whose
    Sid documents why AWS requires it.
  * Every placeholder ${X} of statemachines/pipeline.asl.json has a DefinitionSubstitution, and
    every substitution is used.
  * The state machine may invoke exactly the functions it is given in DefinitionSubstitutions.
  * Every function gets each environment variable that docs/aws.md marks as required
    ("yes", or "ecs"/"batch": required for that backend; the template sets both).
  * The worker task role can write task results only.
Exit status 0 when all pass; the closing line is "N passed, N failed".
"""
import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
ASL = ROOT / "statemachines" / "pipeline.asl.json"
AWS_DOC = ROOT / "docs" / "aws.md"

# Statements allowed to use Resource "*", by Sid: each is an action without resource-level
# permissions (see the comments next to them in the template and docs/deploy.md).
STAR_RESOURCE_SIDS = {
    "CallbackTokensRequireStar",
    "LogDeliveryRequiresStar",
    "EcrAuthRequiresStar",
}

results = []


def check(name, ok, detail=""):
    results.append((name, ok, detail))


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def statements(doc):
    """Statements of a policy document; Fn::If branches are both returned."""
    out = []
    for st in as_list(doc.get("Statement")):
        if isinstance(st, dict) and "Fn::If" in st:
            for branch in st["Fn::If"][1:]:
                if isinstance(branch, dict) and "Ref" not in branch:
                    out.append(branch)
        elif isinstance(st, dict):
            out.append(st)
    return out


def identity_policies(resources):
    """(owner, policy document) for every identity policy in the template."""
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for pol in as_list(props.get("Policies")):
                if isinstance(pol, dict) and "Statement" in pol:
                    yield name, pol
        elif res["Type"] == "AWS::IAM::Role":
            for pol in props.get("Policies", []):
                yield name, pol["PolicyDocument"]


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE
    template, matches = decode(str(path))
    if matches:
        print(f"cannot parse {path}: {matches}")
        return 2
    resources = template["Resources"]
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})

    # --- IAM ---------------------------------------------------------------------------------
    for owner, doc in identity_policies(resources):
        for st in statements(doc):
            sid = st.get("Sid", "?")
            for action in as_list(st.get("Action")):
                check(f"{owner}/{sid}: action {action} has no wildcard", "*" not in str(action))
            if "*" in as_list(st.get("Resource")):
                check(
                    f"{owner}/{sid}: Resource '*' is documented as required",
                    sid in STAR_RESOURCE_SIDS,
                    "add a Sid from STAR_RESOURCE_SIDS or scope the resource",
                )

    # --- state machine substitutions -------------------------------------------------------
    sm = next(r for r in resources.values() if r["Type"] == "AWS::Serverless::StateMachine")
    subs = sm["Properties"]["DefinitionSubstitutions"]
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL.read_text()))
    check("every ASL placeholder is substituted", placeholders <= set(subs), sorted(placeholders - set(subs)))
    check("every substitution is used by the ASL", set(subs) <= placeholders, sorted(set(subs) - placeholders))

    substituted_functions = sorted(
        v["Fn::GetAtt"][0] for v in subs.values() if isinstance(v, dict) and "Fn::GetAtt" in v
    )
    invoke = [
        st for st in statements(sm["Properties"]["Policies"][0]) if "lambda:InvokeFunction" in as_list(st.get("Action"))
    ]
    invoked = sorted(r["Fn::GetAtt"][0] for st in invoke for r in as_list(st["Resource"]))
    check(
        "the state machine invokes exactly its substituted functions",
        invoked == substituted_functions,
        f"invoke={invoked} substituted={substituted_functions}",
    )

    # --- environment required by docs/aws.md -----------------------------------------------
    required = []
    for line in AWS_DOC.read_text().splitlines():
        m = re.match(r"\|\s*`(SLUICE_[A-Z_]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if m and m.group(2).split()[0] in ("yes", "ecs", "batch"):
            required.append(m.group(1))
    check("docs/aws.md lists required variables", len(required) >= 10, required)
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        env = dict(globals_env)
        env.update(res["Properties"].get("Environment", {}).get("Variables", {}))
        missing = [v for v in required if v not in env]
        check(f"{name} has every required SLUICE_* variable", not missing, missing)

    # --- worker task role --------------------------------------------------------------------
    role = resources["WorkerTaskRole"]["Properties"]
    worker_statements = [st for pol in role["Policies"] for st in statements(pol["PolicyDocument"])]
    worker_actions = sorted({a for st in worker_statements for a in as_list(st["Action"])})
    worker_resources = [json.dumps(r) for st in worker_statements for r in as_list(st["Resource"])]
    writes = [st for st in worker_statements
              if set(as_list(st["Action"])) & {"s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"}]
    check(
        "worker task role writes stage outputs only",
        writes and all("/jobs/*/stages/*/output/*" in json.dumps(st["Resource"]) for st in writes),
        f"{writes}",
    )
    check(
        "worker task role reads and writes S3 objects only",
        set(worker_actions) <= {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"},
        f"{worker_actions} {worker_resources}",
    )

    failed = [r for r in results if not r[1]]
    for name, ok, detail in results:
        if not ok:
            print(f"FAIL {name}: {detail}")
    print(f"check_template: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
