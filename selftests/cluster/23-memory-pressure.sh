#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# memory-pressure: node 1 is filled past its memory by a migrated process
# (gobelins.rst, "Memory pressure"). A hog on node 1 locks memory until
# the node has only its low watermark + 8 MiB available, and asks the OOM
# killer to spare it. A process started on node 0 maps FILL MiB, moves to
# node 1, maps FILL/4 MiB more there and writes every word of every page:
# about twice what node 1 has. Node 1's flusher injects the pages whose
# only copy is there into node 0 (which has room), faults wait while node
# 1 is critical; the process checks every word on node 1, then back on
# node 0. Without the flusher the process is killed by the OOM killer
# (seen with the low watermark set to 1 KiB: the shrinker alone is not
# enough, reclaim gives up first). Checked: the process's
# verdict, node 1's flush and inject counters moved, node 0 received the
# injections, no OOM kill and nothing bad in any kernel log, and once the
# process is gone neither node keeps a page record or a pooled copy it
# did not have before.
. "$(dirname "$0")/lib.sh"

STATS=/sys/kernel/debug/gobelins/stats
PRESSURE=/sys/kernel/debug/gobelins/pressure
small=1
OUT=/tmp/memory-pressure

# stat NODE NAME: NODE's gobelins counter NAME; press NODE NAME: its
# pressure value NAME.
stat() { cx "$1" "awk '\$1 == \"$2\" { print \$2 }' $STATS"; }
press() { cx "$1" "awk '\$1 == \"$2\" { print \$2 }' $PRESSURE"; }

mark_all memory-pressure
migrate_ready
low=$(press $small low_kb)
[ -n "$low" ] || fail "node $small: no low_kb in $PRESSURE"
left=$((low + 4096))
fill=$((left / 1024 * 3 / 2))
note "node $small: low watermark $low KiB; hogging down to $left KiB available, then filling $fill + $((fill / 4)) MiB"

records0=$(stat 0 records)
records1=$(stat $small records)
flushes=$(stat $small flushes)
injects=$(stat $small sent_inject)
received=$(stat 0 received_inject)

hog=$(cx $small "memfill hog $left >$OUT.hog 2>&1 </dev/null & echo \$!") ||
	fail "cannot start the hog on node $small"
r=$(cx $small "i=0; until grep -q 'hog\|FAIL' $OUT.hog; do [ \$i -ge 600 ] && exit 1; sleep 0.1; i=\$((i + 1)); done; cat $OUT.hog") ||
	fail "node $small: the hog did not say how much it took in 60 s: $r"
echo "$r" | grep -q FAIL && fail "node $small: $r"
note "node $small: $r"

t0=$(now_ms)
r=$(CX_TIMEOUT=900 cx 0 "memfill fill $small $fill" 2>&1)
rc=$?
echo "$r" | sed 's/^/# /'
cx $small "kill $hog" >/dev/null 2>&1
[ $rc -eq 0 ] && echo "$r" | grep -q '^ok ' || fail "memfill fill exited $rc"
note "filled and checked in $(($(now_ms) - t0)) ms"

d_flushes=$(($(stat $small flushes) - flushes))
d_injects=$(($(stat $small sent_inject) - injects))
d_received=$(($(stat 0 received_inject) - received))
note "node $small: $d_flushes flushes, $d_injects pages injected; node 0 received $d_received"
[ "$d_injects" -gt 0 ] || fail "node $small injected no page: the fill never pressed it"
[ "$d_received" -gt 0 ] || fail "node 0 received no injected page"
if cx $small "dmesg | grep -q 'invoked oom-killer'"; then
	fail "node $small invoked the OOM killer"
fi

deadline=$(($(now_ms) + 20000))
until [ "$(stat 0 records)" -le "$records0" ] && [ "$(stat $small records)" -le "$records1" ] &&
	[ "$(stat 0 pooled)" = 0 ] && [ "$(stat $small pooled)" = 0 ]; do
	[ "$(now_ms)" -ge "$deadline" ] &&
		fail "20 s after the process ended: records $(stat 0 records)/$(stat $small records) (before $records0/$records1), pooled $(stat 0 pooled)/$(stat $small pooled)"
	sleep 0.2
done
note "the process's page records and pooled copies are gone on both nodes"
check_dmesg memory-pressure
