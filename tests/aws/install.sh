#!/usr/bin/env bash
# Install the pinned moto server (and the AWS CLI the worker entrypoint uses) for the sluice-aws
# integration tests into its own venv
# (default ~/.cache/sluice-moto, where crates/aws/tests/common finds it), so the system
# Python's packages are left alone. Idempotent: a venv that already has the pinned version is
# reused. Usage: tests/aws/install.sh [venv-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${SLUICE_MOTO_VENV:-$HOME/.cache/sluice-moto}}"
want="$(sed -n 's/^moto\[server\]==\([0-9.]*\).*/\1/p' "$here/requirements.txt")"
want_cli="$(sed -n 's/^awscli==\([0-9.]*\).*/\1/p' "$here/requirements.txt")"
if [ -x "$venv/bin/moto_server" ] && [ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" = "$want" ] \
   && [ -x "$venv/bin/aws" ] && "$venv/bin/aws" --version 2>&1 | grep -q "aws-cli/$want_cli "; then
  echo "moto $want and the AWS CLI $want_cli already installed in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)') installed in $venv"
