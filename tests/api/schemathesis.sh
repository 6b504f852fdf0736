#!/usr/bin/env bash
# Fuzz the team API against its own OpenAPI document with schemathesis:
# starts `lagwatch api` on a free port with a temporary SQLite store, a
# throwaway database on the ClickHouse test front (tests/infra/up.sh), an
# admin token and a team token (from `lagwatch tokens add`), then runs
# `schemathesis run` against /openapi.json twice (admin token, team token)
# with checks not_a_server_error, status_code_conformance,
# response_schema_conformance and content_type_conformance.
# Fails on any finding. Usage: tests/api/schemathesis.sh [extra schemathesis args]
#   LAGWATCH_BIN            lagwatch binary (default: debug/lagwatch under $CARGO_TARGET_DIR,
#                           else target/, built first)
#   LAGWATCH_ST_EXAMPLES    examples per operation (default 40)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$PWD"
# shellcheck source=../infra/common.sh
source "$REPO/tests/infra/common.sh"

command -v curl >/dev/null || lw_die "curl not found (apt-get install curl)"
ST="$LAGWATCH_VENV/bin/schemathesis"
if [[ ! -x "$ST" ]]; then
    lw_log "schemathesis missing; running tests/infra/install.sh"
    "$REPO/tests/infra/install.sh"
fi
BIN="${LAGWATCH_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/debug/lagwatch}"
if [[ -z "${LAGWATCH_BIN:-}" ]]; then
    cargo build -q -p lagwatch --bin lagwatch
fi
[[ -x "$BIN" ]] || lw_die "no lagwatch binary at $BIN"

WORK="$(mktemp -d)"
PID=""
CH_URL="${LAGWATCH_TEST_CLICKHOUSE_URL:-http://127.0.0.1:${LAGWATCH_CLICKHOUSE_PORT}}"
CH_DB="lw_schemathesis_$$"
curl -fsS "$CH_URL/ping" >/dev/null 2>&1 || lw_die "no ClickHouse front at $CH_URL: run tests/infra/up.sh"
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    curl -fsS "$CH_URL/" --data-binary "DROP DATABASE IF EXISTS $CH_DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$("$LAGWATCH_VENV_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
ADMIN="admin-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$ADMIN" >"$WORK/admin.token"
cat >"$WORK/lagwatch.toml" <<TOML
[store]
url = "sqlite://$WORK/api.db"

[clusters.local]
bootstrap_servers = "127.0.0.1:1"

[clusters.secure]
bootstrap_servers = "127.0.0.1:2"
properties = { "security.protocol" = "SASL_PLAINTEXT", "sasl.mechanism" = "PLAIN", "sasl.username" = "svc", "sasl.password" = "st-secret-never-returned" }

[metrics_topic]
cluster = "local"

[clickhouse]
url = "$CH_URL"
database = "$CH_DB"

[api]
admin_token_file = "$WORK/admin.token"
# The fuzzer sends thousands of requests a minute, with wrong tokens too:
# rate limits off here (tests/tests/tenancy.rs tests them).
rate_limit_per_token = 0
rate_limit_per_address = 0
auth_failures_per_minute = 0

[http]
listen = "127.0.0.1:$PORT"
TOML
"$BIN" --config "$WORK/lagwatch.toml" migrate >/dev/null
TEAM="$("$BIN" --config "$WORK/lagwatch.toml" tokens add --team payments 2>/dev/null)"
[[ "$TEAM" == lw_* ]] || lw_die "tokens add printed no token"

LAGWATCH_LOG=warn "$BIN" --config "$WORK/lagwatch.toml" api >"$WORK/lagwatch.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/lagwatch.log" >&2; lw_die "lagwatch api exited"; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/openapi.json" | cmp -s - "$REPO/api/openapi.json" \
    || lw_die "served /openapi.json differs from api/openapi.json"

# A few monitors and a silence so that reads and id-based calls hit data.
for g in billing shipping; do
    curl -fsS -X POST -H "Authorization: Bearer $TEAM" -H 'Content-Type: application/json' \
        -d "{\"cluster\":\"local\",\"consumer_group\":\"$g\",\"lag_threshold\":500}" \
        "http://127.0.0.1:$PORT/api/v1/monitors" >/dev/null
done
curl -fsS -X POST -H "Authorization: Bearer $TEAM" -H 'Content-Type: application/json' \
    -d '{"duration_secs":600,"comment":"seed"}' "http://127.0.0.1:$PORT/api/v1/silences" >/dev/null

CHECKS="${LAGWATCH_ST_CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,negative_data_rejection}"
EXAMPLES="${LAGWATCH_ST_EXAMPLES:-40}"
STATUS=0
# Team first: the admin pass revokes tokens (DELETE /api/v1/tokens/{id}).
for who in team admin; do
    token="$ADMIN"; [[ $who == team ]] && token="$TEAM"
    lw_log "schemathesis as $who: $EXAMPLES examples per operation, checks $CHECKS"
    # From $WORK, so schemathesis' own files (.schemathesis/) stay out of the repo.
    if ! (cd "$WORK" && "$ST" run "http://127.0.0.1:$PORT/openapi.json" \
            --url "http://127.0.0.1:$PORT" \
            --header "Authorization: Bearer $token" \
            --checks "$CHECKS" \
            --max-examples "$EXAMPLES" \
            --seed 1 \
            --request-timeout 10 \
            --no-color \
            "$@"); then
        STATUS=1
    fi
done
if grep -q "st-secret-never-returned" "$WORK/lagwatch.log"; then
    lw_die "a cluster secret reached the log"
fi
kill -0 "$PID" 2>/dev/null || { cat "$WORK/lagwatch.log" >&2; lw_die "lagwatch api died during the run"; }
exit "$STATUS"
