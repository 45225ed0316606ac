#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine (as root), then runs
# every check CI runs. Safe to run again: installed things are skipped.
#
#   ./scripts/test.sh                      everything (CI, .ci/run, runs it this way)
#   ./scripts/test.sh --skip-image-checks  everything but scripts/check-images.sh
#
# The image checks need root, buildah, skopeo, umoci and a private mount namespace (they run each
# image's binary read-only as uid 65532 under `unshare --mount` and chroot). The Jenkins service
# pipeline's Test stage runs in a non-root agent container that cannot do that, so it passes
# --skip-image-checks; its Docker/Image Build and Image Push stages build, check (non-root user,
# labels) and push the images with buildah in a container allowed to (ci/jenkins/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

image_checks=yes
for arg in "$@"; do
  case $arg in
    --skip-image-checks) image_checks=no ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

# --- Packages -------------------------------------------------------------------------------
apt_packages=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_packages+=(mariadb-server)
# The rate-limit tests (crates/kit/tests/ratelimit_redis.rs, identity's) start a private Redis.
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
# The Redis TLS test makes its certificates with openssl.
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
# The Pub/Sub tests (crates/events/tests/pubsub.rs, fintech/tests/cli.rs) start Google's
# emulator: `gcloud beta emulators pubsub` (Google's apt repository), which runs on Java.
[ -d /usr/lib/google-cloud-sdk/platform/pubsub-emulator ] || apt_packages+=(google-cloud-cli google-cloud-cli-pubsub-emulator)
command -v java >/dev/null 2>&1 || apt_packages+=(default-jre-headless)
# The local distributed stack (scripts/local-stack.sh) puts nginx in front of the services.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_packages+=(nginx)
# The statements tests read the PDFs they make with poppler's pdftotext.
command -v pdftotext >/dev/null 2>&1 || apt_packages+=(poppler-utils)
# The release-plan tests (fintech/tests/release_plan.rs) start a private docker-registry.
[ -x /usr/bin/docker-registry ] || apt_packages+=(docker-registry)
if [ ${#apt_packages[@]} -gt 0 ]; then
  step "apt-get install ${apt_packages[*]}"
  # Install server packages without starting their system services: tests start their own.
  policy=/usr/sbin/policy-rc.d
  created_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=yes
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  [ "$created_policy" = yes ] && rm -f "$policy"
fi

# The e-mail tests (fintech/tests/notify.rs) start aiosmtpd from the virtualenv the check scripts
# share (.tools/venv); a missing one fails those tests. Called in an `||` list: tools-venv.sh is
# written for scripts without `set -e`.
# shellcheck source=lib/tools-venv.sh
. scripts/lib/tools-venv.sh
step "Python test servers into .tools/venv (scripts/requirements/test-servers.txt)"
tools_venv_install "$TOOLS_VENV_REPO/scripts/requirements/test-servers.txt" || {
  echo "installing the Python test servers failed" >&2
  exit 1
}

for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    step "rustup component add ${component}"
    rustup component add "${component}"
  fi
done

# --- Checks ---------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (real MariaDB servers are started by the tests themselves)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary).
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed", p, f }' "$log")

step "The distributed mode on one machine: every service as its own process behind nginx, smoke test"
# The fintech binary the Rust tests built. A stack left by an interrupted run is stopped first.
LOCAL_STACK_DIR="$PWD/.stack-ci" ./scripts/local-stack.sh down >/dev/null
LOCAL_STACK_DIR="$PWD/.stack-ci" LOCAL_STACK_PORT=0 ./scripts/local-stack.sh up
stack_ok=yes
LOCAL_STACK_DIR="$PWD/.stack-ci" ./scripts/local-stack.sh smoke || stack_ok=no
[ "$stack_ok" = yes ] || tail -n 25 .stack-ci/logs/*.log || true
LOCAL_STACK_DIR="$PWD/.stack-ci" ./scripts/local-stack.sh down
[ "$stack_ok" = yes ] || { echo "the local stack's smoke test failed (logs were in .stack-ci/logs)" >&2; exit 1; }

step "Helm charts: lint, render, schema and policy checks, manifest tests, OCI push"
./scripts/check-helm.sh

step "Terraform: fmt, validate, checkov, trivy, policy tests"
./scripts/check-terraform.sh

step "Jenkins: Groovy parse, npm-groovy-lint, pipeline structure tests"
./scripts/check-jenkins.sh

if [ "$image_checks" = yes ]; then
  step "Images: musl build, buildah build and push per service, digests, read-only run as non-root, release plan"
  ./scripts/check-images.sh
else
  step "Images: skipped (--skip-image-checks); scripts/check-images.sh needs root, buildah and a mount namespace"
fi

step "all checks passed in $(( $(date +%s) - started )) s"
printf '%s\n' "$summary"
