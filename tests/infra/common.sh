# shellcheck shell=bash disable=SC2034
# Shared defaults and helpers for the lagwatch test infrastructure scripts.
# Sourced by install.sh / up.sh / down.sh / status.sh; not meant to be run directly.

LAGWATCH_INFRA_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

: "${LAGWATCH_CACHE_DIR:=$HOME/.cache/lagwatch}"
: "${LAGWATCH_INFRA_DIR:=/tmp/lagwatch-infra}"

# Versions (override via environment).
: "${LAGWATCH_KAFKA_VERSION:=4.1.2}"
: "${LAGWATCH_LOG4J_VERSION:=2.24.3}"
: "${LAGWATCH_SLF4J_VERSION:=2.0.17}"
: "${LAGWATCH_JOLOKIA_VERSION:=2.5.1}"
: "${LAGWATCH_JMX_EXPORTER_VERSION:=1.0.1}"
: "${LAGWATCH_CHDB_SPEC:=chdb-core==26.9.0}"
: "${LAGWATCH_AIOSMTPD_SPEC:=aiosmtpd==1.4.6}"
# The test ClickHouse front's LZ4 codecs (native blocks with their CityHash128
# checksum, LZ4 frames): clickhouse_http.py.
: "${LAGWATCH_CH_CODECS_SPEC:=lz4==4.4.5 clickhouse-cityhash==1.0.2.6}"
: "${LAGWATCH_MAVEN_DEP_PLUGIN:=org.apache.maven.plugins:maven-dependency-plugin:3.8.1}"

# Ports (loopback only).
: "${LAGWATCH_BIND_HOST:=127.0.0.1}"
: "${LAGWATCH_KAFKA_PORT:=19092}"
: "${LAGWATCH_KAFKA_CONTROLLER_PORT:=19093}"
: "${LAGWATCH_JOLOKIA_PORT:=18778}"
: "${LAGWATCH_JMX_EXPORTER_PORT:=18779}"
: "${LAGWATCH_MYSQL_PORT:=13306}"
: "${LAGWATCH_CLICKHOUSE_PORT:=18123}"
: "${LAGWATCH_SMTP_PORT:=12525}"
: "${LAGWATCH_KAFKA_HEAP:=-Xmx512m -Xms128m}"

LAGWATCH_VENV="$LAGWATCH_CACHE_DIR/venv"
LAGWATCH_VENV_PY="$LAGWATCH_VENV/bin/python"
LAGWATCH_KAFKA_HOME="$LAGWATCH_CACHE_DIR/kafka-$LAGWATCH_KAFKA_VERSION"
# Content of the Kafka libs completion marker: a change re-resolves the jars.
LAGWATCH_KAFKA_STAMP="kafka=$LAGWATCH_KAFKA_VERSION log4j=$LAGWATCH_LOG4J_VERSION slf4j=$LAGWATCH_SLF4J_VERSION"
LAGWATCH_JOLOKIA_JAR="$LAGWATCH_CACHE_DIR/jolokia/jolokia-agent-jvm-$LAGWATCH_JOLOKIA_VERSION-javaagent.jar"
LAGWATCH_JOLOKIA_FAILED="$LAGWATCH_CACHE_DIR/jolokia/unavailable-$LAGWATCH_JOLOKIA_VERSION"
# Prometheus JMX exporter Java agent (io.prometheus.jmx:jmx_prometheus_javaagent), optional like Jolokia.
LAGWATCH_JMX_EXPORTER_JAR="$LAGWATCH_CACHE_DIR/jmx-exporter/jmx_prometheus_javaagent-$LAGWATCH_JMX_EXPORTER_VERSION.jar"
LAGWATCH_JMX_EXPORTER_FAILED="$LAGWATCH_CACHE_DIR/jmx-exporter/unavailable-$LAGWATCH_JMX_EXPORTER_VERSION"
LAGWATCH_M2_REPO="${LAGWATCH_M2_REPO:-$LAGWATCH_CACHE_DIR/m2}"

# Broker settings shared by every test and bench broker (up.sh,
# private-kafka.sh, bench/cluster.sh): one replica of each internal topic,
# no rebalance delay, no auto-created topics.
LAGWATCH_KAFKA_TEST_PROPERTIES="offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false"

export LAGWATCH_CACHE_DIR LAGWATCH_INFRA_DIR

lw_log()  { printf '[lagwatch-infra] %s\n' "$*" >&2; }
lw_warn() { printf '[lagwatch-infra] WARNING: %s\n' "$*" >&2; }
lw_die()  { printf '[lagwatch-infra] ERROR: %s\n' "$*" >&2; exit 1; }

# lw_port_open HOST PORT -> 0 if something accepts TCP connections there.
lw_port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# lw_pid_alive PIDFILE -> 0 if the pidfile names a live process.
lw_pid_alive() {
    local f="$1" pid
    [[ -s "$f" ]] || return 1
    pid="$(cat "$f" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null
}

lw_now() { date +%s; }

# Installation is complete when every cached piece is in place.
lw_install_complete() {
    [[ -f "$LAGWATCH_VENV/.lagwatch-ok" ]] \
        && [[ "$(cat "$LAGWATCH_VENV/.lagwatch-ok")" == "$LAGWATCH_CHDB_SPEC $LAGWATCH_AIOSMTPD_SPEC $LAGWATCH_CH_CODECS_SPEC" ]] \
        && [[ -f "$LAGWATCH_KAFKA_HOME/.lagwatch-ok" ]] \
        && [[ "$(cat "$LAGWATCH_KAFKA_HOME/.lagwatch-ok")" == "$LAGWATCH_KAFKA_STAMP" ]] \
        && { [[ -f "$LAGWATCH_JOLOKIA_JAR" ]] || [[ -f "$LAGWATCH_JOLOKIA_FAILED" ]]; } \
        && { [[ -f "$LAGWATCH_JMX_EXPORTER_JAR" ]] || [[ -f "$LAGWATCH_JMX_EXPORTER_FAILED" ]]; } \
        && { command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || [[ -x /usr/sbin/mysqld ]]; } \
        && [[ -f "$LAGWATCH_VENV/.schemathesis-ok" ]] \
        && [[ -f "$LAGWATCH_CACHE_DIR/node/.lagwatch-ok" ]] \
        && [[ -x /usr/bin/chromium ]]
}

lw_mysqld_bin() {
    local b
    for b in mariadbd mysqld /usr/sbin/mariadbd /usr/sbin/mysqld; do
        if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
    done
    return 1
}
