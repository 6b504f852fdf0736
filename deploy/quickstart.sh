#!/usr/bin/env bash
# One command from a fresh clone to a running lagwatch and a demo that tells
# the whole story. Steps (each prints its time):
#   1. services: tests/infra/up.sh starts a Kafka broker, MariaDB, the
#      ClickHouse engine behind its HTTP front and an SMTP capture, all on
#      loopback, cached under ~/.cache/lagwatch (installed on first use;
#      test-only tools are left out: LAGWATCH_INSTALL_TEST_TOOLS=0);
#   2. build: cargo build --release of the lagwatch binary;
#   3. install: a symlink ~/.cargo/bin/lagwatch -> target/release/lagwatch
#      (so `lagwatch` works in any shell and follows later rebuilds) and the
#      configuration at ~/.config/lagwatch/lagwatch.toml (deploy/user-config.sh),
#      where lagwatch looks when no --config is given; `lagwatch migrate`;
#   4. demo data: 3000 fresh messages on topic demo-orders that group
#      demo-billing has not read, a monitor for it (team demo, threshold
#      500, for 5s, exact time lag) and a team API token;
#   5. demo: starts `lagwatch all`, waits for the threshold page
#      ([FIRING] mail), starts a consumer that catches up, waits for the
#      resolve mail ([RESOLVED]);
#   6. prints where to look, and keeps lagwatch running until Ctrl-C
#      (QUICKSTART_DETACH=1 leaves it running in the background and exits).
# The services keep running until tests/infra/down.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

T0=$(date +%s)
step_no=0
step_t0=$T0
step() {
    if ((step_no > 0)); then
        printf '    done in %ss\n' "$(($(date +%s) - step_t0))"
    fi
    step_no=$((step_no + 1))
    step_t0=$(date +%s)
    printf '==> [%s/6] %s\n' "$step_no" "$*"
}
die() {
    echo "quickstart: $*" >&2
    exit 1
}

step "services: Kafka, MariaDB, ClickHouse front, SMTP capture (tests/infra/up.sh)"
LAGWATCH_INSTALL_TEST_TOOLS="${LAGWATCH_INSTALL_TEST_TOOLS:-0}" tests/infra/up.sh
# shellcheck disable=SC1091
. "${LAGWATCH_INFRA_DIR:-/tmp/lagwatch-infra}/env.sh"
tools=tests/infra

step "build: cargo build --release -p lagwatch"
cargo build --release --locked -p lagwatch
bin="${CARGO_TARGET_DIR:-$repo/target}/release/lagwatch"

step "install: lagwatch on the PATH, configuration, monitor store"
bindir="${CARGO_HOME:-$HOME/.cargo}/bin"
mkdir -p "$bindir"
ln -sfn "$bin" "$bindir/lagwatch"
echo "    $bindir/lagwatch -> $bin"
case ":$PATH:" in
    *":$bindir:"*) ;;
    *) echo "    note: $bindir is not on your PATH; add it (rustup's installer normally does)" ;;
esac
config="$(deploy/user-config.sh)" || die "could not write the configuration (see above); pass --config to use your own"
echo "    configuration: $config"
LAGWATCH_LOG=warn "$bin" migrate --config "$config" | sed 's/^/    /'

step "demo data: topic demo-orders, 3000 unread messages for group demo-billing, monitor, token"
"$tools/kafka-topics.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --create --if-not-exists \
    --topic demo-orders --partitions 3 --replication-factor 1 >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The group starts exactly where this run's messages start, so its lag is
# these 3000 messages and its time lag is their age.
"$tools/kafka-get-offsets.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --topic demo-orders \
    | awk -F: '{print $1 "," $2 "," $3}' >"$work/start.csv"
seq 1 3000 | sed 's/^/demo order /' | "$tools/kafka-console-producer.sh" \
    --bootstrap-server "$LAGWATCH_TEST_KAFKA" --topic demo-orders >/dev/null
"$tools/kafka-consumer-groups.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --group demo-billing \
    --reset-offsets --from-file "$work/start.csv" --execute >/dev/null
if ! "$bin" monitors list --json --team demo --config "$config" | grep -q '"demo-billing"'; then
    "$bin" monitors add --config "$config" --team demo --cluster local --group demo-billing \
        --topic demo-orders --threshold 500 --for 5s --time-lag exact --email oncall@example.com \
        | sed 's/^/    /'
fi
"$bin" monitors list --team demo --config "$config" | sed 's/^/    /'
token="$("$bin" tokens add --team demo --config "$config" 2>/dev/null)"

step "demo: lagwatch all, threshold page, consumer catches up, resolve"
listen="$(sed -n 's/^listen = "\(.*\)"$/\1/p' "$config")"
if curl -fsS "http://$listen/healthz" >/dev/null 2>&1; then
    die "something already answers on http://$listen (a lagwatch from an earlier run?); stop it first"
fi
state="${XDG_STATE_HOME:-$HOME/.local/state}/lagwatch"
mkdir -p "$state"
log="$state/quickstart.log"
mail="$LAGWATCH_TEST_MAIL_DIR"
mkdir -p "$mail"
touch "$work/since"
LAGWATCH_LOG="${LAGWATCH_LOG:-info}" "$bin" all --config "$config" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
echo "    lagwatch all started (pid $pid), log: $log"

# wait_mail TAG SECONDS: waits for a new mail whose subject starts with TAG
# and names demo-billing; prints its file.
wait_mail() {
    local tag="$1" deadline=$(($(date +%s) + $2)) file
    while (($(date +%s) < deadline)); do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "lagwatch exited (log above)"; }
        for file in $(demo_mails); do
            if grep -q "^Subject: \[$tag\]" "$file"; then
                echo "$file"
                return 0
            fi
        done
        sleep 0.5
    done
    tail -n 30 "$log" >&2
    die "no [$tag] mail for demo-billing within $2s (log above)"
}
# The mails about demo-billing written since this run started, oldest first.
demo_mails() {
    find "$mail" -name '*.eml' -newer "$work/since" 2>/dev/null | sort | xargs -r grep -l demo-billing || true
}
# The (unfolded) subject of a mail file.
subject() { awk '/^Subject: /{s=substr($0, 10); getline; while ($0 ~ /^[ \t]/) {s=s $0; getline}; print s; exit}' "$1"; }

firing="$(wait_mail FIRING 120)"
echo "    $(date +%T) page:    $(subject "$firing")"
echo "    $(date +%T) starting a consumer of demo-billing that catches up"
"$tools/kafka-console-consumer.sh" --bootstrap-server "$LAGWATCH_TEST_KAFKA" --topic demo-orders \
    --group demo-billing --timeout-ms 5000 >/dev/null 2>&1 || true
resolved="$(wait_mail RESOLVED 120)"
echo "    $(date +%T) resolve: $(subject "$resolved")"
others="$(demo_mails | grep -v -e "$firing" -e "$resolved" || true)"
if [[ -n "$others" ]]; then
    echo "    also sent:"
    for f in $others; do echo "      $(subject "$f")"; done
fi

step "where to look"
printf '    done in %ss\n' "$(($(date +%s) - step_t0))"
cat <<EOF

lagwatch is running (pid $pid) with $config; the quick start took $(($(date +%s) - T0))s.

  mails          $mail  (page: $(basename "$firing"), resolve: $(basename "$resolved"))
  status         lagwatch status -v
  web page       http://$listen/   log in with the demo team's token:
                 $token
  metrics        http://$listen/metrics
  log            $log
  monitors       lagwatch monitors list

EOF
if [[ "${QUICKSTART_DETACH:-0}" == 1 ]]; then
    trap 'rm -rf "$work"' EXIT
    echo "lagwatch keeps running in the background; stop it with: kill $pid"
    exit 0
fi
echo "Ctrl-C stops lagwatch (the services keep running until tests/infra/down.sh)."
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; exit 0' INT TERM
wait "$pid"
