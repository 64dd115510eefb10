#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-running-node-dies: a counting process started on node 0 (by a
# shell that records its wait status) is migrated to node 1, and node 1's
# QEMU is killed. Its shadow on node 0 must end as killed by SIGKILL (the
# shell sees status 137) within 2 x heartbeat_timeout_ms (+10 s for TCG
# on a loaded host and polling through the agent), node 0's log must say
# so in a popcorn: line, the pid must be gone, and no BUG/Oops/WARNING
# logged. The process's stderr is the only write end of a FIFO read at
# node 0: node 0 drops node 1's hold on it, so the reader sees end of file
# within the same bound.
# Then node 1 is started again and the cluster is whole.
. "$(dirname "$0")/lib.sh"

victim=1
OUT=/tmp/migrate-rd

mark_all migrate-running-node-dies
migrate_ready
hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"
bound_ms=$((2 * hb + 10000))

pid=$(cx 0 "rm -f $OUT.*
	mkfifo $OUT.fifo
	sh -c 'cat $OUT.fifo >/dev/null; echo eof >$OUT.eof' >/dev/null 2>&1 </dev/null &
	sh -c 'count 0 100 >$OUT.count 2>$OUT.fifo </dev/null & echo \$! >$OUT.pid; wait \$!; echo \$? >$OUT.status' \
		>/dev/null 2>&1 </dev/null &
	$(file_wait_sh $OUT.pid); cat $OUT.pid") || fail "cannot start count on node 0"
[ -n "$pid" ] || fail "count did not start on node 0"
# Not while its shell still execs it (EBUSY).
r=$(wait_comm 0 "$pid" count) || fail "node 0: $r"
r=$(cx 0 "pcntl migrate $pid $victim" 2>&1) || fail "pcntl migrate $pid $victim: $r"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = "$victim" ] || fail "after migrating, pcntl where $pid says '$w'"
# It runs there: its lines say so.
deadline=$(($(date +%s) + 20))
until cx 0 "grep -q ' node $victim\$' $OUT.count"; do
	[ "$(date +%s)" -ge "$deadline" ] && fail "no line of count says node $victim"
	sleep 0.2
done
note "count (pid $pid) runs on node $victim: $(cx 0 "tail -n 1 $OUT.count")"

t_kill=$(now_ms)
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
note "node $victim killed"
deadline=$((t_kill + bound_ms))
while ! cx 0 "[ -s $OUT.status ]" 2>/dev/null; do
	[ "$(now_ms)" -ge "$deadline" ] &&
		fail "the shadow of $pid on node 0 did not end within $bound_ms ms of the kill (pcntl where: $(cx 0 "pcntl where $pid" 2>&1))"
	sleep 0.2
done
t_end=$(now_ms)
st=$(cx 0 "cat $OUT.status")
note "the shell on node 0 saw status $st $((t_end - t_kill)) ms after the kill (bound $bound_ms ms)"
[ "$st" = 137 ] || fail "status $st, expected 137 (killed by SIGKILL)"
while ! cx 0 "[ -s $OUT.eof ]" 2>/dev/null; do
	[ "$(now_ms)" -ge "$deadline" ] &&
		fail "the reader of the FIFO at node 0 saw no end of file within $bound_ms ms of the kill"
	sleep 0.2
done
note "the FIFO's reader at node 0 saw end of file $(($(now_ms) - t_kill)) ms after the kill"
w=$(cx 0 "pcntl where $pid" 2>&1) && fail "pcntl where $pid still answers '$w' after it ended"
echo "$w" | grep -q 'No such process' || fail "pcntl where $pid after it ended: '$w', expected ESRCH"
log=$(popcorn_log 0 migrate-running-node-dies)
echo "$log" | tail -n 5 | sed 's/^/# node 0: /'
echo "$log" | grep -qE "0:$pid\b.*node $victim" ||
	fail "no popcorn: line about task 0:$pid and node $victim in node 0's log"

check_dmesg migrate-running-node-dies
bring_back "$victim"
note "node $victim is back; every node lists $(pcntl_nodes_of 0)"
