#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The shared cases (../shared/cases/*.c, built into the initramfs as
# /usr/lib/cohort/cases/NAME): small programs that each migrate themselves
# and check one kind of state, printing `PASS name` or `FAIL name: reason`.
# Each runs on node 0 with node 1 as its destination and is one result,
# `case: NAME` (`cohort record`): a case that says FAIL, or gives no
# verdict (hung and killed after 120 s, crashed, its output lost), is its
# own failed result. The scenario itself fails only when there are no
# cases to run (and, as every scenario, on a kernel problem in the logs).
. "$(dirname "$0")/lib.sh"

CASES=/usr/lib/cohort/cases
[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"
migrate_ready
names=$(cx 0 "ls $CASES 2>/dev/null")
[ -n "$names" ] || fail "no cases in node 0's $CASES (was ../shared/cases there when the initramfs was built?)"

passed=0
failed=0
for name in $names; do
	out=$(CX_TIMEOUT=150 cx 0 "cd /tmp && timeout -s KILL 120 $CASES/$name 1; echo \"exit=\$?\"" 2>&1)
	rc=$(echo "$out" | sed -n 's/^exit=//p' | tail -n 1)
	verdict=$(echo "$out" | grep -E '^(PASS|FAIL) ' | tail -n 1)
	echo "$out" | grep -v '^exit=' | sed 's/^/# '"$name"': /'
	case "$verdict" in
	"PASS "*)
		if [ "$rc" = 0 ]; then
			passed=$((passed + 1))
			"$COHORT" record -- pass "case: $name" ""
			continue
		fi
		detail="printed PASS but exited with status ${rc:-unknown}"
		;;
	"FAIL "*) detail=${verdict#FAIL } ;;
	*)
		detail="no verdict (exit status ${rc:-unknown}): $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		;;
	esac
	failed=$((failed + 1))
	note "case $name failed: $detail"
	"$COHORT" record -- fail "case: $name" "$detail"
done
note "cases: $passed passed, $failed failed"
exit 0
