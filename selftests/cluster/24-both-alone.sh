#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# both-alone: the last node's QEMU is stopped (SIGSTOP) for two heartbeat
# time-outs and more while a process migrated to it from node 0 runs, then
# continued (`pause`, which keeps the node's soft-lockup detector from
# reporting the freeze itself): each node counted the other dead and
# carried on alone with a link (node 0 the shadow's, the last node the process's). When they meet
# again exactly one gives way and joins the other's view (gobelins.rst,
# "Membership": the higher id does when both are alone; with 3 nodes the
# others kept their view together, and the last node gives way to them). Checked: within
# 30 s every node's container layer is synced again, the mesh is whole,
# and a new process migrates to the node and back. Before the fix both
# gave way and waited for each other's view forever (synced 0 on both).
. "$(dirname "$0")/lib.sh"

STATS=/sys/kernel/debug/gobelins/stats
node=$LAST

mark_all both-alone
migrate_ready
hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"
pid=$(cx 0 "count >/dev/null 2>&1 </dev/null & p=\$!; sleep 0.5; pcntl migrate \$p $node >/dev/null && echo \$p") ||
	fail "cannot migrate a process to node $node"
stop_ms=$((2 * hb + 3000))
gave_way="node $node was alone and node [0-9]* is synced"
before=$(cx "$node" "dmesg | grep -c '$gave_way'")
note "process $pid runs on node $node; stopping its QEMU for $stop_ms ms"
pause "$node" "$stop_ms"
t0=$(now_ms)
for n in $(seq 0 $LAST); do
	until [ "$(cx "$n" "awk '\$1 == \"synced\" { print \$2 }' $STATS" 2>/dev/null)" = 1 ]; do
		[ $(($(now_ms) - t0)) -ge 30000 ] &&
			fail "node $n's container layer is not synced 30 s after node $node continued"
		sleep 0.2
	done
done
note "every node synced again $(($(now_ms) - t0)) ms after node $node continued"
wait_mesh 30 >/dev/null || fail "the mesh is not whole 30 s after node $node continued"
cx 0 "kill $pid" >/dev/null 2>&1
[ "$(cx "$node" "dmesg | grep -c '$gave_way'")" -gt "$before" ] ||
	fail "node $node's log does not say it gave way"
r=$(cx 0 "count >/dev/null 2>&1 </dev/null & p=\$!; sleep 0.5; pcntl migrate \$p $node && pcntl migrate \$p 0 && kill \$p && echo moved" 2>&1) ||
	fail "a process does not migrate to node $node and back afterwards: $r"
note "a new process migrated to node $node and back"
check_dmesg both-alone
