#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-demo: `count LIMIT 100` runs on node 0 with its output in a file
# there; `pcntl migrate PID 1` moves it to node 1 and `pcntl migrate PID 0`
# brings it back, both from node 0. The file must hold 1..LIMIT in order
# without a gap or a repeat, some lines printed on node 1 and the last
# ones on node 0; count must exit 0 (its shell reports the status).
. "$(dirname "$0")/lib.sh"

# 30 s of counting: long enough that count is still running when it comes
# back, however slow the machine, so that its last lines are node 0's.
LIMIT=300
OUT=/tmp/migrate-demo.out

mark_all migrate-demo
migrate_ready

# wait_lines MIN SECS: until the file has at least MIN lines.
wait_lines() {
	local deadline=$(($(date +%s) + $2)) n
	while :; do
		n=$(cx 0 "wc -l <$OUT" 2>/dev/null | tr -d ' ')
		[ "${n:-0}" -ge "$1" ] && return 0
		[ "$(date +%s)" -ge "$deadline" ] && {
			echo "# $OUT has ${n:-0} lines, waited for $1"
			return 1
		}
		sleep 0.2
	done
}

pid=$(cx 0 "rm -f $OUT $OUT.pid $OUT.status
	sh -c 'count $LIMIT 100 >$OUT 2>&1 </dev/null & echo \$! >$OUT.pid; wait \$!; echo \$? >$OUT.status' \
		>/dev/null 2>&1 </dev/null &
	$(file_wait_sh $OUT.pid); cat $OUT.pid") || fail "cannot start count on node 0"
[ -n "$pid" ] || fail "count did not start on node 0"
# Not while its shell still execs it (EBUSY).
r=$(wait_comm 0 "$pid" count) || fail "node 0: $r"
note "count $LIMIT 100 started on node 0 as pid $pid"
wait_lines 5 20 || fail "count prints nothing on node 0"

r=$(cx 0 "pcntl migrate $pid 1" 2>&1) || fail "pcntl migrate $pid 1: $r"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 1 ] || fail "after pcntl migrate $pid 1, pcntl where $pid says '$w'"
at1=$(cx 0 "wc -l <$OUT" | tr -d ' ')
note "migrated to node 1 after line $at1"
wait_lines $((at1 + 10)) 20 || fail "count stopped printing after moving to node 1"

r=$(cx 0 "pcntl migrate $pid 0" 2>&1) || fail "pcntl migrate $pid 0: $r"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 0 ] || fail "after pcntl migrate $pid 0, pcntl where $pid says '$w'"
at0=$(cx 0 "wc -l <$OUT" | tr -d ' ')
note "back on node 0 after line $at0"

deadline=$(($(date +%s) + 60))
until cx 0 "[ -s $OUT.status ]" >/dev/null 2>&1; do
	[ "$(date +%s)" -ge "$deadline" ] && fail "count did not finish within 60 s of coming back"
	sleep 0.3
done
status=$(cx 0 "cat $OUT.status")
text=$(cx 0 "cat $OUT")
[ "$status" = 0 ] || fail "count exited with status $status"

bad=$(echo "$text" | awk -v limit=$LIMIT '
	$0 !~ /^[0-9]+ node [0-9]+$/ { print "line " NR " malformed: " $0; exit }
	$1 != NR { print "line " NR " is number " $1; exit }
	END { if (NR != limit) print NR " lines, expected " limit }')
[ -z "$bad" ] || fail "count's output: $bad"
on1=$(echo "$text" | grep -c ' node 1$' || true)
last=$(echo "$text" | tail -n 1)
note "1..$LIMIT without a gap; $on1 lines printed on node 1; last: $last"
[ "$on1" -ge 10 ] || fail "only $on1 lines say node 1"
[ "${last##* }" = 0 ] || fail "the last line was not printed on node 0: $last"
check_dmesg migrate-demo
