#!/usr/bin/env bash
# Installs the project's tools into ./.venv: moto server (the AWS emulator the tests and the
# sandbox talk to), cargo-lambda + zig (Lambda cross builds), SAM CLI and cfn-lint.
# Idempotent: a venv that already matches requirements-dev.txt is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$root/requirements-dev.txt" | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing tools into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/requirements-dev.txt"
echo "$want" > "$stamp"
