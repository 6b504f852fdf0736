#!/usr/bin/env bash
# The README cannot drift: runs every ```sh and ```bash block of README.md,
# in order, each in a new bash (-euo pipefail) from the repository root,
# with a temporary HOME set up the way deploy/quickstart.sh sets up a user:
# `lagwatch` on the PATH, ~/.config/lagwatch/lagwatch.toml written by
# deploy/user-config.sh, the demo monitor registered and `lagwatch all`
# running. Any non-zero exit fails the test, showing the block and its
# output. Blocks whose info string says `no-test` (```sh no-test: the quick
# start itself, tests/run.sh, production examples) are skipped and counted.
#
# So it can run next to a user's quick start, its lagwatch listens on a free
# port (every 127.0.0.1:9464 in a block is rewritten to it) and uses its own
# metrics topic, state topic, evaluator group and ClickHouse database.
# Needs the services of tests/infra/up.sh. LAGWATCH_BIN: binary to use
# (default: target/debug/lagwatch, built). LAGWATCH_README: the file to check
# (default README.md).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
# shellcheck disable=SC1091
. "${LAGWATCH_INFRA_DIR:-/tmp/lagwatch-infra}/env.sh"

if [[ -z "${LAGWATCH_BIN:-}" ]]; then
    cargo build -q --locked -p lagwatch --bin lagwatch
    LAGWATCH_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/lagwatch"
fi
[[ -x "$LAGWATCH_BIN" ]] || { echo "readme: no lagwatch binary at $LAGWATCH_BIN" >&2; exit 1; }

work="$(mktemp -d)"
suffix="_readme_$$"
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    curl -fsS "$LAGWATCH_TEST_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS lagwatch$suffix" >/dev/null 2>&1 || true
    tests/infra/kafka-topics.sh --bootstrap-server "$LAGWATCH_TEST_KAFKA" --delete \
        --topic "lagwatch-.*$suffix" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

export HOME="$work/home"
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME LAGWATCH_CONFIG
mkdir -p "$HOME/bin"
ln -s "$LAGWATCH_BIN" "$HOME/bin/lagwatch"
export PATH="$HOME/bin:$PATH"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LAGWATCH_QS_LISTEN="127.0.0.1:$port" LAGWATCH_QS_SUFFIX="$suffix" deploy/user-config.sh >/dev/null
lagwatch migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
tests/infra/kafka-topics.sh --bootstrap-server "$LAGWATCH_TEST_KAFKA" --create --if-not-exists \
    --topic demo-orders --partitions 3 --replication-factor 1 >/dev/null
lagwatch monitors add --team demo --cluster local --group demo-billing --topic demo-orders \
    --threshold 500 --for 5s --time-lag exact --email oncall@example.com >/dev/null
lagwatch all >"$work/lagwatch.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/lagwatch.log" >&2; echo "readme: lagwatch all exited" >&2; exit 1; }
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "readme: lagwatch all not healthy" >&2; exit 1; }

# Blocks to files: block-<n>.sh, or block-<n>.skip for no-test ones.
awk -v dir="$work" '
    /^```/ && inside { inside = 0; next }
    /^```(sh|bash)([ \t].*)?$/ { n++; inside = 1; file = dir "/block-" n ($0 ~ /no-test/ ? ".skip" : ".sh"); printf "" > file; next }
    inside { print > file }
' "${LAGWATCH_README:-README.md}"

ran=0
skipped=0
for block in $(ls "$work"/block-* 2>/dev/null | sort -t- -k2 -n); do
    if [[ "$block" == *.skip ]]; then
        skipped=$((skipped + 1))
        continue
    fi
    sed -i "s/127\.0\.0\.1:9464/127.0.0.1:$port/g" "$block"
    if ! bash -euo pipefail "$block" >"$block.out" 2>&1; then
        echo "readme: this README block failed:" >&2
        sed 's/^/    | /' "$block" >&2
        echo "output:" >&2
        sed 's/^/    > /' "$block.out" >&2
        echo "--- last lines of the lagwatch log:" >&2
        tail -n 20 "$work/lagwatch.log" >&2
        exit 1
    fi
    ran=$((ran + 1))
    echo "readme: block $(basename "$block" .sh | cut -d- -f2) ok: $(head -n 1 "$block")"
done
[[ $ran -gt 0 ]] || { echo "readme: no runnable sh/bash block found in README.md" >&2; exit 1; }
echo "readme: $ran README blocks ran and passed, $skipped marked no-test were skipped"
