#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: host tests and lints, then the selftests on a 2-node cluster.
# Ends with one line `N passed, N failed` summing both.
. "$(dirname "$0")/lib.sh"

NODES=${NODES:-2}
cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster

"$COHORT_ROOT/scripts/build-all.sh"
cd "$COHORT_ROOT"

passed=0
failed=0
count() { # count NAME STATUS: one pass or fail for a whole step
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		log check "$1: ok"
	else
		failed=$((failed + 1))
		log check "$1: FAILED"
	fi
}

# Host: lints count as one test each, then every cargo test.
rc=0
cargo fmt --all --check >/dev/null || rc=$?
count "rustfmt --check" $rc
rc=0
cargo clippy --quiet --workspace --all-targets -- -D warnings || rc=$?
count "clippy -D warnings" $rc

log check "host tests (cargo test --workspace --release)"
rc=0
cargo test --workspace --release 2>&1 | tee "$COHORT_BUILD/host-tests.log" || rc=$?
read -r hp hf < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) {
	if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
	END { print p + 0, f + 0 }' "$COHORT_BUILD/host-tests.log")
# A cargo failure that reported no failing test (a build error) still fails.
if [ "$rc" -ne 0 ] && [ "$hf" -eq 0 ]; then hf=1; fi
passed=$((passed + hp))
failed=$((failed + hf))
log check "host: $hp passed, $hf failed"

# Cluster.
"$cohort" down >/dev/null 2>&1 || true
trap '"$cohort" down >/dev/null 2>&1 || true' EXIT
if "$cohort" up -n "$NODES"; then
	rc=0
	"$cohort" test 2>&1 | tee "$COHORT_BUILD/selftests.log" || rc=$?
	read -r sp sf < <(sed -n 's/^selftests: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' \
		"$COHORT_BUILD/selftests.log" | tail -n 1)
	sp=${sp:-0}
	sf=${sf:-0}
	if [ "$rc" -ne 0 ] && [ "$sf" -eq 0 ]; then sf=1; fi
else
	log check "cluster did not come up"
	sp=0
	sf=1
fi
passed=$((passed + sp))
failed=$((failed + sf))
log check "cluster ($NODES nodes): $sp passed, $sf failed"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
