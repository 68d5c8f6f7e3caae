#!/usr/bin/env bash
# Kept for older instructions: the test tools (scripts/setup-test-tools.sh), which include the
# deploy tools. To deploy only, scripts/setup-deploy-tools.sh needs no browser and no root.
exec "$(dirname "$0")/setup-test-tools.sh" "$@"
