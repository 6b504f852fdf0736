#!/usr/bin/env bash
# Stop every service started by up.sh (found through the pidfiles in $LAGWATCH_INFRA_DIR/run).
# Idempotent. Data is kept unless --wipe is given, which also deletes $LAGWATCH_INFRA_DIR.
# Usage: down.sh [--wipe]
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

WIPE=0
for a in "$@"; do
    case "$a" in
        --wipe) WIPE=1 ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) lw_die "unknown argument: $a" ;;
    esac
done

INFRA="$LAGWATCH_INFRA_DIR"
RUN="$INFRA/run"

if [[ -d "$INFRA" ]]; then
    exec 8>"$INFRA/.lock"
    flock -w 300 8 || lw_die "another up.sh/down.sh holds $INFRA/.lock"
fi

# stop_service NAME PIDFILE TIMEOUT
stop_service() {
    local name="$1" pidfile="$2" timeout="$3" pid deadline
    if ! lw_pid_alive "$pidfile"; then
        [[ -f "$pidfile" ]] && rm -f "$pidfile"
        lw_log "$name: not running"
        return 0
    fi
    pid="$(cat "$pidfile")"
    # Only signal a process that really is ours (pid reuse after a reboot/crash).
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$INFRA"; then
        lw_warn "$name: pid $pid does not look like our service; removing stale pidfile only"
        rm -f "$pidfile"
        return 0
    fi
    lw_log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(lw_now) + timeout ))
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(lw_now) >= deadline )); then
            lw_warn "$name: still running after ${timeout}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
}

if [[ -d "$RUN" ]]; then
    # Stop in parallel-friendly order: quick ones first, Kafka (controlled shutdown) last.
    stop_service smtp "$RUN/smtp.pid" 15
    stop_service clickhouse "$RUN/clickhouse.pid" 30
    stop_service mariadb "$RUN/mysql.pid" 60
    stop_service kafka "$RUN/kafka.pid" 60
else
    lw_log "nothing to stop ($RUN does not exist)"
fi

# env.sh describes running services only.
rm -f "$INFRA/env.sh"

if [[ $WIPE -eq 1 ]]; then
    case "$INFRA" in
        ""|"/"|"$HOME"|"/tmp"|"/root") lw_die "refusing to wipe LAGWATCH_INFRA_DIR='$INFRA'" ;;
    esac
    lw_log "wiping $INFRA"
    rm -rf -- "$INFRA"
fi
lw_log "down complete"
