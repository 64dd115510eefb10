#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: host tests and lints, then the selftests and the cluster
# scenarios on a 2-node cluster, then both again on a 3-node cluster.
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

# Clusters: on $NODES nodes, then on 3, the in-guest selftests and then the
# host-driven cluster scenarios (selftests/cluster), each TAP line counted.
"$cohort" down >/dev/null 2>&1 || true
trap '"$cohort" down >/dev/null 2>&1 || true' EXIT

# cluster_round N SUFFIX: boot N nodes, run both, add the counts, tear down.
# Logs go to build/selftests$SUFFIX.log and build/cluster-scenarios$SUFFIX.log.
cluster_round() {
	local n=$1 sfx=$2 rc sp sf cp cf
	local slog=$COHORT_BUILD/selftests$sfx.log clog=$COHORT_BUILD/cluster-scenarios$sfx.log
	"$cohort" down >/dev/null 2>&1 || true
	if "$cohort" up -n "$n" --kernel "$COHORT_BUILD/images/bzImage" \
		--initrd "$COHORT_BUILD/images/initramfs.cpio.gz"; then
		rc=0
		"$cohort" test 2>&1 | tee "$slog" || rc=$?
		read -r sp sf < <(sed -n 's/^selftests: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' \
			"$slog" | tail -n 1)
		sp=${sp:-0}
		sf=${sf:-0}
		if [ "$rc" -ne 0 ] && [ "$sf" -eq 0 ]; then sf=1; fi
		log check "selftests ($n nodes): $sp passed, $sf failed"

		rc=0
		"$COHORT_ROOT/selftests/cluster/run" 2>&1 | tee "$clog" || rc=$?
		cp=$(grep -c '^ok ' "$clog" || true)
		cf=$(grep -c '^not ok ' "$clog" || true)
		# A runner that failed without reporting a failing scenario still fails.
		if [ "$rc" -ne 0 ] && [ "$cf" -eq 0 ]; then cf=1; fi
		log check "cluster scenarios ($n nodes): $cp passed, $cf failed"
		sp=$((sp + cp))
		sf=$((sf + cf))
	else
		log check "cluster ($n nodes) did not come up"
		sp=0
		sf=1
	fi
	"$cohort" down >/dev/null 2>&1 || true
	passed=$((passed + sp))
	failed=$((failed + sf))
	log check "cluster ($n nodes): $sp passed, $sf failed"
}

cluster_round "$NODES" ""
cluster_round 3 -3nodes

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
