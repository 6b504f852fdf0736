#!/usr/bin/env bash
# kafka-console-consumer equivalent for the lagwatch test broker.
# Runs Kafka's own org.apache.kafka.tools.consumer.ConsoleConsumer with the cached libs; all arguments are passed through.
# Example: kafka-console-consumer.sh --bootstrap-server 127.0.0.1:19092 --topic t1 --group g1 --from-beginning --max-messages 10
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
