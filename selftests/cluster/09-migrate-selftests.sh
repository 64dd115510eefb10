#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-selftests: the in-guest migration tests with the whole cluster
# ready. `cohort test` runs migrate_test on one node at a time while the
# others have no modules, so there its tests that need a peer skip; here
# kmsg and popcorn are loaded on every node and migrate_test runs on each
# node in turn with COHORT_MIGRATE_REQUIRE_PEERS=1 (a missing peer fails).
# Every `not ok` of any node fails the scenario, and is listed. The kernel
# logs must show no BUG/Oops/WARNING.
. "$(dirname "$0")/lib.sh"

BIN=/usr/lib/cohort/selftests/migrate_test

mark_all migrate-selftests
migrate_ready
note "kmsg and popcorn on every node; every node lists $(pcntl_nodes_of 0)"

passed=0
failed=0
skipped=0
bad=()
for n in $(seq 0 $LAST); do
	t0=$(date +%s)
	out=$(CX_TIMEOUT=900 cx "$n" "COHORT_MIGRATE_REQUIRE_PEERS=1 $BIN 2>&1; echo \"exit=\$?\"")
	secs=$(($(date +%s) - t0))
	# Every result; all the log lines of a failing test, and the timings.
	echo "$out" | awk '
		/^#  RUN / { n = 0; delete l; next }
		/^# .*(migrations over|took|after [0-9]+ ms)/ { print; next }
		/^# / && !/^# *$/ { l[n++] = $0; next }
		/^not ok / { for (i = 0; i < n; i++) if (l[i] !~ /^#  +(OK|FAIL) /) print l[i] }
		/^(not )?ok / { print }' | sed "s/^/node $n: /"
	p=$(echo "$out" | grep -c '^ok ' || true)
	s=$(echo "$out" | grep -c '^ok .*# SKIP' || true)
	f=$(echo "$out" | grep -c '^not ok ' || true)
	rc=$(echo "$out" | sed -n 's/^exit=//p' | tail -n 1)
	note "node $n: $p passed ($s skipped), $f failed in $secs s, exit ${rc:-?}"
	passed=$((passed + p))
	skipped=$((skipped + s))
	failed=$((failed + f))
	for t in $(echo "$out" | sed -n 's/^not ok [0-9]* \([^ ]*\).*/\1/p'); do
		bad+=("node $n: $t")
	done
	if [ "$f" -eq 0 ] && [ "${rc:-1}" != 0 ]; then
		failed=$((failed + 1))
		bad+=("node $n: $BIN exited ${rc:-without a status} without a failing test")
	fi
done
note "migrate_test on $NODES nodes: $passed passed ($skipped skipped), $failed failed"
check_dmesg migrate-selftests
[ "$failed" -eq 0 ] || fail "$failed migrate_test result(s) failed: $(printf '%s; ' "${bad[@]}")"
