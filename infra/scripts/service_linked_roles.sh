#!/bin/sh
# Creates the service-linked roles the stack relies on, where the account does not have them yet
# (docs/deploy.md, "A fresh account"). CloudFormation does not create ECS's on the fly: a first
# deployment in a fresh account fails with "ECS Service Linked Role does not exist".
# An existing role is left alone; run by `make deploy` before `sam deploy`.
#
#   infra/scripts/service_linked_roles.sh     (IAM is global: no region)
set -eu

# A service's linked role lives under the path /aws-service-role/<service>/: found by that path
# rather than by its name.
present() {
  n=$(aws iam list-roles --path-prefix "/aws-service-role/$1/" --query 'length(Roles)' \
    --output text 2>/dev/null) || return 1
  [ "${n:-0}" -gt 0 ]
}

ensure() {
  role=$1 service=$2
  if present "$service"; then
    echo "service-linked role $role: present"
    return
  fi
  echo "service-linked role $role: missing, creating it for $service"
  # Two deployers racing: the loser's create fails with InvalidInput "has been taken"; the role
  # exists either way, which the check after it confirms.
  aws iam create-service-linked-role --aws-service-name "$service" >/dev/null 2>&1 || true
  if ! present "$service"; then
    echo "could not create $role (does this principal have iam:CreateServiceLinkedRole and" \
      "iam:ListRoles?)" >&2
    exit 1
  fi
}

ensure AWSServiceRoleForECS ecs.amazonaws.com
ensure AWSServiceRoleForAutoScaling autoscaling.amazonaws.com
