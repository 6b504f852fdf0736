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
# Supply chain (deny.toml): licences, duplicate crates and sources, then
# advisories and yanked crates against the vendored RustSec snapshot (offline;
# prints the snapshot's date). cargo-deny is pinned: deny/advisories.sh relies
# on its database layout.
command -v cargo-deny >/dev/null || cargo install cargo-deny --version 0.20.2 --locked
cargo deny --locked check licenses bans sources
deny/advisories.sh
cargo test --workspace --locked "$@"
tests/readme/run.sh  # every sh/bash block of README.md, in a temporary HOME
# The team API fuzzed from its own OpenAPI document (about a minute).
tests/api/schemathesis.sh
