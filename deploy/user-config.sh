#!/usr/bin/env bash
# Writes the per-user lagwatch configuration for the local services that
# tests/infra/up.sh started, with absolute paths, to the file lagwatch reads
# when no --config is given: ${XDG_CONFIG_HOME:-$HOME/.config}/lagwatch/lagwatch.toml.
# The monitor store goes to ${XDG_DATA_HOME:-$HOME/.local/share}/lagwatch/lagwatch.db.
# A file there that this script did not write is left alone (exit 3).
#
# Used by deploy/quickstart.sh and the README test (tests/readme/run.sh).
# Overrides, for running a second, separate setup next to the first:
#   LAGWATCH_QS_LISTEN  HTTP listener            (default 127.0.0.1:9464)
#   LAGWATCH_QS_SUFFIX  appended to the metrics topic, state topic, evaluator
#                       group and ClickHouse database (default: none)
set -euo pipefail
. "${LAGWATCH_INFRA_DIR:-/tmp/lagwatch-infra}/env.sh"

config_dir="${XDG_CONFIG_HOME:-$HOME/.config}/lagwatch"
data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/lagwatch"
file="$config_dir/lagwatch.toml"
marker="# Written by lagwatch deploy/user-config.sh"
listen="${LAGWATCH_QS_LISTEN:-127.0.0.1:9464}"
suffix="${LAGWATCH_QS_SUFFIX:-}"

if [[ -f "$file" ]] && ! head -n 1 "$file" | grep -qF "$marker"; then
    echo "user-config: $file exists and was not written by this script; leaving it alone" >&2
    exit 3
fi
mkdir -p "$config_dir" "$data_dir"
smtp_host="${LAGWATCH_TEST_SMTP%:*}"
smtp_port="${LAGWATCH_TEST_SMTP##*:}"
cat >"$file.tmp" <<TOML
$marker; rewritten by it, edit a copy.
# The local services of tests/infra/up.sh; lagwatch finds this file when no
# --config is given (after ./lagwatch.toml).
version = 1

[store]
url = "sqlite://$data_dir/lagwatch.db"

[clusters.local]
bootstrap_servers = "$LAGWATCH_TEST_KAFKA"

[metrics_topic]
cluster = "local"
topic = "lagwatch-samples$suffix"
partitions = 6

[collector]
interval = "5s"
monitor_refresh = "5s"

[evaluator]
consumer_group = "lagwatch-evaluator$suffix"
state_topic = "lagwatch-alert-state$suffix"

[clickhouse]
url = "$LAGWATCH_TEST_CLICKHOUSE_URL"
database = "lagwatch$suffix"

[email]
host = "$smtp_host"
port = $smtp_port
from = "lagwatch <lagwatch@localhost>"

[http]
listen = "$listen"
TOML
mv "$file.tmp" "$file"
echo "$file"
