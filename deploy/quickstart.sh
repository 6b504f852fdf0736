#!/usr/bin/env bash
# One command from a fresh clone to a running lagwatch:
#   1. installs and starts the local services (Kafka KRaft broker, MariaDB,
#      the ClickHouse engine behind its HTTP front, an SMTP capture) with
#      tests/infra/up.sh — all on loopback, cached under ~/.cache/lagwatch;
#   2. builds the lagwatch binary (release);
#   3. creates a demo topic with a lagging consumer group and registers a
#      monitor for it in the embedded SQLite store;
#   4. runs `lagwatch all` (collector + evaluator) in the foreground.
# Alerts appear in the log and as mail files in /tmp/lagwatch-infra/mail/;
# metrics on http://127.0.0.1:9464/metrics. Ctrl-C stops lagwatch; the
# services keep running until tests/infra/down.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/infra/up.sh
# shellcheck disable=SC1091
. "${LAGWATCH_INFRA_DIR:-/tmp/lagwatch-infra}/env.sh"

cargo build --release --locked -p lagwatch
bin=target/release/lagwatch
config=deploy/quickstart.toml
mkdir -p target/quickstart
tools=tests/infra

echo "quickstart: demo topic demo-orders with group demo-billing lagging behind"
"$tools/kafka-topics.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --create --if-not-exists \
    --topic demo-orders --partitions 3 --replication-factor 1
end=$("$tools/kafka-get-offsets.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --topic demo-orders \
    | awk -F: '{s += $3} END {print s + 0}')
if [[ "$end" -lt 3000 ]]; then
    seq 1 3000 | sed 's/^/demo order /' | "$tools/kafka-console-producer.sh" \
        --bootstrap-server "$LAGWATCH_TEST_KAFKA" --topic demo-orders >/dev/null
fi
"$tools/kafka-consumer-groups.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --group demo-billing \
    --topic demo-orders --reset-offsets --to-earliest --execute >/dev/null

if ! "$bin" monitors list --json --config "$config" | grep -q '"demo-billing"'; then
    "$bin" monitors add --config "$config" --team demo --cluster local --group demo-billing \
        --topic demo-orders --threshold 500 --for 10s --email oncall@example.com
fi
"$bin" monitors list --config "$config"

echo "quickstart: running lagwatch all (Ctrl-C to stop); mail lands in $LAGWATCH_TEST_MAIL_DIR"
exec "$bin" all --config "$config"
