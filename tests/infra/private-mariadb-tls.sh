#!/usr/bin/env bash
# A private MariaDB that speaks TLS, for the store's TLS test
# (tests/tests/tls_dependencies.rs); the shared test MariaDB stays as it is.
# Usage: private-mariadb-tls.sh start DIR PORT CERT_DIR
#          fresh datadir in DIR, TCP 127.0.0.1:PORT, certificate and key
#          CERT_DIR/server.pem, CA CERT_DIR/ca.pem (tls-certs.sh makes them);
#          database `lagwatch`, user lagwatch_tls / lagwatch_tls that must
#          use TLS (REQUIRE SSL). Returns once the server answers.
#        private-mariadb-tls.sh stop DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

cmd="${1:?start|stop}"
dir="${2:?DIR}"
case "$cmd" in
stop)
    if [[ -s "$dir/mariadbd.pid" ]]; then
        pid="$(cat "$dir/mariadbd.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    exit 0
    ;;
start) ;;
*) echo "usage: $0 start DIR PORT CERT_DIR | stop DIR" >&2; exit 2 ;;
esac
port="${3:?PORT}"
certs="${4:?CERT_DIR}"
mysqld="$(lw_mysqld_bin)" || { echo "no mariadbd (run tests/infra/install.sh)" >&2; exit 1; }
installer="$(command -v mariadb-install-db || command -v mysql_install_db)"
admin="$(command -v mariadb-admin || command -v mysqladmin)"
mkdir -p "$dir"
"$installer" --no-defaults --user=root --datadir="$dir/data" \
    --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
    || { tail -n 20 "$dir/install.log" >&2; exit 1; }
cat >"$dir/init.sql" <<'SQL'
CREATE DATABASE IF NOT EXISTS lagwatch CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'lagwatch_tls'@'127.0.0.1' IDENTIFIED BY 'lagwatch_tls' REQUIRE SSL;
GRANT ALL PRIVILEGES ON lagwatch.* TO 'lagwatch_tls'@'127.0.0.1';
SQL
"$mysqld" --no-defaults --user=root --datadir="$dir/data" \
    --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mariadbd.pid" --log-error="$dir/mariadbd.err" \
    --skip-name-resolve --skip-log-bin --init-file="$dir/init.sql" \
    --innodb-buffer-pool-size=32M --max-connections=50 \
    --ssl-ca="$certs/ca.pem" --ssl-cert="$certs/server.pem" --ssl-key="$certs/server.pem" \
    >"$dir/stdout.log" 2>&1 &
for _ in $(seq 1 300); do
    if "$admin" --no-defaults --socket="$dir/mysqld.sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.1
done
echo "private MariaDB did not start:" >&2
tail -n 30 "$dir/mariadbd.err" >&2 || true
exit 1
