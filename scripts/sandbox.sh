#!/usr/bin/env bash
# The local sandbox: no AWS account. Starts moto, creates what pipeline.toml names, plays the
# sample ECR pushes through the real deploy-on-push binary and prints what changed.
# `scripts/sandbox.sh --keep` leaves moto running afterwards to explore with the AWS CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-tools.sh
cargo build --quiet -p deploy-on-push -p harness --bin deploy-on-push --bin sandbox
exec target/debug/sandbox "$@"
