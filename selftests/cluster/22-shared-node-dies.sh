#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# shared-node-dies: a SysV segment is made by key on node 0 (16 pages of
# 'a'); a process on the last node finds it by key and writes 'b' over
# pages 8..15, which then have their only copy there. That node's QEMU is
# killed. On node 0, a process that finds the segment by key reads pages
# 0..7 as 'a' and gets SIGBUS on pages 8..15 (lost with the node), within
# 2 x heartbeat_timeout_ms (+10 s for TCG) of the kill; node 0's log says
# which pages were lost. A second segment, made on the node killed (its
# home) and written on node 0, is removed on node 0 after the kill. Once
# their last processes detach, node 0 keeps no link nor page record of
# either (the container whose home died is released by node 0). A key made
# on node 0 while the node is down is found there once it is back (its
# entry moves to it if the hash now names it manager), and a key made
# after is shared between node 0 and it too.
. "$(dirname "$0")/lib.sh"

STATS=/sys/kernel/debug/gobelins/stats
victim=$LAST
OUT=/tmp/shared-nd
key=$((0x5d000000 + $$ % 65536))
key2=$((key + 65536))
# A key node $victim manages when every node is up: made while it is
# down, its entry moves to it when it comes back.
key3=$((key + 2 * 65536))
key4=$((key + 3 * 65536))
until [ "$(cx 0 "shmkey manager $key3 $NODES")" = "$victim" ]; do key3=$((key3 + 1)); done

mark_all shared-node-dies
migrate_ready
hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"
bound_ms=$((2 * hb + 10000))

# wait_out NODE FILE TEXT: until FILE in NODE has TEXT (20 s).
wait_out() {
	local i
	for i in $(seq 200); do
		cx "$1" "grep -q '$3' $2" 2>/dev/null && return 0
		cx "$1" "grep -q FAIL $2" 2>/dev/null && break
		sleep 0.1
	done
	fail "node $1: no '$3' in $2: $(cx "$1" "cat $2" 2>&1 | tr '\n' '|')"
}

# links NODE, records NODE: NODE's gobelins counters.
links() { cx "$1" "awk '\$1 == \"links\" { print \$2 }' $STATS"; }
records() { cx "$1" "awk '\$1 == \"records\" { print \$2 }' $STATS"; }

links0=$(links 0)
records0=$(records 0)
maker=$(cx 0 "shmkey make $key 16 >$OUT.make 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey make on node 0"
wait_out 0 $OUT.make made
writer=$(cx "$victim" "shmkey write $key 8 16 >$OUT.write 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey write on node $victim"
wait_out "$victim" $OUT.write "wrote on node $victim"
note "segment of key $key made on node 0 (pid $maker), pages 8..15 written on node $victim (pid $writer)"
r=$(cx 0 "shmkey check $key aaaaaaaabbbbbbbb" 2>&1) || fail "before the kill: $r"
note "before the kill: $r"
# Node 0 read them: write them again there, so that node $victim has the
# only copy.
cx "$victim" "kill $writer" >/dev/null 2>&1
writer=$(cx "$victim" "shmkey write $key 8 16 >$OUT.write 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey write on node $victim"
wait_out "$victim" $OUT.write "wrote on node $victim"

# A segment whose home is the node killed, written on node 0.
maker4=$(cx "$victim" "shmkey make $key4 4 >$OUT.make4 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey make on node $victim"
wait_out "$victim" $OUT.make4 made
user4=$(cx 0 "shmkey write $key4 0 2 >$OUT.write4 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey write on node 0"
wait_out 0 $OUT.write4 "wrote on node 0"
note "segment of key $key4 made on node $victim (pid $maker4), written on node 0 (pid $user4)"

t_kill=$(now_ms)
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
note "node $victim killed"
r=$(cx 0 "shmkey check $key aaaaaaaaxxxxxxxx" 2>&1) || fail "after the kill: $r"
t_end=$(now_ms)
note "after the kill: $r, $((t_end - t_kill)) ms after the kill (bound $bound_ms ms)"
[ $((t_end - t_kill)) -le "$bound_ms" ] ||
	fail "the check took $((t_end - t_kill)) ms after the kill, more than $bound_ms"
cx 0 "dmesg | grep -q 'was lost with the node that held it'" ||
	fail "node 0's log does not say a page was lost"

r=$(cx 0 "shmkey rm $key" 2>&1) || fail "IPC_RMID on node 0: $r"
r=$(cx 0 "shmkey rm $key4" 2>&1) || fail "IPC_RMID of $key4 (home dead) on node 0: $r"
cx 0 "kill $maker $user4" >/dev/null 2>&1
deadline=$(($(now_ms) + 20000))
until [ "$(links 0)" = "$links0" ] && [ "$(records 0)" = "$records0" ]; do
	[ "$(now_ms)" -ge "$deadline" ] &&
		fail "node 0 has $(links 0) gobelins links and $(records 0) page records 20 s after the segments went, $links0 and $records0 before"
	sleep 0.2
done
note "segments removed; node 0 is back to $links0 links and $records0 page records"

check_dmesg shared-node-dies
maker3=$(cx 0 "shmkey make $key3 2 >$OUT.make3 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey make on node 0"
wait_out 0 $OUT.make3 made
bring_back "$victim"
r=$(cx "$victim" "shmkey check $key3 aa" 2>&1) ||
	fail "node $victim does not find key $key3, made while it was down: $r"
note "node $victim is back and finds key $key3, made while it was down: $r"
maker=$(cx 0 "shmkey make $key2 4 >$OUT.make 2>&1 </dev/null & echo \$!") ||
	fail "cannot start shmkey make on node 0"
wait_out 0 $OUT.make made
r=$(cx "$victim" "shmkey check $key2 aaaa" 2>&1) || fail "node $victim after coming back: $r"
note "node $victim finds key $key2, made after: $r"
for k in $key2 $key3; do
	r=$(cx "$victim" "shmkey rm $k" 2>&1) || fail "IPC_RMID of $k on node $victim: $r"
done
cx 0 "kill $maker $maker3" >/dev/null 2>&1
check_dmesg shared-node-dies
