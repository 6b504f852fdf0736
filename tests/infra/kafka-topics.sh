#!/usr/bin/env bash
# kafka-topics equivalent for the lagwatch test broker.
# Runs Kafka's own org.apache.kafka.tools.TopicCommand with the cached libs; all arguments are passed through.
# Example: kafka-topics.sh --bootstrap-server 127.0.0.1:19092 --create --topic t1 --partitions 3
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
