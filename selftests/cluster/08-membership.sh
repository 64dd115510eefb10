#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# membership: kmsg tells the hub's membership listeners when a node comes up
# or goes down; popcorn listens and `pcntl nodes` shows what it learnt. With
# kmsg and popcorn on every node, every node lists all nodes. When the last
# node's QEMU is killed, the survivors drop it within 2 x
# heartbeat_timeout_ms (+3 s for TCG and for polling through the agent);
# when it is back with kmsg, they list it again. popcorn is unloaded after.
. "$(dirname "$0")/lib.sh"

POPCORN_KO=/lib/modules/cohort/popcorn.ko
victim=$LAST
all=$(seq -s ' ' 0 $LAST)
survivors=$(seq 0 $((LAST - 1)))
without_victim=$(seq -s ' ' 0 $((LAST - 1)))

# nodes_of NODE: `pcntl nodes` in NODE, on one line.
nodes_of() { cx "$1" "pcntl nodes" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

# wait_nodes NODE EXPECTED MS: until NODE's `pcntl nodes` is EXPECTED.
wait_nodes() {
	local deadline=$(($(now_ms) + $3)) got
	while :; do
		got=$(nodes_of "$1")
		[ "$got" = "$2" ] && return 0
		if [ "$(now_ms)" -ge "$deadline" ]; then
			echo "# node $1: pcntl nodes says '$got', expected '$2'"
			return 1
		fi
		sleep 0.2
	done
}

popcorn_load() {
	cx "$1" "grep -q '^popcorn ' /proc/modules || insmod $POPCORN_KO" ||
		fail "node $1: insmod popcorn failed"
}

mark_all membership
for n in $(seq 0 $LAST); do
	kmsg_load "$n"
done
wait_mesh 30 || fail "the mesh did not form"
# Load popcorn after the mesh formed: it must find the nodes already up.
for n in $(seq 0 $LAST); do
	popcorn_load "$n"
	got=$(nodes_of "$n")
	[ "$got" = "$all" ] || fail "node $n: pcntl nodes says '$got', expected '$all'"
done
note "every node lists: $all"

hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms"
bound_ms=$((2 * hb + 3000))
t_kill=$(now_ms)
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
wait_nodes 0 "$without_victim" "$bound_ms" ||
	fail "node 0 did not drop node $victim within $bound_ms ms"
note "node 0 dropped node $victim $(($(now_ms) - t_kill)) ms after the kill (bound $bound_ms ms)"
for s in $survivors; do
	# Node 0 dropped it; each other survivor does on its own heartbeat
	# timer, which a loaded host can run a few seconds later.
	wait_nodes "$s" "$without_victim" 5000 || fail "node $s still lists node $victim"
done

"$COHORT" start "$victim" >/dev/null || fail "cohort start $victim failed"
kmsg_load "$victim"
wait_mesh 30 || fail "node $victim did not rejoin within 30 s"
for s in $survivors; do
	wait_nodes "$s" "$all" 5000 || fail "node $s does not list node $victim after it rejoined"
done
note "after the rejoin the survivors list: $all"

for n in $(seq 0 $LAST); do
	cx "$n" "! grep -q '^popcorn ' /proc/modules || rmmod popcorn" >/dev/null ||
		fail "node $n: rmmod popcorn failed"
done
check_dmesg membership
