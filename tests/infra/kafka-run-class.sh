#!/usr/bin/env bash
# Run a Kafka main class with the cached Kafka libs and quiet (errors-only, stderr) logging.
# Usage: kafka-run-class.sh <main class> [args...]
# Env: KAFKA_TOOLS_HEAP_OPTS (default -Xmx256m), KAFKA_TOOLS_JAVA_OPTS (extra JVM options).
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

[[ $# -ge 1 ]] || lw_die "usage: $0 <main class> [args...]"
if [[ ! -f "$LAGWATCH_KAFKA_HOME/.lagwatch-ok" ]]; then
    lw_log "Kafka libs missing in $LAGWATCH_KAFKA_HOME; running install.sh"
    "$LAGWATCH_INFRA_SRC/install.sh" >&2
fi
main_class="$1"
shift
# shellcheck disable=SC2086
exec java ${KAFKA_TOOLS_HEAP_OPTS:--Xmx256m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LAGWATCH_INFRA_SRC/kafka-tools-log4j2.xml" \
    ${KAFKA_TOOLS_JAVA_OPTS:-} \
    -cp "$LAGWATCH_KAFKA_HOME/libs/*" "$main_class" "$@"
