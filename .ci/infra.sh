# shellcheck shell=bash
# Source this from .ci/run (". .ci/infra.sh"): installs (cached) and starts the lagwatch
# test services with tests/infra/up.sh, then exports the LAGWATCH_TEST_* variables from
# $LAGWATCH_INFRA_DIR/env.sh. Services are left running; tests/infra/down.sh stops them.
# Set LAGWATCH_INFRA_SELFTEST=1 to also run the ClickHouse front self-test.
_lw_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! "$_lw_root/tests/infra/up.sh"; then
    echo "[lagwatch-infra] up.sh failed" >&2
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "${LAGWATCH_INFRA_DIR:-/tmp/lagwatch-infra}/env.sh"
if [[ "${LAGWATCH_INFRA_SELFTEST:-0}" == 1 ]]; then
    "${LAGWATCH_CACHE_DIR:-$HOME/.cache/lagwatch}/venv/bin/python" "$_lw_root/tests/infra/test_clickhouse_http.py" --no-spawn \
        || { echo "[lagwatch-infra] ClickHouse front self-test failed" >&2; return 1 2>/dev/null || exit 1; }
fi
unset _lw_root
