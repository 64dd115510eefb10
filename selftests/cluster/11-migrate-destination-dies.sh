#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-destination-dies: node 0 migrates a counting process back and
# forth between nodes 0 and 1 in a loop (`pcntl migrate PID 1`, then
# `pcntl migrate PID 0`, each logged with its result), and node 1's QEMU
# is killed while the loop runs. Then:
# - the loop's pcntl calls return (the loop ends at its first failure)
#   within 2 x heartbeat_timeout_ms + kmsg's 10 s request timeout (+5 s);
# - the process is alive on node 0 and still printing, or it is gone and
#   node 0's kernel log has a popcorn: line about it;
# - node 0 answers, drops node 1 from `pcntl nodes`, and its log shows no
#   BUG/Oops/WARNING;
# then node 1 is started again. Second, node 1's QEMU is frozen (SIGSTOP)
# right before `pcntl migrate PID 1`: the call fails with EHOSTDOWN or
# ETIMEDOUT within the same bound and the process runs on at node 0.
# Node 1 is killed and started again; the cluster is whole at the end.
. "$(dirname "$0")/lib.sh"

victim=1
OUT=/tmp/migrate-dd
REQUEST_TIMEOUT_MS=10000

mark_all migrate-destination-dies
migrate_ready
hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"
bound_ms=$((2 * hb + REQUEST_TIMEOUT_MS + 5000))

pid=$(cx 0 "rm -f $OUT.*
	sh -c 'count 0 50 >$OUT.count 2>&1 </dev/null & echo \$! >$OUT.pid; wait \$!; echo \$? >$OUT.status' \
		>/dev/null 2>&1 </dev/null &
	sleep 0.3; cat $OUT.pid") || fail "cannot start count on node 0"
[ -n "$pid" ] || fail "count did not start on node 0"
note "count started on node 0 as pid $pid"

# The loop, on node 0: until a pcntl call fails, for at most 120 s. Each
# line: "<uptime> <destination> rc=<status> <pcntl's error text>".
loop=$(cat <<'EOS'
pid=$1 victim=$2 log=$3
end=$(( $(cut -d. -f1 /proc/uptime) + 120 ))
while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
	for d in "$victim" 0; do
		e=$(pcntl migrate "$pid" "$d" 2>&1); r=$?
		echo "$(cut -d' ' -f1 /proc/uptime) $d rc=$r $e" >>"$log"
		[ "$r" = 0 ] || { echo done >>"$log"; exit 0; }
	done
done
echo done >>"$log"
EOS
)
cx 0 "cat >$OUT.sh <<'EOS'
$loop
EOS
sh $OUT.sh $pid $victim $OUT.loop >/dev/null 2>&1 </dev/null &" ||
	fail "cannot start the migration loop on node 0"

# Let some round trips complete, then kill node 1 in the middle of the loop.
deadline=$(($(date +%s) + 30))
while :; do
	n=$(cx 0 "grep -c 'rc=0' $OUT.loop 2>/dev/null" | tr -d ' ')
	[ "${n:-0}" -ge 10 ] && break
	[ "$(date +%s)" -ge "$deadline" ] &&
		fail "only ${n:-0} migrations succeeded in 30 s: $(cx 0 "tail -n 3 $OUT.loop" | tr '\n' '|')"
	sleep 0.3
done
t_kill=$(now_ms)
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
note "node $victim killed after $n successful migrations"

# The loop must end: its last pcntl call returned.
deadline=$((t_kill + bound_ms))
while ! cx 0 "grep -q '^done' $OUT.loop"; do
	[ "$(now_ms)" -ge "$deadline" ] &&
		fail "a pcntl call did not return within $bound_ms ms of the kill: $(cx 0 "tail -n 2 $OUT.loop" | tr '\n' '|')"
	sleep 0.3
done
note "the loop ended $(($(now_ms) - t_kill)) ms after the kill (bound $bound_ms ms)"
failed_line=$(cx 0 "grep -v '^done' $OUT.loop | grep -v 'rc=0' | tail -n 1")
ok_count=$(cx 0 "grep -c 'rc=0' $OUT.loop" | tr -d ' ')
note "$ok_count migrations succeeded; the failing call: $failed_line"
[ -n "$failed_line" ] || fail "the loop ended without a failing pcntl call"

cx 0 "true" || fail "node 0 does not answer"
wait_pcntl_nodes 0 "$(seq 0 $LAST | grep -vx "$victim" | tr '\n' ' ' | sed 's/ $//')" $((2 * hb + 3000)) ||
	fail "node 0 still lists node $victim"

# The process: alive on node 0 and printing, or gone with a log line.
if cx 0 "kill -0 $pid 2>/dev/null"; then
	w=$(cx 0 "pcntl where $pid" 2>&1)
	[ "$w" = 0 ] || fail "process $pid is alive but pcntl where says '$w'"
	l1=$(cx 0 "wc -l <$OUT.count" | tr -d ' ')
	sleep 1
	l2=$(cx 0 "wc -l <$OUT.count" | tr -d ' ')
	[ "$l2" -gt "$l1" ] || fail "process $pid is alive on node 0 but stopped printing ($l1 -> $l2 lines)"
	note "process $pid still runs on node 0 ($l1 -> $l2 lines in 1 s); last line: $(cx 0 "tail -n 1 $OUT.count")"
	cx 0 "kill $pid"
else
	st=$(cx 0 "cat $OUT.status 2>/dev/null")
	log=$(popcorn_log 0 migrate-destination-dies | grep -E "0:$pid\b" || true)
	note "process $pid is gone (shell saw status ${st:-none}); node 0's log: $log"
	[ -n "$log" ] || fail "process $pid is gone without a popcorn: line in node 0's log"
fi
popcorn_log 0 migrate-destination-dies | tail -n 5 | sed 's/^/# node 0: /'

bring_back "$victim"
note "node $victim is back; every node lists $(pcntl_nodes_of 0)"

# Second: node 1 stops answering (its QEMU frozen) just before a migration
# to it. The call must fail with EHOSTDOWN or ETIMEDOUT (EINVAL if node 0
# already saw node 1 down) within the bound, and the process stay on node 0
# and run on.
pid=$(cx 0 "rm -f $OUT.*
	sh -c 'count 0 50 >$OUT.count 2>&1 </dev/null & echo \$! >$OUT.pid; wait \$!; echo \$? >$OUT.status' \
		>/dev/null 2>&1 </dev/null &
	sleep 0.3; cat $OUT.pid") || fail "cannot start count on node 0"
r=$(cx 0 "pcntl migrate $pid $victim && pcntl migrate $pid 0" 2>&1) ||
	fail "migrating $pid to node $victim and back before the freeze: $r"
freeze "$victim"
t_kill=$(now_ms)
r=$(CX_TIMEOUT=$(((bound_ms + 999) / 1000 + 10)) cx 0 "pcntl migrate $pid $victim; echo rc=\$?" 2>&1)
ms=$(($(now_ms) - t_kill))
note "node $victim frozen; pcntl migrate $pid $victim returned after $ms ms: $(echo "$r" | tr '\n' ' ')"
echo "$r" | grep -q '^rc=0$' && fail "the migration to a frozen node succeeded"
echo "$r" | grep -qE 'Host is down|timed out|Invalid argument' ||
	fail "the migration to a frozen node failed with an unexpected error: $r"
[ "$ms" -le "$bound_ms" ] || fail "pcntl took $ms ms, bound $bound_ms ms"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 0 ] || fail "after the failed migration pcntl where $pid says '$w'"
l1=$(cx 0 "wc -l <$OUT.count" | tr -d ' ')
sleep 1
l2=$(cx 0 "wc -l <$OUT.count" | tr -d ' ')
[ "$l2" -gt "$l1" ] || fail "process $pid stopped printing after the failed migration ($l1 -> $l2 lines)"
note "process $pid runs on node 0 ($l1 -> $l2 lines in 1 s)"
popcorn_log 0 migrate-destination-dies | tail -n 3 | sed 's/^/# node 0: /'
cx 0 "kill $pid"
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
check_dmesg migrate-destination-dies
bring_back "$victim"
note "node $victim is back; every node lists $(pcntl_nodes_of 0)"
