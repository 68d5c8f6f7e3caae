#!/usr/bin/env bash
# Installs what the tests need: the deploy tools (requirements-deploy.txt) plus moto server (the
# AWS emulator the tests and the sandbox talk to) and cfn-lint (requirements-dev.txt), into
# ./.venv; and Chromium with its WebDriver, for the approval page's browser test.
# Idempotent: a venv that already matches both requirement files is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

# The approval page is tested in a real browser: headless Chromium driven over WebDriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  case "$(uname -s)" in
    Darwin)
      echo "setup: chromium and chromedriver are needed; install them, e.g. with Homebrew:" >&2
      echo "         brew install --cask chromium chromedriver" >&2
      exit 1
      ;;
  esac
  if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      as_root=
    elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
      as_root=sudo  # asks for the password on a terminal
    else
      echo "setup: chromium and chromedriver are needed: run as root, or with sudo, or install them yourself:" >&2
      echo "         sudo apt-get install chromium chromium-driver" >&2
      exit 1
    fi
    echo "setup: installing chromium and chromium-driver" >&2
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "setup: chromium and chromedriver are needed (Debian/Ubuntu: apt-get install chromium chromium-driver;" >&2
    echo "       Fedora: dnf install chromium chromedriver); install them and run this again" >&2
    exit 1
  fi
fi

# The test set includes the deploy set (`-r requirements-deploy.txt`); both stamps are set.
venv_install .requirements.sha256 requirements-dev.txt requirements-deploy.txt
venv_install .deploy-requirements.sha256 requirements-deploy.txt
