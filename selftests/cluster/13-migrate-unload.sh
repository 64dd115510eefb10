#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-unload: popcorn holds a reference on itself while a task is
# distributed and drops it when the task and its shadows are gone. Every
# node's popcorn refcnt must be 0 at the start: a reference held then was
# leaked by an earlier scenario (or a distributed task still lives), and
# fails this one, naming the node, module and count. Two short-lived
# processes migrate from node 0: one goes to node 1 and back and exits on
# node 0, one exits on node 1. Once both have ended, every node's
# /sys/module/popcorn/refcnt must be 0 again within 10 s, and rmmod popcorn
# must work on every node (it is loaded again after).
. "$(dirname "$0")/lib.sh"

refcnts() {
	local n
	for n in $(seq 0 $LAST); do
		printf '%s ' "$(cx "$n" "cat /sys/module/popcorn/refcnt" 2>&1)"
	done | sed 's/ $//'
}

mark_all migrate-unload
migrate_ready
before=$(refcnts)
note "popcorn refcnt before, nodes 0..$LAST: $before"
held=$(module_refs_held popcorn)
[ -z "$held" ] ||
	fail "before any migration here, a reference is held (leaked by an earlier scenario, or a distributed task still lives): $held"

# Each count lives far longer (10 s, 5 s) than the moves take, even on a
# loaded machine, and is only moved once it is count (its execve done): a
# move of a shell still in execve() fails with EBUSY, and one of a process
# that already ended with ESRCH.
# There and back, exits on node 0.
r=$(cx 0 "rm -f /tmp/mu.*; count 200 50 >/tmp/mu.a 2>&1 </dev/null & p=\$!
	$(comm_wait_sh '$p' count)
	pcntl migrate \$p 1 && sleep 0.5 && pcntl migrate \$p 0 && wait \$p; echo status \$?" 2>&1)
note "there and back: $r"
echo "$r" | grep -q '^status 0$' || fail "the process that went to node 1 and back: $r"
# Exits on node 1.
r=$(cx 0 "count 100 50 >/tmp/mu.b 2>&1 </dev/null & p=\$!
	$(comm_wait_sh '$p' count)
	pcntl migrate \$p 1 && wait \$p; echo status \$?" 2>&1)
note "exit on node 1: $r"
echo "$r" | grep -q '^status 0$' || fail "the process that ended on node 1: $r"
cx 0 "grep -c ' node 1\$' /tmp/mu.a /tmp/mu.b" | sed 's/^/# lines printed on node 1: /'

deadline=$(($(date +%s) + 10))
while :; do
	held=$(module_refs_held popcorn)
	[ -z "$held" ] && break
	[ "$(date +%s)" -ge "$deadline" ] &&
		fail "10 s after both processes ended a reference is still held: $held"
	sleep 0.5
done
note "popcorn refcnt back to $(refcnts)"

for n in $(seq 0 $LAST); do
	r=$(cx "$n" "rmmod popcorn" 2>&1) || fail "node $n: rmmod popcorn: $r"
done
note "rmmod popcorn worked on every node"
for n in $(seq 0 $LAST); do
	popcorn_load "$n"
done
check_dmesg migrate-unload
