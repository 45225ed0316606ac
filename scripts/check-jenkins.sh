#!/usr/bin/env bash
# Checks the Jenkins delivery pipelines under ci/jenkins, offline:
#
#   1. every vars/*.groovy, the Jenkinsfiles and the test helpers parse with Groovy 2.4 up to
#      Phases.CONVERSION (syntax; Groovy does not know Declarative semantics);
#   2. npm-groovy-lint --noserver over the same files (errors fail the run, warnings are printed);
#   3. the pytest suite in ci/jenkins/test: stage names and order, the step each stage calls,
#      Cleanup in post { always }, input before production, every library step exists, the
#      Jenkins Helm values rendered as the chart's `tpl` does (pinned agent images, least-privilege
#      containers, the input submitters equal to the approvers the matrix grants, the three jobs),
#      a pod-health gate and a rollback for every Helm release, private cluster endpoints, the
#      tooling images pipeline, the agent Containerfiles, Sonar settings, and every `fintech ...`
#      call against the CLI surface in ci/jenkins/test/fintech-cli.json (kept equal to the binary
#      by fintech/tests/cli_surface.rs).
#
# It first installs what is missing (idempotent; run as root on a fresh Debian 12):
#   apt      groovy (and openjdk-17-jre-headless, npm, python3-venv if absent)
#   npm      npm-groovy-lint into .tools/jenkins/npm (pinned below)
#   Python   pytest and PyYAML into .tools/jenkins/venv (pinned in ci/jenkins/test/requirements.txt)
# A missing tool is a failure, never a skipped check.
#
# Prints one line per step and ends with "jenkins-checks: N passed, N failed" (each step and each
# pytest test counts); exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

ROOT=$PWD
JENKINS_DIR=$ROOT/ci/jenkins
TOOLS=$ROOT/.tools/jenkins
VENV=$TOOLS/venv
NPM_PREFIX=$TOOLS/npm
GROOVY_LINT_VERSION=16.2.0
REQUIREMENTS=$JENKINS_DIR/test/requirements.txt
export JAVA_HOME=${JENKINS_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
export PATH=$JAVA_HOME/bin:$PATH

started=$SECONDS
passed=0
failed=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-jenkins.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

CHECKS_NAME=jenkins-checks
# shellcheck source=lib/steps.sh
. "$ROOT/scripts/lib/steps.sh" # summary, step, required

install_apt() {
  local missing=()
  command -v groovy >/dev/null || missing+=(groovy)
  [ -x "$JAVA_HOME/bin/java" ] || missing+=(openjdk-17-jre-headless)
  command -v npm >/dev/null || missing+=(npm)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_groovy_lint() {
  local have
  have=$(node -p "require('$NPM_PREFIX/node_modules/npm-groovy-lint/package.json').version" 2>/dev/null)
  [ "$have" = "$GROOVY_LINT_VERSION" ] && return 0
  mkdir -p "$NPM_PREFIX"
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error \
    "npm-groovy-lint@$GROOVY_LINT_VERSION"
}

install_python() {
  local stamp=$VENV/.requirements
  if [ -x "$VENV/bin/python" ] && cmp -s "$REQUIREMENTS" "$stamp"; then
    return 0
  fi
  python3 -m venv "$VENV" &&
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" &&
    cp "$REQUIREMENTS" "$stamp"
}

required "install: apt (groovy, java, npm, python3-venv)" install_apt
required "install: npm-groovy-lint $GROOVY_LINT_VERSION" install_groovy_lint
required "install: pytest venv" install_python

# Every Groovy file of the pipelines: the library steps, the Jenkinsfiles, the check's own helper.
mapfile -t GROOVY_FILES < <(find ci/jenkins \( -name '*.groovy' -o -name 'Jenkinsfile*' \) -type f | sort)

parse_all() {
  [ ${#GROOVY_FILES[@]} -gt 0 ] || { echo "no Groovy files found"; return 1; }
  groovy "$JENKINS_DIR/tools/ParseCheck.groovy" "${GROOVY_FILES[@]}"
}

groovy_lint() {
  # --noserver: otherwise npm-groovy-lint leaves a CodeNarc server running after it returns.
  # Files are named one by one: its --files pattern does not select the Jenkinsfiles.
  "$NPM_PREFIX/node_modules/.bin/npm-groovy-lint" --noserver --failon error --loglevel warning \
    --config "$JENKINS_DIR/.groovylintrc.json" --output txt "${GROOVY_FILES[@]}"
}

step "groovy parse to CONVERSION (${#GROOVY_FILES[@]} files)" parse_all
step "npm-groovy-lint --noserver (fail on errors)" groovy_lint

# Each pytest test counts as a step.
junit=$WORK/pytest.xml
(cd "$ROOT" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$junit" \
  "$JENKINS_DIR/test") >"$WORK/pytest.log" 2>&1
pytest_rc=$?
if [ -s "$junit" ]; then
  read -r t_pass t_fail < <("$VENV/bin/python" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ok = bad = 0
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        bad += 1
    elif case.find("skipped") is None:
        ok += 1
    else:
        bad += 1  # a skipped check counts as a failure
print(ok, bad)
PY
)
  passed=$((passed + t_pass))
  failed=$((failed + t_fail))
  if [ "$pytest_rc" -eq 0 ] && [ "$t_fail" -eq 0 ]; then
    printf 'ok    %-64s\n' "pytest ci/jenkins/test ($t_pass tests)"
  else
    printf 'FAIL  %-64s\n' "pytest ci/jenkins/test ($t_fail of $((t_pass + t_fail)) failed)"
    sed 's/^/      | /' "$WORK/pytest.log"
    [ "$t_fail" -eq 0 ] && failed=$((failed + 1))
  fi
else
  failed=$((failed + 1))
  printf 'FAIL  %-64s\n' "pytest ci/jenkins/test (no report)"
  sed 's/^/      | /' "$WORK/pytest.log"
fi

printf '      total time %ss\n' $((SECONDS - started))
summary
