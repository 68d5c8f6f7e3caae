#!/usr/bin/env bash
# The benchmark (not a test): release builds of every function and a hello-world
# lambda_runtime binary, then cold start, first-event latency, peak RSS and zip size.
# `scripts/bench.sh --runs 21` for more samples (default 11).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
cargo build --quiet --release -p deploy-on-push -p track-deployment -p rollback-on-alarm -p approval-page -p promote -p snapshot -p cost-report -p break-glass -p hello-world
cargo build --quiet -p harness --bin bench
exec target/debug/bench "$@"
