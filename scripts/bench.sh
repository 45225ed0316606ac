#!/usr/bin/env bash
# Runs `fintech bench ledger` on SQLite and on a private MariaDB started here (stopped by pid on
# exit), with durable settings on both (SQLite WAL + synchronous=FULL;
# innodb_flush_log_at_trx_commit=1). Usage: scripts/bench.sh [seconds-per-phase] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
runs=${2:-3}

command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || {
  echo "mariadb-server is not installed: run ./scripts/test.sh once (it installs it) or apt-get install -y mariadb-server" >&2
  exit 1
}
echo "==> cargo build --release -p fintech"
cargo build --release --locked -p fintech
bin=target/release/fintech

dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "==> starting MariaDB on 127.0.0.1:$port"
PATH="$PATH:/usr/sbin" mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
  --auth-root-authentication-method=normal --skip-test-db >/dev/null
PATH="$PATH:/usr/sbin" mariadbd --no-defaults --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
  --socket="$dir/sock" --user=root --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=256M \
  --innodb-flush-log-at-trx-commit=1 --max-connections=500 --log-error="$dir/error.log" &
pid=$!
for _ in $(seq 1 100); do
  mariadb --no-defaults --protocol=socket --socket="$dir/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
mariadb --no-defaults --protocol=socket --socket="$dir/sock" -uroot -e \
  "DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES; CREATE USER 'bench'@'%' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO 'bench'@'%';"

for run in $(seq 1 "$runs"); do
  echo "==> run $run/$runs: SQLite"
  "$bin" bench ledger --seconds "$seconds"
  echo "==> run $run/$runs: MariaDB"
  "$bin" bench ledger --seconds "$seconds" --database-url "mysql://bench:bench@127.0.0.1:$port/bench_$run"
done
