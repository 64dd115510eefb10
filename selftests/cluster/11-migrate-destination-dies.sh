#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-destination-dies: the destination of a migration dies while the
# migration waits for it, and the process stays at its origin and runs on.
# A counting process on node 0 (`count 0 50`, started by a shell that
# records its wait status) is moved to node 1 and back 10 times (every
# call must succeed), then runs on node 0 until it has printed 10 more
# lines there (it has its pages back). Node 1's QEMU is frozen (SIGSTOP:
# it stops answering, as a dead node does; without it the migration could
# complete before the kill), `pcntl migrate PID 1` is started on node 0,
# and once that call waits, node 1's QEMU is killed (when node 0 gave up
# on the frozen node before the call could wait, node 1 is restarted and
# this is tried again, 3 times at most). Then:
# - the call fails with EHOSTDOWN within 2 x heartbeat_timeout_ms +
#   kmsg's 10 s request timeout (+5 s) of the kill;
# - the process is the same pid, named count, not exited, on node 0
#   (`pcntl where`), and still counting: 5 more lines within 10 s, the last
#   ones printed on node 0, the numbers 1..N without a gap;
# - node 0's log has popcorn's line that the task stays on node 0;
# - node 0 drops node 1 from `pcntl nodes`, and its log shows no
#   BUG/Oops/WARNING.
# Node 1 is started again; the cluster is whole at the end.
. "$(dirname "$0")/lib.sh"

victim=1
OUT=/tmp/migrate-dd
REQUEST_TIMEOUT_MS=10000
ROUND_TRIPS=10

mark_all migrate-destination-dies
migrate_ready
hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"
bound_ms=$((2 * hb + REQUEST_TIMEOUT_MS + 5000))

pid=$(cx 0 "rm -f $OUT.*
	sh -c 'count 0 50 >$OUT.count 2>&1 </dev/null & echo \$! >$OUT.pid; wait \$!; echo \$? >$OUT.status' \
		>/dev/null 2>&1 </dev/null &
	$(file_wait_sh $OUT.pid); cat $OUT.pid") || fail "cannot start count on node 0"
[ -n "$pid" ] || fail "count did not start on node 0"
# Not while its shell still execs it (EBUSY).
r=$(wait_comm 0 "$pid" count) || fail "node 0: $r"
note "count started on node 0 as pid $pid"

lines() { cx 0 "wc -l <$OUT.count" | tr -d ' '; }

# wait_lines MIN SECS: until count's output has at least MIN lines.
wait_lines() {
	local deadline=$(($(date +%s) + $2)) n
	while :; do
		n=$(lines)
		[ "${n:-0}" -ge "$1" ] && return 0
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

r=$(cx 0 "i=0; while [ \$i -lt $ROUND_TRIPS ]; do
		e=\$(pcntl migrate $pid $victim 2>&1 && pcntl migrate $pid 0 2>&1) ||
			{ echo \"round trip \$((i + 1)): \$e\"; exit 1; }
		i=\$((i + 1))
	done" 2>&1) || fail "moving $pid to node $victim and back: $r"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 0 ] || fail "after $ROUND_TRIPS round trips pcntl where $pid says '$w'"
l0=$(lines)
wait_lines $((l0 + 10)) 20 || fail "count printed $(lines) lines, not $((l0 + 10)), within 20 s back on node 0"
note "$ROUND_TRIPS round trips to node $victim; count printed 10 more lines on node 0 ($(lines) in all)"

# The migration that waits on a frozen node (its result goes to $OUT.mig),
# started and seen waiting (a pcntl process sleeps, no result yet) in one
# exec, well inside the heartbeat timeout after the freeze.
# wait_on_frozen: freeze the victim and do that; prints `waiting`, or
# `returned: RESULT` when pcntl ended first, or why no pcntl waited.
wait_on_frozen() {
	cx 0 "rm -f $OUT.mig $OUT.mig.tmp" || fail "node 0: cannot remove $OUT.mig"
	freeze "$victim"
	cx 0 "(e=\$(pcntl migrate $pid $victim 2>&1); echo \"rc=\$? \$e\" >$OUT.mig.tmp
			mv $OUT.mig.tmp $OUT.mig) >/dev/null 2>&1 </dev/null &
		i=0
		while [ \$i -lt 30 ]; do
			[ -e $OUT.mig ] && { echo \"returned: \$(cat $OUT.mig)\"; exit 1; }
			for p in /proc/[0-9]*; do
				[ \"\$(cat \$p/comm 2>/dev/null)\" = pcntl ] &&
					grep -q '^State:.S' \$p/status 2>/dev/null && { echo waiting; exit 0; }
			done
			sleep 0.1; i=\$((i + 1))
		done
		echo 'no pcntl process waiting after 3 s'; exit 1" 2>&1
}

# On a loaded host the exec can start pcntl only after node 0 declared the
# frozen node down (heartbeat_timeout_ms after the freeze): the request is
# then refused at once (EINVAL: not a node that is up), or fails with
# EHOSTDOWN before it was seen waiting. Neither is the case under test:
# the victim is killed and brought back, and the freeze is tried again
# (3 tries). The process never left node 0.
try=1
while :; do
	r=$(wait_on_frozen)
	[ "$r" = waiting ] && break
	echo "$r" | grep -qE '^returned: rc=[1-9].*(Invalid argument|Host is down)' ||
		fail "pcntl migrate $pid $victim on node 0 with node $victim frozen: $r"
	[ "$try" -lt 3 ] ||
		fail "pcntl migrate $pid $victim never waited on frozen node $victim in 3 tries; last: $r"
	note "try $try: node 0 gave up on frozen node $victim before pcntl waited ($r); again"
	"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
	bring_back "$victim"
	w=$(cx 0 "pcntl where $pid" 2>&1)
	[ "$w" = 0 ] || fail "after the refused migration pcntl where $pid says '$w'"
	try=$((try + 1))
done
t_kill=$(now_ms)
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
note "node $victim frozen, then killed while pcntl migrate $pid $victim waited"

deadline=$((t_kill + bound_ms))
until cx 0 "[ -e $OUT.mig ]"; do
	[ "$(now_ms)" -ge "$deadline" ] && fail "pcntl migrate $pid $victim did not return within $bound_ms ms of the kill"
	sleep 0.2
done
ms=$(($(now_ms) - t_kill))
res=$(cx 0 "cat $OUT.mig")
note "pcntl migrate $pid $victim returned $ms ms after the kill (bound $bound_ms ms): $res"
echo "$res" | grep -q '^rc=0' && fail "the migration to dead node $victim succeeded: $res"
echo "$res" | grep -q 'Host is down' || fail "the migration to dead node $victim failed without EHOSTDOWN: $res"

# The same process, on node 0, counting on.
st=$(cx 0 "cat $OUT.status 2>/dev/null")
[ -z "$st" ] || fail "process $pid ended (its shell saw status $st)"
comm=$(cx 0 "cat /proc/$pid/comm" 2>&1)
[ "$comm" = count ] || fail "pid $pid is '$comm', not count"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 0 ] || fail "after the failed migration pcntl where $pid says '$w'"
l1=$(lines)
wait_lines $((l1 + 5)) 10 || fail "process $pid stopped counting after node $victim died ($l1 -> $(lines) lines in 10 s)"
text=$(cx 0 "cat $OUT.count")
bad=$(echo "$text" | awk '
	$0 !~ /^[0-9]+ node [0-9]+$/ { print "line " NR " malformed: " $0; exit }
	$1 != NR { print "line " NR " is number " $1; exit }')
[ -z "$bad" ] || fail "count's output: $bad"
last=$(echo "$text" | tail -n 1)
[ "${last##* }" = 0 ] || fail "count's last line was not printed on node 0: $last"
note "process $pid counts on at node 0: $l1 -> $(echo "$text" | wc -l) lines, 1..N without a gap; last: $last"

log=$(popcorn_log 0 migrate-destination-dies)
echo "$log" | tail -n 3 | sed 's/^/# node 0: /'
echo "$log" | grep -qE "0:$pid stays on node 0: migration to node $victim failed" ||
	fail "no popcorn: line in node 0's log saying task 0:$pid stays on node 0"
wait_pcntl_nodes 0 "$(seq 0 $LAST | grep -vx "$victim" | tr '\n' ' ' | sed 's/ $//')" $((2 * hb + 3000)) ||
	fail "node 0 still lists node $victim"
cx 0 "kill $pid"
check_dmesg migrate-destination-dies
bring_back "$victim"
note "node $victim is back; every node lists $(pcntl_nodes_of 0)"
