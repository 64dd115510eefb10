#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-unload: popcorn holds a reference on itself while a task is
# distributed and drops it when the task and its shadows are gone. Two
# short-lived processes migrate from node 0: one goes to node 1 and back
# and exits on node 0, one exits on node 1. Once both have ended, every
# node's /sys/module/popcorn/refcnt must be back to what it was before
# within 10 s, and when that is 0 everywhere, rmmod popcorn must work on
# every node (it is loaded again after).
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

# There and back, exits on node 0.
r=$(cx 0 "rm -f /tmp/mu.*; count 40 50 >/tmp/mu.a 2>&1 </dev/null & p=\$!; sleep 0.5
	pcntl migrate \$p 1 && sleep 0.5 && pcntl migrate \$p 0 && wait \$p; echo status \$?" 2>&1)
note "there and back: $r"
echo "$r" | grep -q '^status 0$' || fail "the process that went to node 1 and back: $r"
# Exits on node 1.
r=$(cx 0 "count 20 50 >/tmp/mu.b 2>&1 </dev/null & p=\$!; sleep 0.3
	pcntl migrate \$p 1 && wait \$p; echo status \$?" 2>&1)
note "exit on node 1: $r"
echo "$r" | grep -q '^status 0$' || fail "the process that ended on node 1: $r"
cx 0 "grep -c ' node 1\$' /tmp/mu.a /tmp/mu.b" | sed 's/^/# lines printed on node 1: /'

deadline=$(($(date +%s) + 10))
while :; do
	after=$(refcnts)
	[ "$after" = "$before" ] && break
	[ "$(date +%s)" -ge "$deadline" ] &&
		fail "popcorn refcnt on nodes 0..$LAST: $before before, $after 10 s after both processes ended"
	sleep 0.5
done
note "popcorn refcnt back to $after"

if [ -n "$(echo "$before" | tr -d '0 ')" ]; then
	note "refcnt was not 0 before this scenario (earlier migrations): not unloading"
else
	for n in $(seq 0 $LAST); do
		r=$(cx "$n" "rmmod popcorn" 2>&1) || fail "node $n: rmmod popcorn: $r"
	done
	note "rmmod popcorn worked on every node"
	for n in $(seq 0 $LAST); do
		popcorn_load "$n"
	done
fi
check_dmesg migrate-unload
