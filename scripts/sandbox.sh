#!/usr/bin/env bash
# The local sandbox: no AWS account. Starts moto, creates what tests/fixtures/three-stages.toml names, plays the
# sample ECR pushes through the real deploy-on-push binary, ECS completions through
# track-deployment, a bad build's alarm through rollback-on-alarm, a release asking approval by
# mail and approved through the approval page, two nights of scheduled snapshots and Monday's
# cost report, and prints what changed.
# `scripts/sandbox.sh --keep` leaves moto running afterwards to explore with the AWS CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
cargo build --quiet -p deploy-on-push -p track-deployment -p rollback-on-alarm -p approval-page -p promote -p snapshot -p cost-report -p break-glass -p pipectl -p harness
exec target/debug/sandbox "$@"
