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
# Supply chain (deny.toml). The RustSec database cannot be fetched here:
# advisories are checked only against a snapshot in $LAGWATCH_ADVISORY_DB.
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked
cargo deny --locked check licenses bans sources
if [[ -n "${LAGWATCH_ADVISORY_DB:-}" ]]; then
    deny_config=$(mktemp)
    sed "s|^\[advisories\]|[advisories]\ndb-path = \"${LAGWATCH_ADVISORY_DB}\"|" deny.toml >"$deny_config"
    cargo deny --locked check --config "$deny_config" --disable-fetch advisories
    rm -f "$deny_config"
fi
cargo test --workspace --locked "$@"
tests/readme/run.sh  # every sh/bash block of README.md, in a temporary HOME
# The team API fuzzed from its own OpenAPI document (about a minute).
tests/api/schemathesis.sh
