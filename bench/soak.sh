#!/usr/bin/env bash
# Full-length fault runs: the fault suite's SMTP and ClickHouse scenarios
# with their outages held for the issue's lengths (SMTP 10 min, ClickHouse
# 5 min) instead of the seconds CI uses to cross the same boundaries.
# Prints the FIGURE lines. Needs tests/infra/up.sh; about 17 minutes.
#
#   bench/soak.sh            # both
#   bench/soak.sh smtp       # one of them
set -euo pipefail
cd "$(dirname "$0")/.."
. /tmp/lagwatch-infra/env.sh
# Built first, then run directly: cargo does not hold its build lock for
# the quarter of an hour the runs take.
binary=$(cargo test --locked -p lagwatch-tests --test faults --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "faults":
        print(m["executable"])')
run() {
  local filter=$1 secs=$2
  echo "== soak: $filter, outage held ${secs}s"
  LAGWATCH_SOAK_OUTAGE_SECS=$secs "$binary" --test-threads 1 --nocapture "$filter" 2>&1 |
    grep -E '^FIGURE|^test |test result'
}
case "${1:-all}" in
  smtp) run smtp_outage 600 ;;
  clickhouse) run clickhouse_outage 300 ;;
  all) run smtp_outage 600; run clickhouse_outage 300 ;;
  *) echo "usage: $0 [smtp|clickhouse|all]" >&2; exit 2 ;;
esac
