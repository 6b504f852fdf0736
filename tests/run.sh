#!/usr/bin/env bash
# The one test command: starts the real services (installing them on first
# use), then runs formatting and lint checks and every test of the workspace
# against them. Usage: tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/infra/up.sh
# shellcheck disable=SC1091
. "${LAGWATCH_INFRA_DIR:-/tmp/lagwatch-infra}/env.sh"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
# The team API fuzzed from its own OpenAPI document (about a minute).
tests/api/schemathesis.sh
