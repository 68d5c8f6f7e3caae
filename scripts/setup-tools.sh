#!/usr/bin/env bash
# Installs the project's tools into ./.venv: moto server (the AWS emulator the tests and the
# sandbox talk to), cargo-lambda + zig (Lambda cross builds), SAM CLI and cfn-lint; and
# Chromium with its WebDriver, for the approval page's browser test.
# Idempotent: a venv that already matches requirements-dev.txt is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$root/requirements-dev.txt" | cut -d' ' -f1)

# The approval page is tested in a real browser: headless Chromium driven over WebDriver,
# both from Debian.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium and chromium-driver" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "setup: chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing tools into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/requirements-dev.txt"
echo "$want" > "$stamp"
