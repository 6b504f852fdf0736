#!/usr/bin/env bash
# A multi-broker KRaft cluster for the large collector benchmark.
#
# One broker process holds about one open file per partition, and the test
# machine's hard limit is 20,000 open files per process: the 20,000-partition
# profile of bench collector_cycle needs its partitions spread over several
# brokers. This script starts BROKERS (default 2) brokers on loopback:
# node 1 is broker + controller, the others are brokers only.
#
# Usage: bench/cluster.sh up   [DIR] [BROKERS]   formats once, starts, waits
#        bench/cluster.sh down [DIR]             stops every node (SIGTERM)
# Ports: broker n listens on BENCH_CLUSTER_PORT + 2n - 2 (default 39092,
# 39094, ...); the controller on 39093. Bootstrap: 127.0.0.1:39092.
# Needs the jars installed by tests/infra/install.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tests/infra/common.sh
source "$ROOT/tests/infra/common.sh"
cmd="${1:?up|down}"
dir="${2:-/tmp/lagwatch-bench-cluster}"
brokers="${3:-2}"
base="${BENCH_CLUSTER_PORT:-39092}"
controller=$((base + 1))
cp="$LAGWATCH_KAFKA_HOME/libs/*"

port_of() { echo $((base + 2 * $1 - 2)); }

case "$cmd" in
up)
    mkdir -p "$dir"
    id_file="$dir/cluster.id"
    if [[ ! -s "$id_file" ]]; then
        "$LAGWATCH_VENV_PY" -c 'import base64, itertools, uuid; print(next(i for i in (base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") for _ in itertools.count()) if not i.startswith("-")))' >"$id_file"
    fi
    cluster_id="$(cat "$id_file")"
    for n in $(seq 1 "$brokers"); do
        node="$dir/node$n"
        mkdir -p "$node/data" "$node/logs"
        port="$(port_of "$n")"
        if [[ $n -eq 1 ]]; then
            roles="broker,controller"
            listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller"
        else
            roles="broker"
            listeners="PLAINTEXT://127.0.0.1:$port"
        fi
        cat >"$node/server.properties" <<PROPS
process.roles=$roles
node.id=$n
controller.quorum.voters=1@127.0.0.1:$controller
listeners=$listeners
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$node/data
default.replication.factor=1
offsets.topic.num.partitions=50
$LAGWATCH_KAFKA_TEST_PROPERTIES
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
PROPS
        if [[ ! -f "$node/data/meta.properties" ]]; then
            java -Xmx256m -Dlog4j2.configurationFile="$ROOT/tests/infra/kafka-tools-log4j2.xml" -cp "$cp" \
                kafka.tools.StorageTool format --cluster-id "$cluster_id" \
                --config "$node/server.properties" >"$node/logs/format.log" 2>&1 \
                || { tail -20 "$node/logs/format.log" >&2; exit 1; }
        fi
        if [[ -s "$node/pid" ]] && kill -0 "$(cat "$node/pid")" 2>/dev/null; then
            echo "node $n already running (pid $(cat "$node/pid"))" >&2
            continue
        fi
        # shellcheck disable=SC2016
        nohup setsid bash -c 'echo $$ >"$0" && exec "$@"' "$node/pid" \
            java -Xmx1g -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$ROOT/tests/infra/kafka-log4j2.xml" -Dkafka.logs.dir="$node/logs" \
            -cp "$cp" kafka.Kafka "$node/server.properties" </dev/null >>"$node/logs/stdout.log" 2>&1 &
    done
    for n in $(seq 1 "$brokers"); do
        port="$(port_of "$n")"
        for _ in $(seq 1 240); do
            lw_port_open 127.0.0.1 "$port" && break
            sleep 0.5
        done
        lw_port_open 127.0.0.1 "$port" || { tail -20 "$dir/node$n/logs/stdout.log" >&2; lw_die "bench broker $n not listening on $port"; }
    done
    lw_log "bench cluster up: $brokers brokers, bootstrap 127.0.0.1:$base (data in $dir)"
    ;;
down)
    for pid_file in "$dir"/node*/pid; do
        [[ -s "$pid_file" ]] || continue
        pid="$(cat "$pid_file")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        rm -f "$pid_file"
    done
    lw_log "bench cluster stopped (data kept in $dir; remove it to start afresh)"
    ;;
*) lw_die "usage: bench/cluster.sh up|down [DIR] [BROKERS]" ;;
esac
