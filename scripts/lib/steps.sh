# Shared by the check scripts that print one line per step (sourced, not run).
# The caller sets CHECKS_NAME (the summary's label) and WORK (a private temporary folder) and
# initialises `started=$SECONDS passed=0 failed=0`.

summary() {
  printf '%s: %d passed, %d failed\n' "$CHECKS_NAME" "$passed" "$failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# step NAME COMMAND...: runs one step, prints one line; on failure also prints its output.
# With VERBOSE_STEP=1 the output is shown on success too (figures worth reading).
step() {
  local name=$1
  shift
  local log=$WORK/step.log begin=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    printf 'ok    %-72s %4ss\n' "$name" $((SECONDS - begin))
    if [ "${VERBOSE_STEP:-0}" = 1 ]; then sed 's/^/      | /' "$log"; fi
  else
    failed=$((failed + 1))
    printf 'FAIL  %-72s %4ss\n' "$name" $((SECONDS - begin))
    sed 's/^/      | /' "$log"
    return 1
  fi
}

# A failed install (or build) leaves nothing to check with: stop here.
required() {
  step "$@" || {
    printf 'stopped: a required step failed (%ss)\n' $((SECONDS - started))
    summary
    exit 1
  }
}

apt_install() {
  # Without starting system services (docker-registry has one): the registries the checks use
  # are started by the scripts themselves, on free ports, and stopped by pid.
  local policy=/usr/sbin/policy-rc.d created=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=yes
  fi
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  local rc=$?
  [ "$created" = yes ] && rm -f "$policy"
  return $rc
}

# start_registry: a private OCI registry (Debian's docker-registry) on a free 127.0.0.1 port, its
# data in $WORK/registry. Sets REGISTRY (host:port) and registry_pid (the caller stops it by pid).
# Needs PY (a python3).
start_registry() {
  local port
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
  mkdir -p "$WORK/registry/data"
  cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  /usr/bin/docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
  registry_pid=$!
  REGISTRY=127.0.0.1:$port
  local i
  for i in $(seq 1 50); do
    if "$PY" -c "import urllib.request; urllib.request.urlopen('http://$REGISTRY/v2/', timeout=1)" 2>/dev/null; then
      echo "registry pid $registry_pid on $REGISTRY"
      return 0
    fi
    kill -0 "$registry_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/registry/log"
  return 1
}
