#!/usr/bin/env bash
# The test command: installs the tools (project venv), builds the bootstrap binaries the
# tests drive, runs every test against moto, and lints the pipeline file and the template.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 CARGO_TERM_COLOR=never
scripts/setup-test-tools.sh
export PATH="$PWD/.venv/bin:$PATH"

step() { printf '\n== %s\n' "$*"; }

# rust-toolchain.toml names 1.95.0. Where rustup holds that Rust only as `stable` (and cannot
# download), give it that name too, so no cargo call asks rustup for a download.
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q '^1\.95\.0'; then
  if [ "$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | cut -d' ' -f2)" = 1.95.0 ]; then
    host=$(RUSTUP_TOOLCHAIN=stable rustc -vV | sed -n 's/^host: //p')
    ln -s "$(RUSTUP_TOOLCHAIN=stable rustc --print sysroot)" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/1.95.0-$host"
  fi
fi

step "format"
cargo fmt --all -- --check
step "lint (clippy)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "build (the tests drive the built binaries)"
cargo build --workspace --bins --quiet
step "pipeline file"
target/debug/pipectl validate pipeline.toml --template template.yaml
step "deploy command (--dry-run, offline: the parameters and the resources it would create)"
dry=$(env -u AWS_PROFILE AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= AWS_EC2_METADATA_DISABLED=true \
  PIPECTL=target/debug/pipectl scripts/deploy.sh --stack ci-dry-run --dry-run --pipeline tests/fixtures/three-stages.toml 2>&1) ||
  { echo "$dry"; exit 1; }
grep -q 'ClusterNames="social-analytics-dev,social-analytics-staging,social-analytics-prod"' <<<"$dry" &&
  grep -q "dry run (offline): nothing was deployed" <<<"$dry" || { echo "$dry"; exit 1; }
grep "Resources the stack would create" <<<"$dry"
step "docs (the book builds, every link resolves)"
mdbook build docs --dest-dir "$PWD/target/book" >/dev/null
python3 docs/check_links.py
step "template"
cfn-lint template.yaml
# checkov pins boto3==1.35.49 and aws-sam-cli boto3==1.43.108: checkov gets a venv of its own.
ck=3.3.30
[ "$(.venv/checkov/bin/python -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" = "$ck" ] ||
  { python3 -m venv .venv/checkov && .venv/checkov/bin/pip install --quiet --disable-pip-version-check "checkov==$ck"; }
checked=$(BC_SKIP_MAPPING=TRUE .venv/checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download 2>&1) &&
  ! grep -q "Parsing errors" <<<"$checked" || { echo "$checked"; exit 1; }
grep "Passed checks" <<<"$checked"
validated=$(AWS_REGION=us-east-1 sam validate --lint --template template.yaml 2>&1) || { echo "$validated"; exit 1; }
grep "valid SAM Template" <<<"$validated"
step "tests (unit, moto, binaries under a Lambda Runtime API)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level fail
else
  cargo test --workspace --lib --bins --tests
fi
