#!/usr/bin/env bash
# kafka-console-producer equivalent for the lagwatch test broker.
# Runs Kafka's own org.apache.kafka.tools.ConsoleProducer with the cached libs; all arguments are passed through.
# Example: kafka-console-producer.sh --bootstrap-server 127.0.0.1:19092 --topic t1 < lines.txt
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
