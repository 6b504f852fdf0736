#!/usr/bin/env bash
# The advisories part of the supply-chain check, offline: unpacks the
# vendored RustSec advisory-db snapshot (deny/advisory-db.tar.gz), prints its
# date and age, proves it is read (a known-vulnerable fixture must fail),
# then checks the workspace against it. Any advisory or yanked crate fails.
# Refresh the snapshot with deny/refresh-advisory-db.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# cargo-deny keeps the default database (github.com/rustsec/advisory-db) in
# <db-path>/advisory-db-<hash of that URL> and reads its date from git.
repo="$work/db/advisory-db-3157b0e258782691"
mkdir -p "$repo"
tar -xzf "$root/deny/advisory-db.tar.gz" -C "$repo"
commit=$(sed -n 's/^commit=//p' "$repo/SNAPSHOT")
date=$(sed -n 's/^date=//p' "$repo/SNAPSHOT")
age_days=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 ))
echo "RustSec advisory-db snapshot ${commit:0:12} of $date ($age_days days old; refresh: deny/refresh-advisory-db.sh)"
(
    cd "$repo"
    git init -q
    git add -A
    GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
        git -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m "snapshot $commit"
)
sed "s|^\[advisories\]|[advisories]\ndb-path = \"$work/db\"|" "$root/deny.toml" >"$work/deny.toml"

# The fixture must be refused, or the database is not being read.
if (cd "$root/deny/known-vulnerable" && cargo fetch --locked -q &&
    cargo deny --locked --offline --config "$work/deny.toml" check advisories) >"$work/fixture.log" 2>&1; then
    cat "$work/fixture.log"
    echo "advisories: the known-vulnerable fixture passed: the snapshot is not being read" >&2
    exit 1
fi
grep -q "RUSTSEC-2021-0003" "$work/fixture.log" || {
    cat "$work/fixture.log"
    echo "advisories: the fixture failed without naming RUSTSEC-2021-0003" >&2
    exit 1
}
echo "advisories: known-vulnerable fixture refused (RUSTSEC-2021-0003), as it must be"

cd "$root"
cargo deny --locked --offline --config "$work/deny.toml" check advisories
