#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# init-stays: what a node is made of never moves. As root, `pcntl migrate
# 1 1` on node 0 fails with EPERM and node 0's init stays there (`pcntl
# stat 1`: never migrated, on node 0; `pcntl nodes -v` lists every node
# up); the node's pinned agent (cohort-agent -F) fails with EACCES. Then
# node 1's QEMU is killed: node 0 must go on serving (its agent answers
# after twice the heartbeat timeout, its log has no panic, Oops or BUG, and
# PCNTL_NODE_INFO of node 1 fails with EHOSTDOWN).
# Before the refusals, moving init and then killing its node made node 0
# panic ("Attempted to kill init").
. "$(dirname "$0")/lib.sh"

victim=1

mark_all init-stays
migrate_ready
hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"

r=$(cx 0 "pcntl migrate 1 $victim" 2>&1) && fail "pcntl migrate 1 $victim succeeded: '$r'"
echo "$r" | grep -q 'Operation not permitted' ||
	fail "pcntl migrate 1 $victim: '$r', expected EPERM (Operation not permitted)"
note "pcntl migrate 1 $victim: $r"
w=$(cx 0 "pcntl where 1" 2>&1)
[ "$w" = 0 ] || fail "pcntl where 1 says '$w' after the refused migration"

# The command's views of it: statistics, and the nodes' admission state.
st=$(cx 0 "pcntl stat 1" 2>&1) || fail "pcntl stat 1: $st"
echo "$st" | grep -qx 'migrations 0' || fail "pcntl stat 1 does not say 'migrations 0': $st"
echo "$st" | grep -qx 'node 0' || fail "pcntl stat 1 does not say 'node 0': $st"
nv=$(cx 0 "pcntl nodes -v" 2>&1) || fail "pcntl nodes -v: $nv"
echo "$nv" | sed 's/^/# /'
[ "$(echo "$nv" | grep -c ' up ')" -ge "$NODES" ] ||
	fail "pcntl nodes -v does not list the $NODES nodes up: $nv"

agent=$(cx 0 "pidof cohort-agent" 2>&1 | awk '{ print $1 }')
[ -n "$agent" ] || fail "no cohort-agent on node 0"
r=$(cx 0 "pcntl migrate $agent $victim" 2>&1) && fail "pcntl migrate $agent (the agent) $victim succeeded"
echo "$r" | grep -q 'Permission denied' ||
	fail "pcntl migrate $agent (the agent): '$r', expected EACCES (Permission denied)"
note "pcntl migrate $agent (the pinned agent): $r"

"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
note "node $victim killed"
sleep $(((2 * hb + 999) / 1000 + 2))
wait_state 0 "$victim" down 5 || fail "node 0 does not show node $victim down"
r=$(cx 0 "pcntl where 1; pcntl nodes | tr '\n' ' '" 2>&1) ||
	fail "node 0 does not answer after node $victim died: $r"
note "node 0 after node $victim died: init on node $(echo "$r" | head -n 1), nodes up: $(echo "$r" | tail -n 1)"
cx 0 "dmesg" 2>&1 | grep -E 'Attempted to kill init|Kernel panic' &&
	fail "node 0 logged a panic"
# PCNTL_NODE_INFO of a node that is down: EHOSTDOWN (pcntl_mgmt_test's
# check, which skips while every node is up).
out=$(cx 0 "/usr/lib/cohort/selftests/pcntl_mgmt_test -t node_info_down_node_ehostdown 2>&1")
echo "$out" | grep -E '^# pcntl_mgmt_test\.c:|^(not )?ok ' | sed 's/^/# node 0: /'
echo "$out" | grep -qE '^ok [0-9]+ mgmt\.node_info_down_node_ehostdown$' ||
	fail "node 0: PCNTL_NODE_INFO of down node $victim did not fail with EHOSTDOWN (above)"
check_dmesg init-stays
bring_back "$victim"
note "node $victim is back; every node lists $(pcntl_nodes_of 0)"
