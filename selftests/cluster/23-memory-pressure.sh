#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# memory-pressure: node 1 is filled past its memory by a migrated process
# (gobelins.rst, "Memory pressure"). To keep the run short the scenario
# sets node 1's low watermark to 12 MiB (high 15, critical 6) and puts it
# back at the end. A hog on node 1 locks memory until the node has only
# its high watermark + 2 MiB available, and asks the OOM killer to spare
# it. A process started on node 0 maps FILL MiB, moves to node 1, maps
# FILL/4 MiB more there and writes every word of every page: about twice
# what node 1 has (1.5 + 0.375 times). Node 1's flusher injects the pages
# whose only copy is there into the peers with room (node 0, whose shadow
# has the first mapping but not the second, and with 3 nodes node 2, which
# keeps them in its pool); faults wait while node 1 is critical. The
# process checks every 4th page on node 1 (fetched back from where they
# went), then every page back on node 0. Without the flusher the process
# is killed by the OOM killer (seen with the low watermark set to 1 KiB:
# the shrinker alone is not enough, reclaim gives up first). Checked: the
# process's verdict, node 1's inject counter moved and its peers received
# them, no OOM kill and nothing bad in any kernel log (a page sent as
# zeros because its copy was missing would say "unreadable here"), and
# once the process is gone no node keeps a page record or a pooled copy
# it did not have before.
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
cx $small "echo 'low_kb 12288' >$PRESSURE" || fail "node $small: cannot set low_kb"
hog=
trap 'cx $small "[ -z \"$hog\" ] || kill $hog; echo low_kb\ 0 >$PRESSURE" >/dev/null 2>&1' EXIT
high=$(press $small high_kb)
[ "$high" = 15360 ] || fail "node $small: high_kb is '$high' with low_kb 12288, want 15360"
left=$((high + 2048))
fill=$((left / 1024 * 3 / 2))
note "node $small: high watermark $high KiB; hogging down to $left KiB available, then filling $fill + $((fill / 4)) MiB"

others=$(seq 0 $LAST | grep -vx $small)
WRONG='unreadable here|not installed|lost: no memory'
declare -A records received pooled wrong
for n in $(seq 0 $LAST); do
	wrong[$n]=$(cx "$n" "dmesg | grep -cE '$WRONG'")
	records[$n]=$(stat $n records)
	pooled[$n]=$(stat $n pooled)
	received[$n]=$(stat $n received_inject)
done
flushes=$(stat $small flushes)
injects=$(stat $small sent_inject)

hog=$(cx $small "memfill hog $left >$OUT.hog 2>&1 </dev/null & echo \$!") ||
	fail "cannot start the hog on node $small"
r=$(cx $small "i=0; until grep -q 'hog\|FAIL' $OUT.hog; do [ \$i -ge 600 ] && exit 1; sleep 0.1; i=\$((i + 1)); done; cat $OUT.hog") ||
	fail "node $small: the hog did not say how much it took in 60 s: $r"
echo "$r" | grep -q FAIL && fail "node $small: $r"
note "node $small: $r"

t0=$(now_ms)
r=$(CX_TIMEOUT=900 cx 0 "memfill fill $small $fill 4" 2>&1)
rc=$?
echo "$r" | sed 's/^/# /'
cx $small "kill $hog" >/dev/null 2>&1
hog=
[ $rc -eq 0 ] && echo "$r" | grep -q '^ok ' || fail "memfill fill exited $rc"
note "filled and checked in $(($(now_ms) - t0)) ms"

if cx $small "dmesg | grep -q 'invoked oom-killer'"; then
	fail "node $small invoked the OOM killer"
fi
for n in $(seq 0 $LAST); do
	[ "$(cx "$n" "dmesg | grep -cE '$WRONG'")" = "${wrong[$n]}" ] ||
		fail "node $n sent or kept a wrong copy: $(cx "$n" "dmesg | grep -E '$WRONG' | tail -3")"
done

deadline=$(($(now_ms) + 20000))
for n in $(seq 0 $LAST); do
	until [ "$(stat $n records)" -le "${records[$n]}" ] && [ "$(stat $n pooled)" -le "${pooled[$n]}" ]; do
		[ "$(now_ms)" -ge "$deadline" ] &&
			fail "node $n, 20 s after the process ended: $(stat $n records) records and $(stat $n pooled) pooled copies, ${records[$n]} and ${pooled[$n]} before"
		sleep 0.2
	done
done
note "the process's page records and pooled copies are gone on every node"

d_flushes=$(($(stat $small flushes) - flushes))
d_injects=$(($(stat $small sent_inject) - injects))
d_received=0
for n in $others; do
	d=$(($(stat $n received_inject) - ${received[$n]}))
	note "node $n received $d injected pages"
	d_received=$((d_received + d))
done
note "node $small: $d_flushes flushes, $d_injects pages injected; its peers received $d_received"
[ "$d_injects" -gt 0 ] || fail "node $small injected no page: the fill never pressed it"
[ "$d_received" = "$d_injects" ] ||
	fail "node $small sent $d_injects injections, its peers received $d_received"
check_dmesg memory-pressure
