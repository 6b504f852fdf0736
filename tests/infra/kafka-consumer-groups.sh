#!/usr/bin/env bash
# kafka-consumer-groups equivalent for the lagwatch test broker.
# Runs Kafka's own org.apache.kafka.tools.consumer.group.ConsumerGroupCommand with the cached libs; all arguments are passed through.
# Example: kafka-consumer-groups.sh --bootstrap-server 127.0.0.1:19092 --describe --group g1
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka-run-class.sh" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
