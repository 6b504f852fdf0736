#!/usr/bin/env bash
# Replaces deny/advisory-db.tar.gz with the current RustSec advisory-db
# (needs access to github.com), then commit the new archive. CI never
# fetches: it checks against the archive and prints its date.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q --depth 1 https://github.com/rustsec/advisory-db "$work/repo"
cd "$work/repo"
{
    echo "commit=$(git log -1 --format=%H)"
    echo "date=$(git log -1 --format=%cI)"
    echo "source=https://github.com/rustsec/advisory-db"
} >SNAPSHOT
tar --sort=name --mtime="$(git log -1 --format=%cI)" --owner=0 --group=0 --numeric-owner \
    -cf - SNAPSHOT LICENSE.txt README.md crates rust | gzip -9n >"$root/deny/advisory-db.tar.gz"
echo "deny/advisory-db.tar.gz: $(sed -n 's/^date=//p' SNAPSHOT) ($(git log -1 --format=%h))"
