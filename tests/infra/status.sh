#!/usr/bin/env bash
# Print whether each lagwatch test service is up (process alive AND answering) or down.
# Exit status: 0 when all are up, 1 otherwise.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

INFRA="$LAGWATCH_INFRA_DIR"
RUN="$INFRA/run"
HOST="$LAGWATCH_BIND_HOST"
PY="$LAGWATCH_VENV_PY"
[[ -x "$PY" ]] || PY=python3
ALL_UP=0

report() { # NAME PIDFILE ENDPOINT PROBE-ARGS...
    local name="$1" pidfile="$2" endpoint="$3" info
    shift 3
    if ! lw_pid_alive "$pidfile"; then
        printf '%-12s DOWN  %-32s (no live process)\n' "$name" "$endpoint"
        ALL_UP=1
        return
    fi
    if info="$("$PY" "$LAGWATCH_INFRA_SRC/probe.py" "$@" 2>&1)"; then
        printf '%-12s UP    %-32s pid %s, %s\n' "$name" "$endpoint" "$(cat "$pidfile")" "$info"
    else
        printf '%-12s DOWN  %-32s pid %s alive but not answering: %s\n' "$name" "$endpoint" "$(cat "$pidfile")" "$info"
        ALL_UP=1
    fi
}

report kafka "$RUN/kafka.pid" "$HOST:$LAGWATCH_KAFKA_PORT" kafka "$HOST:$LAGWATCH_KAFKA_PORT"
if [[ -f "$INFRA/kafka/jolokia.url" ]] && lw_pid_alive "$RUN/kafka.pid"; then
    report jolokia "$RUN/kafka.pid" "$(cat "$INFRA/kafka/jolokia.url")" jolokia "$(cat "$INFRA/kafka/jolokia.url")"
fi
if [[ -f "$INFRA/kafka/jmx-exporter.url" ]] && lw_pid_alive "$RUN/kafka.pid"; then
    report jmx-exporter "$RUN/kafka.pid" "$(cat "$INFRA/kafka/jmx-exporter.url")" jmx-exporter "$(cat "$INFRA/kafka/jmx-exporter.url")"
fi
if [[ -s "$INFRA/kafka/missing-agents" ]] && lw_pid_alive "$RUN/kafka.pid"; then
    printf '%-12s the running broker lacks the installed agent(s): %s (see up.sh)\n' kafka "$(cat "$INFRA/kafka/missing-agents")"
fi
if lw_pid_alive "$RUN/mysql.pid"; then
    if (command -v mariadb-admin >/dev/null && mariadb-admin --no-defaults --socket="$INFRA/mysql/mysqld.sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1); then
        printf '%-12s UP    %-32s pid %s\n' mariadb "$HOST:$LAGWATCH_MYSQL_PORT" "$(cat "$RUN/mysql.pid")"
    else
        printf '%-12s DOWN  %-32s pid %s alive but not answering\n' mariadb "$HOST:$LAGWATCH_MYSQL_PORT" "$(cat "$RUN/mysql.pid")"
        ALL_UP=1
    fi
else
    printf '%-12s DOWN  %-32s (no live process)\n' mariadb "$HOST:$LAGWATCH_MYSQL_PORT"
    ALL_UP=1
fi
report clickhouse "$RUN/clickhouse.pid" "http://$HOST:$LAGWATCH_CLICKHOUSE_PORT" http-ping "http://$HOST:$LAGWATCH_CLICKHOUSE_PORT"
report smtp "$RUN/smtp.pid" "$HOST:$LAGWATCH_SMTP_PORT" smtp "$HOST:$LAGWATCH_SMTP_PORT"
[[ -f "$INFRA/env.sh" ]] && echo "env: . $INFRA/env.sh"
exit $ALL_UP
