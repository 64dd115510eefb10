#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# containers: one page of a process's memory (a container homed at node 0)
# is read on nodes 0, 1 and 2, then written on node 2: nodes 0 and 1 see
# the new value afterwards, and gobelins' counters show the write as the
# protocol says: node 2 received the page and ownership once (from node
# 0, which dropped its copy) and invalidated one read copy, node 1's,
# which node 1 received and dropped. Needs 3 nodes (1 and 2 with only 2:
# the page is then read on nodes 0 and 1 and written on node 1, with no
# copy to invalidate).
. "$(dirname "$0")/lib.sh"

STATS=/sys/kernel/debug/gobelins/stats
OUT=/tmp/pageshare.out
[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"

mark_all containers
migrate_ready

# stat NODE NAME: NODE's gobelins counter NAME.
stat() {
	local v
	v=$(cx "$1" "awk '\$1 == \"$2\" { print \$2 }' $STATS") || fail "node $1: cannot read $STATS"
	case $v in '' | *[!0-9]*) fail "node $1: counter $2 is '$v'" ;; esac
	echo "$v"
}

# wait_line TEXT: until the program printed TEXT (20 s).
wait_line() {
	local i
	for i in $(seq 200); do
		cx 0 "grep -q '$1' $OUT" 2>/dev/null && return 0
		cx 0 "grep -q FAIL $OUT" 2>/dev/null && break
		sleep 0.1
	done
	fail "no '$1' from pageshare: $(cx 0 "cat $OUT" 2>&1 | tr '\n' '|')"
}

if [ "$NODES" -ge 3 ]; then
	readers="1 2" writer=2 other=1
else
	readers="1" writer=1 other=
fi
pid=$(cx 0 "pageshare $readers >$OUT 2>&1 </dev/null & echo \$!") || fail "cannot start pageshare"
note "pageshare $readers on node 0 as pid $pid"
wait_line "ready on node $writer"

names="discards received_invalidate sent_invalidate received_transfer sent_transfer"
declare -A before
for n in 0 $other $writer; do
	for c in $names; do before[$n.$c]=$(stat "$n" "$c"); done
done
cx 0 "kill -USR1 $pid" || fail "kill -USR1 $pid"
wait_line "wrote B on node $writer"
# delta NODE NAME
delta() { echo $(($(stat "$1" "$2") - ${before[$1.$2]})); }

d=$(delta 0 sent_transfer)
[ "$d" = 1 ] || fail "node 0 sent $d transfers for the write, expected 1"
d=$(delta 0 discards)
[ "$d" = 1 ] || fail "node 0 dropped $d copies for the write, expected 1 (its own)"
d=$(delta "$writer" received_transfer)
[ "$d" = 1 ] || fail "node $writer received $d transfers, expected 1"
if [ -n "$other" ]; then
	d=$(delta "$writer" sent_invalidate)
	[ "$d" = 1 ] || fail "node $writer sent $d invalidations, expected 1 (to node $other)"
	d=$(delta "$other" received_invalidate)
	[ "$d" = 1 ] || fail "node $other received $d invalidations, expected 1"
	d=$(delta "$other" discards)
	[ "$d" = 1 ] || fail "node $other dropped $d copies, expected 1"
else
	d=$(delta "$writer" sent_invalidate)
	[ "$d" = 0 ] || fail "node $writer sent $d invalidations, expected none"
fi
note "the write: one transfer from node 0${other:+, one invalidation (node $other)}"

cx 0 "kill -USR1 $pid" || fail "kill -USR1 $pid"
wait_line "read B on node 0"
st=$(cx 0 "wait $pid 2>/dev/null; while [ -e /proc/$pid ]; do sleep 0.1; done; cat $OUT" 2>&1)
echo "$st" | sed 's/^/# /'
echo "$st" | grep -q FAIL && fail "pageshare failed"
for n in $readers; do
	[ "$n" = "$writer" ] && continue
	echo "$st" | grep -q "read B on node $n" || fail "node $n did not read the new value"
done
# The same counters for the cluster, from the host.
st=$("$COHORT" stats 2>&1) || fail "cohort stats: $st"
echo "$st" | sed 's/^/# /'
for row in remote_faults sent_transfer synced; do
	echo "$st" | grep -q "^$row " || fail "cohort stats shows no $row row"
done
check_dmesg containers
