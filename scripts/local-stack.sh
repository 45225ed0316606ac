#!/usr/bin/env bash
# The distributed mode on one machine: every service as its own `fintech serve` process, on the
# real servers the cluster's managed ones stand for, behind nginx as the single entry point.
#
#   ./scripts/local-stack.sh up       start it all, print the URL (http://127.0.0.1:8090)
#   ./scripts/local-stack.sh smoke    the smoke test, through nginx, of a running stack
#   ./scripts/local-stack.sh down     stop every process (by its pid) and remove the stack's folder
#   ./scripts/local-stack.sh status   what runs, and where
#
# What runs (each on a free 127.0.0.1 port, its data and log under the stack's folder):
#   MariaDB          one database per service, made by `fintech migrate all` as the pipeline does
#   Redis            rate limits shared by the services (redis.url)
#   Pub/Sub emulator events between the processes (events.backend=pubsub)
#   Storage emulator the bucket (storage.backend=gcs), download links signed with a local key
#   the services     `fintech serve <service>`, configured by environment as in the cluster:
#                    service tokens from identity, the ledger/accounts/vault/risk over HTTP
#   nginx            routes generated from the Helm chart's route table
#                    (deploy/helm/fintech/values.yaml, services.<name>.route) by
#                    scripts/lib/stack_nginx.py: the same public paths, body limits and deadlines
#
# Settings (environment):
#   LOCAL_STACK_DIR   the stack's folder (default ./.stack): pids, logs, data
#   LOCAL_STACK_PORT  nginx's port (default 8090; 0 picks a free one)
#   LOCAL_STACK_BIN   the fintech binary (default target/debug/fintech, built when missing)
#
# Needs: mariadb-server, redis-server, nginx, openssl, curl, jq, Google's Pub/Sub emulator with
# Java, and the tools virtualenv (.tools/venv: gcp-storage-emulator, PyYAML), which
# ./scripts/test.sh installs. A missing one stops `up` with what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STACK=${LOCAL_STACK_DIR:-$ROOT/.stack}
PORT=${LOCAL_STACK_PORT:-8090}
BIN=${LOCAL_STACK_BIN:-$ROOT/target/debug/fintech}
PY=$ROOT/.tools/venv/bin/python
PROJECT=fintech-local
BUCKET=fintech-local

say() { printf '==> %s\n' "$*"; }
die() { printf 'local-stack: %s\n' "$*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME CMD...: in a session of its own (so `down` stops its children too), its output in
# logs/NAME.log, its pid in pids/NAME.
start() {
  local name=$1
  shift
  setsid "$@" >"$STACK/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STACK/pids/$name"
  echo "$name" >>"$STACK/started"
}

# wait_for NAME SECONDS CHECK...: until CHECK succeeds; else the log's end and a failure.
wait_for() {
  local name=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$(cat "$STACK/pids/$name")"; then
      tail -n 30 "$STACK/logs/$name.log" >&2 || true
      die "$name exited (log: $STACK/logs/$name.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$STACK/logs/$name.log" >&2 || true
      die "$name not ready within ${seconds} s (log: $STACK/logs/$name.log)"
    fi
    sleep 0.2
  done
}

# Whether process PID still runs (a zombie waiting for its parent to reap it does not).
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ready() { curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz"; }

need() {
  local binary=$1 package=$2
  command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] || die "$binary is not installed: apt-get install -y $package (./scripts/test.sh installs it)"
}

services() { "$BIN" services | awk '{print $1}'; }
config_key() { echo "${1//-/_}"; }
upper() { echo "$1" | tr 'a-z-' 'A-Z_'; }

stop_all() {
  [ -d "$STACK/pids" ] || return 0
  # One at a time, in the reverse order of their start: nginx, the services (each drains its
  # work and closes its Pub/Sub streams), then the servers they used.
  local name pid deadline
  for name in $(tac "$STACK/started" 2>/dev/null); do
    [ -f "$STACK/pids/$name" ] || continue
    pid=$(cat "$STACK/pids/$name")
    printf '    stopping %s' "$name"
    local t0=$SECONDS
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if alive "$pid"; then
      printf ': did not stop within 15 s, killed' >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    printf ' (%s s)\n' "$((SECONDS - t0))"
    rm -f "$STACK/pids/$name"
  done
}

up() {
  [ ! -d "$STACK/pids" ] || [ -z "$(ls -A "$STACK/pids")" ] || die "a stack runs in $STACK: ./scripts/local-stack.sh down first"
  need mariadbd mariadb-server
  need mariadb-install-db mariadb-server
  need redis-server redis-server
  need nginx nginx
  need openssl openssl
  need curl curl
  need jq jq
  need gcloud "google-cloud-cli google-cloud-cli-pubsub-emulator"
  need java default-jre-headless
  [ -x "$ROOT/.tools/venv/bin/gcp-storage-emulator" ] && "$PY" -c 'import yaml' 2>/dev/null ||
    die ".tools/venv lacks gcp-storage-emulator or PyYAML: bash -c '. scripts/lib/tools-venv.sh && tools_venv_install scripts/requirements/test-servers.txt'"
  if [ ! -x "$BIN" ]; then
    say "cargo build -p fintech"
    cargo build -p fintech
  fi
  # Only a folder this script made (it holds the marker) is ever removed.
  if [ -e "$STACK" ] && [ ! -f "$STACK/.local-stack" ] && [ -n "$(ls -A "$STACK" 2>/dev/null)" ]; then
    die "$STACK exists and is not a stack's folder: choose another LOCAL_STACK_DIR"
  fi
  rm -rf "$STACK"
  mkdir -p "$STACK/pids" "$STACK/logs" "$STACK/data"
  touch "$STACK/.local-stack"
  [ "$PORT" != 0 ] || PORT=$(free_port)
  started=$SECONDS
  local root_user=""
  [ "$(id -u)" = 0 ] && root_user="--user=root"

  say "MariaDB"
  local db_port db_password
  db_port=$(free_port)
  db_password=$(openssl rand -hex 16)
  # A temporary folder of its own, as the tests' servers have: servers sharing /tmp can remove
  # each other's temporary tables.
  mkdir -p "$STACK/tmp"
  mariadb-install-db --no-defaults $root_user --auth-root-authentication-method=normal --skip-test-db \
    --datadir="$STACK/mariadb" --tmpdir="$STACK/tmp" >"$STACK/logs/mariadb-install.log" 2>&1 || die "mariadb-install-db failed: $STACK/logs/mariadb-install.log"
  start mariadb "$(command -v mariadbd || echo /usr/sbin/mariadbd)" --no-defaults --datadir="$STACK/mariadb" \
    --tmpdir="$STACK/tmp" --port="$db_port" --bind-address=127.0.0.1 --socket="$STACK/mariadb.sock" $root_user \
    --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=128M --max-connections=500
  wait_for mariadb 60 port_open "$db_port"
  mariadb --no-defaults --protocol=socket -uroot --socket="$STACK/mariadb.sock" -e \
    "DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES;
     CREATE USER 'fintech'@'%' IDENTIFIED BY '$db_password'; GRANT ALL PRIVILEGES ON *.* TO 'fintech'@'%'; FLUSH PRIVILEGES;"
  local db_url="mysql://fintech:$db_password@127.0.0.1:$db_port"

  say "Redis, the Pub/Sub emulator, the storage emulator"
  local redis_port pubsub_port storage_port
  redis_port=$(free_port)
  start redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$STACK"
  pubsub_port=$(free_port)
  mkdir -p "$STACK/pubsub"
  start pubsub env CLOUDSDK_CONFIG="$STACK/gcloud" CLOUDSDK_CORE_DISABLE_PROMPTS=1 gcloud beta emulators pubsub start \
    --host-port="127.0.0.1:$pubsub_port" --project="$PROJECT" --data-dir="$STACK/pubsub"
  storage_port=$(free_port)
  start storage "$ROOT/.tools/venv/bin/gcp-storage-emulator" start --host=127.0.0.1 --port="$storage_port" \
    --in-memory --default-bucket="$BUCKET"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$STACK/signing-key.pem" 2>/dev/null
  wait_for redis 30 port_open "$redis_port"
  wait_for pubsub 90 port_open "$pubsub_port"
  wait_for storage 30 port_open "$storage_port"

  say "fintech migrate all (one database per service)"
  "$BIN" migrate all --database-url "$db_url/{service}" >"$STACK/logs/migrate.log" 2>&1 ||
    { tail -n 20 "$STACK/logs/migrate.log" >&2; die "migrations failed"; }

  # Every service's port, and the secrets of the services that call others (`fintech services`'
  # third column: identity's SERVICE_CALLS, the same table the chart's serviceUrls follow).
  local -A ports calls
  local svc callees
  for svc in $(services); do ports[$svc]=$(free_port); done
  while IFS=$'\t' read -r svc _ callees; do
    [ "$callees" = "-" ] || calls[$svc]=$callees
  done < <("$BIN" services)
  local admin_password callers=("${!calls[@]}")
  admin_password=$(openssl rand -hex 12)
  echo "$admin_password" >"$STACK/admin-password"
  chmod 600 "$STACK/admin-password"
  local -A secrets
  for svc in "${callers[@]}"; do secrets[$svc]=$(openssl rand -hex 24); done
  {
    echo "{"
    local first=1
    for svc in "${!ports[@]}"; do
      [ $first = 1 ] || echo ","
      first=0
      printf '  "%s": %s' "$svc" "${ports[$svc]}"
    done
    echo
    echo "}"
  } >"$STACK/ports.json"

  # serve SERVICE: `fintech serve` with the cluster's kind of configuration, by environment.
  serve() {
    local svc=$1 key
    key=$(upper "$(config_key "$svc")")
    local env=(
      FINTECH_GCP__PROJECT_ID="$PROJECT"
      FINTECH_EVENTS__BACKEND=pubsub
      FINTECH_EVENTS__PUBSUB_EMULATOR="http://127.0.0.1:$pubsub_port"
      FINTECH_REDIS__URL="redis://127.0.0.1:$redis_port/0"
      FINTECH_STORAGE__BACKEND=gcs
      FINTECH_STORAGE__BUCKET="$BUCKET"
      FINTECH_STORAGE__EMULATOR="http://127.0.0.1:$storage_port"
      FINTECH_STORAGE__SIGNER_SERVICE_ACCOUNT="local@$PROJECT.iam.gserviceaccount.com"
      FINTECH_STORAGE__SIGNING_KEY_FILE="$STACK/signing-key.pem"
      FINTECH_MIGRATIONS__ON_START=false
      "FINTECH_DATABASE__${key}__URL=$db_url/$(config_key "$svc")"
      FINTECH_AUTH__IDENTITY_URL="http://127.0.0.1:${ports[identity]}"
    )
    [ -z "${secrets[$svc]:-}" ] || env+=(FINTECH_AUTH__SERVICE_SECRET="${secrets[$svc]}")
    case $svc in
      identity)
        env+=(FINTECH_IDENTITY__BOOTSTRAP_ADMIN_PASSWORD="$admin_password" FINTECH_IDENTITY__KEY_ACTIVATION_DELAY_MS=0
          FINTECH_IDENTITY__TRUST_FORWARDED_FOR=true)
        local caller
        for caller in "${callers[@]}"; do
          env+=("FINTECH_IDENTITY__SERVICE_SECRETS__$(upper "$caller")=${secrets[$caller]}")
        done
        ;;
    esac
    local callee
    for callee in $(tr , " " <<<"${calls[$svc]:-}"); do
      env+=("FINTECH_${key}__$(upper "$callee")_URL=http://127.0.0.1:${ports[$callee]}")
    done
    mkdir -p "$STACK/data/$svc"
    start "svc-$svc" env "${env[@]}" "$BIN" serve "$svc" --port "${ports[$svc]}" --data-dir "$STACK/data/$svc"
  }

  # One at a time, in the platform's order (`fintech services`): identity first, whose keys the
  # others verify with, and each service after those it calls at start (accounts opens its
  # system accounts in the ledger).
  for svc in $(services); do
    say "$svc"
    serve "$svc"
    wait_for "svc-$svc" 90 ready "${ports[$svc]}"
  done

  say "nginx (routes from deploy/helm/fintech/values.yaml)"
  mkdir -p "$STACK/nginx"
  local user_flag=()
  [ "$(id -u)" = 0 ] && user_flag=(--user "root root")
  "$PY" scripts/lib/stack_nginx.py deploy/helm/fintech/values.yaml "$STACK/ports.json" "$PORT" "$STACK/nginx" \
    "${user_flag[@]}" >"$STACK/nginx/nginx.conf"
  nginx -t -c "$STACK/nginx/nginx.conf" -p "$STACK/nginx" >"$STACK/logs/nginx-check.log" 2>&1 ||
    { cat "$STACK/logs/nginx-check.log" >&2; die "the generated nginx configuration is refused"; }
  start nginx nginx -c "$STACK/nginx/nginx.conf" -p "$STACK/nginx"
  wait_for nginx 20 curl -fsS "http://127.0.0.1:$PORT/nginx-health"
  echo "http://127.0.0.1:$PORT" >"$STACK/url"
  say "up in $((SECONDS - started)) s: http://127.0.0.1:$PORT (admin@fintech.local, password in $STACK/admin-password)"
}

status() {
  [ -d "$STACK/pids" ] || { echo "no stack in $STACK"; return 0; }
  local pidfile
  for pidfile in $(ls "$STACK/pids"); do
    if alive "$(cat "$STACK/pids/$pidfile")"; then state=running; else state=STOPPED; fi
    printf '%-20s %-8s pid %s, log %s\n' "$pidfile" "$state" "$(cat "$STACK/pids/$pidfile")" "$STACK/logs/$pidfile.log"
  done
  [ ! -f "$STACK/url" ] || echo "entry point: $(cat "$STACK/url")"
}

case ${1:-} in
  up) up ;;
  down)
    stop_all
    [ ! -f "$STACK/.local-stack" ] || rm -rf "$STACK"
    say "stopped"
    ;;
  status) status ;;
  smoke)
    [ -f "$STACK/url" ] || die "no stack runs in $STACK: ./scripts/local-stack.sh up"
    "$PY" scripts/lib/stack_smoke.py "$(cat "$STACK/url")" "$STACK"
    ;;
  -h | --help | "") sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
  *) die "unknown command $1 (up, smoke, down, status)" ;;
esac
