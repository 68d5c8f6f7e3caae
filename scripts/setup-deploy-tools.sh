#!/usr/bin/env bash
# Installs what deploying needs into ./.venv (requirements-deploy.txt): cargo-lambda and zig
# (the arm64 Lambda build, from any host) and the SAM CLI. No browser, no root; macOS and
# Linux. Rust itself comes from rustup (rust-toolchain.toml pins the version).
# Idempotent: a venv that already matches requirements-deploy.txt is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

venv_install .deploy-requirements.sha256 requirements-deploy.txt

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
  echo "setup: Rust is needed too: install rustup (https://rustup.rs); rust-toolchain.toml then picks the version" >&2
fi
