# Sourced by scripts/setup-deploy-tools.sh and scripts/setup-test-tools.sh (bash 3.2 and up):
# installs pinned requirements into the project's ./.venv, once.
#
# venv_install STAMP FILE...: the first FILE is pip's (`-r` lines pull in the others); the stamp
# (.venv/STAMP) holds the hash of all the FILEs, so a change to any of them reinstalls. A venv
# that already holds every pinned version gets its stamp without pip (no network needed).

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    cat "$@" | sha256sum | cut -d' ' -f1
  else
    cat "$@" | shasum -a 256 | cut -d' ' -f1
  fi
}

# Exit 0 when the venv's Python has every `name==version` pinned by FILE (and its `-r` files).
venv_satisfies() {
  "$1/bin/python" - "$2" <<'PY' 2>/dev/null
import importlib.metadata as metadata, os, re, sys
def pins(path):
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            yield from pins(os.path.join(os.path.dirname(path), line[3:].strip()))
            continue
        pin = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
        if not pin:
            sys.exit(1)  # not a plain pin: leave it to pip
        yield pin[1], pin[3]
for name, version in pins(sys.argv[1]):
    try:
        if metadata.version(name) != version:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
PY
}

venv_install() {
  local stamp_name=$1
  shift
  local root venv stamp want
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  venv="$root/.venv"
  stamp="$venv/$stamp_name"
  want=$(cd "$root" && sha256_of "$@")
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ -x "$venv/bin/python" ] && venv_satisfies "$venv" "$root/$1"; then
    echo "$want" >"$stamp"
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "setup: python3 is needed (macOS: xcode-select --install or brew install python; Debian: apt-get install python3 python3-venv)" >&2
    return 1
  fi
  echo "setup: installing $* into $venv" >&2
  if ! python3 -m venv "$venv"; then
    echo "setup: python3 cannot make a venv (Debian/Ubuntu: apt-get install python3-venv)" >&2
    return 1
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip ||
    echo "setup: could not upgrade pip; going on with $("$venv/bin/pip" --version)" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/$1"
  echo "$want" >"$stamp"
}
