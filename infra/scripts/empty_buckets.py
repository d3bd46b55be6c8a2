#!/usr/bin/env python3
"""Empty the versioned S3 buckets of a sluice stack so that `sam delete` can remove them.

CloudFormation cannot delete a non-empty bucket, and both buckets are versioned, so every
object version and delete marker is removed. Usage (run by `make destroy`):

    empty_buckets.py --stack-name sluice --region us-east-1 [--yes]

Needs boto3 (it comes with aws-sam-cli) and credentials allowed to list and delete the objects.
"""
import argparse
import sys

import boto3

OUTPUT_KEYS = ("IngestBucketName", "DataBucketName")


def stack_buckets(cfn, stack_name):
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except cfn.exceptions.ClientError as err:
        if "does not exist" in str(err):
            return []
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return [outputs[k] for k in OUTPUT_KEYS if k in outputs]


def empty(s3, bucket):
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        # delete_objects takes at most 1000 keys; list_object_versions pages are <= 1000.
        if objects:
            resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            errors = resp.get("Errors", [])
            if errors:
                raise SystemExit(f"{bucket}: could not delete {len(errors)} objects: {errors[:3]}")
            deleted += len(objects)
    return deleted


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args()

    session = boto3.Session(region_name=args.region)
    buckets = stack_buckets(session.client("cloudformation"), args.stack_name)
    if not buckets:
        print(f"stack {args.stack_name}: no buckets to empty")
        return 0
    if not args.yes:
        answer = input(f"Delete ALL objects and versions in {', '.join(buckets)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    s3 = session.client("s3")
    for bucket in buckets:
        print(f"{bucket}: deleted {empty(s3, bucket)} object versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
