#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# balance-rules: what `pcntl balance` must not do. Four CPU-bound shell
# loops start on node 0: F forbids its migration (`pcntl forbid`), G1 and
# G2 are one migration group (`pcntl join`), A is alone. First a run with
# a minimum residence time of an hour (`-r 3600 -n 3`) moves nothing.
# Then `pcntl balance -i 2 -r 2 -n 10` runs on node 0 (up to 3 runs) until
# a loop runs on node 1; after every run F is on node 0 and never
# migrated (`pcntl stat`: migrations 0), and G1 and G2 are on the same
# node with the same number of migrations (they moved together, if at
# all). Which unit moves first depends on what the balancer measured busy
# (A, or the group as one); either way something moved. Nodes 2 and up
# refuse processes meanwhile (accept = 0) and accept again after; the
# loops are killed.
. "$(dirname "$0")/lib.sh"

GROUP=770013
[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"

mark_all balance-rules
migrate_ready

balance_setup 4
set -- $pids
F=$1 G1=$2 G2=$3 A=$4
note "loops on node 0: forbidden $F, group $GROUP: $G1 $G2, alone $A"

r=$(cx 0 "pcntl forbid $F && pcntl join $G1 $GROUP && pcntl join $G2 $GROUP" 2>&1) ||
	fail "forbid/join: $r"

# stat_of PID KEY: KEY's value in `pcntl stat 0:PID` (from node 0).
stat_of() {
	cx 0 "pcntl stat 0:$1" 2>&1 | awk -v k="$2" '$1 == k { print $2 }'
}

# where_of PID: the node loop PID runs on.
where_of() { cx 0 "pcntl where $1" 2>&1; }

# check_rules: F on node 0, never migrated; G1 and G2 together, moved
# alike; otherwise fail.
check_rules() {
	local wf mf w1 w2 m1 m2
	wf=$(where_of "$F")
	mf=$(stat_of "$F" migrations)
	[ "$wf" = 0 ] && [ "$mf" = 0 ] ||
		fail "the forbidden loop $F runs on node '$wf' after '$mf' migrations, expected node 0 and 0"
	case $(stat_of "$F" flags) in
	*forbidden*) ;;
	*) fail "loop $F is not forbidden any more: $(cx 0 "pcntl stat 0:$F" 2>&1 | tr '\n' ' ')" ;;
	esac
	w1=$(where_of "$G1")
	w2=$(where_of "$G2")
	m1=$(stat_of "$G1" migrations)
	m2=$(stat_of "$G2" migrations)
	[ "$w1" = "$w2" ] && [ "$m1" = "$m2" ] ||
		fail "group $GROUP split: $G1 on node '$w1' after '$m1' migrations, $G2 on node '$w2' after '$m2'"
	[ "$(stat_of "$G1" group)" = "$GROUP" ] && [ "$(stat_of "$G2" group)" = "$GROUP" ] ||
		fail "loops $G1 and $G2 left group $GROUP"
}

# on_node1: how many of the loops run on node 1.
on_node1() {
	local p k=0
	for p in $pids; do
		[ "$(where_of "$p")" = 1 ] && k=$((k + 1))
	done
	echo "$k"
}

check_rules
[ "$(on_node1)" = 0 ] || fail "a loop runs on node 1 before balancing"

# A minimum residence time of an hour: the busy loops stay.
out=$(CX_TIMEOUT=120 cx 0 "pcntl balance -i 2 -r 3600 -n 3 -v" 2>&1) ||
	fail "pcntl balance -r 3600 failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
echo "$out" | grep ': round ' | tail -n 1 | sed 's/^/# /'
echo "$out" | grep -q 'move' && fail "pcntl balance -r 3600 tried to move a loop: $out"
[ "$(on_node1)" = 0 ] || fail "a loop moved to node 1 under a minimum residence of 3600 s"
check_rules

moved=0
for run in 1 2 3; do
	out=$(CX_TIMEOUT=240 cx 0 "pcntl balance -i 2 -r 2 -n 10 -v" 2>&1) ||
		fail "pcntl balance (run $run) failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	echo "$out" | grep -v ': round ' | sed 's/^/# /'
	echo "$out" | grep ': round ' | tail -n 1 | sed 's/^/# /'
	echo "$out" | grep -Eq "(moved|cannot move) 0:$F " &&
		fail "pcntl balance tried to move the forbidden loop $F"
	check_rules
	k=$(on_node1)
	note "after run $run: $k loop(s) on node 1"
	if [ "$k" -gt 0 ]; then
		moved=1
		break
	fi
done
[ "$moved" = 1 ] || fail "after 3 runs of pcntl balance no loop runs on node 1"

balance_end
check_dmesg balance-rules
